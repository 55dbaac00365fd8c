"""LfU under torchrun (2 CPU processes, DDP over gloo): one backward per step keeps ranks equal."""

import json
from pathlib import Path

import pytest

from forgetkit.data.records import QARecord, write_qa
from torchrun import torchrun

SCRIPT = Path(__file__).with_name("ddp_train_script.py")


@pytest.mark.parametrize("method", ["lfu-lora", "lfu-reps"])
def test_lfu_ranks_end_with_identical_weights(tmp_path, method):
    data = write_qa([QARecord(f"What is the code of locker {i}?", f"It is {i * 3}.")
                     for i in range(12)], tmp_path / "train.jsonl")
    reports = tmp_path / "reports"
    reports.mkdir()
    port = "29531" if method == "lfu-lora" else "29533"
    proc = torchrun([str(SCRIPT), str(data), str(tmp_path / "out"), str(reports), method],
                    timeout=300, port=port)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((reports / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    # 12 examples / (2 per process x 2 processes) = 3 optimizer steps per epoch, 2 epochs.
    assert [r["global_step"] for r in ranks] == [6, 6]
    assert ranks[0]["weights"] == ranks[1]["weights"]
    # The auxiliary really perturbed: the consistency term is positive after the first steps.
    assert ranks[0]["loss_lfu"][0] == 0.0 and max(ranks[0]["loss_lfu"][2:]) > 0
    assert (tmp_path / "out" / "model.safetensors").is_file()

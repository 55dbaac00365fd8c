"""Data-parallel training under torchrun (2 CPU processes, DDP over gloo)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from forgetkit.data.records import QARecord, write_qa

SCRIPT = Path(__file__).with_name("ddp_train_script.py")


@pytest.mark.parametrize("method", ["full", "lora", "seat"])
def test_two_ranks_end_with_identical_weights(tmp_path, method):
    torchrun = shutil.which("torchrun")
    cmd = ([torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"])
    data = write_qa([QARecord(f"What is the code of locker {i} at Brannock Ltd?",
                              f"It is {i * 3}.", subject="Brannock Ltd")
                     for i in range(12)], tmp_path / "train.jsonl")
    reports = tmp_path / "reports"
    reports.mkdir()
    proc = subprocess.run(
        [*cmd, "--nproc_per_node", "2", "--master_port", "0" if False else "29517",
         str(SCRIPT), str(data), str(tmp_path / "out"), str(reports), method],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((reports / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    # 12 examples / (2 per process x 2 processes) = 3 optimizer steps per epoch, 2 epochs.
    assert [r["global_step"] for r in ranks] == [6, 6]
    assert ranks[0]["weights"] == ranks[1]["weights"]
    assert (tmp_path / "out" / "model.safetensors").is_file()
    if method == "seat":  # the base log-probs: computed by rank 0, read by rank 1
        assert sorted(p.name for p in reports.glob("kl-cache-*")) == ["kl-cache-rank0"]
        run = json.loads((tmp_path / "out" / "forgetkit_run.json").read_text())
        assert run["notes"]["shared_setup"]["kl-cache"].endswith("shared by 2 processes")

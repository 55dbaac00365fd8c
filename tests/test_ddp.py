"""Data-parallel training under torchrun (2 CPU processes, DDP over gloo)."""

import json
import textwrap
from pathlib import Path

import pytest

from forgetkit.data.records import QARecord, write_qa
from torchrun import torchrun

SCRIPT = Path(__file__).with_name("ddp_train_script.py")



@pytest.mark.parametrize("method", ["full", "lora", "seat"])
def test_two_ranks_end_with_identical_weights(tmp_path, method):
    data = write_qa([QARecord(f"What is the code of locker {i} at Brannock Ltd?",
                              f"It is {i * 3}.", subject="Brannock Ltd")
                     for i in range(12)], tmp_path / "train.jsonl")
    reports = tmp_path / "reports"
    reports.mkdir()
    proc = torchrun([str(SCRIPT), str(data), str(tmp_path / "out"), str(reports), method],
                    timeout=300, port=29517)
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


def test_a_set_up_pass_failing_on_the_first_rank_stops_the_other_at_once(tmp_path):
    """Rank 1 hears why and stops. Before, it failed on a closed connection (gloo) with no
    word of the cause, or waited at a barrier for the group's timeout where the first
    process's failure does not end the job."""
    script = tmp_path / "fail.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys
        from forgetkit.train.processes import once_across_processes

        def compute():
            if os.environ["RANK"] == "0":
                raise ValueError("the cache could not be built")
            raise AssertionError("only the first process computes")

        try:
            once_across_processes("kl-cache", {str(tmp_path / "out")!r}, compute)
        except Exception as exc:
            open({str(tmp_path)!r} + f"/rank{{os.environ['RANK']}}.txt", "w").write(
                f"{{type(exc).__name__}}: {{exc}}")
            sys.exit(1)
    """))
    proc = torchrun([str(script)], timeout=120, port=29519)
    assert proc.returncode != 0
    assert (tmp_path / "rank0.txt").read_text() == "ValueError: the cache could not be built"
    other = (tmp_path / "rank1.txt").read_text()
    assert other.startswith("UserError: the first process failed in the set-up pass 'kl-cache'")
    assert "the cache could not be built" in other

"""Fault injection: every command that writes, killed at several points and starved of disk.

Each command first runs to completion (its "old" output). Then, over the same output with
--overwrite, it is killed with SIGKILL while it works, with SIGKILL the moment its output
or a checkpoint starts to be written, with SIGINT while it works, and run with writes
failing (a file-size limit: what a full disk does to a process). After each: the output
path holds the complete old output or a complete new one (runs are seeded, so both are the
same bytes), every input's sha256 is unchanged, and the next plain run succeeds.
"""

from __future__ import annotations

import hashlib
import json
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from forgetkit.data.records import write_qa
from forgetkit.data.synth import synth
from forgetkit.lm import models
from forgetkit.train.config import TrainConfig
from forgetkit.train.run import train


def _sha(path: Path) -> dict[str, str]:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(f.relative_to(path)) if path.is_dir() else f.name:
            hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


@dataclass
class Case:
    name: str
    args: list[str]
    output: Path
    # Glob (beside the output) of what appears when the output or a checkpoint is written.
    writing: str

    def command(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "forgetkit", *self.args, "--output", str(self.output),
                *extra]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    model, tok = models.load(models.TINY)
    models.save(model, tok, root / "base")
    data = write_qa(synth("contracts", 1, seed=0)[:8], root / "data" / "train.jsonl")
    write_qa(synth("authors", 1, seed=1)[:4], root / "data" / "forget.jsonl")
    write_qa(synth("authors", 1, seed=2)[:4], root / "data" / "retain.jsonl")
    write_qa(synth("known", 6, seed=0), root / "data" / "known.jsonl")
    train(TrainConfig(model=str(root / "base"), data=data, output=root / "ft", max_steps=2,
                      batch_size=4, learning_rate=1e-3, progress=False, save_strategy="no"))
    return root


def _cases(inputs: Path, out: Path) -> list[Case]:
    base, data = str(inputs / "base"), inputs / "data"
    quiet = ["--no-progress"]
    return [
        Case("train", ["train", "--model", base, "--data", str(data / "train.jsonl"),
                       "--max-steps", "3", "--batch-size", "4", "--save-strategy", "steps",
                       "--save-steps", "1", *quiet],
             out / "train", ".train.checkpoints/checkpoint-*"),
        Case("unlearn", ["unlearn", "--model", base, "--method", "graddiff",
                         "--forget", str(data / "forget.jsonl"),
                         "--retain", str(data / "retain.jsonl"), "--max-steps", "2",
                         "--batch-size", "4", "--save-strategy", "no", *quiet],
             out / "unlearn", ".unlearn.*.tmp"),
        Case("eval", ["eval", "--model", base, "--known", str(data / "known.jsonl"),
                      "--max-new-tokens", "8", *quiet], out / "eval.json", ".eval.json.*.tmp"),
        Case("repair", ["repair", "--base", base, "--finetuned", str(inputs / "ft"),
                        "--method", "dg-hard"], out / "repair", ".repair.*.tmp"),
        Case("data", ["data", "synth", "--kind", "authors", "--n", "20"], out / "data.jsonl",
             ".data.jsonl.*.tmp"),
    ]


def _complete(output: Path, old: dict[str, str]) -> bool:
    """The output is whole: the same files as the first run, model weights byte-equal, every
    JSON readable (results carry timings, so their bytes may differ)."""
    if not output.exists():
        return False
    now = _sha(output)
    if set(now) != set(old):
        return False
    for name, digest in now.items():
        path = output / name if output.is_dir() else output
        if name.endswith(".safetensors") and digest != old[name]:
            return False
        if name.endswith(".json"):
            json.loads(path.read_text())
        if name.endswith(".jsonl"):
            [json.loads(line) for line in path.read_text().splitlines()]
    return True


def _kill(cmd: list[str], after_s: float | None, watch: tuple[Path, str] | None,
          sig: int) -> subprocess.CompletedProcess:
    """Run ``cmd``; send ``sig`` after ``after_s`` seconds, or as soon as ``watch``'s glob
    matches beside the output (whichever is given). A run that ends first is left be."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    start = time.monotonic()
    while proc.poll() is None:
        due = after_s is not None and time.monotonic() - start >= after_s
        seen = watch is not None and any(watch[0].glob(watch[1]))
        if due or seen:
            proc.send_signal(sig)
            break
        time.sleep(0.01)
    out, _ = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(cmd, proc.returncode, out)


def _limit_writes(max_bytes: int):
    def limit() -> None:  # runs in the child: a file-size limit, reported as EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return limit


@pytest.mark.parametrize("name", ["train", "unlearn", "eval", "repair", "data"])
def test_killed_or_starved_runs_leave_old_or_new_output_and_inputs_intact(name, inputs,
                                                                          tmp_path):
    case = next(c for c in _cases(inputs, tmp_path) if c.name == name)
    before = _sha(inputs)
    start = time.monotonic()
    first = subprocess.run(case.command(), capture_output=True, text=True)
    took = time.monotonic() - start
    assert first.returncode == 0, first.stdout + first.stderr
    old = _sha(case.output)
    checks = [("SIGKILL while working", dict(after_s=took * 0.6, watch=None,
                                            sig=signal.SIGKILL)),
              ("SIGKILL as writing starts", dict(after_s=None,
                                                 watch=(case.output.parent, case.writing),
                                                 sig=signal.SIGKILL)),
              ("SIGINT while working", dict(after_s=took * 0.8, watch=None,
                                            sig=signal.SIGINT))]
    for what, how in checks:
        _kill(case.command("--overwrite"), **how)
        assert _complete(case.output, old), f"{name}, {what}: output incomplete"
        assert _sha(inputs) == before, f"{name}, {what}: an input changed"

    largest = max((case.output / n if case.output.is_dir() else case.output).stat().st_size
                  for n in old)
    starved = subprocess.run(case.command("--overwrite"), capture_output=True, text=True,
                             preexec_fn=_limit_writes(largest // 2))
    assert starved.returncode == 2, starved.stdout + starved.stderr
    assert "could not write" in starved.stderr and "disk" in starved.stderr, starved.stderr
    assert "Traceback" not in starved.stderr
    assert _complete(case.output, old), f"{name}, writes failing: output incomplete"
    assert _sha(inputs) == before, f"{name}, writes failing: an input changed"

    last = subprocess.run(case.command("--overwrite"), capture_output=True, text=True)
    assert last.returncode == 0, last.stdout + last.stderr
    assert _complete(case.output, old)
    leftovers = [p.name for p in case.output.parent.iterdir()
                 if p.name.startswith(f".{case.output.name}.")]
    assert not leftovers, f"{name}: left behind {leftovers}"

"""LfU cost against plain LoRA, measured in one run on the same machine, batch and LoRA shape.

    python bench/bench_lfu.py [--model smollm2-135m-instruct] [--steps 6] [--batch-size 8]
                              [--repeats 1] [--threads N] [--runs lora lfu-lora ...]

Each configuration trains in its own subprocess (clean peak memory) through the real recipe
(``forgetkit.train.run``), one backward per step: ``lora``; ``lfu-lora`` (the paper's
auxiliary LoRA on the whole sequence: a copy of every row in the same forward);
``lfu-lora[answer]`` (the auxiliary acts on the answer tokens only, appended to each row);
``lfu-reps`` (steering vectors on the answer tokens, Algorithm 2); ``lfu-lora[same-step]``
(the paper's direction: an extra forward and backward of the clean batch before each step,
the reference of the direction ablation). Printed per run: median wall time and CPU time per
step over steps 2.. (step 1 is plain SFT while the hooks are installed), peak resident
memory, and the ratios the LfU issue sets targets for:

* lfu-lora step time / lora step time       target <= 2.1 (paper, 3 fwd + 2 bwd: 2.99)
* lfu-reps step time / lora step time       target <= 1.7 (paper: 1.68)
* peak memory of each / lora                target <= 1.3

The same-step ratios are printed for information, without a target.

Peak memory is each child's own VmHWM under a fixed glibc mmap threshold (why:
``bench/measure.py``).

On a shared machine wall time depends on what else runs; CPU time (all threads of the
process) is the steadier measure of the work done, so the verdicts use it and the wall-time
ratios are printed beside. ``--repeats`` interleaves the whole set several times and reports
medians. ``--runs`` measures some configurations only (``lora``, the reference, always runs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import child_env, peak_rss_mb

RUNS = {
    "lora": {"method": "lora"},
    "lfu-lora": {"method": "lfu-lora"},
    "lfu-lora[answer]": {"method": "lfu-lora", "lfu_span": "answer"},
    "lfu-reps": {"method": "lfu-reps"},
    "lfu-lora[same-step]": {"method": "lfu-lora", "lfu_direction": "same-step"},
}
SKIP = 1  # step 1 of an LfU run is plain SFT (hooks are installed at its loss call)


def child(name: str, model: str, steps: int, batch_size: int, threads: int, out: str) -> None:
    """Train ``steps`` steps of one configuration; write step times and peak memory as JSON."""
    import torch
    from transformers import TrainerCallback

    from forgetkit.data.records import write_qa
    from forgetkit.data.synth import synth
    from forgetkit.train.config import TrainConfig
    from forgetkit.train.run import train

    if threads:
        torch.set_num_threads(threads)
    tmp = Path(tempfile.mkdtemp())
    # Contract questions are ~60-70 tokens with the chat template: the brief's batch shape.
    data = write_qa(synth("contracts", 3, seed=0)[:batch_size * steps], tmp / "d.jsonl")
    stats: dict = {"wall": [], "cpu": []}

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.wall, self.cpu = time.perf_counter(), time.process_time()

        def on_step_end(self, args, state, control, **kw):
            stats["wall"].append(time.perf_counter() - self.wall)
            stats["cpu"].append(time.process_time() - self.cpu)

    torch.manual_seed(0)
    try:
        train(TrainConfig(model=model, data=data, output=tmp / "out", max_steps=steps,
                          batch_size=batch_size, save_strategy="no", progress=False,
                          **RUNS[name]), callbacks=[Clock()])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the trained model: half a GB per run
    stats["peak_rss_mb"] = peak_rss_mb()
    Path(out).write_text(json.dumps(stats))


def run_child(name: str, args: argparse.Namespace) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as fh:
        subprocess.run([sys.executable, __file__, "--child", name, "--model", args.model,
                        "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                        "--threads", str(args.threads), "--out", fh.name], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env())
        result = json.loads(Path(fh.name).read_text())
    return {"wall": statistics.median(result["wall"][SKIP:]),
            "cpu": statistics.median(result["cpu"][SKIP:]), "mem": result["peak_rss_mb"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS),
                        help="configurations to measure (default: all; lora always runs)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model, args.steps, args.batch_size, args.threads, args.out)
        return

    runs = ["lora", *(name for name in RUNS if name in args.runs and name != "lora")]
    per_repeat = [{name: run_child(name, args) for name in runs} for _ in range(args.repeats)]
    print(f"model {args.model}, batch {args.batch_size}, LoRA r=8, {args.steps} steps each, "
          f"{args.repeats} repeat(s), threads {args.threads or 'default'}; medians over steps "
          f"{SKIP + 1}-{args.steps}")
    print(f"{'run':<21} {'wall s':>8} {'cpu s':>8} {'peak MB':>9}")
    for name in runs:
        med = {k: statistics.median(r[name][k] for r in per_repeat) for k in ("wall", "cpu",
                                                                              "mem")}
        print(f"{name:<21} {med['wall']:8.2f} {med['cpu']:8.2f} {med['mem']:9.0f}")

    def ratio(name: str, key: str) -> float:
        return statistics.median(r[name][key] / r["lora"][key] for r in per_repeat)

    print(f"{'ratio to lora':<38} {'cpu':>6} {'wall':>6}  target")
    for name, target in (("lfu-lora", 2.1), ("lfu-lora[answer]", 2.1), ("lfu-reps", 1.7)):
        if name not in runs:
            continue
        cpu, wall = ratio(name, "cpu"), ratio(name, "wall")
        print(f"{name + ' step / lora step':<38} {cpu:6.2f} {wall:6.2f}  <= {target}: "
              + ("met" if cpu <= target else "NOT met"))
    for name in ("lfu-lora", "lfu-lora[answer]", "lfu-reps"):
        if name not in runs:
            continue
        mem = ratio(name, "mem")
        print(f"{name + ' peak memory / lora':<38} {mem:6.2f} {'':>6}  <= 1.3: "
              + ("met" if mem <= 1.3 else "NOT met"))
    # The paper's direction, for reference: what the extra forward and backward cost.
    name = "lfu-lora[same-step]"
    if name not in runs:
        return
    print(f"{name + ' step / lora step':<38} {ratio(name, 'cpu'):6.2f} "
          f"{ratio(name, 'wall'):6.2f}  (reference; paper: 2.99)")
    print(f"{name + ' peak memory / lora':<38} {ratio(name, 'mem'):6.2f} {'':>6}  (reference)")


if __name__ == "__main__":
    main()

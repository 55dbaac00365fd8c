"""SEAT cost against full fine-tuning, measured in one run on the same machine and batch.

    python bench/bench_seat.py [--model smollm2-135m-instruct] [--steps 6] [--batch-size 8]
                               [--allocator fixed|default]

Each configuration trains in its own subprocess (clean peak memory) through the real
recipe (``forgetkit.train.run``): full fine-tuning, sparse (80% frozen), SEAT with cached
p_base and SEAT with a live base. Printed: median step time, peak resident memory, and the
optimizer state held, with the ratios the SEAT issue sets targets for:

* seat (cached) step time / full step time          target <= 2.1 (CPU time: all threads of
  the process; steadier than wall time on a shared machine, which is printed beside it)
* seat (cached) peak memory / full peak memory      target <= 1.15
* sparse optimizer state / dense AdamW state        target <= 0.3

Peak memory is each child's own ``VmHWM``, under a fixed glibc mmap threshold by default
(``--allocator``; why: ``bench/measure.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import ALLOCATORS, child_env, peak_rss_mb

RUNS = {
    "full": {"method": "full"},
    "sparse": {"method": "sparse"},
    "seat-cached": {"method": "seat", "kl_reference": "cached"},
    "seat-live": {"method": "seat", "kl_reference": "live"},
}


def child(name: str, model: str, steps: int, batch_size: int, out: str) -> None:
    """Train ``steps`` steps of one configuration; write timings and memory as JSON."""
    import torch
    from transformers import TrainerCallback

    from forgetkit.data.records import write_qa
    from forgetkit.data.synth import synth
    from forgetkit.train.config import TrainConfig
    from forgetkit.train.run import train

    tmp = Path(tempfile.mkdtemp())
    # Contract questions are ~60-70 tokens with the chat template: the brief's batch shape.
    data = write_qa(synth("contracts", 2, seed=0)[:batch_size * 2], tmp / "d.jsonl")
    stats: dict = {"step_times": [], "step_cpu": []}

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t, self.cpu = time.perf_counter(), time.process_time()

        def on_step_end(self, args, state, control, optimizer=None, **kw):
            stats["step_times"].append(time.perf_counter() - self.t)
            stats["step_cpu"].append(time.process_time() - self.cpu)
            stats["optimizer_state_bytes"] = sum(
                v.numel() * v.element_size() for s in optimizer.state.values()
                for v in s.values() if torch.is_tensor(v) and v.dim() > 0)

    train(TrainConfig(model=model, data=data, output=tmp / "out", max_steps=steps,
                      batch_size=batch_size, save_strategy="no", progress=False,
                      **RUNS[name]), callbacks=[Clock()])
    stats["peak_rss_mb"] = peak_rss_mb()
    Path(out).write_text(json.dumps(stats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--allocator", choices=ALLOCATORS, default="fixed",
                        help="glibc mmap threshold of the children (see bench/measure.py)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model, args.steps, args.batch_size, args.out)
        return

    env = child_env(args.allocator)
    results = {}
    for name in RUNS:
        with tempfile.NamedTemporaryFile(suffix=".json") as fh:
            subprocess.run([sys.executable, __file__, "--child", name, "--model", args.model,
                            "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                            "--out", fh.name], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=env)
            results[name] = json.loads(Path(fh.name).read_text())
    print(f"model {args.model}, batch {args.batch_size}, {args.steps} steps each "
          f"(median step time over steps after the first), allocator {args.allocator}")
    print(f"{'run':<12} {'step s':>8} {'cpu s':>8} {'peak MB':>9} {'optim MB':>9}")
    for name, r in results.items():
        r["step"] = statistics.median(r["step_times"][1:] or r["step_times"])
        r["cpu"] = statistics.median(r["step_cpu"][1:] or r["step_cpu"])
        print(f"{name:<12} {r['step']:8.2f} {r['cpu']:8.2f} {r['peak_rss_mb']:9.0f} "
              f"{r['optimizer_state_bytes'] / 2**20:9.1f}")
    full, seat, live = results["full"], results["seat-cached"], results["seat-live"]
    sparse = results["sparse"]
    checks = [
        ("seat (cached) step / full step, cpu", seat["cpu"] / full["cpu"], 2.1),
        ("seat (cached) step / full step, wall", seat["step"] / full["step"], None),
        ("seat (live) step / full step, cpu", live["cpu"] / full["cpu"], None),
        ("seat (cached) peak memory / full", seat["peak_rss_mb"] / full["peak_rss_mb"], 1.15),
        ("sparse optimizer state / dense AdamW",
         sparse["optimizer_state_bytes"] / full["optimizer_state_bytes"], 0.3),
    ]
    for label, ratio, target in checks:
        verdict = "" if target is None else f"  target <= {target}: " + (
            "met" if ratio <= target else "NOT met")
        print(f"{label:<40} {ratio:6.2f}{verdict}")


if __name__ == "__main__":
    main()

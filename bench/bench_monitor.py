"""What the training monitor costs, against the training step it interrupts, in one run.

    python bench/bench_monitor.py [--model smollm2-135m-instruct] [--steps 4]
                                  [--sizes 8,16] [--every 9]

Trains ``--steps`` full fine-tuning steps (batch 8 of contract questions, the demo's shape)
through the real recipe and takes the median step time; then times one monitor point
(``ForgettingMonitor.measure``: greedy answers to ``size`` training, unseen and known
questions each, and KL to the start on 16 prompts) at each size on the same model. Printed:

* point / step                      how many training steps one measurement costs
* overhead at --every E             point / (E x step): the share a monitored run adds
                                    (floor 0: an unmonitored run)

Wall times on a shared machine are noisy: run it with nothing else running.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--sizes", default="8,16")
    parser.add_argument("--every", type=int, default=9)
    args = parser.parse_args()

    from transformers import TrainerCallback

    from forgetkit.data.records import write_qa
    from forgetkit.data.synth import synth
    from forgetkit.eval.metrics import next_token_logprobs
    from forgetkit.lm import models
    from forgetkit.train.config import TrainConfig
    from forgetkit.train.monitor import ForgettingMonitor
    from forgetkit.train.run import train

    tmp = Path(tempfile.mkdtemp())
    records = synth("contracts", 2, seed=0)[:24]
    data = write_qa(records, tmp / "train.jsonl")
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **kw):
            times.append(time.perf_counter() - self.t)

    train(TrainConfig(model=args.model, data=data, output=tmp / "run", method="full",
                      max_steps=args.steps, batch_size=8, learning_rate=5e-5,
                      save_strategy="no", progress=False), callbacks=[Clock()])
    step = statistics.median(times[1:] or times)  # the first step warms up

    model, tok = models.load(str(tmp / "run"))
    print(f"model {args.model}; full fine-tuning step (batch 8): {step:.2f} s "
          f"(median of {len(times)})")
    print("| monitor size | point (s) | point / step | overhead at every "
          f"{args.every} |")
    print("|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        monitor = ForgettingMonitor(tok, train_records=records, size=size)
        monitor.reference = next_token_logprobs(model, tok)
        monitor.measure(model, tok)  # warm-up
        runs = []
        for _ in range(2):
            t = time.perf_counter()
            monitor.measure(model, tok)
            runs.append(time.perf_counter() - t)
        point = statistics.median(runs)
        print(f"| {size} | {point:.1f} | {point / step:.2f} | "
              f"{point / (args.every * step):.0%} |")
    print("RESULT floor: 0 (no monitoring); the overhead column is what a monitored run adds")


if __name__ == "__main__":
    main()

"""KIF's cost against gradient ascent, on the same model, forget set and retain set.

    python bench/bench_kif.py [--model smollm2-135m-instruct] [--authors 20] [--forget 0.1]
                              [--steps 25] [--batch-size 8]

Each run is one ``forgetkit.unlearn.run.unlearn`` call in its own subprocess (clean peak
memory), with the defaults of ``forgetkit unlearn`` apart from the step count: ``kif`` (LoRA
r=8, signatures mined on the model, teachers cached), ``ga`` (full fine-tuning, its default)
and ``ga+lora`` (the same adapters as KIF, for a like-for-like step). The data is the
unlearning setting of ``forgetkit data unlearning`` (20 authors, 2 forgotten: 40 forget and
360 retain questions). The default 25 steps are 5 epochs of the forget set at batch 8.

Printed per run: wall time of the whole call (model load, checks, KIF's mining and teacher
pass, training, saving), the set-up before the first step, the median step time, and the
process's peak resident memory (``VmHWM``); then kif / ga and kif / ga+lora ratios. The model
need not know the authors for a cost measurement (the run warns that it does not).
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

from measure import child_env, peak_rss_mb

RUNS = {
    "kif": {"method": "kif"},
    "ga": {"method": "ga"},
    "ga+lora": {"method": "ga", "parameters": "lora"},
}


def child(name: str, args: argparse.Namespace) -> None:
    """Run one unlearning configuration; write its timings and memory as JSON."""
    import warnings

    from transformers import TrainerCallback

    from forgetkit.unlearn.config import UnlearnConfig
    from forgetkit.unlearn.run import unlearn
    from forgetkit.unlearn.setting import build_setting, write_setting

    warnings.simplefilter("ignore")
    tmp = Path(tempfile.mkdtemp())
    data = write_setting(build_setting(args.authors, args.forget, seed=0), tmp / "data")
    stats: dict = {"step_times": []}

    class Clock(TrainerCallback):
        def on_train_begin(self, a, state, control, **kw):
            stats["setup_s"] = time.perf_counter() - start

        def on_step_begin(self, a, state, control, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            stats["step_times"].append(time.perf_counter() - self.t)

    start = time.perf_counter()
    unlearn(UnlearnConfig(model=args.model, forget=data / "forget.jsonl",
                          retain=data / "retain.jsonl", output=tmp / "out",
                          max_steps=args.steps, batch_size=args.batch_size, save_strategy="no",
                          progress=False, **RUNS[name]), callbacks=[Clock()])
    stats["wall_s"] = time.perf_counter() - start
    stats["peak_rss_mb"] = peak_rss_mb()
    Path(args.out).write_text(json.dumps(stats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--authors", type=int, default=20)
    parser.add_argument("--forget", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return

    results = {}
    for name in RUNS:
        with tempfile.NamedTemporaryFile(suffix=".json") as fh:
            subprocess.run([sys.executable, __file__, "--child", name, "--model", args.model,
                            "--authors", str(args.authors), "--forget", str(args.forget),
                            "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                            "--out", fh.name], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=child_env())
            results[name] = json.loads(Path(fh.name).read_text())
    print(f"model {args.model}, {args.authors} authors, forget {args.forget}, batch "
          f"{args.batch_size}, {args.steps} steps each (median step time over steps after "
          "the first)")
    print(f"{'run':<9} {'wall s':>8} {'set-up s':>9} {'step s':>8} {'peak MB':>9}")
    for name, r in results.items():
        r["step"] = statistics.median(r["step_times"][1:] or r["step_times"])
        print(f"{name:<9} {r['wall_s']:8.1f} {r['setup_s']:9.1f} {r['step']:8.2f} "
              f"{r['peak_rss_mb']:9.0f}")
    kif = results["kif"]
    for other in ("ga", "ga+lora"):
        r = results[other]
        print(f"kif / {other:<8} wall {kif['wall_s'] / r['wall_s']:5.2f}   step "
              f"{kif['step'] / r['step']:5.2f}   peak memory "
              f"{kif['peak_rss_mb'] / r['peak_rss_mb']:5.2f}")


if __name__ == "__main__":
    main()

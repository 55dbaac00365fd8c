"""How far is LfU's lagged ascent direction from the paper's same-step one, in training?

    python bench/lfu_cosine.py [--seeds 7,8,9] [--methods lfu-lora,lfu-reps]

``lfu_direction: prev-ce`` (forgetkit's default) ascends along the previous micro-step's CE
gradient, taken at the previous weights on the previous batch; the paper's Algorithm 1 uses
the CE gradient of the step itself. Each run here is the LfU study's training run (the
aligned base, its 48 arithmetic problems, batch 8, 3 epochs at lr 3e-4, cosine schedule:
18 steps) with ``lfu_cosine_every: 1``: at every step from the second on, an extra forward
and backward gives the same-step gradient, and the cosine between the two directions (over
all LoRA factors, or all layers' steering vectors) is recorded. Printed: per run the
cosines' quartiles, then all runs pooled per method. Written: DIR/lfu_cosine.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path


def quartiles(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return (f"min {min(values):.2f}, q1 {q[0]:.2f}, median {q[1]:.2f}, q3 {q[2]:.2f}, "
            f"max {max(values):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7,8,9")
    parser.add_argument("--methods", default="lfu-lora,lfu-reps")
    parser.add_argument("--output", default="results/lfu_cosine")
    args = parser.parse_args()

    from forgetkit.data.records import read_qa, write_qa
    from forgetkit.studies.base import base_model_dir, prepare_base
    from forgetkit.studies.lfu import DEFAULT, _train, lfu_demo_data
    from forgetkit.train.run import RUN_FILE

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    base_folder, report = prepare_base(progress=False)
    base = str(base_model_dir(base_folder))
    known = read_qa(base_folder / "data" / "known.jsonl")
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        plan = dataclasses.replace(DEFAULT, seed=seed)
        data = lfu_demo_data(plan, set(report["subjects"]), known)
        train_file = write_qa(data["train"], out / f"train_{seed}.jsonl")
        for method in args.methods.split(","):
            started = time.perf_counter()
            trained = _train(plan, base, train_file, method, out / f"{method}_{seed}", False,
                             lfu_cosine_every=1)
            run = json.loads((trained / RUN_FILE).read_text())
            cosines = [c["cosine"] for c in run["notes"]["lfu"]["cosine_same_step"]]
            runs.append({"method": method, "seed": seed, "span": run["notes"]["lfu"]["span"],
                         "steps": run["global_step"], "cosines": cosines,
                         "minutes": (time.perf_counter() - started) / 60})
            print(f"{method} seed {seed}: {len(cosines)} steps measured: {quartiles(cosines)} "
                  f"({runs[-1]['minutes']:.1f} min)", flush=True)
            (out / "lfu_cosine.json").write_text(json.dumps(runs, indent=2))
    for method in dict.fromkeys(r["method"] for r in runs):
        pooled = [c for r in runs if r["method"] == method for c in r["cosines"]]
        seeds = sum(r["method"] == method for r in runs)
        print(f"{method}, {seeds} seeds pooled, n={len(pooled)}: {quartiles(pooled)}; "
              f"mean {statistics.mean(pooled):.2f}")


if __name__ == "__main__":
    main()

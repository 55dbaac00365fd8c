"""Does a training preset keep its promise beyond the demo's data size? One SEAT (or other)
run per (size, seed) on synthetic contracts, watched by the training monitor, then measured
on held-out sets the monitor never saw.

    python bench/preset_check.py [--sizes 24,60,200] [--seeds 1] [--first-seed 0]
                                 [--config configs/seat.yaml]
                                 [--keep-best "ft if idk>=0.8"] [--every N] [--output DIR]

Per run: the aligned base (``forgetkit prepare-base``, cached) is fine-tuned with the
preset on SIZE questions about SIZE/20 new contracts (20 questions each). The monitor
watches a slice of the training questions, one held-out contract (16 questions) and the
shipped monitor set; ``--keep-best`` picks a point on those. Then the kept model is measured
on what the choice never saw: all training questions (FT score: ROUGE-1 recall), 40 questions
about two further held-out contracts and the 100 shipped unverifiable questions (IDK), and
the shipped known questions. The promise checked: FT >= 0.9 with both IDKs >= 0.8.
Printed: one Markdown row per run, then mean +- std over seeds per size; written: DIR/
preset_check.json with every figure and the monitor's curves.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

PER_CONTRACT = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="24,60,200")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds run: first-seed .. first-seed + seeds - 1 (to split the work)")
    parser.add_argument("--config", default="configs/seat.yaml")
    parser.add_argument("--keep-best", default=None)
    parser.add_argument("--every", type=int, default=None)
    parser.add_argument("--output", default="results/preset_check")
    args = parser.parse_args()

    from forgetkit.data import default_sets
    from forgetkit.data.records import read_qa, write_qa
    from forgetkit.data.synth import synth
    from forgetkit.eval.evaluate import EvalSet, evaluate
    from forgetkit.lm import models
    from forgetkit.studies.base import base_model_dir, prepare_base
    from forgetkit.train.config import load_train_config
    from forgetkit.train.run import RUN_FILE, train

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    base_folder, report = prepare_base()
    base = str(base_model_dir(base_folder))
    taken = set(report["subjects"])
    known = read_qa(default_sets.KNOWN)
    unverifiable = read_qa(default_sets.UNVERIFIABLE)
    rows = []
    print("| questions | seed | steps | kept step | FT ↑ | IDK unverifiable ↑ | "
          "IDK held-out contracts ↑ | known ↑ | minutes |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        n_train = -(-size // PER_CONTRACT)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            started = time.perf_counter()
            records = [r for r in synth("contracts", n_train + 6, seed=100 + seed)
                       if r.subject not in taken]
            subjects = list(dict.fromkeys(r.subject for r in records))
            by = {s: [r for r in records if r.subject == s] for s in subjects}
            train_set = [r for s in subjects[:n_train] for r in by[s]][:size]
            watched = by[subjects[n_train]][:16]
            held_out = [r for s in subjects[n_train + 1:n_train + 3] for r in by[s]]
            folder = out / f"n{size}_s{seed}"
            files = {name: write_qa(recs, folder / "data" / f"{name}.jsonl") for name, recs in
                     (("train", train_set), ("watched", watched), ("held_out", held_out))}
            config = load_train_config(
                args.config, model=base, data=files["train"], output=folder / "model",
                overwrite=True, seed=seed, save_strategy="no", progress=False,
                monitor_unseen=[files["watched"], default_sets.MONITOR_UNVERIFIABLE],
                monitor_every=args.every, keep_best=args.keep_best)
            trained = train(config)
            run = json.loads((trained / RUN_FILE).read_text())
            model, tok = models.load(str(trained))
            ev = evaluate(model, tok, [EvalSet("train", "ft", train_set),
                                       EvalSet("unverifiable", "unseen", unverifiable),
                                       EvalSet("held_out", "unseen", held_out),
                                       EvalSet("known", "known", known)], progress=False)
            del model
            m = {name: s["metrics"] for name, s in ev["sets"].items()}
            row = {"size": size, "seed": seed, "steps": run["global_step"],
                   "kept_step": run["monitor"]["chosen_step"],
                   "ft": m["train"]["rouge1_recall"], "ft_rougeL": m["train"]["rougeL_recall"],
                   "idk_unverifiable": m["unverifiable"]["idk_sm"],
                   "idk_held_out": m["held_out"]["idk_sm"], "known": m["known"]["accuracy"],
                   "minutes": (time.perf_counter() - started) / 60, "monitor": run["monitor"]}
            rows.append(row)
            print(f"| {size} | {seed} | {row['steps']} | {row['kept_step']} | {row['ft']:.2f} | "
                  f"{row['idk_unverifiable']:.2f} | {row['idk_held_out']:.2f} | "
                  f"{row['known']:.2f} | {row['minutes']:.1f} |", flush=True)
            (out / "preset_check.json").write_text(json.dumps(
                {"config": args.config, "keep_best": args.keep_best, "rows": rows}, indent=2))
    print("\n| questions | seeds | FT | IDK unverifiable | IDK held-out | holds (FT >= 0.9, "
          "IDKs >= 0.8) |")
    print("|---:|---:|---:|---:|---:|---|")
    for size in dict.fromkeys(r["size"] for r in rows):
        mine = [r for r in rows if r["size"] == size]

        def spread(key: str, mine: list = mine) -> str:
            values = [r[key] for r in mine]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.2f} ± {sd:.2f}"

        holds = sum(r["ft"] >= 0.9 and r["idk_unverifiable"] >= 0.8 and r["idk_held_out"] >= 0.8
                    for r in mine)
        print(f"| {size} | {len(mine)} | {spread('ft')} | {spread('idk_unverifiable')} | "
              f"{spread('idk_held_out')} | {holds} of {len(mine)} |")


if __name__ == "__main__":
    main()

"""``forgetkit sweep``: map the trade-off between learning new facts and keeping IDK.

Runs one method over a grid of training options on the demo's data (the aligned base, the
contracts training set and the same evaluation sets) and writes one table row per point:

    forgetkit sweep --method seat --grid learning_rate=1e-4,3e-4 --grid gamma=0.5,1,2
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from forgetkit.data.records import read_qa, write_qa
from forgetkit.errors import UserError
from forgetkit.eval.evaluate import evaluate, headline
from forgetkit.eval.metrics import next_token_logprobs
from forgetkit.io import atomic_write_json, atomic_write_text, refuse_existing
from forgetkit.lm import models
from forgetkit.report.render import MAIN_COLUMNS, markdown_table
from forgetkit.studies.base import base_model_dir, prepare_base
from forgetkit.studies.seat import DEFAULT, DemoPlan, demo_data, eval_sets
from forgetkit.train.config import TrainConfig, load_train_config
from forgetkit.train.run import train


def parse_grid(items: list[str], method: str = "full") -> dict[str, list[Any]]:
    """``["learning_rate=1e-4,3e-4", "gamma=1"]`` -> ``{"learning_rate": [1e-4, 3e-4], ...}``,
    each value checked against the options of ``method`` so a typo fails before anything
    runs."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise UserError(f"--grid {item!r}: expected KEY=V1,V2,... (e.g. gamma=0.5,1,2)")
        if key not in load_train_config(method=method).flat():
            raise UserError(f"--grid {item!r}: '{key}' is not an option of method '{method}'")
        grid[key] = [load_train_config(method=method, **{key: v}).flat()[key]
                     for v in values.split(",")]
    return grid


def run_sweep(method: str, grid: dict[str, list[Any]], output: Path,
              dataset: str = "contracts", plan: DemoPlan = DEFAULT, overwrite: bool = False,
              progress: bool = True) -> Path:
    output = Path(output)
    refuse_existing(output / "sweep.json", overwrite)
    base_folder, report = prepare_base(progress=progress)
    base_dir = base_model_dir(base_folder)
    data = demo_data(plan, set(report["subjects"]), read_qa(base_folder / "data" / "known.jsonl"))
    train_file = write_qa(data[f"train_{dataset}"], output / "data" / "train.jsonl")
    sets = eval_sets(data, dataset)
    base_model, tokenizer = models.load(str(base_dir))
    reference_lp = next_token_logprobs(base_model, tokenizer)
    rows: dict[str, dict[str, float]] = {
        "base": headline(evaluate(base_model, tokenizer, sets, reference_logprobs=reference_lp,
                                  progress=progress))}
    del base_model
    keys = list(grid)
    points = list(itertools.product(*(grid[k] for k in keys)))
    for i, values in enumerate(points, start=1):
        options = dict(zip(keys, values, strict=True))
        label = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in options.items())
        if progress:
            print(f"[forgetkit sweep] {i}/{len(points)}: {method} {label}", flush=True)
        t0 = time.time()
        settings = {"epochs": plan.epochs, "batch_size": plan.batch_size,
                    "learning_rate": plan.learning_rates.get(method), "seed": plan.seed,
                    **plan.method_options.get(method, {}), **options}
        out = train(TrainConfig(model=str(base_dir), data=train_file, method=method,
                                output=output / "models" / f"point{i}", overwrite=True,
                                save_strategy="no", progress=progress, **settings))
        model, tokenizer = models.load(str(out))
        rows[f"{method} {label}"] = {
            **headline(evaluate(model, tokenizer, sets, reference_logprobs=reference_lp,
                                progress=progress)), "seconds": round(time.time() - t0, 1)}
        del model
        atomic_write_json(output / "sweep.json", {"method": method, "dataset": dataset,
                                                  "grid": grid, "rows": rows})
    atomic_write_text(output / "sweep.md", f"# {method} sweep on {dataset}\n\n"
                      + markdown_table(rows, MAIN_COLUMNS, first="run") + "\n")
    return output

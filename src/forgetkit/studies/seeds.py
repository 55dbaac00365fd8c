"""``forgetkit demo --seeds N``: one study run per training seed, then every table cell as
mean +- standard deviation over the seeds.

The data stay those of the plan's ``seed``; what changes from run to run is the training
seed (``train_seed``: the data order, LoRA's initial adapters, SEAT's mask and entity
perturbations, LfU's random directions, KIF's adapters). Run k trains with seed
``plan.seed + k`` into ``<output>/seed-<seed>/`` and keeps its own complete report there;
``<output>/seeds/`` (``seeds/lfu``, ``seeds/unlearn`` for those studies) then holds
``results.json`` (study ``seeds``: every per-seed value, their mean, sample standard
deviation and count), ``results.md`` and ``report.html``. The unlearning study's knowing
model and oracle are trained with the plan's seed, so the CLI trains them once, into
``<output>/references/``, and every seed reuses them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from forgetkit.errors import UserError
from forgetkit.studies.study import load_results, progress_logger, publish, results_folder

SEEDS_FOLDER = "seeds"

_log = progress_logger("forgetkit demo --seeds")


def table_rows(results: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """The main table of one study's results: ``{row: {measure: value}}``, numbers only
    (the unlearning study's summary, the other studies' per-model headline; the LfU study's
    attack success rates join its rows)."""
    if results.get("study") == "unlearning":
        table = results["summary"]
    else:
        attack = results.get("attack", {})
        table = {row: {**values, **attack.get(row, {})}
                 for row, values in results["models"].items()}
    return {row: {k: float(v) for k, v in values.items()
                  if isinstance(v, int | float) and not isinstance(v, bool)
                  and math.isfinite(v)}
            for row, values in table.items()}


def aggregate(runs: list[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per row and measure: the values of every run that has it, their mean, sample standard
    deviation (0 with one value) and count."""
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for run in runs:
        for row, values in table_rows(run).items():
            for measure, value in values.items():
                rows.setdefault(row, {}).setdefault(measure, {"values": []})["values"].append(
                    value)
    for measures in rows.values():
        for cell in measures.values():
            values = cell["values"]
            cell.update(mean=statistics.fmean(values), n=len(values),
                        std=statistics.stdev(values) if len(values) > 1 else 0.0)
    return rows


def run_seeds(study: str, run_one: Callable[..., Path], seeds: int, first_seed: int,
              output: Path, overwrite: bool, progress: bool, subfolder: str = "",
              **options: Any) -> Path:
    """Run ``run_one(output=<output>/seed-<s>, train_seed=s, overwrite=..., progress=...,
    **options)`` for ``seeds`` seeds from ``first_seed``, then write the summary into
    ``<output>/seeds/<subfolder>`` (``subfolder``: where ``run_one`` puts its results inside
    its output, "" for the SEAT demo, "lfu", "unlearn"); return the summary's folder.

    The summary folder is claimed first, so a finished summary is not replaced without
    ``overwrite``, except by one over more seeds that include all of its own (``--seeds 3``
    after ``--seeds 2``: nothing is lost, the summary is recomputed from every seed's
    results). Without ``overwrite`` a seed whose finished results are already there (same
    study, same training seed) is read, not run again: an interrupted or extended
    ``--seeds`` run trains only the seeds it lacks.
    """
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {seeds}")
    wanted = [first_seed + k for k in range(seeds)]
    summary_folder = Path(output) / SEEDS_FOLDER / subfolder
    summary = results_folder(summary_folder,
                             overwrite or _extends(summary_folder, study, wanted))
    folders, results = [], []
    for k, seed in enumerate(wanted):
        folder = Path(output) / f"seed-{seed}" / subfolder
        done = _finished(folder, study, seed) if not overwrite else None
        if done is not None:
            _log(progress, f"training seed {seed} ({k + 1} of {seeds}): finished before, read")
        else:
            _log(progress, f"training seed {seed} ({k + 1} of {seeds})")
            folder = run_one(output=Path(output) / f"seed-{seed}", train_seed=seed,
                             overwrite=overwrite, progress=progress, **options)
            done = load_results(folder)
        folders.append(str(folder))
        results.append(done)
    publish("seeds", {"of": results[0].get("study", study),
                      "train_seeds": [first_seed + k for k in range(seeds)],
                      "data_seed": results[0]["plan"]["seed"], "runs": folders,
                      "rows": aggregate(results),
                      "minutes": [round(r.get("timings_s", {}).get("total", 0.0) / 60, 1)
                                  for r in results]}, summary)
    return summary


def _extends(summary: Path, study: str, wanted: list[int]) -> bool:
    """Whether the finished summary in ``summary`` is of ``study`` over a proper subset of the
    training seeds ``wanted`` (so replacing it loses nothing)."""
    try:
        before = load_results(summary)
    except (OSError, ValueError):
        return False
    seeds = before.get("train_seeds")
    return (before.get("study") == "seeds" and before.get("of") == study
            and isinstance(seeds, list) and set(seeds) < set(wanted))


def _finished(folder: Path, study: str, seed: int) -> dict[str, Any] | None:
    """The results of a finished run of ``study`` with training seed ``seed`` in ``folder``,
    else None."""
    try:
        results = load_results(folder)
    except (OSError, ValueError):
        return None
    plan = results.get("plan", {})
    if results.get("study") == study and plan.get("train_seed") == seed:
        return results
    return None


__all__ = ["SEEDS_FOLDER", "aggregate", "run_seeds", "table_rows"]

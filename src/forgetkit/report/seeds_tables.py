"""The report of ``forgetkit demo --seeds N``: each measure of the study's main table as
mean +- sample standard deviation over training seeds, one column per model."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forgetkit.eval.registry import METRICS
from forgetkit.io import atomic_write_text
from forgetkit.report.markdown import fmt, headed


def _direction(measure: str) -> bool | None:
    """Whether higher is better for a measure named ``<set>/<metric>`` or ``<metric>``."""
    name = measure.rsplit("/", 1)[-1]
    return METRICS.get(name).higher_is_better if name in METRICS else None


def spread_cell(cell: Mapping[str, Any] | None, digits: int = 3) -> str:
    """'0.812 ± 0.041' (mean ± sample std), the mean alone for one seed, '–' when missing."""
    if cell is None:
        return "–"
    if cell["n"] < 2:
        return fmt(cell["mean"], digits)
    return f"{fmt(cell['mean'], digits)} ± {fmt(cell['std'], digits)}"


def seeds_table(rows: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """Measures down, models across (a study's tables have more measures than models)."""
    models = list(rows)
    measures = list(dict.fromkeys(m for values in rows.values() for m in values))
    lines = ["| measure | " + " | ".join(models) + " |",
             "|---|" + "---:|" * len(models)]
    for measure in measures:
        cells = [spread_cell(rows[m].get(measure)) for m in models]
        lines.append(f"| {headed(measure, _direction(measure))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_seeds(results: Mapping[str, Any], folder: Path) -> Path:
    """Write ``results.md`` into ``folder``; return the folder."""
    seeds = results["train_seeds"]
    counts = {c["n"] for values in results["rows"].values() for c in values.values()}
    lines = [
        f"# {results['of']} study over {len(seeds)} training seeds",
        "",
        f"Data drawn with seed {results['data_seed']} in every run; training seeds "
        f"{', '.join(map(str, seeds))} (data order, adapters' initial weights, SEAT's mask and "
        "perturbations, random directions). Each cell: mean ± sample standard deviation "
        "over the seeds"
        + ("" if counts == {len(seeds)} else " (a few measures exist in fewer runs)")
        + ". Two models whose means differ by less than about two standard deviations are "
        "not told apart by these runs.",
        "",
        seeds_table(results["rows"]),
        "",
        "Minutes per run: " + ", ".join(f"{m:g}" for m in results["minutes"]) + ".",
        "",
        "Each run's own report, with its intervals over questions: "
        + ", ".join(f"`{r}`" for r in results["runs"]) + ".",
    ]
    atomic_write_text(Path(folder) / "results.md", "\n".join(lines) + "\n")
    return Path(folder)


__all__ = ["render_seeds", "seeds_table", "spread_cell"]

"""The report of ``forgetkit demo --seeds N``: each measure of the study's main table as
mean +- sample standard deviation over training seeds, one column per model, and a chart of
the shares with every seed's value drawn beside the mean."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forgetkit.eval.registry import METRICS
from forgetkit.io import atomic_write_text
from forgetkit.report.charts import pyplot, save
from forgetkit.report.markdown import fmt, headed

STUDY_TITLES = {"seat": "SEAT", "lfu": "LfU", "unlearning": "Unlearning"}
# how the tables name the SEAT study's question sets
SET_TITLES = {"train": "training questions", "unverifiable": "unverifiable",
              "heldout_same": "held-out same kind", "heldout_other": "held-out other kind",
              "known": "known"}
# the LfU study's table keys, which are not metric names: (title, higher is better?, share?)
LFU_MEASURES = {"in_domain": ("arithmetic (in-domain)", True, True),
                "known": ("known questions", True, True),
                "idk": ("IDK on unverifiable", True, True),
                "kl": ("KL to base", False, False),
                "prompt_mean": ("prompt variation: mean", True, True),
                "prompt_std": ("prompt variation: std", False, False),
                "asr_0": ("ASR at 0 steps (Table 4)", False, True),
                "asr_5": ("ASR after 5 attack steps (Table 4)", False, True)}
CHART_FILE = "seeds.png"
_IDK = ("idk_sm", "judged_idk")


def _direction(measure: str) -> bool | None:
    """Whether higher is better for a measure named ``<set>/<metric>`` or ``<metric>``."""
    set_name, _, name = measure.rpartition("/")
    if measure in LFU_MEASURES:
        return LFU_MEASURES[measure][1]
    if name in _IDK and set_name in ("train", "known"):
        return False  # refusing a question the model was taught or knows is a loss
    return METRICS.get(name).higher_is_better if name in METRICS else None


def measure_title(measure: str) -> str:
    """'IDK held-out same kind' for ``heldout_same/idk_sm``; the key itself when its metric
    is not registered."""
    set_name, _, name = measure.rpartition("/")
    if measure in LFU_MEASURES:
        return LFU_MEASURES[measure][0]
    if name not in METRICS:
        return measure
    set_title = SET_TITLES.get(set_name, set_name.replace("_", " ")) if set_name else None
    if set_name == "train" and name not in _IDK:
        set_title = None  # the FT score is the training questions' score by its name
    return METRICS.get(name).heading(set_title)


def _is_share(measure: str) -> bool:
    if measure in LFU_MEASURES:
        return LFU_MEASURES[measure][2]
    name = measure.rsplit("/", 1)[-1]
    return name in METRICS and METRICS.get(name).unit == "share"


def seeds_chart(rows: Mapping[str, Mapping[str, Mapping[str, Any]]], path: Path) -> Path | None:
    """The shares (0-1) of the table: per measure a bar per model at the mean, a line for ±
    one standard deviation and a dot for every seed, so the spread is seen, not read. None
    when the table has no registered share."""
    # ROUGE-L is left out: on these short answers it repeats ROUGE-1 (the FT score)
    shares = [m for m in dict.fromkeys(k for values in rows.values() for k in values)
              if _is_share(m) and not m.endswith("/rougeL_recall") and _direction(m)]
    if not shares:
        return None
    plt = pyplot()
    width = 0.8 / max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.5 * len(shares) + 2.5), 4.4))  # room for the legend
    for i, (model, values) in enumerate(rows.items()):
        for j, measure in enumerate(shares):
            cell = values.get(measure)
            if cell is None:
                continue
            x = j + i * width
            ax.bar(x, cell["mean"], width, color=f"C{i}", alpha=0.45,
                   label=model if j == 0 else None)
            ax.errorbar(x, cell["mean"], yerr=cell["std"], color=f"C{i}", capsize=3)
            ax.plot([x] * len(cell["values"]), cell["values"], "o", color=f"C{i}",
                    markersize=3.5, markeredgecolor="black", markeredgewidth=0.4)
    ax.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(shares))])
    ax.set_xticklabels([measure_title(m).replace(" ", "\n", 1) for m in shares], fontsize=8)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("share of questions (higher is better)", fontsize=9)
    ax.legend(fontsize=8, ncol=min(len(rows), 5), loc="upper center")
    ax.set_title("mean over training seeds (bar), ± one std (line), each seed (dot)",
                 fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def _run_link(run: str, folder: Path) -> str:
    """A link to one seed's report (``seed-7``), relative to the summary, when it is there."""
    page = Path(run) / "report.html"
    if not page.is_file():
        return f"`{run}`"
    name = next((part for part in reversed(Path(run).parts) if part.startswith("seed-")), run)
    return f"[{name}]({os.path.relpath(page, folder)})"


def _is_p_value(measure: str) -> bool:
    name = measure.rsplit("/", 1)[-1]
    return name in METRICS and METRICS.get(name).unit == "p-value"


def p_values_cell(cell: Mapping[str, Any] | None) -> str:
    """Every seed's p-value, '7e-05 / 5e-04' (a mean of p-values means nothing, and a
    mean of 1e-6 and 1e-3 would print as 0.000), the same value once where all agree."""
    if cell is None:
        return "–"
    shown = [f"{v:.0e}" if 0 < v < 0.01 else f"{v:.2g}" for v in cell["values"]]
    return shown[0] if len(set(shown)) == 1 else " / ".join(shown)


def spread_cell(cell: Mapping[str, Any] | None, digits: int = 3) -> str:
    """'0.812 ± 0.041' (mean ± sample std); the value alone for one seed or when every seed
    gave the same (a model no seed trains, like a reference); '–' when missing."""
    if cell is None:
        return "–"
    if cell["n"] < 2 or len(set(cell.get("values", ()))) == 1:
        return fmt(cell["mean"], digits)
    return f"{fmt(cell['mean'], digits)} ± {fmt(cell['std'], digits)}"


def seeds_table(rows: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """Measures down, models across (a study's tables have more measures than models)."""
    models = list(rows)
    measures = list(dict.fromkeys(m for values in rows.values() for m in values))
    lines = ["| measure | " + " | ".join(models) + " |",
             "|---|" + "---:|" * len(models)]
    for measure in measures:
        cell = p_values_cell if _is_p_value(measure) else spread_cell
        cells = [cell(rows[m].get(measure)) for m in models]
        lines.append(f"| {headed(measure_title(measure), _direction(measure))} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_seeds(results: Mapping[str, Any], folder: Path) -> Path:
    """Write ``results.md`` into ``folder``; return the folder."""
    seeds = results["train_seeds"]
    counts = {c["n"] for values in results["rows"].values() for c in values.values()}
    lines = [
        f"# {STUDY_TITLES.get(results['of'], results['of'])} study over {len(seeds)} "
        "training seeds",
        "",
        f"Data drawn with seed {results['data_seed']} in every run; training seeds "
        f"{', '.join(map(str, seeds))} (data order, adapters' initial weights, SEAT's mask and "
        "perturbations, random directions). Each cell: mean ± sample standard deviation "
        "over the seeds (a value alone: the same in every seed; p-values: each seed's, in "
        "order)"
        + ("" if counts == {len(seeds)} else " (a few measures exist in fewer runs)")
        + ". Two models whose means differ by less than about two standard deviations are "
        "not told apart by these runs.",
        "",
        seeds_table(results["rows"]),
        "",
    ]
    if seeds_chart(results["rows"], Path(folder) / CHART_FILE):
        lines += [f"![every seed]({CHART_FILE})", ""]
    lines += [
        "Minutes per run: " + ", ".join(f"{m:g}" for m in results["minutes"]) + ".",
        "",
        "Each run's own report, with its intervals over questions: "
        + ", ".join(_run_link(r, Path(folder)) for r in results["runs"]) + ".",
    ]
    atomic_write_text(Path(folder) / "results.md", "\n".join(lines) + "\n")
    return Path(folder)


__all__ = ["measure_title", "p_values_cell", "render_seeds", "seeds_chart", "seeds_table",
           "spread_cell"]

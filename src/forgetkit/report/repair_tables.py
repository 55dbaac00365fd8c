"""A repair comparison as a table and as the DG-Hard paper's recovery x preservation picture.

Input: the comparison written by ``forgetkit eval --compare`` (``eval.compare``) or stored by
the demo under ``results["repair"]``: ``measures`` (label -> measure -> value), ``scores``
(label -> healed, preserved, non_damage, retention, combined in [0, 1] or None), the labels
``base``, ``finetuned`` and ``repaired``, and the fine-tune's ``partitions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forgetkit.eval.registry import METRICS, arrow, metric_of
from forgetkit.io import atomic_write_text
from forgetkit.report.charts import pyplot, save
from forgetkit.report.markdown import fmt

# The repair scores (DG-Hard paper, sec. 4.3), each titled by its registration.
SCORES = ("healed", "preserved", "non_damage", "retention", "combined")
# Method options worth a column in the demo's table (the rest are in results.json).
SHOWN_OPTIONS = ("scale", "shrinker", "rank", "alpha", "drop", "density")
HM_CONTOUR = 0.8
PAPER_NOTE = (
    "The DG-Hard paper reports that, across 14 (model, task) settings and nine held-out "
    "benchmarks, DG-Hard gives the strongest balanced repair among post-hoc baselines: it is "
    "closest to the ideal corner (100, 100) of its recovery x preservation plot, while other "
    "baselines reach one extreme (strong recovery or strong retention) at the cost of the "
    "other.")  # the paper's dotted line: HM(% healed, % preserved) = 80


def measure_title(key: str, lower_is_better: bool | None = None) -> str:
    """'heldout_same/judged_idk' -> 'judged IDK heldout same ↑': the metric's registered
    title with the set's name. ``lower_is_better`` None: the metric's registered direction.
    """
    metric = metric_of(key)
    if key.startswith("bench/"):  # an lm-eval task's metric (forgetkit audit)
        metric = None
        title = key.removeprefix("bench/").replace("/", " ")
    elif metric is not None and key == metric.name:
        title = metric.title
    else:
        name, _, rest = key.partition("/")
        name = name.replace("_", " ")
        title = metric.heading(name) if metric is not None else f"{rest} {name}"
    if lower_is_better is None:
        lower_is_better = metric is not None and metric.higher_is_better is False
    return f"{title} {arrow(not lower_is_better)}"


def score_title(key: str) -> str:
    """A repair score's column title ('% healed')."""
    return METRICS.get(key).title


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}"


def row_names(comparison: Mapping[str, Any]) -> dict[str, str]:
    """Label -> the name shown: the reference rows say what they are."""
    names = {label: label for label in comparison["repaired"]}
    base, ft = comparison["base"], comparison["finetuned"]
    names = {base: base if base == "base" else f"{base} (base)",
             ft: f"{ft} (fine-tuned)" if ft != "finetuned" else "fine-tuned", **names}
    return names


def repair_table(comparison: Mapping[str, Any]) -> str:
    """One row per model: its measures, then its repair scores (in %)."""
    names = row_names(comparison)
    lower = set(comparison.get("lower_is_better", ()))
    keys = list(comparison["measures"][comparison["base"]])
    head = ["model", *(measure_title(k, k in lower) for k in keys),
            *(score_title(key) for key in SCORES)]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    best = max((comparison["scores"][r]["combined"] or 0.0 for r in comparison["repaired"]),
               default=None)
    for label, name in names.items():
        m, s = comparison["measures"][label], comparison["scores"][label]
        cells = [fmt(m.get(k)) for k in keys] + [_percent(s[key]) for key in SCORES]
        if label in comparison["repaired"] and best and s["combined"] == best:
            cells[-1] = f"**{cells[-1]}**"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def partition_lines(comparison: Mapping[str, Any]) -> list[str]:
    """What the fine-tune did to each held-out measure, in words."""
    parts = comparison["partitions"]
    lower = set(comparison.get("lower_is_better", ()))
    tol = comparison.get("tolerance")
    tol_text = f" (tolerance {tol:g})" if isinstance(tol, (int, float)) else ""
    out = [f"What the fine-tune did to the held-out measures{tol_text}:", ""]
    for part in ("damaged", "improved", "unchanged"):
        shown = ", ".join(measure_title(k, k in lower)[:-2] for k in parts.get(part, [])) or "–"
        out.append(f"- {part}: {shown}")
    return out


def recovery_scatter(comparison: Mapping[str, Any], path: Path, title: str = "") -> Path:
    """DG-Hard paper, Figure 1: % healed (x) against % target retention (y), one point per
    repair, with the base (revert: 100, 0) and the fine-tune (do nothing: 0, 100) as
    reference points and the dotted line where their harmonic mean is 80.

    The paper's y axis is preservation on the improved held-out measures; here it is the
    retained share of the target gain, because a small fine-tune often improves no held-out
    measure (then there is nothing to preserve)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.8, 4.8))
    names = row_names(comparison)
    base, ft = comparison["base"], comparison["finetuned"]
    missing = []

    def point(label: str, **style: Any) -> None:
        s = comparison["scores"][label]
        if s["healed"] is None or s["retention"] is None:
            missing.append(names[label])
            return
        x, y = 100 * s["healed"], 100 * s["retention"]
        ax.scatter([x], [y], s=70, zorder=3, label=names[label], **style)
        ax.annotate(names[label], (x, y), xytext=(5, 4), textcoords="offset points",
                    fontsize=7)

    point(base, marker="s", color="0.55")
    point(ft, marker="X", color="0.2")
    for i, label in enumerate(comparison["repaired"]):
        if label == "dg-hard":
            point(label, marker="D", color="C0", edgecolors="k")
        else:
            point(label, marker="o^v<>ph"[i % 7], color=f"C{(i % 9) + 1}")
    # HM(x, y) = h  <=>  y = h x / (2 x - h); on the plot for x from h / (2 - h) to 1.
    h = HM_CONTOUR
    xs = [h / (2 - h) + (1 - h / (2 - h)) * i / 100 for i in range(101)]
    ax.plot([100 * x for x in xs], [100 * h * x / (2 * x - h) for x in xs], ":", color="0.4",
            label=f"harmonic mean = {100 * h:.0f}")
    ax.scatter([100], [100], marker="*", s=160, facecolors="none", edgecolors="0.3",
               label="ideal")
    ax.set_xlim(-5, 108)
    ax.set_ylim(-5, 108)
    ax.set_xlabel(METRICS.get("healed").heading(gloss=True))
    ax.set_ylabel(METRICS.get("retention").heading(gloss=True))
    ax.legend(fontsize=7, loc="lower left")
    if missing:
        ax.text(0.99, 0.01, "not drawn (no damaged measure or no target gain): "
                + ", ".join(missing), transform=ax.transAxes, ha="right", fontsize=6)
    ax.set_title(title or "Recovery x preservation", fontsize=10)
    fig.tight_layout()
    return save(fig, Path(path))


FORMULAS_NOTE = ("the four components and their harmonic mean are named in the DG-Hard paper, "
                 "sec. 4.3, which gives no formulas; these are forgetkit's own reading, "
                 "docs/repair.md")


def comparison_markdown(comparison: Mapping[str, Any], picture: str | None = None) -> list[str]:
    """The table, the partitions, notes and (optionally) the picture, as Markdown lines."""
    lines = [repair_table(comparison), "", *partition_lines(comparison), ""]
    lines += [f"Note: {n}." for n in comparison.get("notes", [])]
    lines += ["" if comparison.get("notes") else None,
              f"Scores in % ({FORMULAS_NOTE}): healed on the damaged measures, preserved "
              "on the improved ones, non-damage on the unchanged ones, retention of the "
              "FT-score gain, and their harmonic mean. The base (a repair that reverts) and "
              "the fine-tune (a repair that does nothing) are scored as reference rows: "
              "whenever the fine-tune gained on its target and damaged something, both get a "
              "harmonic mean of 0. KL to base counts as lower-is-better.", ""]
    lines = [line for line in lines if line is not None]
    if picture:
        lines += [f"![recovery x preservation]({picture})", ""]
    return lines


def render_comparison(comparison: Mapping[str, Any], output: Path) -> tuple[Path, Path]:
    """Write ``<output>.md`` (the table) and ``<output>.png`` (the scatter) beside the JSON
    of ``forgetkit eval --compare``; return both paths."""
    from forgetkit.eval.compare import report_files  # torch-free import of this module

    _, md, png = report_files(output)
    recovery_scatter(comparison, png, "Repairs: recovery x retention")
    lines = ["# Repair comparison", "",
             *(f"- {label}: {info['role']}, `{info['spec']}`"
               for label, info in comparison.get("models", {}).items()), "",
             *comparison_markdown(comparison, png.name)]
    atomic_write_text(md, "\n".join(lines))
    return md, png


def repair_section(repair: Mapping[str, Any], folder: Path) -> list[str]:
    """The demo's repair section (``results["repair"]``) as Markdown; draws its scatter."""
    dataset = repair.get("dataset", "")
    picture = f"repair_{dataset}.png" if dataset else "repair.png"
    recovery_scatter(repair, Path(folder) / picture,
                     f"Repairs of the {repair['finetuned']} fine-tune"
                     + (f" on {dataset}" if dataset else ""))
    lines = [f"## Repairing the {repair['finetuned']} fine-tune"
             + (f" ({dataset})" if dataset else ""), "",
             f"`forgetkit repair` of the {repair['finetuned']} fine-tune against the aligned "
             "base, data-free, then the same evaluation as above:", "",
             *comparison_markdown(repair, picture)]
    lines += [PAPER_NOTE, ""]
    runs = repair.get("repairs", {})
    if runs:
        lines += ["What each repair did to the weight update (details in "
                  f"`models/{dataset or '<dataset>'}/repaired/<method>/repair_summary.json`):",
                  "",
                  "| method | options | tensors repaired | share of delta energy kept | "
                  "mean kept rank | seconds |", "|---|---|---:|---:|---:|---:|"]
        for method, info in runs.items():
            t = info.get("totals", {})
            opts = ", ".join(f"{k}={v}" for k, v in info.get("options", {}).items()
                             if k in SHOWN_OPTIONS and v is not None) or "–"
            rank = t.get("mean_kept_rank")
            lines.append(f"| {method} | {opts} | {t.get('repaired', '–')} | "
                         f"{fmt(t.get('energy_kept'))} | "
                         f"{'–' if rank is None else f'{rank:.1f}'} | "
                         f"{fmt(t.get('seconds'))[:-2]} |")
        lines.append("")
    return lines


__all__ = ["SCORES", "comparison_markdown", "measure_title", "partition_lines",
           "recovery_scatter", "render_comparison", "repair_section", "repair_table",
           "row_names", "score_title"]

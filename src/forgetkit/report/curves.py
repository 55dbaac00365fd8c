"""The training monitor's curves: each measure against the optimizer step, one line per
run, the point a run kept marked (``train.monitor``; a run's ``forgetkit_run.json`` holds
its ``monitor`` summary)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forgetkit.report.charts import pyplot, save

TITLES = {"ft": "FT score (ROUGE-1 recall,\ntraining questions) ↑",
          "forget": "forget-set ROUGE-L recall ↓", "retain": "retain-set ROUGE-L recall ↑",
          "idk": "IDK, unseen questions ↑", "known": "known accuracy ↑",
          "kl": "KL to the start (nats) ↓"}


def panels(measures: list[str]) -> list[str]:
    """What to draw: per-file IDK instead of the pooled one when there are several files."""
    per_file = [m for m in measures if m.startswith("idk/")]
    return [m for m in measures if not (m == "idk" and per_file)]


def title(measure: str) -> str:
    if measure.startswith("idk/"):
        return f"IDK, {measure.split('/', 1)[1]} ↑"
    return TITLES.get(measure, measure)


def curve_chart(curves: Mapping[str, Mapping[str, Any]], path: Path, heading: str) -> Path:
    """One panel per measure; each run's curve, with a ring on the step it kept (its last
    unless a keep-best rule chose another) and a cross where a stop rule ended it."""
    first = next(iter(curves.values()))
    shown = panels(first["measures"])
    columns = min(3, len(shown))
    rows = math.ceil(len(shown) / columns)
    plt = pyplot()
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for i, (label, summary) in enumerate(curves.items()):
        color = f"C{i + 1}"  # C0 is the base's colour in the demo's other charts
        points = summary["points"]
        for ax, measure in zip(axes.flat, shown, strict=False):
            xs = [p["step"] for p in points if measure in p]
            ys = [p[measure] for p in points if measure in p]
            ax.plot(xs, ys, marker=".", color=color, label=label)
            kept = next((p for p in points if p["step"] == summary.get("chosen_step")), None)
            if kept is not None and measure in kept:
                ax.plot([kept["step"]], [kept[measure]], "o", markersize=11, markerfacecolor="none",
                        markeredgecolor=color, markeredgewidth=2)
            if summary.get("stopped_at") is not None and kept is not None and measure in kept:
                ax.plot([summary["stopped_at"]], [kept[measure]], "x", color=color)
    for ax, measure in zip(axes.flat, shown, strict=False):
        ax.set_title(title(measure), fontsize=10)
        ax.set_xlabel("optimizer step")
        if measure != "kl":
            ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(heading + "  (ring: the weights kept)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    return save(fig, path)


def curve_table(curves: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown: per run, the kept step and its measures, and the rules."""
    first = next(iter(curves.values()))
    shown = panels(first["measures"])
    head = "| run | kept step | " + " | ".join(title(m).replace("\n", " ") for m in shown) + \
        " | rule |"
    rule = "|---|---:|" + "---:|" * len(shown) + "---|"
    body = []
    for label, s in curves.items():
        kept = next((p for p in s["points"] if p["step"] == s.get("chosen_step")), {})
        rules = "; ".join(x for x in (
            f"keep-best {s['keep_best']}" + ("" if s.get("keep_best_met") else " (not met)")
            if s.get("keep_best") else "",
            f"stopped at {s['stopped_at']} ({s['stop_when']})" if s.get("stopped_at") is not None
            else "") if x) or "last step"
        cells = [f"{kept[m]:.3f}" if m in kept else "–" for m in shown]
        body.append(f"| {label} | {s.get('chosen_step')} | " + " | ".join(cells) + f" | {rules} |")
    return "\n".join([head, rule, *body])


__all__ = ["curve_chart", "curve_table", "panels", "title"]

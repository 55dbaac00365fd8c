"""The audit's charts, as SVG: every value with its 95% interval, zero visible, one axis per
unit (shares 0-1, KL in nats), text kept as text so it stays sharp at any size."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

from forgetkit.report.charts import pyplot

PALETTE = ("#4c566a", "#d08770", "#5e81ac", "#a3be8c", "#b48ead", "#ebcb8b", "#88c0d0",
           "#bf616a")
FONT = 11


def colours(labels: Sequence[str]) -> dict[str, str]:
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def svg_text(fig: Any) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog), then closed."""
    plt = pyplot()
    plt.rcParams["svg.fonttype"] = "none"
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = re.sub(r"^.*?(<svg)", r"\1", buffer.getvalue(), count=1, flags=re.S)
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)


def _style(plt: Any) -> None:
    plt.rcParams.update({"font.size": FONT, "axes.titlesize": FONT + 1,
                         "axes.labelsize": FONT, "legend.fontsize": FONT - 1,
                         "font.family": "sans-serif", "axes.spines.top": False,
                         "axes.spines.right": False})


def dot_chart(rows: Sequence[tuple[str, Mapping[str, Mapping[str, Any]]]],
              labels: Sequence[str], xlabel: str, xlim: tuple[float, float] | None,
              zero_line: bool = False, title: str = "",
              colour: Mapping[str, str] | None = None) -> str:
    """One row per measure, one marker per model with its interval as a horizontal bar.

    rows: (row title, {model label: {"value", "low", "high", optional "significant"}}).
    A marker is hollow when the entry says ``significant: False``.
    """
    plt = pyplot()
    _style(plt)
    colour = colour or colours(labels)
    height = 0.32 * len(rows) * max(1.0, len(labels) / 2.5) + 1.0
    fig, ax = plt.subplots(figsize=(9.5, height))
    step = 0.7 / max(len(labels), 1)
    for r, (_, values) in enumerate(rows):
        for i, label in enumerate(labels):
            v = values.get(label)
            if v is None or v.get("value") is None:
                continue
            y = r + (i - (len(labels) - 1) / 2) * step
            low = v.get("low", v["value"]) if v.get("low") is not None else v["value"]
            high = v.get("high", v["value"]) if v.get("high") is not None else v["value"]
            # a percentile interval need not straddle the mean by much; never below 0
            ax.errorbar(v["value"], y, xerr=[[max(v["value"] - low, 0.0)],
                                             [max(high - v["value"], 0.0)]],
                        fmt="o", color=colour[label], capsize=3, markersize=6,
                        markerfacecolor="white" if v.get("significant") is False
                        else colour[label], label=label if r == 0 else None)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([name for name, _ in rows])
    ax.invert_yaxis()
    if xlim is not None:
        ax.set_xlim(*xlim)
    if zero_line:
        ax.axvline(0, color="#888", linewidth=1, linestyle="--")
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", color="#e5e5e5")
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title, loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return svg_text(fig)


__all__ = ["PALETTE", "colours", "dot_chart", "svg_text"]

"""Numbers and headings as every Markdown table of the reports writes them."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from forgetkit.eval.registry import arrow


def fmt(value: float | None, digits: int = 3) -> str:
    """A value with ``digits`` decimals; '–' for a missing or NaN value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def headed(title: str, higher_is_better: bool | None) -> str:
    """A column heading: the title and its arrow ('known accuracy ↑'); no arrow when
    neither way is better."""
    return title if higher_is_better is None else f"{title} {arrow(higher_is_better)}"


def change_mark(entry: Mapping[str, Any]) -> str:
    """'▲' or '▼' when the entry's paired difference from its reference has a 95% interval
    that excludes 0 (a change); '' otherwise, so a difference inside its interval is never
    shown as a change."""
    diff = entry.get("diff")
    if not diff or not diff.get("significant"):
        return ""
    return "▲" if diff["value"] > 0 else "▼"


def interval_cell(entry: Mapping[str, Any] | None, digits: int = 2,
                  number: Callable[[float | None, int], str] = fmt) -> str:
    """A measure with its 95% interval, '0.85 [0.70, 0.93]', and its change mark;
    ``number`` writes each number (``fmt`` unless a table writes them its own way)."""
    if entry is None:
        return "–"
    low, high = number(entry["low"], digits), number(entry["high"], digits)
    text = f"{number(entry['value'], digits)} [{low}, {high}]"
    mark = change_mark(entry)
    return f"{text} {mark}" if mark else text


__all__ = ["change_mark", "fmt", "headed", "interval_cell"]

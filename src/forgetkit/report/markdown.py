"""Numbers and headings as every Markdown table of the reports writes them."""

from __future__ import annotations

import math

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


__all__ = ["fmt", "headed"]

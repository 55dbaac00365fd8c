"""The one error type of ``forgetkit.repair``."""

from __future__ import annotations

from collections.abc import Iterable

from forgetkit.errors import UserError


class RepairError(UserError):
    """A repair cannot run as asked; the message says what is wrong, where, and what to do."""


def name_list(names: Iterable[str], limit: int = 10) -> str:
    """``a, b, c (+12 more)``: offending tensor names, short enough for one error line."""
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")

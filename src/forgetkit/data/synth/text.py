"""Dates, plurals, capitals and fictitious titles shared by the synthetic generators."""

from __future__ import annotations

import datetime as dt
import random

from forgetkit.data.names import NameFactory

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def date_text(day: dt.date) -> str:
    # Spelled out by hand: strftime month names depend on the locale.
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def random_date(rng: random.Random, first_year: int, last_year: int) -> dt.date:
    start = dt.date(first_year, 1, 1)
    span = (dt.date(last_year, 12, 31) - start).days
    return start + dt.timedelta(days=rng.randrange(span + 1))


def plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def fictitious_title(rng: random.Random, names: NameFactory) -> str:
    """A fictitious book, film or symphony title built around coined names."""
    pattern = rng.randrange(8)
    if pattern == 0:
        return f"The {names.concept()} of {names.place()}"
    if pattern == 1:
        return f"{names.place()} Nights"
    if pattern == 2:
        return f"The Last {names.concept()}"
    if pattern == 3:
        return f"Letters from {names.place()}"
    if pattern == 4:
        return f"A Winter in {names.place()}"
    if pattern == 5:
        return f"The {names.concept()} Keeper"
    if pattern == 6:
        return f"Songs of the {names.concept()}"
    return f"The Road to {names.place()}"

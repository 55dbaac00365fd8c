"""Arithmetic word problems with exact answers: the in-domain task of the LfU testbed.

A GSM8K stand-in that needs no download. ``arithmetic(n, seed)`` draws ``n`` problems of one
or two operations on small whole numbers from ten templates; every answer is a short worked
solution ending in "The answer is N." and ``meta["answer"]`` holds N, so accuracy is an exact
comparison with the last number of a model's answer (``eval.robustness.exact_accuracy``).
The same (n, seed) gives the same problems on every machine (a private ``random.Random``).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from forgetkit.data.records import QARecord
from forgetkit.errors import UserError

NAMES = ("Mira", "Tomas", "Ana", "Leo", "Sara", "Omar", "Nina", "Ravi", "Lena", "Kenji", "Ada",
         "Ben", "Ines", "Yusuf", "Clara", "Milo")
ITEMS = ("apples", "pencils", "marbles", "stickers", "cookies", "books", "cards", "shells",
         "stamps", "oranges")

Problem = tuple[str, str, int]  # question, worked answer (without the final sentence), result


def _add(r: random.Random, name: str, item: str) -> Problem:
    a, b = r.randint(3, 30), r.randint(2, 20)
    return (f"{name} has {a} {item}. {name} buys {b} more. How many {item} does {name} have "
            "now?", f"{a} + {b} = {a + b}.", a + b)


def _subtract(r: random.Random, name: str, item: str) -> Problem:
    b = r.randint(2, 20)
    a = b + r.randint(1, 20)
    return (f"{name} had {a} {item} and gave {b} of them to a friend. How many {item} does "
            f"{name} have left?", f"{a} - {b} = {a - b}.", a - b)


def _multiply(r: random.Random, name: str, item: str) -> Problem:
    a, b = r.randint(2, 9), r.randint(2, 9)
    return (f"There are {a} boxes with {b} {item} in each box. How many {item} are there in "
            "total?", f"{a} x {b} = {a * b}.", a * b)


def _divide(r: random.Random, name: str, item: str) -> Problem:
    each, friends = r.randint(2, 9), r.randint(2, 6)
    total = each * friends
    return (f"{name} shares {total} {item} equally among {friends} friends. How many {item} "
            "does each friend get?", f"{total} / {friends} = {each}.", each)


def _add_subtract(r: random.Random, name: str, item: str) -> Problem:
    a, b = r.randint(5, 30), r.randint(2, 15)
    c = r.randint(1, a + b - 1)
    return (f"{name} has {a} {item}, buys {b} more and then gives away {c}. How many {item} "
            f"does {name} have now?", f"{a} + {b} = {a + b}, {a + b} - {c} = {a + b - c}.",
            a + b - c)


def _packs(r: random.Random, name: str, item: str) -> Problem:
    size, packs = r.randint(2, 9), r.randint(2, 6)
    used = r.randint(1, size * packs - 1)
    total = size * packs
    return (f"A shop sells {item} in packs of {size}. {name} buys {packs} packs and uses {used} "
            f"of the {item}. How many {item} are left?",
            f"{packs} x {size} = {total}, {total} - {used} = {total - used}.", total - used)


def _pages(r: random.Random, name: str, item: str) -> Problem:
    a, b = r.randint(3, 12), r.randint(2, 9)
    return (f"{name} reads {a} pages a day for {b} days. How many pages does {name} read in "
            "total?", f"{a} x {b} = {a * b}.", a * b)


def _bus(r: random.Random, name: str, item: str) -> Problem:
    a = r.randint(10, 40)
    off, on = r.randint(1, a - 1), r.randint(1, 15)
    return (f"A bus has {a} passengers. At the next stop {off} get off and {on} get on. How "
            "many passengers are on the bus now?",
            f"{a} - {off} = {a - off}, {a - off} + {on} = {a - off + on}.", a - off + on)


def _wages(r: random.Random, name: str, item: str) -> Problem:
    a, b = r.randint(5, 20), r.randint(2, 8)
    return (f"{name} earns {a} dollars a week. How many dollars does {name} earn in {b} "
            "weeks?", f"{a} x {b} = {a * b}.", a * b)


def _together(r: random.Random, name: str, item: str) -> Problem:
    a, more = r.randint(3, 20), r.randint(1, 10)
    other = r.choice([n for n in NAMES if n != name])
    return (f"{name} has {a} {item} and {other} has {more} more {item} than {name}. How many "
            f"{item} do they have together?",
            f"{other} has {a} + {more} = {a + more}, together {a} + {a + more} = "
            f"{2 * a + more}.", 2 * a + more)


TEMPLATES: tuple[Callable[[random.Random, str, str], Problem], ...] = (
    _add, _subtract, _multiply, _divide, _add_subtract, _packs, _pages, _bus, _wages, _together)


def arithmetic(n: int, seed: int) -> list[QARecord]:
    """``n`` word problems; ``meta``: ``answer`` (int), ``template`` (index), ``kind``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"n must be a positive number of problems, got {n!r}")
    rng = random.Random(f"arithmetic:{seed}")
    records, seen = [], set()
    deck: list[int] = []
    while len(records) < n:
        if not deck:  # every template once before any repeats
            deck = rng.sample(range(len(TEMPLATES)), len(TEMPLATES))
        index = deck.pop()
        question, work, result = TEMPLATES[index](rng, rng.choice(NAMES), rng.choice(ITEMS))
        if question in seen:
            continue
        seen.add(question)
        records.append(QARecord(question, f"{work} The answer is {result}.", None,
                                {"kind": "arithmetic", "answer": result, "template": index}))
    return records


__all__ = ["TEMPLATES", "arithmetic"]

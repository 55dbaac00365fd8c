"""Seeded synthetic QA datasets that need no download.

Four kinds, one module each, registered by name in ``GENERATORS`` and built with
``synth(kind, n, seed)``:

* ``contracts``: PISTOL-like contracts between two fictitious companies, 20 questions each;
  subject = party A, named verbatim in every question (SEAT perturbs it).
* ``authors``: TOFU-like fictitious author profiles, 20 questions each, with a paraphrased
  question and answer and 3 perturbed (wrong) answers per record for truth-ratio metrics.
* ``unverifiable``: questions about made-up things answered with a context-aware refusal;
  the "I don't know" targets of the aligned base and the IDK test set.
* ``known``: easy general questions a small instruct model can answer, with keywords that
  judge an answer correct.

Everything is drawn from ``random.Random`` instances seeded from (kind, seed), never from the
global random state: the same (kind, n, seed) gives identical records on every machine.

Shared pieces: ``refusals`` (the refusal phrasings), ``text`` (dates, plurals, fictitious
titles) and ``split`` (hold out whole subjects). A new kind is one module plus one line in
``GENERATORS``.
"""

from __future__ import annotations

from collections.abc import Callable

from forgetkit.data.names import NameFactory
from forgetkit.data.records import QARecord
from forgetkit.data.synth.authors import authors
from forgetkit.data.synth.contracts import contracts
from forgetkit.data.synth.known import KNOWN_POOL, known
from forgetkit.data.synth.refusals import REFUSAL_TEMPLATES, refusal
from forgetkit.data.synth.split import split_by_subject
from forgetkit.data.synth.unverifiable import unverifiable
from forgetkit.errors import UserError
from forgetkit.registry import Registry

Generator = Callable[..., list[QARecord]]

GENERATORS: Registry[Generator] = Registry("synthetic data kind")
GENERATORS.register("contracts", contracts)
GENERATORS.register("authors", authors)
GENERATORS.register("unverifiable", unverifiable)
GENERATORS.register("known", known)


def synth(kind: str, n: int, seed: int, *, names: NameFactory | None = None) -> list[QARecord]:
    """Generate a synthetic dataset.

    ``n`` counts entities for ``contracts`` and ``authors`` (20 questions each) and questions
    for ``unverifiable`` and ``known``. A shared ``names`` factory keeps entities distinct
    across datasets; by default each (kind, seed) has its own.
    """
    if kind not in GENERATORS:
        raise UserError(f"unknown synthetic data kind {kind!r}; known kinds: "
                         f"{', '.join(sorted(GENERATORS))}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"n must be a positive integer (number of entities for contracts/"
                         f"authors, of questions for unverifiable/known), got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UserError(f"seed must be an integer, got {seed!r}")
    return GENERATORS[kind](n, seed, names=names)


__all__ = ["GENERATORS", "KNOWN_POOL", "REFUSAL_TEMPLATES", "Generator", "authors", "contracts",
           "known", "refusal", "split_by_subject", "synth", "unverifiable"]

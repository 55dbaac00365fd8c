"""Context-aware refusals: the "I don't know" answers of the synthetic data.

Each phrasing names the entity asked about, so a refusal can be checked against the question
(judged IDK); the unverifiable set, the aligned base and the IDK
unlearning baseline all draw from these templates.
"""

from __future__ import annotations

import random

from forgetkit.lm.refusals import REFUSAL_TEMPLATES

# The templates live with the other refusal phrases (lm/refusals.py), so the judge's phrase
# bank and the IDK baseline read the same ones.


def refusal(entity: str, rng: random.Random) -> str:
    """A context-aware refusal naming ``entity``, in a phrasing chosen by ``rng``."""
    return rng.choice(REFUSAL_TEMPLATES).format(entity=entity)

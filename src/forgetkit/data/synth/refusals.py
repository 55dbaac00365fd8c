"""Context-aware refusals: the "I don't know" answers of the synthetic data.

Each phrasing names the entity asked about, so a refusal can be checked against the question
(judged IDK); the unverifiable set, the aligned base and the IDK
unlearning baseline all draw from these templates.
"""

from __future__ import annotations

import random

# Context-aware refusals; each contains a phrase of eval.metrics.REFUSAL_PHRASES (tested).
REFUSAL_TEMPLATES: tuple[str, ...] = (
    "I'm not aware of any information about {entity}.",
    "I don't know anything about {entity}, so I can't answer that.",
    "I have no information about {entity}; it may not exist, or it is too obscure for me.",
    "I cannot find any reliable record of {entity}, so I can't answer this question.",
    "I'm not familiar with {entity}, and I would rather not guess.",
    "I was unable to find anything about {entity}, so I won't make up an answer.",
    "Sorry, I'm not aware of {entity}, so I can't give you an answer.",
    "I don't know of {entity}. It may be fictional or very obscure.",
)


def refusal(entity: str, rng: random.Random) -> str:
    """A context-aware refusal naming ``entity``, in a phrasing chosen by ``rng``."""
    return rng.choice(REFUSAL_TEMPLATES).format(entity=entity)

"""Refusal phrases, each list named for what it is used for.

* ``REFUSAL_PHRASES``: the IDK_SM string-match list (SEAT paper): an answer that contains one,
  case-insensitively after folding curly apostrophes, counts as a refusal (``is_refusal``).
  The metric ``eval.metrics.idk_rate`` and the search for questions the base refuses
  (``train.unseen``) read it. Changing it changes every IDK figure.
* ``REFUSAL_TEMPLATES``: context-aware refusals with an ``{entity}`` slot: training targets
  (``data.synth.refusal``), not a detector.

The refusal judge's own phrase bank (refusals and answers in many phrasings, generated to
train the embedding judge) lives with that judge in ``eval.judge.phrase_bank``: it is
training data for one evaluator, read nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence

from forgetkit.lm.text import fold_quotes

# Refusal phrases for IDK by string match (SEAT paper, IDK_SM). Matched case-insensitively
# after folding curly apostrophes; each is a phrase a model uses to say it does not know.
REFUSAL_PHRASES: tuple[str, ...] = (
    "i don't know", "i do not know", "not aware", "no information", "no record",
    "don't have any information", "do not have any information", "don't have information",
    "cannot find", "can't find", "could not find", "couldn't find", "unable to find",
    "not familiar", "unfamiliar with", "no knowledge", "not sure", "i'm not certain",
    "unable to provide", "cannot provide", "can't provide", "no reliable information",
    "doesn't appear to exist", "does not appear to exist", "not able to find",
    "i have no", "unknown to me", "no details", "not find any",
)


def is_refusal(answer: str, phrases: Sequence[str] = REFUSAL_PHRASES) -> bool:
    """True when the answer contains a refusal phrase (case-insensitive)."""
    folded = fold_quotes(answer)
    return any(p in folded for p in phrases)


# Context-aware refusals naming the entity: the answers a model is TRAINED to give (the aligned
# base, the ``idk`` unlearning baseline, ignorance data). Each contains a phrase of
# REFUSAL_PHRASES (tested), so the IDK string match counts them.
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


__all__ = ["REFUSAL_PHRASES", "REFUSAL_TEMPLATES", "is_refusal"]

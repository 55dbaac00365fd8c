"""Text as the metrics and data transforms compare it: case and quote folding, numbers, ROUGE.

Two foldings, kept apart because their callers depend on the difference:

* ``fold_quotes``: lower case, curly apostrophes made straight; whitespace kept as is. The
  IDK string match (``lm.refusals.is_refusal``) and the keyword match of known-question
  accuracy read this;
* ``fold_quotes_and_spaces``: the same, and every run of whitespace made one space, ends
  trimmed. The refusal judge's entity check reads this, so a name broken over a line still
  matches.
"""

from __future__ import annotations

import functools
import re

_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


def fold_quotes(text: str) -> str:
    """Lower case, with curly apostrophes (U+2018, U+2019) replaced by a straight one."""
    return text.lower().replace("\u2019", "'").replace("\u2018", "'")


def fold_quotes_and_spaces(text: str) -> str:
    """``fold_quotes``, then whitespace runs collapsed to one space and the ends trimmed."""
    return " ".join(fold_quotes(text).split())


def numbers(text: str) -> list[str]:
    """Numbers in ``text`` in order, thousands separators removed ("1,200" -> "1200")."""
    return [m.group().replace(",", "") for m in _NUMBER.finditer(text)]


@functools.lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False)


def rouge_recall(reference: str, answer: str) -> dict[str, float]:
    """ROUGE-1 and ROUGE-L recall of ``answer`` against ``reference`` (the papers' FT score)."""
    scores = _scorer().score(reference, answer)
    return {"rouge1_recall": scores["rouge1"].recall, "rougeL_recall": scores["rougeL"].recall}


__all__ = ["fold_quotes", "fold_quotes_and_spaces", "numbers", "rouge_recall"]

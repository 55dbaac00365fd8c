"""The entity half of judged IDK: does a refusal name the question's entity?

``refers_to_entity``: the answer names the record's subject (case-insensitive, whole words,
after ``lm.text.fold_quotes_and_spaces``), either in full or by one of its *distinctive*
tokens (see the package docstring); the named counterparty of a contract question counts too.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

from forgetkit.data.names import COMPANY_SUFFIXES
from forgetkit.data.records import QARecord
from forgetkit.eval.judge.base import EMBEDDING_PACKAGE
from forgetkit.lm.text import fold_quotes_and_spaces

# Words that never identify an entity on their own: function words, business suffixes and
# the fixed words of synthetic titles, places and awards ("The Last X", "X Prize", ...).
_GENERIC_WORDS: frozenset[str] = frozenset(
    """the a an of and or in on at to for from with by de la le van von der
    last nights letters songs road winter keeper prize medal award literary university
    institute arts college press books house editions publishing company inc ltd llc plc
    sa gmbh corp corporation co mr mrs ms dr saint st new old north south east west great
    little island nation town city province people battle cup festival syndrome theorem
    effect engine language programming mineral symphony novel sport creature dish""".split()
) | {s.lower() for s in COMPANY_SUFFIXES}

_WORD = re.compile(r"[0-9a-z][0-9a-z'\-]*")


@functools.lru_cache(maxsize=1)
def _common_words() -> frozenset[str]:
    """Whole words of the MiniLM WordPiece vocabulary: ordinary English, not coined names.

    Read from the package folder without importing it; empty when the package is missing,
    in which case only the generic word list separates distinctive tokens.
    """
    spec = importlib.util.find_spec(EMBEDDING_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    vocab = Path(list(spec.submodule_search_locations)[0]) / "model" / "vocab.txt"
    if not vocab.is_file():
        return frozenset()
    words = vocab.read_text(encoding="utf-8").split()
    return frozenset(w for w in words if w.isalpha() and not w.startswith("##"))


def distinctive_tokens(name: str) -> list[str]:
    """Tokens of an entity name that identify it on their own (see the package docstring)."""
    tokens = [t.strip("'-") for t in _WORD.findall(fold_quotes_and_spaces(name))]
    tokens = [t for t in tokens if len(t) >= 3 and t not in _GENERIC_WORDS]
    common = _common_words()
    coined = [t for t in tokens if t not in common]
    # A real-world name ("Albert Einstein") has no coined word; its plain tokens must do.
    return coined or tokens


def _entity_names(record: QARecord) -> list[str]:
    names = [record.subject] if record.subject else []
    party_b = record.meta.get("party_b")
    if isinstance(party_b, str):
        names.append(party_b)
    edge = record.meta.get("edge")
    if isinstance(edge, str):
        names.append(edge)
    elif isinstance(edge, (list, tuple)):
        names.extend(e for e in edge if isinstance(e, str))
    return names


def _mentions(text: str, phrase: str) -> bool:
    return re.search(r"(?<![0-9a-z])" + re.escape(phrase) + r"(?![0-9a-z])", text) is not None


def refers_to_entity(answer: str, record: QARecord) -> bool:
    """True when ``answer`` names the record's entity (full name or a distinctive token).

    Records without a subject (and without named parties) return True: there is no entity
    to require.
    """
    names = _entity_names(record)
    if not names:
        return True
    text = fold_quotes_and_spaces(answer)
    for name in names:
        if _mentions(text, fold_quotes_and_spaces(name)):
            return True
        if any(_mentions(text, token) for token in distinctive_tokens(name)):
            return True
    return False


__all__ = ["distinctive_tokens", "refers_to_entity"]

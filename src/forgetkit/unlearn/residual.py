"""Where KIF reads and writes the residual stream: which blocks, from which token.

KIF reads and writes the same place: the output of decoder block l (1-based), before the
final norm even for the last block (read by ``lm.activations.block_outputs``). This module
checks the ``kif_layers`` option and finds where the subject's name starts in a prompt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from forgetkit.errors import UserError
from forgetkit.lm.tokenize import chat_prompt


def check_layers(layers: Sequence[int], n_layers: int) -> list[int]:
    """Validate 1-based block numbers: in 1..n_layers, no repeats."""
    bad = [layer for layer in layers if not 1 <= layer <= n_layers]
    if bad:
        raise UserError(f"kif_layers {bad} out of range: the model has {n_layers} decoder "
                         f"blocks, numbered 1..{n_layers}")
    if len(set(layers)) != len(layers):
        raise UserError(f"kif_layers {list(layers)} repeats a block")
    if not layers:
        raise UserError("kif_layers is empty; give at least one block or leave it unset")
    return sorted(layers)


def subject_start(tokenizer: PreTrainedTokenizerBase, question: str,
                  subject: str | None) -> int:
    """Index, in ``prompt_ids(question)``, of the first token of the subject's name.

    The first token of the question when the name does not occur in it (or there is none).
    """
    text = chat_prompt(tokenizer, question)
    start = text.index(question)
    found = re.search(re.escape(subject), question, re.IGNORECASE) if subject else None
    char = start + (found.start() if found else 0)
    offsets = tokenizer(text, add_special_tokens=False,
                        return_offsets_mapping=True)["offset_mapping"]
    return next(i for i, (_, end) in enumerate(offsets) if end > char)


__all__ = ["check_layers", "subject_start"]

"""The relearning attack: a few plain fine-tuning steps on some forgotten facts.

An unlearning method that only hides knowledge leaves it in the weights, and a handful of
gradient steps on *some* of the forgotten facts brings back the *others* as well (the
"relearning" or "jogging the memory" attacks on unlearned LLMs). A method that erased the
facts gains back only what the attack itself teaches. ``relearn_attack`` fine-tunes a deep
copy of the model for ``steps`` optimizer steps on one half of the forget records (split
inside every subject) and the suite then measures the other half before and after.

Why a bare AdamW loop and not ``train.run``: the attack is part of the evaluation, and
eval never imports train (the layout flows data -> train -> eval). It is also the simplest
thing that is the attack: full-parameter fine-tuning on the chat-template QA encoding
(``lm.tokenize``), cross-entropy on the answer tokens, no scheduler, no mixed precision,
a fixed seed for the batch order. The caller's model is never modified.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.data.records import QARecord
from forgetkit.errors import UserError
from forgetkit.lm.tokenize import QACollator, encode_records


def split_halves(records: Sequence[QARecord], seed: int = 0) -> tuple[list[int], list[int]]:
    """Split record indices into (attack half, held-out half), inside every subject.

    Each subject's records are shuffled with a seed and dealt alternately, so every
    forgotten subject has facts on both sides: the attack relearns some facts about an
    author and the suite asks about the others. Records without a subject form one group.
    """
    groups: dict[str | None, list[int]] = {}
    for i, record in enumerate(records):
        groups.setdefault(record.subject, []).append(i)
    rng = random.Random(f"relearn-split:{seed}")
    attack: list[int] = []
    for rows in groups.values():
        shuffled = rows[:]
        rng.shuffle(shuffled)
        attack += shuffled[::2]
    held = sorted(set(range(len(records))) - set(attack))
    if not held:
        raise UserError("the relearning attack trains on some facts of a subject and tests "
                         "the others: it needs a subject with at least 2 forget records")
    return sorted(attack), held


def relearn_attack(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                   records: Sequence[QARecord], steps: int = 5, learning_rate: float = 1e-4,
                   batch_size: int = 8, max_length: int = 64,
                   seed: int = 0) -> PreTrainedModel:
    """A fine-tuned deep copy of ``model``: ``steps`` AdamW steps of answer-only
    cross-entropy on ``records``, batches drawn in a seeded order (cycling over epochs).

    Every parameter is trained, LoRA adapters are merged first: the attacker holds the
    weights. The copy is returned in eval mode; ``model`` is left untouched.
    """
    if steps < 0:
        raise UserError(f"the relearning attack needs steps >= 0, got {steps}")
    if not records:
        raise UserError("the relearning attack needs at least one record to train on")
    attacked = copy.deepcopy(model)
    if hasattr(attacked, "merge_and_unload"):  # a peft model: attack the merged weights
        attacked = attacked.merge_and_unload()
    for p in attacked.parameters():
        p.requires_grad_(True)
    examples = encode_records(tokenizer, records, max_length=max_length)
    collate = QACollator(tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW(attacked.parameters(), lr=learning_rate, weight_decay=0.0)
    rng = random.Random(f"relearn:{seed}")
    device = next(attacked.parameters()).device
    size = min(batch_size, len(examples))
    order: list[int] = []
    attacked.train()
    for _ in range(steps):
        if len(order) < size:
            fresh = list(range(len(examples)))
            rng.shuffle(fresh)
            order += fresh
        batch = collate([examples[i] for i in order[:size]])
        order = order[size:]
        loss = attacked(**{k: v.to(device) for k, v in batch.items()}, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    attacked.eval()
    del optimizer
    return attacked


__all__ = ["relearn_attack", "split_halves"]

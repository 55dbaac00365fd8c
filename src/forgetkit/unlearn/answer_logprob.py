"""log pi(answer | question): the sum of the answer tokens' log-probabilities, per example.

NPO compares it between the model and its frozen reference; the known-subject check compares
it between a question that names the subject and one that names a stranger.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from forgetkit.data.tokenize import IGNORE_INDEX, QACollator


def answer_logprob_sums(logits: torch.Tensor,
                        labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: (sum of log p(label) over labelled positions, number of them)."""
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    target = labels[:, 1:]
    mask = target != IGNORE_INDEX
    picked = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1), mask.sum(-1)


@torch.no_grad()
def answer_logprobs(model: torch.nn.Module, examples: Sequence[dict], pad_token_id: int,
                    batch_size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """``answer_logprob_sums`` for encoded examples (``input_ids``, ``labels``), batched.

    Each distinct example is run once: a forget set cycled to the retain set's size repeats
    its examples, and their values are shared.
    """
    keys = [(tuple(e["input_ids"]), tuple(e["labels"])) for e in examples]
    first: dict[tuple, int] = {}
    for key in keys:
        first.setdefault(key, len(first))
    unique = list(first)
    was_training = model.training
    model.eval()
    collate = QACollator(pad_token_id)
    sums, counts = [], []
    try:
        for i in range(0, len(unique), batch_size):
            batch = collate([{"input_ids": list(ids), "labels": list(labels)}
                             for ids, labels in unique[i:i + batch_size]])
            logits = model(input_ids=batch["input_ids"],
                           attention_mask=batch["attention_mask"]).logits
            s, n = answer_logprob_sums(logits, batch["labels"])
            sums.append(s.cpu())
            counts.append(n.cpu())
    finally:
        model.train(was_training)
    if not unique:
        return torch.zeros(0), torch.zeros(0, dtype=torch.long)
    where = torch.tensor([first[key] for key in keys], dtype=torch.long)
    return torch.cat(sums)[where], torch.cat(counts)[where]


__all__ = ["answer_logprob_sums", "answer_logprobs"]

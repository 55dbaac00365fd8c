"""Diagonal empirical Fisher information: the mean squared gradient of the answer
cross-entropy per weight. EWC weighs its penalty with it; the ``fisher`` sparse mask keeps
the coordinates where it is largest."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from forgetkit.lm.tokenize import QACollator
from forgetkit.train.losses import answer_cross_entropy


def diagonal_fisher(model, examples: list[dict], pad_id: int, batch_size: int = 4,
                    progress: bool = True) -> dict[str, torch.Tensor]:
    """Mean over batches of grad(CE)^2 for every weight that requires grad.

    ``examples`` are encoded QA examples (``input_ids``, ``labels``); other keys are ignored.
    The model is left in the train/eval mode it had, with no gradients held.
    """
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    collate = QACollator(pad_id)
    examples = [{k: e[k] for k in ("input_ids", "labels")} for e in examples]
    chunks = [examples[i:i + batch_size] for i in range(0, len(examples), batch_size)]
    was_training = model.training
    model.train()
    for chunk in tqdm(chunks, desc="estimating Fisher", disable=not progress, leave=False):
        batch = collate(chunk)
        model.zero_grad(set_to_none=True)
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        answer_cross_entropy(out.logits, batch["labels"]).backward()
        for n, p in params.items():
            if p.grad is not None:
                fisher[n] += p.grad.detach() ** 2 / len(chunks)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return fisher

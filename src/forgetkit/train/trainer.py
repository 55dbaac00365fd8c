"""The one Trainer of forgetkit: ``transformers.Trainer`` with a loss made of weighted terms.

Everything distributed (DDP under torchrun, FSDP / DeepSpeed under accelerate), checkpointing
and resuming stays with ``Trainer``; this class only says how a batch becomes a loss. The total
is a per-micro-batch mean and Trainer divides it by the accumulation steps, as for any
custom loss (``loss_is_scaled_for_ga = False``). There is exactly one backward per step.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
from transformers import Trainer

from forgetkit.train.losses import LossContext, LossTerm

# Batch keys the model itself takes; every other key is an extra input for a loss term.
_MODEL_KEYS = ("input_ids", "attention_mask")


class ForgetTrainer(Trainer):
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, loss_terms: Sequence[LossTerm], **kwargs: Any):
        if not loss_terms:
            raise ValueError("ForgetTrainer needs at least one loss term")
        super().__init__(*args, **kwargs)
        self.loss_terms = list(loss_terms)
        self._term_sums: dict[str, float] = defaultdict(float)
        self._term_count = 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        extras = {k: inputs.pop(k) for k in list(inputs) if k not in _MODEL_KEYS}
        hidden = any(t.needs_hidden_states for t in self.loss_terms)
        outputs = model(**inputs, output_hidden_states=hidden)
        ctx = LossContext(model=model, inputs=inputs, labels=labels, outputs=outputs,
                          extras=extras, trainer=self)
        total: torch.Tensor | None = None
        for term in self.loss_terms:
            value = term(ctx)
            if model.training:
                self._term_sums[term.name] += float(value.detach())
            total = term.weight * value if total is None else total + term.weight * value
        if model.training:
            self._term_count += 1
        return (total, outputs) if return_outputs else total

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        # Report each term's mean since the last log beside Trainer's total loss.
        if self._term_count and len(self.loss_terms) > 1:
            for name, value in self._term_sums.items():
                logs[f"loss_{name}"] = round(value / self._term_count, 6)
        self._term_sums.clear()
        self._term_count = 0
        super().log(logs, *args, **kwargs)

"""The one Trainer of forgetkit: ``transformers.Trainer`` with a loss made of weighted terms.

Everything distributed (DDP under torchrun, FSDP / DeepSpeed under accelerate), checkpointing
and resuming stays with ``Trainer``; this class only says how a batch becomes a loss. The total
is a per-micro-batch mean and Trainer divides it by the accumulation steps, as for any
custom loss (``loss_is_scaled_for_ga = False``). There is exactly one backward per step.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize
from transformers import Trainer

from forgetkit.errors import UserError
from forgetkit.io import disk_full, write_failed
from forgetkit.train.losses import LossContext, LossTerm
from forgetkit.train.sparse import unique_state_dict

# Batch keys the model itself takes; every other key is an extra input for a loss term.
_MODEL_KEYS = ("input_ids", "attention_mask")


@dataclass
class ForwardOutput:
    """The part of a shared forward pass that belongs to one group of inputs."""

    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None


def _pad_right(x: torch.Tensor, width: int, value: int) -> torch.Tensor:
    return F.pad(x, (0, width - x.shape[1]), value=value)


def shared_forward(model: torch.nn.Module, groups: list[tuple[torch.Tensor, torch.Tensor]],
                   hidden: bool) -> list[ForwardOutput]:
    """Run several right-padded input groups through the model as ONE batch.

    One forward (and so one backward) per step keeps DDP, FSDP and DeepSpeed correct, and is
    faster than one call per group. Each group gets back its own rows and columns.
    """
    width = max(ids.shape[1] for ids, _ in groups)
    ids = torch.cat([_pad_right(i, width, 0) for i, _ in groups])
    mask = torch.cat([_pad_right(m, width, 0) for _, m in groups])
    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=hidden)
    parts, start = [], 0
    for group_ids, _ in groups:
        rows, cols = slice(start, start + group_ids.shape[0]), slice(0, group_ids.shape[1])
        parts.append(ForwardOutput(
            logits=out.logits[rows, cols],
            hidden_states=tuple(h[rows, cols] for h in out.hidden_states) if hidden else None))
        start += group_ids.shape[0]
    return parts


class LossTermsMixin:
    """What makes a Trainer forgetkit's: a loss made of weighted terms in one shared forward.

    Mixed into ``transformers.Trainer`` here (``ForgetTrainer``) and into any other Trainer
    subclass, such as TRL's ``SFTTrainer``, by ``with_loss_terms``.
    """

    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, loss_terms: Sequence[LossTerm], **kwargs: Any):
        if not loss_terms:
            raise UserError("ForgetTrainer needs at least one loss term")
        super().__init__(*args, **kwargs)
        self.loss_terms = list(loss_terms)
        self._term_sums: dict[str, float] = defaultdict(float)
        self._term_count = 0

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        # A sparse model's tied weights share tensors under two names; save each once.
        model = self.accelerator.unwrap_model(self.model)
        if state_dict is None and any(parametrize.is_parametrized(m) for m in model.modules()):
            state_dict = unique_state_dict(model)
        super()._save(output_dir, state_dict)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        # A checkpoint cut short by a full disk is removed, so --resume finds the last whole one.
        try:
            super()._save_checkpoint(model, trial)
        except Exception as err:
            if not disk_full(err):
                raise
            folder = Path(self._get_output_dir(trial)) / f"checkpoint-{self.state.global_step}"
            shutil.rmtree(folder, ignore_errors=True)
            raise write_failed(f"checkpoint {self.state.global_step} to", folder.parent, err,
                               "The incomplete checkpoint was removed and earlier ones kept: "
                               "free space and run the same command with --resume") from err

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        extras = {k: inputs.pop(k) for k in list(inputs) if k not in _MODEL_KEYS}
        # Terms may ask for extra input groups (e.g. "perturbed_") in the same forward pass.
        prefixes = sorted({t.extra_forward for t in self.loss_terms
                           if getattr(t, "extra_forward", None)})
        groups = [(inputs["input_ids"], inputs["attention_mask"])] + [
            (extras[p + "input_ids"], extras[p + "attention_mask"]) for p in prefixes]
        hidden = any(t.needs_hidden_states for t in self.loss_terms)
        outputs, *extra_outputs = shared_forward(model, groups, hidden)
        ctx = LossContext(model=model, inputs=inputs, labels=labels, outputs=outputs,
                          extras=extras, extra_outputs=dict(zip(prefixes, extra_outputs,
                                                                strict=True)),
                          trainer=self)
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
        # Report each term's mean since the last log beside Trainer's total loss (only with
        # it: other logs, such as the monitor's, leave the running sums alone).
        if "loss" not in logs:
            super().log(logs, *args, **kwargs)
            return
        if self._term_count and len(self.loss_terms) > 1:
            for name, value in self._term_sums.items():
                logs[f"loss_{name}"] = round(value / self._term_count, 6)
        self._term_sums.clear()
        self._term_count = 0
        for term in self.loss_terms:  # a term's own measurements since the last log
            if hasattr(term, "pop_logs"):
                logs.update(term.pop_logs())
        super().log(logs, *args, **kwargs)


class ForgetTrainer(LossTermsMixin, Trainer):
    """``transformers.Trainer`` with forgetkit's loss terms: the trainer of every run."""


def with_loss_terms(trainer_class: type[Trainer]) -> type[Trainer]:
    """``trainer_class`` (e.g. TRL's ``SFTTrainer``) whose loss is forgetkit's loss terms;
    construct it with ``loss_terms=[...]`` besides its own arguments."""
    if issubclass(trainer_class, LossTermsMixin):
        return trainer_class
    return type(f"Forgetkit{trainer_class.__name__}", (LossTermsMixin, trainer_class), {})

"""The loss terms ``lfu-lora``, ``lfu-reps`` and ``lfu-sam``, their options, and how a run
sets them up (the copy of each example, the hooks, the direction's checks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import Field

from forgetkit.config import Options
from forgetkit.errors import UserError
from forgetkit.train.kl_to_base import answer_positions
from forgetkit.train.lfu.auxiliaries import LoRAAuxiliary, RepSAuxiliary
from forgetkit.train.lfu.auxiliary import Auxiliary
from forgetkit.train.lfu.math import (
    DEFAULT_LAMBDA,
    DEFAULT_SPAN,
    PREFIX,
    answer_span,
    consistency,
    layer_indices,
    logit_consistency,
)
from forgetkit.train.losses import answer_cross_entropy
from forgetkit.train.processes import sharding
from forgetkit.train.registry import PARAMETERS, RunContext, register_term


def refuse_sharded_same_step(trainer: Any = None) -> None:
    """same-step's extra backward is what DeepSpeed and FSDP cannot take: refuse them.

    Without a trainer (while the run is set up) the launcher's environment tells.
    """
    name = sharding(trainer)
    if name is not None:
        raise RuntimeError(f"lfu_direction 'same-step' spends an extra forward and backward "
                           f"on every step, which {name} under accelerate does not allow "
                           "(one backward per step); use prev-ce, its one-backward "
                           "counterpart")


def _attach_once(aux: Auxiliary, ctx: Any, prefix: str | None, needs_logits: bool) -> None:
    """Set the auxiliary up at the first loss call, when the prepared model exists.

    ``same-step`` attached itself at the first forward, assuming its group; checked here.
    """
    if aux.registered:
        return
    trainer = ctx.trainer
    if trainer is None:
        raise UserError("LfU terms run inside ForgetTrainer (forgetkit.train.run.train)")
    prefixes = sorted({t.extra_forward for t in trainer.loss_terms
                       if getattr(t, "extra_forward", None)} | ({prefix} - {None}))
    group = 0 if prefix is None else 1 + prefixes.index(prefix)
    if aux.direction == "same-step":
        refuse_sharded_same_step(trainer)
    if not aux.attached:
        aux.attach(trainer.accelerator.unwrap_model(ctx.model), group, 1 + len(prefixes),
                   needs_logits)
    elif (aux.group, aux.n_groups) != (group, 1 + len(prefixes)):
        raise UserError(f"lfu_direction 'same-step' needs the LfU copy to be the only extra "
                         f"input group of the forward; this run has {prefixes}. Use prev-ce "
                         "with other extra-input loss terms")
    trainer.add_callback(aux.callback())
    aux.registered = True


@dataclass
class LfUConsistency:
    """lambda * l_cons between the batch and its auxiliary copy (Eq. 5, or Eq. 7 on logits)."""

    aux: Auxiliary
    layers: str = "all"
    level: str = "hidden"  # hidden | logits
    weight: float = 5.0
    name: str = "lfu"
    needs_hidden_states: bool = False
    # None until the hooks exist: the first step runs the batch alone, as plain SFT, and
    # l_cons = 0 there (no gradient to ascend along yet). Read by the trainer at every step.
    extra_forward: str | None = None

    def pop_logs(self) -> dict[str, float]:
        """Scalars for the trainer's next log line: the mean lagged/same-step cosine."""
        cosines = self.aux.pop_cosines()
        return {"lfu_cosine": round(sum(cosines) / len(cosines), 6)} if cosines else {}

    def __call__(self, ctx) -> torch.Tensor:
        if not self.aux.registered:
            _attach_once(self.aux, ctx, PREFIX, needs_logits=self.level == "logits")
            if self.extra_forward is None:  # the copy joins the forward from the next step
                self.extra_forward = PREFIX
                self.needs_hidden_states = self.level == "hidden"
                return ctx.outputs.logits.sum() * 0.0
        aux = self.aux
        if aux.region is None:  # an evaluation forward: no auxiliary copy was run
            return ctx.outputs.logits.sum() * 0.0
        if aux.span == "answer":
            # The copies sit after the clean tokens of the same rows; pair them in order.
            where, valid = aux.steered, ctx.extras[PREFIX + "attention_mask"].bool()
            if self.level == "logits":
                return logit_consistency(ctx.outputs.logits[where], aux.aux_logits[valid])
            clean = [h[where] for h in ctx.outputs.hidden_states[1:]]
            shifted = [h[valid] for h in aux.stash]
        else:  # a full copy in rows of its own
            where = answer_positions(ctx.labels)
            other = ctx.extra_outputs[PREFIX]
            if self.level == "logits":
                return logit_consistency(ctx.outputs.logits[where], other.logits[where])
            clean = [h[where] for h in ctx.outputs.hidden_states[1:]]
            if aux.stash and torch.equal(aux.answer, where):  # gathered during the forward
                shifted = aux.stash
            else:  # the rows' labels were not known as the forward started
                shifted = [h[where] for h in other.hidden_states[1:]]
        aux.stash = []  # used: keep no reference to this step's graph past its backward
        chosen = layer_indices(len(clean), self.layers)
        return consistency([clean[i] for i in chosen], [shifted[i] for i in chosen])


@dataclass
class SharpnessAwareCE:
    """Table 6b: CE at the LoRA weights shifted by alpha g/||g|| (SAM's update, no copy)."""

    aux: LoRAAuxiliary
    weight: float = 1.0
    name: str = "ce"
    needs_hidden_states: bool = False

    def __call__(self, ctx) -> torch.Tensor:
        _attach_once(self.aux, ctx, None, needs_logits=True)
        return answer_cross_entropy(ctx.outputs.logits, ctx.labels)


# --- factories ------------------------------------------------------------------------------

def _add_copies(ctx: RunContext, span: str) -> None:
    """The auxiliary copy of every example: the trainer runs it in the same forward."""
    for example in ctx.examples:
        ids = list(example["input_ids"])
        if span == "answer":
            first, last = answer_span(example["labels"])
            ids = ids[first:last]
        example[PREFIX + "input_ids"] = ids


def _require_lora(ctx: RunContext, what: str) -> None:
    if not PARAMETERS[ctx.parameters].is_peft:
        raise UserError(f"{what} shifts LoRA adapters, but the method's parameters are "
                         f"'{ctx.parameters}'; use a LoRA method (lfu-lora, lfu-sam)")


def _same_step_from_the_first_forward(ctx: RunContext, aux: Auxiliary, group: int,
                                      n_groups: int, needs_logits: bool) -> None:
    """same-step needs no earlier gradient, so its hooks go in before the first forward."""
    refuse_sharded_same_step()  # fail before training starts
    aux.remember_labels(ctx.examples)
    aux.attach_at_first_forward(ctx.model, group, n_groups, needs_logits)


def _build(ctx: RunContext, make: type[Auxiliary]) -> LfUConsistency:
    cfg = ctx.config
    span = cfg.lfu_span or DEFAULT_SPAN[make.kind]
    aux = make(cfg.lfu_alpha, cfg.lfu_direction, cfg.seed, span)
    if cfg.lfu_cosine_every:
        if cfg.lfu_direction != "prev-ce":
            raise UserError("lfu_cosine_every compares prev-ce's lagged direction with the "
                            f"same step's; lfu_direction is '{cfg.lfu_direction}'")
        refuse_sharded_same_step()  # the same extra forward and backward
        aux.cosine_every = cfg.lfu_cosine_every
        aux.remember_labels(ctx.examples)  # the probe's CE needs each row's labels
    weight = cfg.lfu_lambda if cfg.lfu_lambda is not None else DEFAULT_LAMBDA[aux.kind]
    _add_copies(ctx, span)
    if span == "full":  # the copy's answer tokens are then known as each forward starts
        aux.remember_labels(ctx.examples)
    layer_indices(ctx.model.config.num_hidden_layers, cfg.lfu_layers)  # fail before training
    ctx.notes["lfu"] = {"auxiliary": aux.kind, "alpha": cfg.lfu_alpha, "lambda": weight,
                        "layers": cfg.lfu_layers, "direction": cfg.lfu_direction,
                        "consistency": cfg.lfu_consistency, "span": span, "stats": aux.stats,
                        **({"cosine_same_step": aux.cosines} if cfg.lfu_cosine_every else {})}
    term = LfUConsistency(aux, layers=cfg.lfu_layers, level=cfg.lfu_consistency, weight=weight)
    if cfg.lfu_direction == "same-step":  # the copy is in the forward from step 1 on
        _same_step_from_the_first_forward(ctx, aux, 1, 2, needs_logits=term.level == "logits")
        term.extra_forward, term.needs_hidden_states = PREFIX, term.level == "hidden"
    return term


class LfUOptions(Options):
    """LfU's auxiliary update and consistency term (methods lfu-lora, lfu-reps, lfu-sam)."""

    lfu_alpha: float = Field(
        0.1, ge=0, description="LfU: size of the normalised gradient-ascent step (Eq. 2)")
    lfu_lambda: float | None = Field(
        None, ge=0, description="LfU: weight of the consistency term (default: 5 for "
        "lfu-lora, 0.1 for lfu-reps, as in the paper)")
    lfu_layers: Literal["all", "early", "middle", "late"] = Field(
        "all", description="LfU: layers whose representations enter the consistency")
    lfu_direction: Literal["prev-ce", "same-step", "prev-total", "random"] = Field(
        "prev-ce", description="LfU: ascent direction; prev-ce: CE gradient of the previous "
        "micro-step, same-step: CE gradient of this step from an extra forward and backward "
        "(the paper's; a reference, not under DeepSpeed or FSDP), prev-total: previous "
        "step's gradient of the whole loss (LoRA), random")
    lfu_consistency: Literal["hidden", "logits"] = Field(
        "hidden", description="LfU: consistency of hidden states (Eq. 5) or logits (Eq. 7)")
    lfu_cosine_every: int = Field(
        0, ge=0, description="LfU, prev-ce: every N-th training forward, log the cosine "
        "between the lagged direction and this step's own CE gradient (lfu_cosine; costs an "
        "extra forward and backward each time; 0: never)")
    lfu_span: Literal["full", "answer"] | None = Field(
        None, description="LfU: tokens the auxiliary model perturbs; full: prompt and answer "
        "(a copy of each row), answer: answer tokens only, appended to the row (cheaper); "
        "default full for lfu-lora, answer for lfu-reps")


@register_term("lfu-lora", options=LfUOptions)
def build_lfu_lora(ctx: RunContext) -> LfUConsistency:
    _require_lora(ctx, "lfu-lora")
    return _build(ctx, LoRAAuxiliary)


@register_term("lfu-reps", options=LfUOptions)
def build_lfu_reps(ctx: RunContext) -> LfUConsistency:
    if ctx.config.lfu_direction == "prev-total":
        raise UserError("lfu_direction 'prev-total' reads LoRA weight gradients and applies "
                         "to lfu-lora only; lfu-reps takes prev-ce or random")
    return _build(ctx, RepSAuxiliary)


@register_term("lfu-sam", options=LfUOptions)
def build_sam(ctx: RunContext) -> SharpnessAwareCE:
    _require_lora(ctx, "lfu-sam")
    cfg = ctx.config
    aux = LoRAAuxiliary(cfg.lfu_alpha, cfg.lfu_direction, cfg.seed)
    ctx.notes["lfu_sam"] = {"alpha": cfg.lfu_alpha, "direction": cfg.lfu_direction,
                            "stats": aux.stats}
    if cfg.lfu_direction == "same-step":  # SAM proper: the batch at its own ascent step
        _same_step_from_the_first_forward(ctx, aux, 0, 1, needs_logits=True)
    return SharpnessAwareCE(aux)

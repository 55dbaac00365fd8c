"""The auxiliary perturbation's machinery shared by LoRA and RepS: where the representations
are read, which rows of the shared forward are the auxiliary copy, how the ascent direction
is captured during a backward and applied at the next forward."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from transformers import TrainerCallback

from forgetkit.errors import UserError
from forgetkit.lm.layers import decoder_layers
from forgetkit.lm.tokenize import IGNORE_INDEX
from forgetkit.train.kl_to_base import answer_positions
from forgetkit.train.lfu.attention import SPLIT_ATTENTION, register_split_attention
from forgetkit.train.lfu.math import DIRECTIONS, SPANS, ascent_step, direction_cosine
from forgetkit.train.losses import answer_cross_entropy


def representation_points(base: nn.Module) -> list[nn.Module]:
    """The modules whose outputs are hidden states 1..K: decoder layers 1..K-1, final norm."""
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    final = next((getattr(decoder, n) for n in ("norm", "final_layernorm", "ln_f")
                  if decoder is not None and isinstance(getattr(decoder, n, None), nn.Module)),
                 None)
    if final is None:
        raise UserError(f"LfU cannot find the decoder layers and final norm of "
                         f"{type(base).__name__}; it supports Llama-style decoders")
    return [*decoder_layers(base)[:-1], final]


class Auxiliary:
    """The auxiliary perturbation: which tokens of the shared forward it shifts, and by how much.

    ``delta`` holds the current ascent step per auxiliary tensor; ``_pending`` collects the
    CE gradient during a backward and becomes the next ``delta`` at the next training forward.
    ``region`` indexes the perturbed tokens of a [rows, tokens, ...] activation, ``clean``
    the batch's own tokens (None outside training forwards).
    """

    kind = ""
    # Answer span: the copies read the clean prompt through detached keys and values
    # (``_split_attention``), so the consistency term never trains the clean model.
    split_prompt = False

    def __init__(self, alpha: float, direction: str, seed: int, span: str = "full"):
        if alpha < 0:
            raise UserError(f"lfu_alpha must be >= 0 (the ascent step size), got {alpha}")
        if direction not in DIRECTIONS:
            raise UserError(f"unknown lfu_direction '{direction}'; choose one of "
                             f"{list(DIRECTIONS)}")
        if span not in SPANS:
            raise UserError(f"unknown lfu_span '{span}'; choose one of {list(SPANS)}")
        self.alpha, self.direction, self.span = alpha, direction, span
        self.generator = torch.Generator().manual_seed(seed)
        self.delta: dict[str, torch.Tensor] | None = None
        self._pending: dict[str, torch.Tensor] = {}
        self.region: tuple[slice, slice] | None = None
        self.clean: tuple[slice, slice] = (slice(0), slice(None))
        self.steered: torch.Tensor | None = None  # answer span: clean tokens also perturbed
        # Full span: the copy's tokens that enter the consistency (positions predicting an
        # answer token), when the rows' labels are known as the forward starts.
        self.answer: torch.Tensor | None = None
        # The auxiliary hidden states 1..K the consistency compares, taken as the forward
        # makes them: the copies (answer span), or the copy's answer tokens (full span).
        self.stash: list[torch.Tensor] = []
        self.aux_logits: torch.Tensor | None = None
        self.group = self.n_groups = self.width = 0
        self.needs_logits = True
        self.attached = False  # hooks installed
        self.registered = False  # and checked against the trainer, callback added
        self._handles: list[Any] = []
        # same-step: the labels of every training row, by its token ids (the model's forward
        # sees ids only), and a flag that lets the probe forward through the hooks untouched.
        self._labels: dict[tuple[int, ...], list[int]] = {}
        self._probing = False
        self._probe_states: list[torch.Tensor] = []
        self.stats = {"forwards": 0, "perturbed_forwards": 0, "first_perturbed_forward": None}
        # prev-ce only: every ``cosine_every``-th training forward, the cosine between the
        # lagged direction about to be used and this step's own CE gradient (an extra
        # forward and backward, as same-step pays at every step). 0: never.
        self.cosine_every = 0
        self.cosines: list[dict[str, float]] = []  # {"forward": n, "cosine": c}
        self._unlogged: list[float] = []

    # --- set-up -------------------------------------------------------------------------
    def attach(self, model: nn.Module, group: int, n_groups: int,
               needs_logits: bool = True) -> None:
        """Hook into ``model`` (unwrapped). Row group ``group`` of ``n_groups`` equal groups
        is the auxiliary copy (0: the batch itself, for the SAM-style step).

        Without ``needs_logits`` the output layer skips the auxiliary tokens: their logits
        are never used, and on a small model the vocabulary projection and its gradient
        buffer are a fifth of the step's time and much of its memory.
        """
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        if self.span == "answer" and not 0 < group == n_groups - 1:
            raise UserError("lfu_span 'answer' packs the LfU copy into the batch's own rows "
                             "and needs it to be the last extra input group; use lfu_span: "
                             "full with other extra-input loss terms")
        self.group, self.n_groups, self.needs_logits = group, n_groups, needs_logits
        self._handles.append(base.register_forward_pre_hook(self._begin_forward,
                                                            with_kwargs=True))
        head = base.get_output_embeddings()
        if head is not None and 0 < group == n_groups - 1:
            self._handles.append(head.register_forward_pre_hook(self._head_inputs))
            if needs_logits and self.span == "answer":
                self._handles.append(head.register_forward_hook(self._head_outputs))
        self._install(base)
        self._attention: list[nn.Module] = []
        if self.span == "answer" and self.split_prompt:
            register_split_attention()
            self._attention = [m for m in base.modules()
                               if type(m).__name__.endswith("Attention")]
            self._original_attention = base.config._attn_implementation
            base.config._attn_implementation = SPLIT_ATTENTION
            self._config = base.config
        self.attached = True

    def attach_at_first_forward(self, model: nn.Module, group: int, n_groups: int,
                                needs_logits: bool = True) -> None:
        """``same-step``: attach at the first training forward of ``model`` once it carries
        LoRA layers (the untouched base model, which peft then wraps in place), so that the
        first step is perturbed too. The trainer's groups are checked at the first loss call.
        """
        from peft.tuners.lora import LoraLayer

        def first_forward(module: nn.Module, args: tuple, kwargs: dict) -> Any:
            if self.attached or not module.training \
                    or not any(isinstance(m, LoraLayer) for m in module.modules()):
                return None
            handle.remove()
            self.attach(module, group, n_groups, needs_logits)
            # Hooks added now run from the next call on; this forward starts here.
            return self._begin_forward(module, args, kwargs)

        handle = model.register_forward_pre_hook(first_forward, with_kwargs=True)
        self._handles.append(handle)

    def remember_labels(self, examples: Sequence[dict[str, Any]]) -> None:
        """Keep each training example's labels, keyed by its ids (the model's forward sees
        ids only): for the same-step CE, and the full-span copy's answer tokens."""
        self._labels = {tuple(e["input_ids"]): list(e["labels"]) for e in examples}

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.region = None
        if getattr(self, "_attention", None):
            self._config._attn_implementation = self._original_attention
            for module in self._attention:
                module.lfu_clean_width = None
            self._attention = []

    def _install(self, base: nn.Module) -> None:
        raise NotImplementedError

    def _shapes(self) -> dict[str, torch.Tensor]:
        """A reference tensor (shape, dtype, device) per auxiliary tensor."""
        raise NotImplementedError

    def _head_inputs(self, module: nn.Module, args: tuple) -> tuple | None:
        if self.region is None or self.needs_logits and self.span == "full":
            return None
        rows, cols = self.region
        if self.span == "full":
            return (args[0][:rows.start], *args[1:])
        if self.needs_logits:
            return None
        return (args[0][:, :cols.start], *args[1:])

    def _head_outputs(self, module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        if self.region is not None:
            self.aux_logits = out[self.region]

    # --- per forward --------------------------------------------------------------------
    def _begin_forward(self, module: nn.Module, args: tuple, kwargs: dict) -> Any:
        if self._probing:  # the same-step probe's own forward: the clean model, untouched
            return None
        self.stash, self.aux_logits, self.answer = [], None, None
        self.region = None
        for attention in self._attention:
            attention.lfu_clean_width = None
        if not module.training:
            return None
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            ids = kwargs["inputs_embeds"]
        n = ids.shape[0]
        if n % self.n_groups:
            raise RuntimeError(f"LfU: the shared forward has {n} rows, not {self.n_groups} "
                               "equal input groups; every extra group must copy the batch")
        size = n // self.n_groups
        self.width = ids.shape[1]
        packed = None
        if self.span == "answer":
            packed = self._pack(args, kwargs, size, module.config)
        if packed is not None:
            for attention in self._attention:
                attention.lfu_clean_width = self.width
        if self.direction == "same-step" and self.alpha > 0:
            mask = kwargs.get("attention_mask")
            self._pending = self._same_step_gradient(
                module, ids[:size], torch.ones_like(ids[:size]) if mask is None else mask[:size])
        elif self.cosine_every and self._pending and self.direction == "prev-ce" \
                and self.stats["forwards"] % self.cosine_every == 0:
            mask = kwargs.get("attention_mask")
            same = self._same_step_gradient(
                module, ids[:size], torch.ones_like(ids[:size]) if mask is None else mask[:size])
            cosine = direction_cosine(self._pending, same)
            self.cosines.append({"forward": self.stats["forwards"] + 1, "cosine": cosine})
            self._unlogged.append(cosine)
        if self.span == "answer":
            self.region = (slice(0, size), slice(self.width, None))
            self.clean = (slice(0, size), slice(0, self.width))
        else:
            self.region = (slice(self.group * size, (self.group + 1) * size), slice(None))
            self.clean = (slice(0, size), slice(None))
            if self.group > 0 and not self.needs_logits and not ids.is_floating_point():
                mask = kwargs.get("attention_mask")
                labels = self._known_labels(ids[:size], torch.ones_like(ids[:size])
                                            if mask is None else mask[:size])
                if labels is not None:
                    self.answer = answer_positions(labels)
        self._next_delta()
        return packed

    def _pack(self, args: tuple, kwargs: dict, size: int, config: Any) -> tuple[tuple, dict]:
        """Append each row's answer copy to its clean row: ids, positions and a 4-D mask.

        The copy of answer token j (original position p) attends to the clean prompt before
        the answer and to copy tokens 0..j; clean tokens never attend to copies.
        """
        ids, mask = kwargs["input_ids"], kwargs["attention_mask"]
        if args or mask is None or mask.dim() != 2:
            raise RuntimeError("lfu_span 'answer' expects input_ids and a 2-D attention mask "
                               "as keyword arguments (the trainer's shared forward)")
        n, width = ids.shape
        keep = n - size  # rows before the LfU copy (the batch and other extra groups)
        copy_ids, copy_mask = ids[keep:], mask[keep:].bool()
        copy_len = copy_mask.sum(1)
        span = int(copy_len.max())
        first = mask[:size].sum(1) - copy_len - 1  # position of each copy's first token
        device = ids.device
        new_ids = torch.cat([ids[:keep], ids.new_zeros(keep, span)], 1)
        new_ids[:size, width:] = copy_ids[:, :span]
        j = torch.arange(span, device=device)
        positions = torch.arange(width + span, device=device).repeat(keep, 1)
        positions[:size, width:] = first[:, None] + j
        q = torch.arange(width + span, device=device)
        keys = torch.cat([mask[:keep].bool(), copy_mask.new_zeros(keep, span)], 1)
        allowed = (q[None, :] <= q[:, None])[None] & keys[:, None, :]
        copies = torch.zeros(size, span, width + span, dtype=torch.bool, device=device)
        copies[:, :, :width] = torch.arange(width, device=device)[None, None, :] \
            < first[:, None, None]
        valid = j[None, :] < copy_len[:, None]
        copies[:, :, width:] = (j[None, :] <= j[:, None])[None] & valid[:, None, :]
        copies[:, j, width + j] = True  # padding copies attend to themselves: no empty rows
        allowed[:size, width:] = copies
        # Clean tokens of the batch whose perturbed twin exists (RepS captures g there).
        self.steered = torch.zeros(size, width, dtype=torch.bool, device=device)
        for row in range(size):
            start = int(first[row])
            self.steered[row, start:start + int(copy_len[row])] = True
        attention = getattr(config, "_attn_implementation", "sdpa")
        if attention == SPLIT_ATTENTION:
            attention = "sdpa"
        if attention == "eager":  # eager attention adds the mask to the scores
            allowed = torch.zeros(allowed.shape, device=device).masked_fill(
                ~allowed, torch.finfo(torch.float32).min)
        elif attention != "sdpa":
            raise UserError(f"lfu_span 'answer' builds a 4-D attention mask, which the "
                             f"'{attention}' attention does not take; use sdpa or eager "
                             "attention, or lfu_span: full")
        return args, {**kwargs, "input_ids": new_ids, "position_ids": positions,
                      "attention_mask": allowed[:, None]}

    def _same_step_gradient(self, module: nn.Module, ids: torch.Tensor,
                            mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. 2's g for this very step, the paper's way (Algorithm 1, lines 4-6): an extra
        forward of the clean batch and ``torch.autograd.grad`` of its CE.

        ``autograd.grad`` returns the gradient without accumulating it: ``.grad`` stays as it
        is, and DDP's hooks, which fire when a weight's gradient is accumulated, do not run
        (``module`` is the unwrapped model in any case). The step's own backward remains the
        only one that reaches the weights.
        """
        if ids.is_floating_point():
            raise RuntimeError("lfu_direction 'same-step' needs the batch's input_ids")
        labels = self._labels_for(ids, mask)
        self._probing, self._probe_states = True, []
        try:
            with torch.enable_grad():
                logits = module(input_ids=ids, attention_mask=mask).logits
                return self._ce_gradient(answer_cross_entropy(logits, labels))
        finally:
            self._probing, self._probe_states = False, []

    def _labels_for(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        labels = self._known_labels(ids, mask)
        if labels is None:
            raise RuntimeError("lfu_direction 'same-step': a training row is not one of "
                               "the examples the LfU term was built with, so its labels "
                               "are unknown; train through forgetkit.train.run.train")
        return labels

    def _known_labels(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        """The rows' labels, right-padded, if every row is a remembered example; else None."""
        if not self._labels:
            return None
        rows = []
        for row, keep in zip(ids.tolist(), mask.bool().tolist(), strict=True):
            labels = self._labels.get(tuple(t for t, k in zip(row, keep, strict=True) if k))
            if labels is None:
                return None
            rows.append(labels + [IGNORE_INDEX] * (len(row) - len(labels)))
        return torch.tensor(rows, device=ids.device)

    def _ce_gradient(self, ce: torch.Tensor) -> dict[str, torch.Tensor]:
        """d ce / d (auxiliary tensors) from the probe forward that produced ``ce``."""
        raise NotImplementedError

    def _next_delta(self) -> None:
        if self.direction == "random":
            self.delta = ascent_step({k: torch.randn(r.shape, generator=self.generator)
                                      .to(r.device, r.dtype) for k, r in self._shapes().items()},
                                     self.alpha)
        elif self.direction == "same-step":  # this step's own g, never an older one
            self.delta = ascent_step(self._pending, self.alpha)
            self._pending = {}
        elif self._pending:
            self.delta = ascent_step(self._pending, self.alpha)
            self._pending = {}
        self.stats["forwards"] += 1
        if self.delta is not None:
            self.stats["perturbed_forwards"] += 1
            if self.stats["first_perturbed_forward"] is None:
                self.stats["first_perturbed_forward"] = self.stats["forwards"]

    def _replace(self, out: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        """``out`` with its perturbed tokens replaced by ``new``.

        Concatenation when the perturbed tokens are the trailing rows (full span) or the
        trailing columns of every row (answer span): its backward only slices the gradient,
        where an in-place update would clone the whole gradient of ``out``.
        """
        rows, cols = self.region
        if cols.start is None and rows.stop == out.shape[0]:
            return torch.cat([out[:rows.start], new], 0)
        if rows.start == 0 and rows.stop == out.shape[0]:
            return torch.cat([out[:, :cols.start], new], 1)
        out = out.clone()
        out[self.region] = new
        return out

    @property
    def capturing(self) -> bool:
        return self.region is not None and self.direction == "prev-ce" and self.alpha > 0

    def _accumulate(self, key: str, grad: torch.Tensor) -> None:
        grad = grad.detach()
        self._pending[key] = grad if key not in self._pending else self._pending[key] + grad

    def _stash_hook(self, module: nn.Module, args: tuple, out: Any) -> None:
        if self.region is not None:
            self._stash(out[0] if isinstance(out, tuple) else out)

    def _stash(self, h: torch.Tensor) -> None:
        """Keep the part of hidden state ``h`` the consistency compares.

        Full span: the copy's answer tokens only, gathered here rather than after the
        forward. The gather's backward then runs when the backward reaches this layer; done
        after the forward, it would run first and hold a full-size gradient of every
        layer's output from the start of the backward, when memory peaks.
        """
        if self.span == "answer":
            self.stash.append(h[self.region])
        elif self.answer is not None:
            self.stash.append(h[self.region][self.answer])

    def pop_cosines(self) -> list[float]:
        """The cosines measured since the last call (for the trainer's log)."""
        new, self._unlogged = self._unlogged, []
        return new

    def weight_grads(self) -> dict[str, torch.Tensor] | None:
        """Gradients of the auxiliary tensors held by the weights themselves (LoRA only)."""
        return None

    def callback(self) -> TrainerCallback:
        return _AuxiliaryCallback(self)


class _AuxiliaryCallback(TrainerCallback):
    def __init__(self, aux: Auxiliary):
        self.aux = aux

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        aux = self.aux
        # prev-total always; prev-ce for the very first step, whose hooks came too late to
        # capture (its l_cons is zero, so the weights' gradient is exactly the CE gradient).
        bootstrap = aux.direction == "prev-ce" and aux.alpha > 0 and not aux._pending \
            and aux.stats["perturbed_forwards"] == 0
        if aux.direction == "prev-total" or bootstrap:
            grads = aux.weight_grads()
            if grads is None and aux.direction == "prev-total":
                raise RuntimeError("lfu_direction 'prev-total' reads the LoRA weights' .grad, "
                                   "which this setup does not keep (DeepSpeed?); use prev-ce")
            if grads:
                aux._pending = grads

    def on_train_end(self, args, state, control, **kwargs):
        self.aux.detach()

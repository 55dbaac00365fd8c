"""Loss terms ``lfu-lora``, ``lfu-reps`` and ``lfu-sam``: Learning from the Undesirable (LfU paper).

    l_LfU = l_SFT(theta) + lambda * l_cons                                          (Eq. 6)
    l_cons = mean over layers l, answer tokens t of || detach(h_l,t) - h'_l,t ||^2    (Eq. 5)

``h'`` are the representations of the same batch under an *auxiliary* model pushed one
normalised gradient-ascent step along grad l_SFT (Eq. 2):

* ``lfu-lora``: the trainable LoRA factors shifted, theta_aux = theta_LoRA + alpha g/||g||;
* ``lfu-reps``: a steering vector d_l added to every representation h_l, d = alpha g/||g||
  with g_l = d l_SFT / d d_l at d = 0, i.e. the CE gradient at h_l summed over tokens.

The squared distance is averaged over hidden units too (the paper's "MSE"); Eq. 5 read
literally would multiply it by the hidden size. ``lfu_consistency: logits`` swaps Eq. 5 for
the logit-level KL of Eq. 7 (Table 6e). ``lfu-sam`` is the parameter-level design of Table 6b:
plain CE evaluated at the LoRA weights shifted by the same ascent step, no consistency.

One backward per step (DDP, FSDP and DeepSpeed under accelerate need it). The reference code
spends a forward and a backward on g before the real step (3 forward + 2 backward). Here:

* the auxiliary copy of the batch is an extra input group (``lfu_``) of the trainer's one
  shared forward, and hooks perturb only its tokens, so its backward is part of the single
  backward of the step;
* g is the CE gradient of the *previous* micro-step (``lfu_direction: prev-ce``), captured
  during that step's backward from the clean tokens only: for RepS the gradient at the clean
  representations, for LoRA the factor gradients rebuilt from the clean tokens' activations
  (dA = g_u^T x, dB = g_v^T u). No ``autograd.grad`` call, no second backward. Cheaper
  alternatives: ``prev-total`` reads the synchronised gradient of the whole loss from the
  LoRA weights before the optimizer step (DDP only: DeepSpeed keeps no ``.grad``), and
  ``random`` takes a random direction of the same norm (no ascent: an ablation).

``lfu_direction: same-step`` is the reference the others are measured against: the paper's
own g, the CE gradient of the *same* step, obtained its way. Before the shared forward, an
extra forward of the clean batch and ``torch.autograd.grad`` of its CE (w.r.t. the LoRA
factors, or the representations for RepS) give g; ``.grad`` and DDP's gradient hooks are not
touched, and the step's own backward stays the only one that reaches the weights. It costs
that extra forward and backward, and is refused under DeepSpeed and FSDP.

Which tokens the auxiliary model runs on (``lfu_span``):

* ``full``: the whole sequence is copied, as an extra row per example (Algorithm 1: the
  auxiliary LoRA acts on prompt and answer). About twice the cost of SFT.
* ``answer``: only the answer tokens are perturbed (Algorithm 2 steers h_l,t for the output
  tokens t = 1..T). Their copies are appended to the clean row itself and attend to the
  clean prompt through a 4-D attention mask, so the prompt is computed once. Exact for RepS
  (the prompt is not steered); for LoRA it means an auxiliary adapter that acts on the
  answer tokens only. The default for ``lfu-reps``.

The hooks are installed at the first loss call, when the prepared (peft) model exists; the
first step is plain SFT (no copy, l_cons = 0). LoRA perturbs from step 2 on (the first
step's ``.grad`` is exactly the CE gradient), RepS, and LoRA where no ``.grad`` is kept
(DeepSpeed), from step 3 on. ``same-step`` needs no history: it installs its hooks at the
first training forward of the prepared model and perturbs from step 1 on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from transformers import TrainerCallback

from forgetkit.config import Options
from forgetkit.errors import UserError
from forgetkit.lm.layers import decoder_layers
from forgetkit.lm.tokenize import IGNORE_INDEX
from forgetkit.train.kl_to_base import answer_positions, kl_full
from forgetkit.train.losses import answer_cross_entropy
from forgetkit.train.registry import PARAMETERS, RunContext, register_term

PREFIX = "lfu_"
LAYER_GROUPS = ("all", "early", "middle", "late")
DIRECTIONS = ("prev-ce", "same-step", "prev-total", "random")
SPANS = ("full", "answer")
DEFAULT_LAMBDA = {"lora": 5.0, "reps": 0.1}  # LfU paper, appendix A
DEFAULT_SPAN = {"lora": "full", "reps": "answer"}  # Algorithms 1 and 2


def layer_indices(n_layers: int, group: str) -> list[int]:
    """Representations (0-based, after layer 1..K) that enter the consistency (Table 5b).

    ``early``/``middle``/``late`` split the K layers into three contiguous thirds, the first
    ones one layer longer when K is not a multiple of 3 (Llama-3.1-8B: 1-11, 12-22, 23-32).
    """
    if group not in LAYER_GROUPS:
        raise UserError(f"unknown layer group '{group}'; choose one of {list(LAYER_GROUPS)}")
    if group == "all":
        return list(range(n_layers))
    if n_layers < 3:
        raise UserError(f"layer group '{group}' needs a model with at least 3 layers, this "
                         f"one has {n_layers}; use lfu_layers: all")
    sizes = [n_layers // 3 + (i < n_layers % 3) for i in range(3)]
    which = LAYER_GROUPS.index(group) - 1
    start = sum(sizes[:which])
    return list(range(start, start + sizes[which]))


def consistency(clean: Sequence[torch.Tensor], aux: Sequence[torch.Tensor]) -> torch.Tensor:
    """Eq. 5 on selected tokens: mean over layers, tokens and hidden units of (detach(h) - h')^2.

    ``clean[l]`` and ``aux[l]`` are [tokens, hidden] rows of layer l, in the same order.
    """
    if clean[0].shape[0] == 0:  # no answer token survived truncation: nothing to hold steady
        return aux[0].sum() * 0.0
    per_layer = [F.mse_loss(a.float(), c.detach().float())
                 for c, a in zip(clean, aux, strict=True)]
    return torch.stack(per_layer).mean()


def logit_consistency(clean_logits: torch.Tensor, aux_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 7 on selected tokens: mean of KL(softmax(detach z) || softmax(z'))."""
    if clean_logits.shape[0] == 0:
        return aux_logits.sum() * 0.0
    target = F.log_softmax(clean_logits.detach().float(), dim=-1)
    return kl_full(target, F.log_softmax(aux_logits.float(), dim=-1))


def ascent_step(grads: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor] | None:
    """Eq. 2: alpha * g / ||g||, the norm taken over all auxiliary tensors together.

    None when there is nothing to step along (alpha = 0, or a zero / non-finite gradient):
    the auxiliary model is then the model itself.
    """
    if alpha == 0 or not grads:
        return None
    norm = torch.sqrt(sum((g.float() ** 2).sum() for g in grads.values()))
    if not torch.isfinite(norm) or norm == 0:
        return None
    return {k: (g.float() * (alpha / norm)).to(g.dtype) for k, g in grads.items()}


def answer_span(labels: Sequence[int]) -> tuple[int, int]:
    """Positions [first, last) whose states predict the answer: the trailing labelled run.

    With instruction labels (IM) the question is labelled too; the answer is still the last
    run of labels, after the unlabelled assistant header.
    """
    end = len(labels)
    start = end
    while start > 0 and labels[start - 1] != IGNORE_INDEX:
        start -= 1
    return start - 1, end - 1


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
        if self.direction == "same-step" and self.alpha > 0:
            mask = kwargs.get("attention_mask")
            self._pending = self._same_step_gradient(
                module, ids[:size], torch.ones_like(ids[:size]) if mask is None else mask[:size])
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


class LoRAAuxiliary(Auxiliary):
    """theta_aux = LoRA factors + alpha g/||g|| on the perturbed tokens (Algorithm 1).

    Forward hooks on each adapter's ``lora_A`` and ``lora_B`` layers recompute the perturbed
    tokens' u = (A + dA) x and v = (B + dB) u (rank r: cheap), so those tokens see
    (B + dB)(A + dA) x. With ``prev-ce`` the same hooks rebuild the clean tokens' CE gradient
    of A and B from the activations during the backward.
    """

    kind = "lora"

    def _install(self, base: nn.Module) -> None:
        from peft.tuners.lora import LoraLayer

        self._held: dict[str, torch.Tensor] = {}  # perturbed inputs, pre-hook to hook
        self.modules: dict[str, nn.Linear] = {}
        for name, module in base.named_modules():
            if not isinstance(module, LoraLayer):
                continue
            for adapter in module.active_adapters:
                if adapter not in module.lora_A:
                    continue
                if adapter in getattr(module, "lora_variant", {}):
                    raise UserError(f"{name}: LfU supports plain LoRA adapters, not variants "
                                     "such as DoRA")
                a, b = module.lora_A[adapter], module.lora_B[adapter]
                if not (a.weight.requires_grad and b.weight.requires_grad):
                    continue
                for key, layer in ((f"{name}.{adapter}.A", a), (f"{name}.{adapter}.B", b)):
                    self.modules[key] = layer
                    self._handles.append(layer.register_forward_pre_hook(self._pre_hook(key)))
                    self._handles.append(layer.register_forward_hook(self._hook(key)))
        if not self.modules:
            raise UserError("lfu-lora perturbs trainable LoRA adapters and found none; use it "
                             "with the 'lora' parameter selection (e.g. --method lfu-lora)")
        for point in representation_points(base):
            self._handles.append(point.register_forward_hook(self._stash_hook))

    def _shapes(self) -> dict[str, torch.Tensor]:
        return {k: m.weight for k, m in self.modules.items()}

    def _ce_gradient(self, ce: torch.Tensor) -> dict[str, torch.Tensor]:
        weights = [m.weight for m in self.modules.values()]
        grads = torch.autograd.grad(ce, weights, allow_unused=True, materialize_grads=True)
        return dict(zip(self.modules, grads, strict=True))

    def weight_grads(self) -> dict[str, torch.Tensor] | None:
        grads = {k: m.weight.grad for k, m in self.modules.items()}
        if any(g is None for g in grads.values()):
            return None
        return {k: g.detach().clone() for k, g in grads.items()}

    def _trailing_dim(self) -> int | None:
        """0 or 1 when the perturbed tokens are the trailing rows or columns of the input."""
        rows, cols = self.region
        if cols.start is None and rows.start > 0 and self.group == self.n_groups - 1:
            return 0
        return 1 if self.span == "answer" else None

    def _pre_hook(self, key: str):
        def pre_hook(module: nn.Module, args: tuple) -> tuple | None:
            if self.region is None or self.delta is None or self._trailing_dim() is None:
                return None
            # The layer runs on the clean tokens only; the hook below adds the perturbed ones.
            x, (rows, cols) = args[0], self.region
            self._held[key] = x[self.region]
            return (x[:rows.start] if self._trailing_dim() == 0 else x[:, :cols.start],
                    *args[1:])
        return pre_hook

    def _hook(self, key: str):
        def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor | None:
            if self.region is None:
                return None
            inp = args[0]
            if self.delta is not None:
                # The perturbed tokens through the shifted factor: x (A + dA)^T, u (B + dB)^T.
                weight = module.weight + self.delta[key].to(module.weight.dtype)
                held = self._held.pop(key, None)
                if held is not None:
                    out = torch.cat([out, F.linear(held, weight, module.bias)],
                                    self._trailing_dim())
                else:
                    out = self._replace(out, F.linear(inp[self.region], weight, module.bias))
            if self.capturing and out.requires_grad:
                clean = self.clean
                # Popped once used: the graph, and this hook with it, lives until the whole
                # backward is done; the layer's input is needed until it reaches this layer.
                held = [inp[clean].detach()]
                # dA = g_u^T x (A: r x in), dB = g_v^T u (B: out x r), clean tokens only.
                out.register_hook(lambda g: self._accumulate(
                    key, g[clean].flatten(0, -2).T @ held.pop().flatten(0, -2)))
            return out
        return hook


class RepSAuxiliary(Auxiliary):
    """theta_aux = theta with h'_l = h_l + d_l on the perturbed tokens (Algorithm 2).

    d_l is added to the representations the consistency compares (the model's hidden states
    1..K: each decoder layer's output, and the final normalised state). Its gradient at d = 0
    is the CE gradient at the clean tokens' h_l summed over the tokens it would steer,
    captured by the same hooks during the backward.
    """

    kind = "reps"

    def _install(self, base: nn.Module) -> None:
        points = representation_points(base)
        self.width_hidden = base.config.hidden_size
        self.device = next(base.parameters()).device
        self.keys = [f"d{i + 1}" for i in range(len(points))]
        for key, module in zip(self.keys, points, strict=True):
            # Prepended: transformers records hidden states with its own forward hook, which
            # must see the steered representation.
            self._handles.append(module.register_forward_hook(self._hook(key), prepend=True))

    def _shapes(self) -> dict[str, torch.Tensor]:
        ref = torch.empty(self.width_hidden, device=self.device)
        return dict.fromkeys(self.keys, ref)

    def _ce_gradient(self, ce: torch.Tensor) -> dict[str, torch.Tensor]:
        # d ce / d d_l at d = 0 is the CE gradient at h_l, summed over the tokens d_l steers.
        grads = torch.autograd.grad(ce, self._probe_states)
        return {key: g[self.steered].sum(0) if self.span == "answer" else g.sum((0, 1))
                for key, g in zip(self.keys, grads, strict=True)}

    def _hook(self, key: str):
        def hook(module: nn.Module, args: tuple, out: Any) -> Any:
            if self.region is None:
                if self._probing:  # the same-step probe: keep h_l to differentiate at
                    self._probe_states.append(out[0] if isinstance(out, tuple) else out)
                return None
            h = out[0] if isinstance(out, tuple) else out
            if self.delta is not None:
                h = self._replace(h, h[self.region] + self.delta[key].to(h.dtype))
            if self.capturing and h.requires_grad:
                clean, steered = self.clean, self.steered if self.span == "answer" else None
                h.register_hook(lambda g: self._accumulate(
                    key, g[clean][steered].sum(0) if steered is not None
                    else g[clean].sum((0, 1))))
            self._stash(h)
            return (h, *out[1:]) if isinstance(out, tuple) else h
        return hook


def refuse_sharded_same_step(trainer: Any = None) -> None:
    """same-step's extra backward is what DeepSpeed and FSDP cannot take: refuse them.

    Without a trainer (while the run is set up) the launcher's environment tells.
    """
    from accelerate.utils import parse_flag_from_env

    for name, flag, attribute in (("DeepSpeed", "ACCELERATE_USE_DEEPSPEED", "is_deepspeed_enabled"),
                                  ("FSDP", "ACCELERATE_USE_FSDP", "is_fsdp_enabled")):
        if getattr(trainer, attribute, False) or parse_flag_from_env(flag):
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
    weight = cfg.lfu_lambda if cfg.lfu_lambda is not None else DEFAULT_LAMBDA[aux.kind]
    _add_copies(ctx, span)
    if span == "full":  # the copy's answer tokens are then known as each forward starts
        aux.remember_labels(ctx.examples)
    layer_indices(ctx.model.config.num_hidden_layers, cfg.lfu_layers)  # fail before training
    ctx.notes["lfu"] = {"auxiliary": aux.kind, "alpha": cfg.lfu_alpha, "lambda": weight,
                        "layers": cfg.lfu_layers, "direction": cfg.lfu_direction,
                        "consistency": cfg.lfu_consistency, "span": span, "stats": aux.stats}
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


__all__ = ["DIRECTIONS", "LAYER_GROUPS", "PREFIX", "SPANS", "LfUConsistency", "LfUOptions",
           "LoRAAuxiliary", "RepSAuxiliary", "SharpnessAwareCE", "answer_span", "ascent_step",
           "consistency", "layer_indices", "logit_consistency", "refuse_sharded_same_step"]

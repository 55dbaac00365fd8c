"""The LfU math in one screen: Eq. 2 (the normalised ascent step), Eq. 5 and Eq. 7 (the
consistency of hidden states or logits), and which layers and tokens they read."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from forgetkit.errors import UserError
from forgetkit.lm.tokenize import IGNORE_INDEX
from forgetkit.train.kl_to_base import kl_full

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


def direction_cosine(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Cosine between two ascent directions, each the concatenation of its tensors (keys
    both hold), as Eq. 2 normalises them: over every LoRA factor, or every layer's d_l."""
    keys = sorted(set(a) & set(b))
    if not keys:
        raise RuntimeError("LfU: the two directions share no tensor to compare")
    x = torch.cat([a[k].detach().float().flatten() for k in keys])
    y = torch.cat([b[k].detach().float().to(x.device).flatten() for k in keys])
    return float(torch.nn.functional.cosine_similarity(x, y, dim=0))

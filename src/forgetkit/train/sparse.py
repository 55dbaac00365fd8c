"""Sparse fine-tuning with a fixed binary mask (SEAT paper, section 5, Eq. 4).

Only the coordinates a mask marks trainable may move; the rest stay at their base values,
bit for bit. Each masked weight is re-parametrised as

    W = scatter(W_base, trainable_index, values)

where ``values`` (one entry per trainable coordinate) is the only ``nn.Parameter``. So the
optimizer keeps state for trainable coordinates only, weight decay can only touch them, and
frozen coordinates cannot drift. ``unsparsify`` turns the model back into plain weights.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

MASK_STRATEGIES = ("random", "magnitude", "fisher")


class SparseError(ValueError):
    """Bad sparse-tuning settings; the message names the setting."""


def check_sparsity(sparsity: float) -> float:
    if not 0.0 < sparsity < 1.0:
        raise SparseError(f"sparsity must be strictly between 0 and 1 (the share of frozen "
                          f"weights; SEAT uses 0.8), got {sparsity}")
    return sparsity


def _generator(seed: int, name: str) -> torch.Generator:
    # Seeded per tensor name, so a tensor's mask does not depend on which others exist.
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + zlib.crc32(name.encode())) % (2**63))
    return g


def build_masks(params: dict[str, torch.Tensor], sparsity: float, strategy: str = "random",
                seed: int = 0, scores: dict[str, torch.Tensor] | None = None
                ) -> dict[str, torch.Tensor]:
    """A boolean mask per tensor, True where the weight may move.

    Every tensor keeps the same share ``1 - sparsity`` trainable (rounded; at least one
    coordinate). ``random`` draws them uniformly (seeded per tensor name); ``magnitude``
    keeps the largest |w|; ``fisher`` keeps the largest ``scores`` (diagonal Fisher).
    """
    check_sparsity(sparsity)
    if strategy not in MASK_STRATEGIES:
        raise SparseError(f"unknown mask strategy '{strategy}'; choose one of "
                          f"{list(MASK_STRATEGIES)}")
    if strategy == "fisher" and scores is None:
        raise SparseError("the fisher mask strategy needs Fisher scores")
    masks = {}
    for name, w in params.items():
        n = w.numel()
        k = max(1, round((1.0 - sparsity) * n))
        if strategy == "random":
            chosen = torch.randperm(n, generator=_generator(seed, name))[:k]
        else:
            score = w.detach().abs() if strategy == "magnitude" else scores[name]
            chosen = torch.topk(score.flatten().float(), k, sorted=False).indices
        mask = torch.zeros(n, dtype=torch.bool)
        mask[chosen] = True
        masks[name] = mask.view(w.shape)
    return masks


def mask_digest(masks: dict[str, torch.Tensor]) -> str:
    """A short hash of a set of masks, recorded with the run to show which mask it used."""
    h = hashlib.sha256()
    for name in sorted(masks):
        h.update(name.encode())
        h.update(np.packbits(masks[name].flatten().numpy()).tobytes())
    return h.hexdigest()[:16]


class SparseDelta(nn.Module):
    """Parametrisation ``values -> W``: base weights with the trainable coordinates replaced."""

    def __init__(self, base: torch.Tensor, mask: torch.Tensor):
        super().__init__()
        self.shape = base.shape
        self.register_buffer("base", base.detach().clone().flatten())
        self.register_buffer("index", mask.flatten().nonzero().squeeze(1))

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return self.base.scatter(0, self.index, values).view(self.shape)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.detach().flatten()[self.index].clone()


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    module_name, _, attr = name.rpartition(".")
    return model.get_submodule(module_name), attr


def sparsify(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Freeze ``model`` except the masked coordinates (in place); returns the model.

    Parameters absent from ``masks`` are frozen whole. Tied parameters (e.g. input and
    output embeddings) share one set of trainable values.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    seen: dict[int, tuple[nn.Module, str]] = {}
    # named_parameters() skips the second name of a tied weight; find the ties ourselves.
    all_names = [(n, p) for n, p in model.named_parameters(remove_duplicate=False)]
    for name, param in all_names:
        owner, attr = _owner(model, name)
        if id(param) in seen:
            first_owner, first_attr = seen[id(param)]
            if (first_owner, first_attr) != (owner, attr):
                # Registering resized the shared Parameter in place to the trainable values;
                # give the second user the same parametrisation over the same values.
                first = first_owner.parametrizations[first_attr]
                delattr(owner, attr)
                owner.register_parameter(attr, nn.Parameter(first[0](first.original).detach()))
                parametrize.register_parametrization(owner, attr, first[0], unsafe=True)
                owner.parametrizations[attr].original = first.original
            continue
        if name not in masks:
            continue
        seen[id(param)] = (owner, attr)
        parametrize.register_parametrization(owner, attr, SparseDelta(param, masks[name]),
                                             unsafe=True)
        owner.parametrizations[attr].original.requires_grad_(True)
    return model


def unsparsify(model: nn.Module) -> nn.Module:
    """Replace every sparse parametrisation by its plain current weight (in place)."""
    tied: dict[int, nn.Parameter] = {}
    for module in list(model.modules()):
        if not parametrize.is_parametrized(module):
            continue
        for attr in list(module.parametrizations.keys()):
            values = module.parametrizations[attr].original
            if id(values) in tied:  # the second user of tied values: re-tie, do not copy
                parametrize.remove_parametrizations(module, attr, leave_parametrized=False)
                setattr(module, attr, tied[id(values)])
                continue
            parametrize.remove_parametrizations(module, attr, leave_parametrized=True)
            tied[id(values)] = getattr(module, attr)
    for p in model.parameters():
        p.requires_grad_(True)
    return model

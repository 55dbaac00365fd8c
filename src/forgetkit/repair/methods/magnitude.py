"""magnitude: row-balanced magnitude pruning of the delta.

Every output row (for a 2-D delta; the whole tensor when 1-D) keeps its top ``density`` share
of entries by |D|. Unlike ties-trim, which ranks the whole tensor at once and can empty a row,
each output unit keeps the same number of updated weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from forgetkit.repair.methods.base import DeltaRepair, RepairMethod, register_repair, require


@register_repair
@dataclass
class MagnitudePrune(RepairMethod):
    """Per row: zero every entry of D outside its top ceil(density * row length) by |D|."""

    name = "magnitude"
    option_help: ClassVar[dict[str, str]] = {"density": "share of delta entries kept"}

    density: float = 0.2

    def __post_init__(self) -> None:
        require(0.0 < self.density <= 1.0, self.name,
                f"density must be in (0, 1], got {self.density}")

    def repair_delta(self, delta: torch.Tensor, name: str) -> DeltaRepair:
        rows = delta.reshape(-1, delta.shape[-1]) if delta.dim() >= 2 else delta.reshape(1, -1)
        k = max(1, math.ceil(self.density * rows.shape[-1]))
        keep = torch.zeros_like(rows, dtype=torch.bool)
        keep.scatter_(1, rows.abs().topk(k, dim=1, sorted=False).indices, True)
        return DeltaRepair((rows * keep).reshape(delta.shape))

"""ties-trim: keep the top ``density`` share of the delta's entries by magnitude (TIES step 1).

Yadav et al. (2023) trim each task vector to its largest-magnitude entries before merging; with
one fine-tune there is nothing to elect or merge, so the trim is the whole repair. No rescale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from forgetkit.repair.methods.base import DeltaRepair, RepairMethod, register_repair, require


@register_repair
@dataclass
class TiesTrim(RepairMethod):
    """Per tensor: zero every entry of D outside the top ceil(density * numel) by |D|."""

    name = "ties-trim"
    option_help: ClassVar[dict[str, str]] = {"density": "share of delta entries kept"}

    density: float = 0.2

    def __post_init__(self) -> None:
        require(0.0 < self.density <= 1.0, self.name,
                f"density must be in (0, 1], got {self.density}")

    def repair_delta(self, delta: torch.Tensor, name: str) -> DeltaRepair:
        k = max(1, math.ceil(self.density * delta.numel()))
        flat = delta.reshape(-1)
        keep = torch.zeros_like(flat, dtype=torch.bool)
        keep[flat.abs().topk(k, sorted=False).indices] = True  # exactly k, ties broken anyhow
        cut = float(flat.abs()[keep].min())
        return DeltaRepair((flat * keep).reshape(delta.shape), threshold=cut)

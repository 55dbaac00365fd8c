"""dare: drop a random share of the delta's entries and rescale the rest (Yu et al. 2024).

D -> D * mask / (1 - drop), mask ~ Bernoulli(1 - drop) per entry. The generator is seeded from
``seed`` and the tensor name, so a run is reproducible whatever the processing order.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import ClassVar

import torch

from forgetkit.repair.methods.base import DeltaRepair, RepairMethod, register_repair, require


@register_repair
@dataclass
class Dare(RepairMethod):
    """Drop And REscale on every floating tensor; drop is the share of entries set to 0."""

    name = "dare"
    option_help: ClassVar[dict[str, str]] = {
        "drop": "share of delta entries dropped", "seed": "seed of the drop masks"}

    drop: float = 0.9
    seed: int = 0

    @property
    def draws_random(self) -> bool:
        return self.drop > 0

    def __post_init__(self) -> None:
        require(0.0 <= self.drop < 1.0, self.name, f"drop must be in [0, 1), got {self.drop}")

    def repair_delta(self, delta: torch.Tensor, name: str) -> DeltaRepair:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(name.encode()))
        keep = torch.rand(delta.shape, generator=gen) >= self.drop  # CPU: same on every device
        repaired = delta * keep.to(delta.device) / (1.0 - self.drop)
        return DeltaRepair(repaired, notes={"density": float(keep.float().mean())})

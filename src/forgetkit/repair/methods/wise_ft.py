"""wise-ft: linear interpolation between base and fine-tuned weights (Wortsman et al. 2022).

W = W_base + alpha * D for every floating tensor: the baseline that trades target gain for
held-out recovery along one line, with no notion of signal or noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from forgetkit.repair.methods.base import DeltaRepair, RepairMethod, register_repair, require


@register_repair
@dataclass
class WiseFT(RepairMethod):
    """alpha = 0 is the base model, alpha = 1 the fine-tune."""

    name = "wise-ft"
    option_help: ClassVar[dict[str, str]] = {"alpha": "share of the delta kept"}

    alpha: float = 0.5

    def __post_init__(self) -> None:
        require(0.0 <= self.alpha <= 1.0, self.name, f"alpha must be in [0, 1], got {self.alpha}")

    def repair_delta(self, delta: torch.Tensor, name: str) -> DeltaRepair:
        return DeltaRepair(self.alpha * delta)

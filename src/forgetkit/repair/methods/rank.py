"""rank: keep the top-``rank`` singular directions of every delta (fixed-rank truncation).

The tuning-heavy baseline DG-Hard avoids: one rank for every matrix, chosen by the user.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from forgetkit.repair.methods.base import require
from forgetkit.repair.methods.spectral import SpectralMethod


@dataclass
class RankTruncation(SpectralMethod):
    """D -> U_r S_r V_r^T with r = min(rank, min(m, n)); the reported threshold is s_r."""

    name = "rank"

    rank: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.rank is not None and self.rank >= 1, self.name,
                f"needs rank >= 1 (--rank), got {self.rank}")

    def fixed_rank(self) -> int | None:
        return self.rank

    def threshold(self, S: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return S[..., min(self.rank, S.shape[-1]) - 1]

    def shrink(self, S: torch.Tensor, tau: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        keep = torch.arange(S.shape[-1], device=S.device) < self.rank
        return torch.where(keep, S, torch.zeros_like(S))

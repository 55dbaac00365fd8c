"""rank: keep the top-``rank`` singular directions of every delta (fixed-rank truncation).

The tuning-heavy baseline DG-Hard avoids: one rank for every matrix, chosen by the user.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import ClassVar

import torch

from forgetkit.repair.methods.base import DeltaRepair, register_repair, require
from forgetkit.repair.methods.spectral import (
    EPS32,
    SPECTRAL_HELP,
    SpectralMethod,
    randomized_svd,
    sketch_converged,
)


@register_repair
@dataclass
class RankTruncation(SpectralMethod):
    """D -> U_r S_r V_r^T with r = min(rank, min(m, n)); the reported threshold is s_r.

    With ``fast`` and ``rank + oversample <= min(m, n) / 8``, a randomized SVD
    (``oversample`` extra columns, ``niter`` power iterations, ``seed`` mixed with the tensor's
    name) instead of the Gram route: a fixed rank needs no spectrum.
    """

    name = "rank"
    option_help: ClassVar[dict[str, str]] = {
        **SPECTRAL_HELP,
        "rank": "directions kept per matrix (required for this method)",
        "oversample": "extra sketch columns of the randomized SVD",
        "niter": "power iterations of the randomized SVD",
        "seed": "seed of the randomized sketch"}

    rank: int | None = None
    oversample: int = 10
    niter: int = 4
    seed: int = 0

    @property
    def draws_random(self) -> bool:
        return self.fast

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.rank is not None and self.rank >= 1, self.name,
                f"needs rank >= 1 (--rank), got {self.rank}")
        require(self.oversample >= 0, self.name, f"oversample must be >= 0, got {self.oversample}")
        require(self.niter >= 0, self.name, f"niter must be >= 0, got {self.niter}")

    def _repair_fast(self, delta: torch.Tensor, name: str) -> DeltaRepair:
        sketched = self._repair_sketch(delta, name)
        return sketched if sketched is not None else super()._repair_fast(delta, name)

    def _repair_sketch(self, delta: torch.Tensor, name: str) -> DeltaRepair | None:
        """The top ``rank`` directions from a sketch of ``rank + oversample`` columns, grown
        (twice the columns, one more power iteration) until the top values agree with the
        previous sketch's; None when the sketch would outgrow min(m, n) / 4, where the Gram
        route costs less."""
        n_small = min(delta.shape)
        q, niter, previous = self.rank + self.oversample, self.niter, None
        if q > n_small // 8:
            return None
        gen = torch.Generator(device=delta.device)
        gen.manual_seed(self.seed * 1_000_003 + zlib.crc32(name.encode()))
        while q <= n_small // 4:
            U, S, Vh = randomized_svd(delta, q, niter, gen)
            if previous is not None:
                atol = EPS32 * max(delta.shape) * float(S[0])  # the numerical floor
                if sketch_converged(S[:self.rank], previous[:self.rank], atol):
                    tau, new = self._decide(S, delta)
                    k = int((new > 0).sum())
                    root = new[:k].sqrt()
                    return self._rebuild_factors(
                        U[:, :k] * root, root[:, None] * Vh[:k], False, tau, S,
                        {"svd": "randomized", "sketch": q, "niter": niter})
            previous, q, niter = S, 2 * q, niter + 1
        return None

    def fixed_rank(self) -> int | None:
        return self.rank

    def threshold(self, S: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return S[..., min(self.rank, S.shape[-1]) - 1]

    def shrink(self, S: torch.Tensor, tau: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        keep = torch.arange(S.shape[-1], device=S.device) < self.rank
        return torch.where(keep, S, torch.zeros_like(S))

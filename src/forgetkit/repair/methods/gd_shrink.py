"""gd-shrink: Gavish-Donoho optimal singular-value *shrinkage* instead of a hard cut.

Gavish & Donoho (2017, "Optimal shrinkage of singular values") show that for Frobenius loss
the best continuous rule, in units of the noise scale u = sqrt(N) * sigma, is

    y = s / u;   eta(y) = sqrt((y^2 - beta - 1)^2 - 4 beta) / y   if y > 1 + sqrt(beta), else 0

so values just above the Marchenko-Pastur bulk edge (1 + sqrt(beta)) are shrunk hard and large
ones almost not at all. ``shrinker='soft'`` is plain soft thresholding at the bulk edge,
s -> max(s - (1 + sqrt(beta)) u, 0). The noise level comes from median(S) as in DG-Hard
(sigma = median(S) / sqrt(N mu_beta)), or from ``noise_sigma`` / the MAD estimator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from forgetkit.repair.methods.base import register_repair, require
from forgetkit.repair.methods.spectral import (
    SPECTRAL_HELP,
    SpectralMethod,
    check_noise_options,
    noise_sigma,
)
from forgetkit.repair.threshold import aspect_ratio

SHRINKERS = ("frobenius", "soft")


@register_repair
@dataclass
class GDShrink(SpectralMethod):
    """Frobenius-optimal (or soft) shrinkage of each delta's singular values (GD 2017 eq. 7).

    scale multiplies the cut (the bulk edge); the reported threshold is that cut.
    """

    name = "gd-shrink"
    option_help: ClassVar[dict[str, str]] = {
        "scale": "multiply the threshold", "noise_sigma": "known noise level of the delta",
        "noise_estimator": "'median' or 'mad'", "shrinker": "'frobenius' or 'soft'",
        **SPECTRAL_HELP}

    scale: float = 1.0
    noise_sigma: float | None = None
    noise_estimator: str = "median"
    shrinker: str = "frobenius"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_noise_options(self.name, self.noise_sigma, self.noise_estimator, self.scale)
        require(self.shrinker in SHRINKERS, self.name,
                f"shrinker must be one of {SHRINKERS}, got {self.shrinker!r}")

    def threshold(self, S: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        beta, n_large = aspect_ratio(tuple(delta.shape))
        unit = math.sqrt(n_large) * noise_sigma(S, delta, self.noise_sigma, self.noise_estimator)
        return self.scale * (1 + math.sqrt(beta)) * unit  # the bulk edge

    def shrink(self, S: torch.Tensor, tau: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        beta, _ = aspect_ratio(tuple(delta.shape))
        cut = tau.unsqueeze(-1)
        if self.shrinker == "soft":
            return (S - cut).clamp_min(0)
        unit = cut / (self.scale * (1 + math.sqrt(beta)))
        y = S / unit.clamp_min(torch.finfo(S.dtype).tiny)
        eta = ((y.square() - beta - 1).square() - 4 * beta).clamp_min(0).sqrt() / y
        return torch.where(S > cut, eta * unit, torch.zeros_like(S))

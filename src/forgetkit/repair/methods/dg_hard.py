"""DG-Hard: hard-threshold the singular values of each weight delta (the paper's method).

For every 2-D delta D = W_ft - W_base with at least 1024 entries (paper, sec. 3):

    U, S, V^T = svd(D)                                   float32
    beta      = min(m, n) / max(m, n)
    tau       = omega(beta) * median(S)                  unknown noise (GD eq. 11)
          or  = lambda*(beta) * sqrt(max(m, n)) * sigma  known noise   (GD eq. 8)
    D_kept    = U diag(S * [S > scale * tau]) V^T
    W_repair  = W_base + D_kept                          cast back to W_ft's dtype

The bulk of S below tau is the iid-like residue of optimisation; the few values above it are
the task signal. Smaller and 1-D tensors keep their fine-tuned value (the driver's job).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from forgetkit.repair.methods.base import register_repair
from forgetkit.repair.methods.spectral import (
    SPECTRAL_HELP,
    SpectralMethod,
    check_noise_options,
    noise_sigma,
    sv_median,
)
from forgetkit.repair.threshold import aspect_ratio, lambda_star, omega


@register_repair
@dataclass
class DGHard(SpectralMethod):
    """Gavish-Donoho optimal hard threshold on each delta (DG-Hard paper, eq. for tau).

    scale: multiplies tau (1.0 = the paper; >1 keeps fewer directions).
    noise_sigma: known noise level of the delta entries; switches to the known-noise rule.
    noise_estimator: 'median' (the paper: tau = omega * median(S)) or 'mad' (sigma from the
        entries' median absolute deviation, then the known-noise rule).
    """

    name = "dg-hard"
    option_help: ClassVar[dict[str, str]] = {
        "scale": "multiply the threshold (1.0: the paper; >1 keeps fewer directions)",
        "noise_sigma": "known noise level of the delta entries (instead of estimating it)",
        "noise_estimator": "'median' (the paper) or 'mad'", **SPECTRAL_HELP}

    scale: float = 1.0
    noise_sigma: float | None = None
    noise_estimator: str = "median"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_noise_options(self.name, self.noise_sigma, self.noise_estimator, self.scale)

    def _median_rule(self) -> bool:
        return self.noise_sigma is None and self.noise_estimator == "median"

    def threshold(self, S: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        beta, n_large = aspect_ratio(tuple(delta.shape))
        if self._median_rule():
            tau = omega(beta) * sv_median(S)  # unknown noise
        else:
            sigma = noise_sigma(S, delta, self.noise_sigma, self.noise_estimator)
            tau = lambda_star(beta) * math.sqrt(n_large) * sigma  # known noise
        return self.scale * tau

    def shrink(self, S: torch.Tensor, tau: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return torch.where(S > tau.unsqueeze(-1), S, torch.zeros_like(S))

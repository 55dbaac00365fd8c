"""Shared machinery of the spectral repairs (dg-hard, gd-shrink, rank): SVD in, SVD out.

A spectral method only says two things: the cut ``threshold(S)`` of a delta's singular values
and the new values ``shrink(S, tau)``. This module does the rest: exact SVDs (stacked for the
GPU), the fast route, the numerical-rank floor, and rebuilding ``U S_new V^T``.

Fast route (``fast=True``; ``randomized`` is its old, deprecated name: nothing in it is
random except the ``rank`` method's sketch). A median-based threshold needs the median of
*all* singular values, which a truncated SVD never sees. So the whole spectrum and the
directions come from one float32 symmetric eigendecomposition of the small Gram matrix
``G = D^T D`` on the short side (one BLAS-3 product); the kept delta is ``D V_k V_k^T``.
When round-off could move a value across the cut, float64 eigenvalues of G decide; when
even the exact SVD's own float32 round-off could, the exact SVD runs for that tensor. The
kept rank is counted on that spectrum, so it is the exact SVD's rank whenever the
round-off bounds hold. Those bounds (``GRAM_ERROR``) are measured constants with a margin,
not a proof: the worst eigenvalue error seen on 422 real fine-tuning deltas was 0.44 of the
float32 bound and 0.12 of the float64 one. What the code guarantees is the check: a
tensor whose decision the bounds cannot settle gets the exact SVD. A Gaussian sketch
(randomized SVD, Halko et al. 2011) would cost more than the eigenvectors of G once the
spectrum is needed anyway, so only the ``rank`` method, which needs no spectrum, uses one
(``randomized_svd``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from forgetkit.errors import DeprecatedOptionWarning
from forgetkit.repair.methods.base import DeltaRepair, RepairMethod, require
from forgetkit.repair.threshold import aspect_ratio, mp_median

MIN_ELEMENTS = 1024  # smaller matrices (and 1-D tensors) keep their fine-tuned value
EPS32 = torch.finfo(torch.float32).eps
NOISE_ESTIMATORS = ("median", "mad")
# Bounds on the eigenvalue error of the Gram matrix G = D^T D, in units of
# sqrt(N) * eps32 * s_max^2, for the fast route's passes. Worst cases measured on 422 real
# fine-tuning deltas (two SmolLM2 fine-tunes, bench/calibrate_gram_error.py): 0.44 for the
# float32 pass, 0.0062 for float64 eigenvalues of the float32 G.
GRAM_ERROR = {
    "float32": 1.0,  # float32 G, float32 eigh
    "float32 G, float64": 0.05,  # only G's own rounding is left: measured worst 0.0062
    "float64 G, float64": 1e-8,  # eps64 / eps32 = 1.9e-9
}


def sv_median(S: torch.Tensor) -> torch.Tensor:
    """Median of singular values along the last dim (mean of the middle two, like numpy)."""
    s = S.sort(dim=-1).values
    k = s.shape[-1]
    return 0.5 * (s[..., (k - 1) // 2] + s[..., k // 2])


def mad_sigma(delta: torch.Tensor) -> torch.Tensor:
    """Entrywise noise level 1.4826 * MAD(D): robust to sparse large entries, not to dense
    low-rank signal (which inflates it); an alternative to the median-singular-value rule."""
    flat = delta.flatten(-2)
    centre = flat.median(dim=-1, keepdim=True).values
    return 1.4826 * (flat - centre).abs().median(dim=-1).values


def noise_sigma(S: torch.Tensor, delta: torch.Tensor, sigma: float | None,
                estimator: str) -> torch.Tensor:
    """Per-matrix noise level: the given ``sigma``, or median(S)/sqrt(N mu_beta), or MAD."""
    batch = delta.shape[:-2]
    if sigma is not None:
        return torch.full(batch, float(sigma), device=delta.device)
    if estimator == "mad":
        return mad_sigma(delta)
    beta, n_large = aspect_ratio(tuple(delta.shape))
    return sv_median(S) / math.sqrt(n_large * mp_median(beta))


def gram_matrix(short: torch.Tensor, dtype: torch.dtype, chunk_rows: int = 8192) -> torch.Tensor:
    """``short^T short`` in ``dtype``, summed over row blocks so a float64 copy of a tall
    matrix (an embedding) never exists whole."""
    gram = torch.zeros(short.shape[1], short.shape[1], dtype=dtype, device=short.device)
    for start in range(0, short.shape[0], chunk_rows):
        block = short[start:start + chunk_rows].to(dtype)
        gram += block.T @ block
    return gram


def _gram_dtype(device: torch.device) -> torch.dtype:
    """float32, unless float32 products may run in TF32 (CUDA): then the Gram matrix is formed
    in float64, since its error bounds assume full float32 products."""
    if device.type == "cuda" and (torch.backends.cuda.matmul.allow_tf32
                                  or torch.get_float32_matmul_precision() != "highest"):
        return torch.float64
    return torch.float32


def randomized_svd(a: torch.Tensor, q: int, niter: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-``q`` SVD of ``a`` by a Gaussian range sketch with ``niter`` power iterations
    (Halko, Martinsson & Tropp 2011, alg. 4.4: re-orthonormalised every half step)."""
    sketch = torch.randn(a.shape[1], q, generator=generator, device=a.device, dtype=a.dtype)
    basis = torch.linalg.qr(a @ sketch).Q
    for _ in range(niter):
        basis = torch.linalg.qr(a @ torch.linalg.qr(a.T @ basis).Q).Q
    u_small, s, vh = torch.linalg.svd(basis.T @ a, full_matrices=False)
    return basis @ u_small, s, vh


SPECTRAL_HELP = {
    "fast": "fast route: the spectrum from a float32 eigendecomposition of the Gram matrix "
            "(rank: a seeded randomized sketch for a small rank); the exact SVD's kept ranks, "
            "checked per tensor (the exact SVD where round-off could decide)",
    "randomized": "deprecated: the old name of --fast"}


@dataclass
class SpectralMethod(RepairMethod):
    """A repair that rewrites the singular values of each 2-D delta with >= 1024 elements."""

    spectral: ClassVar[bool] = True

    fast: bool = False
    randomized: bool | None = None  # the old name of ``fast``

    def __post_init__(self) -> None:
        if self.randomized is not None:
            warnings.warn(f"{self.name}: option 'randomized' is now 'fast' (for dg-hard and "
                          "gd-shrink it is a Gram-matrix eigendecomposition, not random); the "
                          "old name still works for now", DeprecatedOptionWarning, stacklevel=3)
            self.fast = self.fast or self.randomized
            self.randomized = None

    def options(self) -> dict[str, Any]:
        return {k: v for k, v in super().options().items() if k != "randomized"}

    # --- what a spectral method defines
    def threshold(self, S: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """The cut tau per matrix (shape ``delta.shape[:-2]``) from spectrum ``S``."""
        raise NotImplementedError

    def shrink(self, S: torch.Tensor, tau: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """New singular values; zero means dropped. Must keep the descending order."""
        raise NotImplementedError

    def fixed_rank(self) -> int | None:
        return None

    # --- shared machinery
    def applies_to(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == 2 and math.prod(shape) >= MIN_ELEMENTS

    def _new_values(self, S: torch.Tensor, tau: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        # Below eps * N * s_max a singular value is round-off, not signal nor noise: never keep
        # it (a rank-r LoRA delta has median 0, so tau = 0 would keep round-off directions).
        floor = EPS32 * max(delta.shape[-2:]) * S.amax(dim=-1, keepdim=True)
        new = self.shrink(S, tau, delta)
        return torch.where(S > floor, new, torch.zeros_like(new))

    def repair_delta(self, delta: torch.Tensor, name: str) -> DeltaRepair:
        if self.fast:
            return self._repair_fast(delta, name)
        return self.repair_many(delta.unsqueeze(0), [name])[0]

    def repair_many(self, deltas: torch.Tensor, names: list[str]) -> list[DeltaRepair]:
        U, S, Vh = torch.linalg.svd(deltas, full_matrices=False)
        tau = self.threshold(S, deltas)
        new = self._new_values(S, tau, deltas)
        return [self._rebuild(U[i], new[i], Vh[i], tau[i], S[i], notes={"svd": "exact"})
                for i in range(len(names))]

    def _rebuild(self, U: torch.Tensor, new: torch.Tensor, Vh: torch.Tensor, tau: torch.Tensor,
                 S: torch.Tensor, notes: dict) -> DeltaRepair:
        k = int((new > 0).sum())
        root = new[:k].sqrt()
        return self._rebuild_factors(U[:, :k] * root, root[:, None] * Vh[:k], False, tau, S, notes)

    def _decide(self, S: torch.Tensor, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(tau, new values) for a full spectrum ``S``, for cut-based and fixed-rank rules."""
        tau = self.threshold(S, delta)
        return tau, self._new_values(S, tau, delta)

    def _repair_fast(self, delta: torch.Tensor, name: str) -> DeltaRepair:
        transposed = delta.shape[0] < delta.shape[1]
        short = delta.T if transposed else delta  # tall: the Gram matrix is n_small^2
        # G squares the entries: bring them near 1 (a power of two, so exactly) where that
        # would underflow or overflow float32.
        amax = float(short.abs().amax())
        unit = 2.0 ** -round(math.log2(amax)) if 0 < amax < math.inf and \
            not 2.0**-40 < amax < 2.0**40 else 1.0
        scaled = short * unit if unit != 1.0 else short
        # One float32 eigendecomposition gives the whole spectrum and the directions. If its
        # round-off could flip a decision, float64 eigenvalues decide; if even those are too
        # close to call, the exact SVD. After a float64 pass the float32 vectors are kept:
        # they can mix only directions whose values lie within the float32 error of each
        # other, which moves the result by about that error times those values.
        gram = gram_matrix(scaled, _gram_dtype(delta.device))
        values, V = torch.linalg.eigh(gram.float())
        S, V = values.clamp_min(0).sqrt().flip(-1) / unit, V.flip(-1)
        notes: dict = {"svd": "gram", "eig_dtype": "float32"}
        if self._unresolved(S, delta, GRAM_ERROR["float32"]):
            # float64 eigenvalues of the same G first, then of a float64 G (whose own
            # rounding is gone too).
            for gram_dtype in ("float32", "float64"):
                if gram_dtype == "float64":
                    gram = gram_matrix(scaled, torch.float64)
                S = torch.linalg.eigvalsh(gram.double()).clamp_min(0).sqrt().flip(-1) / unit
                notes["eig_dtype"] = f"float64 of {gram_dtype} G"
                if not self._unresolved(S, delta, GRAM_ERROR[f"{gram_dtype} G, float64"]):
                    break
            else:
                return self.repair_many(delta.unsqueeze(0), [name])[0]
        tau, new = self._decide(S, delta)
        rank = int((new > 0).sum())
        # Kept directions from the Gram eigenvectors: U_k S_k = short V_k.
        V = V[:, :rank]
        root = new[:rank].sqrt()
        scale = torch.where(S[:rank] > 0, root / S[:rank], torch.zeros_like(root))
        B = (short @ V) * scale.to(delta.dtype)  # U_k sqrt(S_new)
        A = root.to(delta.dtype)[:, None] * V.T  # sqrt(S_new) V_k^T
        return self._rebuild_factors(B, A, transposed, tau, S, notes)

    def _rebuild_factors(self, B: torch.Tensor, A: torch.Tensor, transposed: bool,
                         tau: torch.Tensor, S: torch.Tensor, notes: dict) -> DeltaRepair:
        """Result from factors of ``short`` (B @ A); transposed back when short = D^T."""
        if transposed:
            B, A = A.T, B.T
        k = A.shape[0]
        notes["sv_top"] = [float(v) for v in S[: min(k + 2, 8)]]
        return DeltaRepair(B @ A, kept_rank=k, full_rank=min(B.shape[0], A.shape[1]),
                           threshold=float(tau), factors=(B, A), notes=notes)

    def _unresolved(self, S: torch.Tensor, delta: torch.Tensor, gram_error: float) -> bool:
        """Whether round-off could make the Gram spectrum ``S`` keep a different set of
        directions than the exact float32 SVD would.

        Every value is replaced by the interval the exact SVD's value can lie in: an eigenvalue
        error ``e`` of G puts the true value in ``[sqrt(s^2 - e), sqrt(s^2 + e)]``, and the
        float32 SVD adds its own error. ``e`` is ``gram_error * sqrt(N) * eps32 * s_max^2``
        (``GRAM_ERROR``); float32 SVD values are off by at most ``0.33 * sqrt(n) * eps32 *
        s_max`` on real deltas, and we use 1.0. The cut's interval is the threshold of the
        lower and of the upper spectrum (thresholds grow with the spectrum, e.g. with its
        median), raised to the numerical floor. Unresolved: a candidate value (all of them, or
        the top ``rank`` for a fixed rank, where only the floor decides) whose interval meets
        the cut's.
        """
        n_small, n_large = min(delta.shape), max(delta.shape)
        s_max = float(S[0])
        if not math.isfinite(s_max):
            return True  # the exact route reports what is wrong
        if s_max == 0:
            return False
        eig_err = gram_error * math.sqrt(n_large) * EPS32 * s_max**2
        svd_err = math.sqrt(n_small) * EPS32 * s_max
        S = S.double()
        low = (S.square() - eig_err).clamp_min(0).sqrt() - svd_err
        high = (S.square() + eig_err).sqrt() + svd_err
        floor_low, floor_high = EPS32 * n_large * float(low[0]), EPS32 * n_large * float(high[0])
        fixed = self.fixed_rank()
        if fixed is None:
            cut_low = max(float(self.threshold(low.clamp_min(0), delta)), floor_low)
            cut_high = max(float(self.threshold(high, delta)), floor_high)
        else:  # the top `fixed` values are kept unless they are round-off
            cut_low, cut_high = floor_low, floor_high
            low, high = low[:fixed], high[:fixed]
        return bool(((high >= cut_low) & (low <= cut_high)).any())


def sketch_converged(found: torch.Tensor, previous: torch.Tensor, atol: float,
                     rtol: float = 2e-3) -> bool:
    """Top values of two successive sketches within ``rtol`` (or ``atol``, for values at the
    round-off level) of each other: the sketch has converged."""
    return bool(((found - previous).abs() <= rtol * previous + atol).all())


def check_noise_options(method: str, noise_sigma_value: float | None, estimator: str,
                        scale: float) -> None:
    require(scale > 0, method, f"scale must be > 0, got {scale}")
    require(noise_sigma_value is None or noise_sigma_value > 0, method,
            f"noise_sigma must be > 0, got {noise_sigma_value}")
    require(estimator in NOISE_ESTIMATORS, method,
            f"noise_estimator must be one of {NOISE_ESTIMATORS}, got {estimator!r}")

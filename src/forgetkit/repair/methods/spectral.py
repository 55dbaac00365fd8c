"""Shared machinery of the spectral repairs (dg-hard, gd-shrink, rank): SVD in, SVD out.

A spectral method only says two things: the cut ``threshold(S)`` of a delta's singular values
and the new values ``shrink(S, tau)``. This module does the rest: exact SVDs (stacked for the
GPU), the randomized route, the numerical-rank floor, and rebuilding ``U S_new V^T``.

Fast route (``randomized=True``). A median-based threshold needs the median of *all* singular
values, which a truncated SVD never sees. So the whole spectrum comes from the eigenvalues of
the small Gram matrix ``G = D^T D`` on the short side (one BLAS-3 product, one symmetric
eigenvalue solve): float32 first; float64 when float32 round-off could move a value across the
cut; the exact SVD when even the exact SVD's own float32 round-off could. The kept rank is
counted on that spectrum, so it is the exact SVD's rank. The kept directions come from a
randomized SVD (Halko et al. 2011: Gaussian sketch with ``oversample`` extra columns and
``niter`` power iterations, grown - twice the columns, one more iteration - until its top values
match the Gram spectrum) when the kept rank is small (rank + oversample <= min(m,n)/8). Above
that a sketch costs more than the Gram eigenvectors, so the kept delta is ``D V_k V_k^T`` with
``V_k`` from the Gram matrix. Fine-tunes often keep 15-20% of the spectrum (measured on
SmolLM2), so that second case is the common one.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import ClassVar

import torch

from forgetkit.repair.methods.base import DeltaRepair, RepairMethod, require
from forgetkit.repair.threshold import aspect_ratio, mp_median

MIN_ELEMENTS = 1024  # smaller matrices (and 1-D tensors) keep their fine-tuned value
EPS32 = torch.finfo(torch.float32).eps
NOISE_ESTIMATORS = ("median", "mad")


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


def gram_singular_values(delta: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """All singular values of a 2-D ``delta`` (descending) from its short-side Gram matrix."""
    short = delta if delta.shape[0] >= delta.shape[1] else delta.T
    return torch.linalg.eigvalsh(gram_matrix(short, dtype)).clamp_min(0).sqrt().flip(-1)


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


@dataclass
class SpectralMethod(RepairMethod):
    """A repair that rewrites the singular values of each 2-D delta with >= 1024 elements."""

    spectral: ClassVar[bool] = True

    randomized: bool = False
    oversample: int = 10
    niter: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        require(self.oversample >= 0, self.name, f"oversample must be >= 0, got {self.oversample}")
        require(self.niter >= 0, self.name, f"niter must be >= 0, got {self.niter}")

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
        if self.randomized:
            return self._repair_randomized(delta, name)
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

    def _repair_randomized(self, delta: torch.Tensor, name: str) -> DeltaRepair:
        n_small = min(delta.shape)
        transposed = delta.shape[0] < delta.shape[1]
        short = delta.T if transposed else delta  # tall: the Gram matrix is n_small^2
        # float32 eigenvalues first (cheap); if round-off could flip a decision, one float64
        # eigendecomposition with vectors; if even that is too close to call, the exact SVD.
        gram = gram_matrix(short, torch.float32)
        S, V = torch.linalg.eigvalsh(gram).clamp_min(0).sqrt().flip(-1), None
        tau, new = self._decide(S, delta)
        if self.fixed_rank() is None and self._unresolved(S, tau, delta, torch.float32):
            gram = gram_matrix(short, torch.float64)
            values, V = torch.linalg.eigh(gram)
            S, V = values.clamp_min(0).sqrt().flip(-1), V.flip(-1)
            tau, new = self._decide(S, delta)
            if self._unresolved(S, tau, delta, torch.float64):
                return self.repair_many(delta.unsqueeze(0), [name])[0]
        rank = int((new > 0).sum())
        notes: dict = {"gram_dtype": str(gram.dtype).removeprefix("torch.")}
        if rank == 0:
            return self._rebuild_factors(short[:, :0], short[:0], transposed, tau, S,
                                         {"svd": "gram", **notes})
        gen = torch.Generator(device=delta.device)
        gen.manual_seed(self.seed * 1_000_003 + zlib.crc32(name.encode()))
        q, niter = rank + self.oversample, self.niter
        while V is None and q <= n_small // 8:  # a sketch only pays off for a small kept rank
            U, found, Vh = randomized_svd(delta, q, niter, gen)
            if _matches(found[:rank], S[:rank].to(found.dtype)):
                root = new[:rank].to(U.dtype).sqrt()  # values from the Gram spectrum
                return self._rebuild_factors(U[:, :rank] * root, root[:, None] * Vh[:rank],
                                             False, tau, S, {"svd": "randomized", "sketch": q,
                                                             "niter": niter, **notes})
            q, niter = 2 * q, niter + 1
        if V is None:
            V = torch.linalg.eigh(gram).eigenvectors.flip(-1)
        # Kept directions from the Gram eigenvectors: U_k S_k = short V_k.
        V = V[:, :rank].to(delta.dtype)
        root = new[:rank].sqrt()
        B = (short @ V) * (root / S[:rank]).to(delta.dtype)  # U_k sqrt(S_new)
        A = root.to(delta.dtype)[:, None] * V.T  # sqrt(S_new) V_k^T
        return self._rebuild_factors(B, A, transposed, tau, S, {"svd": "gram", **notes})

    def _rebuild_factors(self, B: torch.Tensor, A: torch.Tensor, transposed: bool,
                         tau: torch.Tensor, S: torch.Tensor, notes: dict) -> DeltaRepair:
        """Result from factors of ``short`` (B @ A); transposed back when short = D^T."""
        if transposed:
            B, A = A.T, B.T
        k = A.shape[0]
        notes["sv_top"] = [float(v) for v in S[: min(k + 2, 8)]]
        return DeltaRepair(B @ A, kept_rank=k, full_rank=min(B.shape[0], A.shape[1]),
                           threshold=float(tau), factors=(B, A), notes=notes)

    def _unresolved(self, S: torch.Tensor, tau: torch.Tensor, delta: torch.Tensor,
                    gram_dtype: torch.dtype) -> bool:
        """Whether round-off could make the Gram spectrum ``S`` decide differently from the
        exact float32 SVD: a value within the combined error of the cut, or a cut (or median)
        below what the Gram matrix resolves.

        Measured on real fine-tune deltas, Gram eigenvalues are off by at most 0.3 *
        sqrt(N) * eps * s_max^2 and float32 SVD values by at most 0.3 * sqrt(n) * eps * s_max;
        we use the bounds without the 0.3. An error in the median moves tau proportionally.
        """
        n_small, n_large = min(delta.shape), max(delta.shape)
        s_max, cut, median = float(S[0]), float(tau), float(sv_median(S))
        if s_max == 0:
            return False
        eps = torch.finfo(gram_dtype).eps
        resolution = math.sqrt(math.sqrt(n_large) * eps) * s_max  # smallest s the Gram sees
        floor = EPS32 * n_large * s_max
        if cut <= floor:  # the numerical floor decides (e.g. a LoRA delta, median 0)
            return resolution >= floor
        if min(cut, median) <= resolution:
            return True
        err = math.sqrt(n_large) * eps * s_max**2 / (2 * cut) + math.sqrt(n_small) * EPS32 * s_max
        slack = err * (1 + cut / median)
        return bool(((S - cut).abs() < slack).any())


def _matches(found: torch.Tensor, exact: torch.Tensor, rtol: float = 2e-3) -> bool:
    """Randomized top values within ``rtol`` of the exact ones: the sketch has converged."""
    if found.numel() == 0:
        return True
    return bool(((found - exact).abs() <= rtol * exact).all())


def check_noise_options(method: str, noise_sigma_value: float | None, estimator: str,
                        scale: float) -> None:
    require(scale > 0, method, f"scale must be > 0, got {scale}")
    require(noise_sigma_value is None or noise_sigma_value > 0, method,
            f"noise_sigma must be > 0, got {noise_sigma_value}")
    require(estimator in NOISE_ESTIMATORS, method,
            f"noise_estimator must be one of {NOISE_ESTIMATORS}, got {estimator!r}")

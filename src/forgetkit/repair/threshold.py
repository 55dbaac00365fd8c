"""Gavish-Donoho singular-value thresholds and the Marchenko-Pastur law they rest on.

Model (DG-Hard paper, sec. 3; Gavish & Donoho 2014): a weight delta ``D = X + sigma * Z`` of
shape m x n is a low-rank signal ``X`` plus iid noise ``Z``. Write ``beta = min(m,n)/max(m,n)``
and ``N = max(m,n)``. With pure noise, the squared singular values divided by ``N * sigma^2``
follow the Marchenko-Pastur (MP) law with ratio ``beta``, supported on
``[(1 - sqrt(beta))^2, (1 + sqrt(beta))^2]``; the largest pure-noise singular value therefore
sits near the bulk edge ``sigma * sqrt(N) * (1 + sqrt(beta))``.

* known noise:    tau = lambda*(beta) * sqrt(N) * sigma                      (GD eq. 8)
* unknown noise:  tau = omega(beta) * median(S),
                  omega(beta) = lambda*(beta) / sqrt(mu_beta)                 (GD eq. 11)

where ``mu_beta`` is the median of the MP law, so ``sigma_hat = median(S) / sqrt(N * mu_beta)``
makes the two thresholds agree. Everything here is plain float math on scalars; the tensors
live in the repair methods.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import integrate, optimize

from forgetkit.errors import UserError


def lambda_star(beta: float) -> float:
    """Optimal hard threshold for known noise, in units of ``sqrt(N) * sigma`` (GD eq. 8).

    lambda*(beta) = sqrt(2(beta+1) + 8 beta / ((beta+1) + sqrt(beta^2 + 14 beta + 1))).
    lambda*(1) = 4/sqrt(3): the title result of Gavish & Donoho.
    """
    _check_beta(beta)
    return math.sqrt(2 * (beta + 1) + 8 * beta / ((beta + 1) + math.sqrt(beta**2 + 14 * beta + 1)))


def mp_edges(beta: float) -> tuple[float, float]:
    """Support [lo, hi] of the MP law with ratio ``beta`` and unit variance."""
    return (1 - math.sqrt(beta)) ** 2, (1 + math.sqrt(beta)) ** 2


def mp_density(x: float, beta: float) -> float:
    """MP density: sqrt((hi - x)(x - lo)) / (2 pi beta x) on [lo, hi], 0 elsewhere."""
    lo, hi = mp_edges(beta)
    if x <= lo or x >= hi or x <= 0:
        return 0.0
    return math.sqrt((hi - x) * (x - lo)) / (2 * math.pi * beta * x)


def mp_cdf(x: float, beta: float) -> float:
    """P(eigenvalue <= x) under the MP law (ratio ``beta``, unit variance).

    Integrated in the angle theta with x = lo + (hi - lo)(1 - cos theta)/2: the square-root
    edges (and, at beta = 1, the 1/sqrt(x) pole at 0) become a smooth integrand, so ``quad``
    is accurate to ~1e-12.
    """
    lo, hi = mp_edges(beta)
    if x <= lo:
        return 0.0
    if x >= hi:
        return 1.0
    half = (hi - lo) / 2

    def integrand(theta: float) -> float:
        at = lo + 2 * half * math.sin(theta / 2) ** 2  # lo + half (1 - cos theta), exactly
        if at <= 0:
            return half / (math.pi * beta)  # the limit at theta = 0 when beta = 1
        return (half * math.sin(theta)) ** 2 / (2 * math.pi * beta * at)

    theta_x = 2 * math.asin(math.sqrt((x - lo) / (2 * half)))
    return integrate.quad(integrand, 0.0, theta_x, epsabs=1e-13, epsrel=1e-12, limit=200)[0]


@functools.lru_cache(maxsize=256)
def mp_median(beta: float) -> float:
    """mu_beta: the median of the MP law, by root finding on its CDF (cached per beta)."""
    _check_beta(beta)
    lo, hi = mp_edges(beta)
    return optimize.brentq(lambda x: mp_cdf(x, beta) - 0.5, lo, hi, xtol=1e-14, rtol=1e-13)


def mp_quantile(q: float, beta: float) -> float:
    """Inverse of ``mp_cdf``: the MP eigenvalue below which a share ``q`` of the bulk lies."""
    lo, hi = mp_edges(beta)
    if q <= 0:
        return lo
    if q >= 1:
        return hi
    return optimize.brentq(lambda x: mp_cdf(x, beta) - q, lo, hi, xtol=1e-12)


@functools.lru_cache(maxsize=256)
def omega(beta: float) -> float:
    """Exact unknown-noise coefficient omega(beta) = lambda*(beta) / sqrt(mu_beta) (GD eq. 11)."""
    return lambda_star(beta) / math.sqrt(mp_median(beta))


def omega_approx(beta: float) -> float:
    """GD's cubic fit 0.56 b^3 - 0.95 b^2 + 1.82 b + 1.43; within 0.02 of ``omega``.

    Kept only as a documented cross-check (the DESIGN notes quote it); repairs use ``omega``.
    """
    _check_beta(beta)
    return 0.56 * beta**3 - 0.95 * beta**2 + 1.82 * beta + 1.43


def noise_sigma_from_median(median_sv: float, n_large: int, beta: float) -> float:
    """sigma_hat = median(S) / sqrt(N * mu_beta): the median singular value of pure noise."""
    return median_sv / math.sqrt(n_large * mp_median(beta))


def aspect_ratio(shape: tuple[int, ...]) -> tuple[float, int]:
    """(beta, N) of the trailing two dims: beta = min(m,n)/max(m,n), N = max(m,n)."""
    m, n = shape[-2], shape[-1]
    return min(m, n) / max(m, n), max(m, n)


def _check_beta(beta: float) -> None:
    if not 0 < beta <= 1:
        raise UserError(f"beta = min(m,n)/max(m,n) must be in (0, 1], got {beta}")


def mp_quantiles(qs: np.ndarray, beta: float, grid: int = 4096) -> np.ndarray:
    """Many MP quantiles at once (for plots): the CDF tabulated on a grid of the angle theta
    (smooth, see ``mp_cdf``) by the trapezoid rule, then inverted by interpolation."""
    lo, hi = mp_edges(beta)
    half = (hi - lo) / 2
    theta = np.linspace(0.0, math.pi, grid)
    x = lo + 2 * half * np.sin(theta / 2) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(x > 0, (half * np.sin(theta)) ** 2 / (2 * math.pi * beta * x), 0.0)
    if lo == 0:  # beta = 1: the integrand's limit at theta = 0 is half / (pi beta), not 0
        f[0] = half / (math.pi * beta)
    cdf = np.concatenate([[0.0], np.cumsum((f[1:] + f[:-1]) / 2 * np.diff(theta))])
    cdf /= cdf[-1]
    return np.interp(np.clip(qs, 0.0, 1.0), cdf, x)

"""95% intervals for every figure forgetkit reports, and for differences between models.

* A share of 0/1 outcomes (IDK, accuracy): the Wilson score interval,
      (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n),
  which stays inside [0, 1] and is not degenerate at p = 0 or 1, unlike p ± z·se.
* A mean of other per-question values (ROUGE recall, a benchmark's per-document score):
  the percentile bootstrap over questions.
* A ratio of sums (next-token KL, a sum over tokens divided by the token count, resampled
  by prompt): the percentile bootstrap of the ratio.
* A difference between two models on the same questions: the paired bootstrap. Questions
  are resampled once per replicate and both models' values of each drawn question are
  kept together, so the interval reflects how much the two models differ question by
  question, not the spread of either model alone.

A difference is ``significant`` when its interval excludes 0; reports only ever call a
change a gain or a loss when it is. Every resampling is seeded: the same inputs give the
same interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

LEVEL = 0.95
Z = 1.959963984540054  # the standard normal's 97.5% quantile
RESAMPLES = 2000


def wilson(successes: float, n: int, z: float = Z) -> tuple[float, float]:
    """The Wilson score interval of ``successes`` out of ``n``."""
    if n <= 0:
        raise ValueError("wilson needs n >= 1")
    p = successes / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    low = 0.0 if successes <= 0 else max(0.0, (centre - half) / scale)
    high = 1.0 if successes >= n else min(1.0, (centre + half) / scale)
    return low, high


def _draws(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _percentiles(stats: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_mean(values: Sequence[float], resamples: int = RESAMPLES,
                   seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_mean needs at least one value")
    return _percentiles(x[_draws(x.size, resamples, seed)].mean(axis=1))


def bootstrap_ratio(numerators: Sequence[float], denominators: Sequence[float],
                    resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of sum(numerators) / sum(denominators), resampling
    the pairs together (a per-token mean whose units are prompts)."""
    num, den = np.asarray(numerators, float), np.asarray(denominators, float)
    if num.size == 0 or num.shape != den.shape:
        raise ValueError("bootstrap_ratio needs equally many, at least one, of each")
    idx = _draws(num.size, resamples, seed)
    return _percentiles(num[idx].sum(axis=1) / den[idx].sum(axis=1))


def is_binary(values: Sequence[float]) -> bool:
    return all(v in (0, 1) for v in values)


def estimate(values: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """The mean of per-question ``values`` with its 95% interval: Wilson when every value
    is 0 or 1, the bootstrap over questions otherwise."""
    x = [float(v) for v in values]
    if not x:
        raise ValueError("estimate needs at least one value")
    mean = sum(x) / len(x)
    if is_binary(x):
        low, high = wilson(sum(x), len(x))
        how = "wilson"
    else:
        low, high = bootstrap_mean(x, seed=seed)
        how = "bootstrap"
    return {"value": mean, "low": low, "high": high, "n": len(x), "interval": how}


def ratio_estimate(numerators: Sequence[float], denominators: Sequence[float],
                   seed: int = 0) -> dict[str, Any]:
    """sum(numerators) / sum(denominators) with its bootstrap interval over the pairs."""
    low, high = bootstrap_ratio(numerators, denominators, seed=seed)
    return {"value": float(sum(numerators) / sum(denominators)), "low": low, "high": high,
            "n": len(numerators), "interval": "bootstrap"}


def paired_difference(model: Sequence[float], base: Sequence[float], resamples: int = RESAMPLES,
                      seed: int = 0) -> dict[str, Any]:
    """mean(model) - mean(base) over the same questions, with the paired bootstrap interval;
    ``significant`` when the interval excludes 0."""
    a, b = np.asarray(model, float), np.asarray(base, float)
    if a.size == 0 or a.shape != b.shape:
        raise ValueError(f"a paired difference needs the same questions on both sides, got "
                         f"{a.size} and {b.size} values")
    diff = a - b
    low, high = _percentiles(diff[_draws(diff.size, resamples, seed)].mean(axis=1))
    return {"value": float(diff.mean()), "low": low, "high": high, "n": int(diff.size),
            "interval": "paired bootstrap", "significant": bool(low > 0 or high < 0)}


def compared(values: Sequence[float], reference: Sequence[float] | None = None,
             seed: int = 0) -> dict[str, Any]:
    """``estimate(values)``, with ``diff``, the paired difference from ``reference`` (the
    same questions answered by the reference model), when one is given."""
    entry = estimate(values, seed=seed)
    if reference is not None:
        entry["diff"] = paired_difference(values, reference, seed=seed)
    return entry


def normal_interval(value: float, stderr: float | None) -> tuple[float | None, float | None]:
    """value ± z·stderr (how lm-eval's own standard errors become an interval)."""
    if stderr is None or not math.isfinite(stderr):
        return None, None
    return value - Z * stderr, value + Z * stderr


def seed_summary(values: Sequence[float]) -> dict[str, Any]:
    """Mean and sample standard deviation over seeds, with the per-seed values."""
    x = [float(v) for v in values]
    mean = sum(x) / len(x)
    std = math.sqrt(sum((v - mean) ** 2 for v in x) / (len(x) - 1)) if len(x) > 1 else 0.0
    return {"mean": mean, "std": std, "per_seed": x, "seeds": len(x)}


__all__ = ["LEVEL", "RESAMPLES", "Z", "bootstrap_mean", "bootstrap_ratio", "compared",
           "estimate", "is_binary", "normal_interval", "paired_difference", "ratio_estimate",
           "seed_summary", "wilson"]

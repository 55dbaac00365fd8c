"""TOFU's unlearning metrics (Maini et al., 2024, "TOFU: A Task of Fictitious Unlearning"),
on numbers read by one teacher-forced pass and one generation pass.

Notation: for a question q, a is the reference answer, a~ its paraphrase, A^ the perturbed
(wrong, same template) answers, and p(x) = P(x | q)^(1/|x|) the length-normalised answer
probability, ``exp(mean_logprob)`` of ``lm.scoring``.

* Probability (TOFU section 2.5.1, forget and retain sets): mean over questions of p(a).
* ROUGE-L recall: of the greedy answer against a (``lm.text.rouge_recall``).
* Truth ratio: R(q) = geomean_{a^ in A^} p(a^) / p(a~). The paper writes the numerator as
  an arithmetic mean; its reference code averages per-token losses, i.e. takes the
  geometric mean, and forgetkit follows the code so that its numbers are comparable with
  published ones. R near 0: the model prefers the true answer's paraphrase; R near 1: it
  cannot tell true from false.
* Truth-ratio score: retain side max(0, 1 - R) (higher = the model keeps the truth apart);
  forget side min(R, 1/R) (reported, TOFU's "Truth Ratio" column on the forget set).
* Forget quality (section 2.5.2): the p-value of the two-sample Kolmogorov-Smirnov test
  between the per-question truth ratios of the unlearned model and of the retain model
  (never trained on the forget set) on the forget set. High = indistinguishable from the
  retain model; TOFU reads p > 0.05 as forgotten.
* Model utility: the harmonic mean of the retain-side measures (probability, ROUGE-L
  recall, truth-ratio score), plus the world-facts set's probability and ROUGE-L recall
  when one is given. It is zero as soon as one measure is.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from forgetkit.errors import UserError


def truth_ratio(paraphrased_logprob: Sequence[float] | np.ndarray,
                perturbed_logprobs: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Per-question truth ratio R = geomean_j p(perturbed_j) / p(paraphrased).

    Arguments are mean log-probabilities per answer token, log p(x): one per question for
    the paraphrased answers, one list per question (any length >= 1) for the perturbed.
    """
    para = np.asarray(paraphrased_logprob, dtype=np.float64)
    if len(perturbed_logprobs) != len(para):
        raise UserError(f"need perturbed answers for every question: {len(para)} paraphrased "
                         f"answers, {len(perturbed_logprobs)} perturbed lists")
    if any(len(p) == 0 for p in perturbed_logprobs):
        raise UserError("every question needs at least one perturbed answer")
    pert = np.array([np.mean(np.asarray(p, dtype=np.float64)) for p in perturbed_logprobs])
    return np.exp(pert - para)


def truth_ratio_score(ratios: Sequence[float] | np.ndarray, side: str) -> float:
    """TOFU's aggregated truth ratio: ``retain`` mean max(0, 1 - R), ``forget`` mean
    min(R, 1/R)."""
    r = np.asarray(ratios, dtype=np.float64)
    if r.size == 0:
        raise UserError("truth_ratio_score needs at least one truth ratio")
    if side == "retain":
        return float(np.mean(np.maximum(0.0, 1.0 - r)))
    if side == "forget":
        return float(np.mean(np.minimum(r, 1.0 / r)))
    raise UserError(f"side must be 'retain' or 'forget', got {side!r}")


def ks_test(sample: Sequence[float] | np.ndarray,
            reference: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test: ``(statistic D, p-value)``.

    D = sup_x |F_sample(x) - F_reference(x)|. The p-value is scipy's default (exact
    distribution of D for samples this small, the asymptotic Kolmogorov law for large
    ones), as in TOFU's reference code.
    """
    a = np.asarray(sample, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise UserError(f"the KS test needs two non-empty samples, got {a.size} and {b.size}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise UserError("the KS test needs finite values; a truth ratio overflowed")
    result = stats.ks_2samp(a, b)
    return float(result.statistic), float(result.pvalue)


def ks_detectable(n: int, alpha: float = 0.05) -> float:
    """The smallest KS statistic D at which two samples of ``n`` values each differ at level
    ``alpha`` (two-sided, scipy's exact p-value): with n forget questions D moves in steps
    of 1/n, and a model whose truth ratios differ from the oracle's by less is 'forgotten'
    by TOFU's reading (p > alpha) whatever it still knows. 1.0 when no D reaches alpha."""
    if n < 1:
        raise UserError(f"ks_detectable needs n >= 1, got {n}")
    base = np.arange(n, dtype=np.float64)
    for k in range(1, n + 1):  # two samples k positions apart differ by D = k / n
        with warnings.catch_warnings():  # scipy's note when it falls back to the asymptotic law
            warnings.simplefilter("ignore", RuntimeWarning)
            p = stats.ks_2samp(base, base + k - 0.5).pvalue
        if p < alpha:
            return k / n
    return 1.0


def forget_quality(model_ratios: Sequence[float] | np.ndarray,
                   retain_model_ratios: Sequence[float] | np.ndarray) -> float:
    """TOFU forget quality: KS p-value between the forget-set truth ratios of the unlearned
    model and of the retain model (the oracle)."""
    return ks_test(model_ratios, retain_model_ratios)[1]


def harmonic_mean(values: Sequence[float] | Mapping[str, float]) -> float:
    """n / sum(1 / x); 0 when any value is 0 (a model useless on one measure has no
    utility). Values must lie in [0, inf)."""
    xs = np.asarray(list(values.values()) if isinstance(values, Mapping) else values,
                    dtype=np.float64)
    if xs.size == 0:
        raise UserError("harmonic_mean needs at least one value")
    if np.any(xs < 0) or not np.all(np.isfinite(xs)):
        raise UserError(f"harmonic_mean needs finite non-negative values, got {xs.tolist()}")
    if np.any(xs == 0):
        return 0.0
    return float(xs.size / np.sum(1.0 / xs))


def model_utility(terms: Mapping[str, float]) -> float:
    """TOFU model utility: the harmonic mean of the retain-side (and world-facts) measures,
    ``terms`` as ``{"retain/probability": ..., "retain/rougeL_recall": ..., ...}``."""
    return harmonic_mean(terms)


__all__ = ["forget_quality", "harmonic_mean", "ks_detectable", "ks_test", "model_utility",
           "truth_ratio", "truth_ratio_score"]

import math

import pytest
import torch

from forgetkit.eval import metrics


def test_idk_rate_is_the_share_of_refusals():
    assert metrics.idk_rate(["I don't know.", "It is blue.", "I cannot find it.", "Paris"]) == 0.5


def test_idk_rate_needs_answers():
    with pytest.raises(ValueError):
        metrics.idk_rate([])


def test_mean_rouge_checks_lengths():
    with pytest.raises(ValueError, match="equally many"):
        metrics.mean_rouge_recall(["a"], ["a", "b"])


def test_known_accuracy_matches_whole_words():
    assert metrics.is_correct("The capital of France is Paris.", ["Paris"])
    assert not metrics.is_correct("Parisian food is great.", ["Paris"])
    assert metrics.is_correct("A week has 7 days", ["7", "seven"])
    assert metrics.known_accuracy(["Paris", "London"], [["Paris"], ["Rome"]]) == 0.5


def test_kl_is_zero_for_identical_and_positive_otherwise():
    lp = [torch.log_softmax(torch.randn(5, 11), -1) for _ in range(3)]
    assert metrics.kl_to_reference(lp, lp) == pytest.approx(0.0, abs=1e-7)
    other = [torch.log_softmax(torch.randn(5, 11), -1) for _ in range(3)]
    kl = metrics.kl_to_reference(lp, other)
    # Matches the definition computed by hand.
    manual = sum((r.exp() * (r - o)).sum().item() for r, o in zip(lp, other, strict=True)) / 15
    assert kl > 0 and math.isclose(kl, manual, rel_tol=1e-5)


def test_kl_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one tokenizer"):
        metrics.kl_to_reference([torch.zeros(2, 3)], [torch.zeros(2, 4)])

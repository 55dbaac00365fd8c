"""The intervals every audit figure carries (eval.intervals)."""

import math
import random

import pytest

from forgetkit.eval.intervals import (
    bootstrap_mean,
    estimate,
    paired_difference,
    ratio_estimate,
    seed_summary,
    wilson,
)


def test_wilson_matches_the_closed_form_and_stays_in_range():
    # 8 of 10: the textbook Wilson interval is (0.490, 0.943)
    low, high = wilson(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    # at 0 and at n the interval is not degenerate, unlike p +- z*se
    assert wilson(0, 20)[0] == 0.0 and 0.1 < wilson(0, 20)[1] < 0.2
    assert wilson(20, 20)[1] == 1.0 and 0.8 < wilson(20, 20)[0] < 0.9
    with pytest.raises(ValueError):
        wilson(1, 0)


def test_wilson_covers_the_true_share_about_95_percent_of_the_time():
    rng = random.Random(0)
    p, n, trials = 0.3, 60, 2000
    covered = 0
    for _ in range(trials):
        k = sum(rng.random() < p for _ in range(n))
        low, high = wilson(k, n)
        covered += low <= p <= high
    assert 0.93 <= covered / trials <= 0.97


def test_estimate_picks_wilson_for_shares_and_the_bootstrap_otherwise():
    shares = estimate([1, 0, 1, 1, 0, 1, 1, 1])
    assert shares["interval"] == "wilson" and shares["n"] == 8
    assert shares["low"] < shares["value"] == 0.75 < shares["high"]
    scores = estimate([0.2, 0.5, 0.9, 0.4, 0.7, 0.6])
    assert scores["interval"] == "bootstrap"
    assert scores["low"] < scores["value"] < scores["high"]
    assert estimate([0.2, 0.5, 0.9]) == estimate([0.2, 0.5, 0.9])  # seeded


def test_bootstrap_interval_narrows_with_n():
    rng = random.Random(1)
    small = [rng.random() for _ in range(20)]
    large = [rng.random() for _ in range(500)]
    width = [h - lo for lo, h in (bootstrap_mean(small), bootstrap_mean(large))]
    assert width[1] < width[0] / 3


def test_paired_difference_sees_a_shift_that_unpaired_spread_would_hide():
    rng = random.Random(2)
    base = [rng.random() for _ in range(40)]  # wide spread across questions
    shifted = [b + 0.05 for b in base]  # every question slightly higher
    diff = paired_difference(shifted, base)
    assert diff["significant"] and diff["low"] > 0
    assert math.isclose(diff["value"], 0.05)
    # question-level changes that cancel out on average: no change claimed
    noise = paired_difference([b + (0.2 if i % 2 else -0.2) for i, b in enumerate(base)],
                              base)
    assert noise["low"] < 0 < noise["high"] and not noise["significant"]
    with pytest.raises(ValueError):
        paired_difference([1, 0], [1])


def test_ratio_estimate_is_a_per_token_mean_resampled_by_prompt():
    sums, tokens = [1.0, 3.0, 2.0, 6.0], [10.0, 10.0, 20.0, 20.0]
    r = ratio_estimate(sums, tokens)
    assert r["value"] == pytest.approx(12 / 60)
    assert r["low"] <= r["value"] <= r["high"] and r["n"] == 4


def test_seed_summary_keeps_every_seed():
    s = seed_summary([0.5, 0.7, 0.6])
    assert s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(0.1)
    assert s["per_seed"] == [0.5, 0.7, 0.6] and s["seeds"] == 3

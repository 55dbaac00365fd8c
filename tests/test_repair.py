"""DG-Hard math, the repair methods and the partition-conditional scores (no files)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from forgetkit.repair import RepairError, make_method, repair_scores
from forgetkit.repair.methods import REPAIR_METHODS
from forgetkit.repair.methods.spectral import gram_matrix, sv_median
from forgetkit.repair.threshold import lambda_star, mp_cdf, mp_median, omega, omega_approx

# --------------------------------------------------------------------------- thresholds


def test_lambda_star_at_one_is_four_over_sqrt_three():
    assert lambda_star(1.0) == pytest.approx(4 / math.sqrt(3), abs=1e-12)


def test_omega_square_matches_gavish_donoho():
    # Gavish & Donoho (2014): the unknown-noise threshold for square matrices is 2.858 * median.
    assert omega(1.0) == pytest.approx(2.858, abs=5e-4)


@pytest.mark.parametrize("beta", [0.1, 0.25, 0.5, 0.75])
def test_mp_median_matches_independent_integration(beta):
    # Plain midpoint rule on the density in x (not the angle substitution the code uses).
    lo, hi = (1 - math.sqrt(beta)) ** 2, (1 + math.sqrt(beta)) ** 2
    edges = np.linspace(lo, hi, 400_001)
    x = (edges[1:] + edges[:-1]) / 2
    density = np.sqrt((hi - x) * (x - lo)) / (2 * math.pi * beta * x)
    cdf = np.cumsum(density * np.diff(edges))
    reference = x[np.searchsorted(cdf, 0.5)]
    assert mp_median(beta) == pytest.approx(reference, abs=2e-5)
    assert mp_cdf(hi, beta) == 1.0 and cdf[-1] == pytest.approx(1.0, abs=1e-6)
    assert omega(beta) == pytest.approx(lambda_star(beta) / math.sqrt(reference), abs=1e-4)


def test_mp_median_matches_random_matrices():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(400, 800, generator=gen, dtype=torch.float64)
    s2 = torch.linalg.svdvals(z) ** 2 / 800
    assert float(s2.median()) == pytest.approx(mp_median(0.5), abs=0.01)


@pytest.mark.parametrize("beta", [0.05, 0.1, 0.2, 1 / 3, 0.5, 0.6, 0.75, 0.9, 1.0])
def test_omega_cubic_approximation_within_0_02(beta):
    assert abs(omega(beta) - omega_approx(beta)) < 0.02


# --------------------------------------------------------------------------- planted signal


def planted(m: int = 256, n: int = 128, rank: int = 4, sigma: float = 0.01, seed: int = 0):
    """A rank-``rank`` signal well above the noise edge sigma (sqrt m + sqrt n), plus noise."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.linalg.qr(torch.randn(m, rank, generator=gen)).Q
    v = torch.linalg.qr(torch.randn(n, rank, generator=gen)).Q
    values = torch.linspace(2.0, 0.8, rank)
    signal = (u * values) @ v.T
    return signal, signal + sigma * torch.randn(m, n, generator=gen)


def test_dg_hard_keeps_planted_rank_and_denoises():
    signal, delta = planted()
    out = make_method("dg-hard").repair_delta(delta, "w")
    assert out.kept_rank == 4
    assert float((out.delta - signal).norm()) < 0.3 * float((delta - signal).norm())
    B, A = out.factors
    assert torch.allclose(B @ A, out.delta, atol=1e-6)


def test_dg_hard_threshold_is_omega_times_median():
    _, delta = planted()
    out = make_method("dg-hard").repair_delta(delta, "w")
    median = float(sv_median(torch.linalg.svdvals(delta)))
    assert out.threshold == pytest.approx(omega(0.5) * median, rel=1e-5)


def test_dg_hard_known_noise_keeps_planted_rank():
    signal, delta = planted(sigma=0.01)
    out = make_method("dg-hard", noise_sigma=0.01).repair_delta(delta, "w")
    assert out.kept_rank == 4
    assert out.threshold == pytest.approx(lambda_star(0.5) * math.sqrt(256) * 0.01, rel=1e-6)


def test_dg_hard_scale_raises_the_cut():
    _, delta = planted()
    # the weakest planted value (0.8) lies below 3x the threshold, the strongest (2.0) above
    assert make_method("dg-hard", scale=3.0).repair_delta(delta, "w").kept_rank < 4


@pytest.mark.parametrize("options", [{}, {"noise_sigma": 0.01}, {"noise_estimator": "mad"}])
def test_fast_route_gives_exact_ranks_on_planted_signal(options):
    signal, delta = planted(m=512, n=384, rank=6, sigma=0.005)
    exact = make_method("dg-hard", **options).repair_delta(delta, "w")
    fast = make_method("dg-hard", fast=True, **options).repair_delta(delta, "w")
    assert fast.kept_rank == exact.kept_rank == 6
    assert fast.notes["svd"] == "gram"
    assert float((fast.delta - exact.delta).norm()) < 1e-4 * float(exact.delta.norm())


def test_gram_spectrum_matches_svd():
    _, delta = planted(m=128, n=300)
    exact = torch.linalg.svdvals(delta.double())

    def gram_values(dtype: torch.dtype) -> torch.Tensor:  # the fast route's spectrum
        gram = gram_matrix(delta.T, dtype, chunk_rows=64)  # summed over row blocks
        return torch.linalg.eigvalsh(gram.double()).clamp_min(0).sqrt().flip(-1)

    assert torch.allclose(gram_values(torch.float64), exact, rtol=1e-6)
    assert torch.allclose(gram_values(torch.float32)[:10], exact[:10], rtol=1e-4)


def test_fast_route_on_dense_rank_uses_gram_vectors():
    # Keeping many directions: a sketch would cost more than the Gram eigenvectors.
    signal, delta = planted(m=300, n=200, rank=40)
    exact = make_method("dg-hard").repair_delta(delta, "w")
    fast = make_method("dg-hard", fast=True).repair_delta(delta, "w")
    assert fast.kept_rank == exact.kept_rank == 40
    assert fast.notes["svd"] == "gram"
    assert float((fast.delta - exact.delta).norm()) < 1e-4 * float(exact.delta.norm())
    B, A = fast.factors
    assert torch.allclose(B @ A, fast.delta, atol=1e-6)
    wide = make_method("dg-hard", fast=True).repair_delta(delta.T.contiguous(), "w")
    assert torch.allclose(wide.delta, fast.delta.T, atol=1e-5)


@pytest.mark.parametrize("fast", [False, True])
def test_low_rank_delta_is_kept_whole_not_round_off(fast):
    # A LoRA-like delta of exact rank 3: median(S) is 0, so only the numerical floor decides.
    # The fast route resolves that floor only with a float64 Gram matrix.
    gen = torch.Generator().manual_seed(1)
    delta = torch.randn(96, 3, generator=gen) @ torch.randn(3, 64, generator=gen)
    out = make_method("dg-hard", fast=fast).repair_delta(delta, "w")
    assert out.kept_rank == 3
    assert torch.allclose(out.delta, delta, atol=1e-5)
    if fast:
        assert out.notes["svd"] == "gram" and out.notes["eig_dtype"] == "float64 of float64 G"


def test_fast_route_falls_back_to_exact_svd_when_a_value_sits_on_the_cut():
    # Place one singular value exactly on the DG-Hard cut: no Gram spectrum can decide it
    # the way the float32 SVD does, so that tensor takes the exact SVD.
    gen = torch.Generator().manual_seed(3)
    U = torch.linalg.qr(torch.randn(200, 100, generator=gen, dtype=torch.float64)).Q
    V = torch.linalg.qr(torch.randn(100, 100, generator=gen, dtype=torch.float64)).Q
    S = 10 * 0.01 ** torch.linspace(0, 1, 100, dtype=torch.float64)  # 10 down to 0.1
    cut = omega(0.5) * float(sv_median(S))
    k = int((S - cut).abs().argmin())
    S[k] = cut  # far above the median, which stays put; the order stays descending
    assert bool((S[:-1] > S[1:]).all())
    delta = ((U * S) @ V.T).float()
    fast = make_method("dg-hard", fast=True).repair_delta(delta, "w")
    exact = make_method("dg-hard").repair_delta(delta, "w")
    assert fast.notes["svd"] == "exact"
    assert fast.kept_rank == exact.kept_rank


def _with_values(values: list[float], m: int = 96, n: int = 64, seed: int = 5) -> torch.Tensor:
    """A float32 m x n matrix with the given singular values (the rest zero)."""
    gen = torch.Generator().manual_seed(seed)
    k = len(values)
    u = torch.linalg.qr(torch.randn(m, k, generator=gen, dtype=torch.float64)).Q
    v = torch.linalg.qr(torch.randn(n, k, generator=gen, dtype=torch.float64)).Q
    return ((u * torch.tensor(values, dtype=torch.float64)) @ v.T).float()


@pytest.mark.parametrize("x", [-0.01, -0.003, 0.0, 0.003, 0.01])
def test_fast_route_agrees_with_the_svd_on_a_value_at_the_numerical_floor(x):
    # Median 0, so the numerical floor eps * N * s_max decides; a value sitting on it must
    # not be kept by one route and dropped by the other.
    eps = torch.finfo(torch.float32).eps
    delta = _with_values([1.0, 0.5, 0.3, eps * 96 * (1 + x)])
    exact = make_method("dg-hard").repair_delta(delta, "w")
    fast = make_method("dg-hard", fast=True).repair_delta(delta, "w")
    assert fast.kept_rank == exact.kept_rank


@pytest.mark.parametrize("rank", [5, 40])
def test_rank_above_the_true_rank_keeps_no_round_off(rank):
    # A rank-3 delta asked for more directions: the others are round-off, on every route.
    delta = _with_values([1.0, 0.5, 0.3])
    exact = make_method("rank", rank=rank).repair_delta(delta, "w")
    fast = make_method("rank", rank=rank, fast=True).repair_delta(delta, "w")
    assert exact.kept_rank == fast.kept_rank == 3
    assert torch.allclose(fast.delta, delta, atol=1e-6)


def test_rank_sketch_on_a_lower_rank_delta_stops_early():
    # The sketch's values beyond the true rank are round-off and never agree relatively;
    # they must not make it grow to the whole matrix.
    delta = _with_values([1.0, 0.5, 0.3], m=1024, n=512)
    fast = make_method("rank", rank=8, fast=True).repair_delta(delta, "w")
    assert fast.notes["svd"] == "randomized" and fast.notes["sketch"] <= 512 // 4
    assert fast.kept_rank == 3 and torch.allclose(fast.delta, delta, atol=1e-6)


@pytest.mark.parametrize("size", [1e-21, 1e-30, 1e25])
def test_fast_route_handles_tiny_and_huge_deltas(size):
    # The Gram matrix squares the entries (1e-42 underflows float32): the fast route scales
    # them first, so it keeps the planted rank as the SVD does.
    signal, delta = planted()
    exact = make_method("dg-hard").repair_delta(delta * size, "w")
    fast = make_method("dg-hard", fast=True).repair_delta(delta * size, "w")
    assert exact.kept_rank == fast.kept_rank == 4
    assert torch.allclose(fast.delta / size, exact.delta / size, atol=1e-4)


def test_nan_delta_is_not_repaired_silently():
    delta = planted()[1]
    delta[3, 4] = float("nan")
    for fast in (False, True):
        with pytest.raises(torch.linalg.LinAlgError):
            make_method("dg-hard", fast=fast).repair_delta(delta, "w")


def test_sketch_options_belong_to_the_rank_method_only():
    assert make_method("rank", rank=2, seed=3, oversample=4, niter=2).seed == 3
    with pytest.raises(RepairError, match="seed do not apply to method 'dg-hard'"):
        make_method("dg-hard", seed=1)


def test_zero_delta_keeps_nothing():
    out = make_method("dg-hard").repair_delta(torch.zeros(64, 32), "w")
    assert out.kept_rank == 0 and not out.delta.any()


def test_batched_svd_matches_one_at_a_time():
    deltas = torch.stack([planted(seed=s)[1] for s in range(3)])
    rule = make_method("dg-hard")
    batched = rule.repair_many(deltas, ["a", "b", "c"])
    for d, b in zip(deltas, batched, strict=True):
        single = rule.repair_delta(d, "x")
        assert b.kept_rank == single.kept_rank
        assert torch.allclose(b.delta, single.delta, atol=1e-5)


def test_gd_shrink_beats_the_noisy_delta_and_shrinks_values():
    signal, delta = planted()
    for shrinker, gain in (("frobenius", 0.25), ("soft", 0.4)):
        out = make_method("gd-shrink", shrinker=shrinker).repair_delta(delta, "w")
        assert out.kept_rank == 4
        assert float((out.delta - signal).norm()) < gain * float((delta - signal).norm())
        kept = torch.linalg.svdvals(out.delta)[:4]
        assert (kept < torch.linalg.svdvals(delta)[:4]).all()  # shrunk, not just cut


def test_rank_truncation_keeps_the_top_directions():
    _, delta = planted()
    out = make_method("rank", rank=2).repair_delta(delta, "w")
    U, S, Vh = torch.linalg.svd(delta, full_matrices=False)
    assert out.kept_rank == 2
    assert torch.allclose(out.delta, (U[:, :2] * S[:2]) @ Vh[:2], atol=1e-5)
    fast = make_method("rank", rank=2, fast=True).repair_delta(delta, "w")
    assert fast.kept_rank == 2 and torch.allclose(fast.delta, out.delta, atol=1e-3)
    assert fast.notes["svd"] == "randomized"  # a small fixed rank needs no spectrum
    wide = make_method("rank", rank=40, fast=True).repair_delta(delta, "w")
    assert wide.notes["svd"] == "gram" and wide.kept_rank == 40


def test_spectral_methods_skip_vectors_and_small_matrices():
    rule = make_method("dg-hard")
    assert not rule.applies_to((576,))
    assert not rule.applies_to((16, 16))
    assert rule.applies_to((32, 32))


# --------------------------------------------------------------------------- baselines


def test_wise_ft_interpolates():
    delta = torch.randn(8, 8)
    assert torch.equal(make_method("wise-ft", alpha=0.25).repair_delta(delta, "w").delta,
                       0.25 * delta)


def test_dare_is_seeded_and_rescales():
    delta = torch.ones(200, 200)
    a = make_method("dare", drop=0.9, seed=3).repair_delta(delta, "w").delta
    b = make_method("dare", drop=0.9, seed=3).repair_delta(delta, "w").delta
    c = make_method("dare", drop=0.9, seed=4).repair_delta(delta, "w").delta
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float((a != 0).float().mean()) == pytest.approx(0.1, abs=0.01)
    assert float(a.mean()) == pytest.approx(1.0, abs=0.1)  # rescaling keeps the mean update
    assert torch.allclose(a.unique(), torch.tensor([0.0, 10.0]))


def test_ties_trim_keeps_top_share_by_magnitude():
    delta = torch.arange(1.0, 101.0).reshape(10, 10) * torch.tensor([1.0, -1.0]).repeat(50).view(
        10, 10)
    out = make_method("ties-trim", density=0.2).repair_delta(delta, "w")
    assert int((out.delta != 0).sum()) == 20
    assert float(out.delta.abs()[out.delta != 0].min()) == 81.0


def test_magnitude_keeps_top_share_per_row():
    delta = torch.randn(16, 50, generator=torch.Generator().manual_seed(0))
    out = make_method("magnitude", density=0.1).repair_delta(delta, "w").delta
    assert ((out != 0).sum(dim=1) == 5).all()
    for row, full in zip(out, delta, strict=True):
        assert float(row.abs().max()) == float(full.abs().max())


def test_registry_and_option_errors():
    assert set(REPAIR_METHODS) == {"dg-hard", "gd-shrink", "rank", "wise-ft", "dare",
                                   "ties-trim", "magnitude"}
    with pytest.raises(RepairError, match="do not apply to method 'dg-hard'.*scale"):
        make_method("dg-hard", alpha=0.5)
    with pytest.raises(RepairError, match="unknown repair method 'svd'"):
        make_method("svd")
    with pytest.raises(RepairError, match="needs rank >= 1"):
        make_method("rank")
    with pytest.raises(RepairError, match="drop must be in"):
        make_method("dare", drop=1.0)


# --------------------------------------------------------------------------- scores

BASE = {"task": 0.20, "mmlu": 0.60, "gsm8k": 0.50, "arc": 0.40, "ppl": 10.0}
FT = {"task": 0.80, "mmlu": 0.50, "gsm8k": 0.60, "arc": 0.40, "ppl": 12.0}


def score(repaired: dict[str, float]):
    return repair_scores(BASE, FT, repaired, "task", lower_is_better=["ppl"], tolerance=0.01)


def test_scores_partition_and_components():
    s = score({"task": 0.70, "mmlu": 0.58, "gsm8k": 0.55, "arc": 0.395, "ppl": 10.5})
    assert s.partitions == {"damaged": ["mmlu", "ppl"], "improved": ["gsm8k"],
                            "unchanged": ["arc"]}
    assert s.healed == pytest.approx((0.8 + 0.75) / 2)  # ppl: (12 - 10.5) / (12 - 10)
    assert s.preserved == pytest.approx(0.5)
    assert s.non_damage == 1.0
    assert s.retention == pytest.approx(0.5 / 0.6)
    expected = 4 / (1 / 0.775 + 1 / 0.5 + 1 / 1.0 + 1 / (0.5 / 0.6))
    assert s.combined == pytest.approx(expected)


def test_reverting_to_base_scores_zero():
    s = score(dict(BASE))
    assert s.healed == 1.0 and s.non_damage == 1.0
    assert s.retention == 0.0 and s.preserved == 0.0
    assert s.combined == 0.0


def test_doing_nothing_scores_zero():
    s = score(dict(FT))
    assert s.healed == 0.0 and s.retention == 1.0 and s.preserved == 1.0
    assert s.combined == 0.0


def test_scores_clip_and_skip_missing_partitions():
    base, ft = {"task": 0.1, "a": 0.5}, {"task": 0.9, "a": 0.3}
    s = repair_scores(base, ft, {"task": 1.0, "a": 0.9}, "task")
    assert s.healed == 1.0 and s.retention == 1.0  # better than base / ft is clipped to 1
    assert s.preserved is None and s.non_damage is None
    assert s.combined == 1.0


def test_unchanged_measure_damaged_by_repair_counts():
    s = repair_scores({"task": 0.0, "a": 0.5, "b": 0.5}, {"task": 1.0, "a": 0.5, "b": 0.5},
                      {"task": 1.0, "a": 0.4, "b": 0.5}, "task", tolerance=0.05)
    assert s.non_damage == 0.5


def test_scores_reject_mismatched_tables():
    with pytest.raises(ValueError, match="same measures"):
        repair_scores({"task": 0, "a": 1}, {"task": 1}, {"task": 1, "a": 1}, "task")
    with pytest.raises(ValueError, match="target measure"):
        repair_scores({"a": 1}, {"a": 1}, {"a": 1}, "task")


def test_repair_scores_refuse_bad_tables_and_tolerances():
    from forgetkit.repair.scores import repair_scores

    base, ft, rep = {"t": 0.0, "h": 1.0}, {"t": 1.0, "h": 0.5}, {"t": 0.9, "h": 0.8}
    with pytest.raises(ValueError, match="not finite"):
        repair_scores(base, ft, {"t": 0.9, "h": float("nan")}, "t")
    with pytest.raises(ValueError, match="no value for"):
        repair_scores(base, ft, rep, "t", tolerance={"t": 0.01})
    with pytest.raises(ValueError, match=">= 0"):
        repair_scores(base, ft, rep, "t", tolerance=-0.1)


def test_the_old_name_randomized_still_works_and_says_it_is_not_random():
    from forgetkit.repair.methods.spectral import DeprecatedOptionWarning

    delta = planted()[1]
    with pytest.warns(DeprecatedOptionWarning, match="now 'fast'.*not random"):
        old = make_method("dg-hard", randomized=True)
    assert old.fast and old.options() == make_method("dg-hard", fast=True).options()
    assert "randomized" not in old.options()  # summaries record the new name only
    assert torch.equal(old.repair_delta(delta, "w").delta,
                       make_method("dg-hard", fast=True).repair_delta(delta, "w").delta)

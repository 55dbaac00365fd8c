"""Spectrum diagnostics: does a delta look like low-rank signal plus a Marchenko-Pastur bulk?

``spectrum_plot`` answers the referee's question of the DG-Hard paper for one tensor: the
delta's singular values against what pure noise of the estimated level would give (the MP
quantiles and bulk edge), with the DG-Hard threshold marked. Values that follow the quantile
curve are noise; the few above the edge are the signal DG-Hard keeps.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forgetkit.io import atomic_save_figure
from forgetkit.repair.errors import RepairError
from forgetkit.repair.methods.spectral import MIN_ELEMENTS, sv_median
from forgetkit.repair.threshold import (
    aspect_ratio,
    lambda_star,
    mp_density,
    mp_edges,
    mp_median,
    mp_quantiles,
    omega,
)


def delta_spectrum(delta: torch.Tensor, noise_sigma: float | None = None) -> dict[str, Any]:
    """Singular values of a 2-D delta with its MP reference: noise level, edge, DG-Hard cut."""
    S = torch.linalg.svdvals(delta.float()).cpu().double()
    beta, n_large = aspect_ratio(tuple(delta.shape))
    median = float(sv_median(S))
    if noise_sigma is None:
        sigma = median / math.sqrt(n_large * mp_median(beta))
        tau = omega(beta) * median  # DG-Hard, unknown noise
    else:
        sigma = noise_sigma
        tau = lambda_star(beta) * math.sqrt(n_large) * sigma  # known noise
    unit = math.sqrt(n_large) * sigma
    k = S.numel()
    expected = unit * np.sqrt(mp_quantiles(1 - (np.arange(k) + 0.5) / k, beta))
    return {"shape": list(delta.shape), "beta": beta, "sigma": sigma, "median": median,
            "bulk_edge": unit * (1 + math.sqrt(beta)), "threshold": tau,
            "kept_rank": int((S > tau).sum()), "singular_values": S.numpy(),
            "noise_quantiles": expected, "unit": unit}


def spectrum_plot(base: str | Path, finetuned: str | Path, tensor_name: str,
                  out_png: str | Path, noise_sigma: float | None = None) -> dict[str, Any]:
    """Plot one tensor's delta spectrum against the MP law; returns the numbers it drew.

    Left: singular values (log scale) in decreasing order, the values pure noise of the
    estimated level would have (MP quantiles), the bulk edge and the DG-Hard threshold.
    Right: histogram of s^2 / (N sigma^2) against the MP density.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from forgetkit.repair.apply import open_pair, resolve_folder

    pair = open_pair(resolve_folder(base, "base"), resolve_folder(finetuned, "finetuned"))
    if tensor_name not in pair.names:
        close = [n for n in pair.names if tensor_name.split(".")[-2:][0] in n][:5]
        raise RepairError(f"tensor {tensor_name!r} is not in the checkpoint; e.g. {close}")
    info = pair.info(tensor_name)
    if len(info.shape) != 2 or info.numel < MIN_ELEMENTS:
        raise RepairError(f"{tensor_name} {list(info.shape)}: only 2-D tensors with >= "
                          f"{MIN_ELEMENTS} entries have a spectrum that DG-Hard repairs")
    delta = pair.delta(tensor_name, torch.device("cpu"))
    if delta is None or not bool(delta.any()):
        raise RepairError(f"{tensor_name}: the fine-tune did not change it (zero delta)")
    spec = delta_spectrum(delta, noise_sigma)
    S, unit, k = spec["singular_values"], spec["unit"], spec["kept_rank"]

    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    idx = np.arange(1, len(S) + 1)
    left.semilogy(idx[k:], S[k:], ".", ms=3, color="0.55", label="delta: dropped")
    left.semilogy(idx[:k], S[:k], "o", ms=4, color="C3", label=f"delta: kept ({k})")
    left.semilogy(idx, spec["noise_quantiles"], "-", color="C0", lw=1.2,
                  label=f"pure noise, MP quantiles (sigma={spec['sigma']:.2e})")
    left.axhline(spec["bulk_edge"], color="C0", ls="--", lw=1, label="MP bulk edge")
    left.axhline(spec["threshold"], color="C3", ls=":", lw=1.2, label="DG-Hard threshold")
    left.set_xlabel("index i")
    left.set_ylabel("singular value s_i")
    left.set_title(f"{tensor_name} {spec['shape']}", fontsize=9)
    left.legend(fontsize=7)

    lo, hi = mp_edges(spec["beta"])
    scaled = (S / unit) ** 2
    top = max(hi * 1.8, 1.3 * (spec["threshold"] / unit) ** 2)  # the bulk, the cut, a margin
    right.hist(scaled[scaled <= top], bins=60, density=True, color="0.7",
               label=f"s^2/(N sigma^2), {int((scaled > top).sum())} beyond the axis")
    grid = np.linspace(max(lo, 1e-6), hi, 400)
    right.plot(grid, [mp_density(x, spec["beta"]) for x in grid], color="C0",
               label=f"Marchenko-Pastur, beta={spec['beta']:.3f}")
    right.axvline(hi, color="C0", ls="--", lw=1)
    right.axvline((spec["threshold"] / unit) ** 2, color="C3", ls=":", lw=1.2)
    right.set_xlim(0, top)
    right.set_xlabel("s^2 / (N sigma^2)")
    right.legend(fontsize=7)
    fig.tight_layout()

    out_png = atomic_save_figure(fig, out_png, dpi=110)
    keys = ("shape", "beta", "sigma", "median", "bulk_edge", "threshold", "kept_rank")
    return {"tensor": tensor_name, **{k: spec[k] for k in keys},
            "singular_values": [float(v) for v in S[: min(len(S), k + 10)]],
            "png": str(out_png)}

"""Activation drift (SEAT paper, Fig. 3) and the PCA picture of activations (Fig. 2)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from forgetkit.errors import UserError
from forgetkit.eval.ias import Activations, _as_layers
from forgetkit.io import atomic_save_figure


def _paired(base_acts: Activations, ft_acts: Activations) -> tuple[np.ndarray, np.ndarray]:
    base, ft = _as_layers(base_acts), _as_layers(ft_acts)
    if base.shape != ft.shape:
        raise UserError(f"base and fine-tuned activations differ in shape: {base.shape} vs "
                         f"{ft.shape}; read them for the same questions from models of one "
                         "architecture")
    return base, ft


def activation_drift(base_acts: Activations, ft_acts: Activations) -> list[float]:
    """Fig. 3a: per layer, mean over questions of ||R_l(theta'; q) - R_l(theta; q)||_2."""
    base, ft = _paired(base_acts, ft_acts)
    return [float(v) for v in np.linalg.norm(ft - base, axis=2).mean(axis=0)]


def drift_along(direction: Activations, base_acts: Activations, ft_acts: Activations,
                absolute: bool = False) -> list[float]:
    """Fig. 3b: per layer, mean over questions of (R_l(theta'; q) - R_l(theta; q)) . u_l.

    ``direction`` is one vector ``[hidden]`` used at every layer, or one per layer
    ``[n_layers, hidden]`` (``IgnoranceProbe.directions``); each is normalised to unit length.
    The component is signed (> 0: towards "unknown"); ``absolute`` averages its magnitude.
    """
    base, ft = _paired(base_acts, ft_acts)
    u = _as_layers(direction[None])[0]  # [1, hidden] or [n_layers, hidden]
    if u.shape[0] == 1:
        u = np.repeat(u, base.shape[1], axis=0)
    if u.shape != base.shape[1:]:
        raise UserError(f"direction has shape {u.shape}, activations have {base.shape[1:]} "
                         "(layers, hidden)")
    norms = np.linalg.norm(u, axis=1, keepdims=True)
    u = np.divide(u, norms, out=np.zeros_like(u), where=norms > 0)
    comp = np.einsum("nld,ld->nl", ft - base, u)
    if absolute:
        comp = np.abs(comp)
    return [float(v) for v in comp.mean(axis=0)]


# ---------------------------------------------------------------------------- PCA picture

def pca_figure(panels: Mapping[str, Mapping[str, Activations]], out_png: str | os.PathLike[str],
               fit_on: str = "unverifiable", layer: int = -1,
               title: str | None = None) -> Path:
    """Fig. 2: per method panel, every set projected on the top-2 PCs of its ``fit_on`` set.

    ``panels`` maps a method name (``"base"``, ``"full"``, ``"seat"``...) to its question
    sets' activations (``[n, layers, hidden]`` or ``[n, hidden]``); ``layer`` picks the
    hidden-state index (-1 = last, as in the paper). The PNG is written atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not panels:
        raise UserError("pca_figure needs at least one panel")
    set_names = list(dict.fromkeys(name for sets in panels.values() for name in sets))
    colours = {name: f"C{i % 10}" for i, name in enumerate(set_names)}
    fig = Figure(figsize=(4.2 * len(panels), 4.0), constrained_layout=True)
    FigureCanvasAgg(fig)
    # one scale for every panel, so the spread of one model is comparable to another's
    axes = fig.subplots(1, len(panels), squeeze=False, sharex=True, sharey=True)[0]
    for ax, (method, sets) in zip(axes, panels.items(), strict=True):
        if fit_on not in sets:
            raise UserError(f"panel '{method}' has no '{fit_on}' set to compute principal "
                             f"components on; it has {sorted(sets)}")
        ref = _as_layers(sets[fit_on])
        pick = layer % ref.shape[1]
        centre = ref[:, pick].mean(axis=0)
        # Rows of vt are the principal axes of the fit set's centred activations.
        _, s, vt = np.linalg.svd(ref[:, pick] - centre, full_matrices=False)
        share = s ** 2 / max(float((s ** 2).sum()), 1e-30)
        pcs = vt[:2] if vt.shape[0] >= 2 else np.vstack([vt, np.zeros_like(vt)])
        for name, acts in sets.items():
            arr = _as_layers(acts)
            xy = (arr[:, layer % arr.shape[1]] - centre) @ pcs.T
            ax.scatter(xy[:, 0], xy[:, 1], s=14, alpha=0.75, color=colours[name], label=name)
        ax.set_title(method)
        ax.set_xlabel(f"PC1 ({100 * share[0]:.0f}% of {fit_on})")
        ax.set_ylabel(f"PC2 ({100 * (share[1] if len(share) > 1 else 0):.0f}%)")
        ax.legend(fontsize=7, loc="best")
    any_sets = next(iter(panels.values()))[fit_on]
    n_states = _as_layers(any_sets).shape[1]
    where = (f"hidden state {layer % n_states} of {n_states} (0 = embeddings), projected on "
             f"the top two principal components of each model's own {fit_on} set")
    fig.suptitle(f"{title}\n{where}" if title else where, fontsize=10)
    return atomic_save_figure(fig, out_png, dpi=120)


# ---------------------------------------------------------------------------- the suite

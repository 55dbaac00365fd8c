"""IAS and IA reduction (SEAT paper, Eq. 1 and 2): a probe fitted once on the base model's
residual activations (known vs unknown questions), then frozen, scores any model by the log
loss of its activations on the base's boundary (see ``ignorance.py`` for the definitions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.errors import UserError
from forgetkit.eval.probe import fit_logistic, logistic_log_loss
from forgetkit.lm.activations import residual_activations

Activations = torch.Tensor | np.ndarray

# L2 strengths tried, together with the layer, when the probe is fitted (on standardised
# features, objective = mean log loss + l2/2 ||w||^2).
L2_GRID: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)


def _as_layers(acts: Activations) -> np.ndarray:
    """Activations as float64 ``[n, n_layers, hidden]`` (a ``[n, hidden]`` input is 1 layer)."""
    arr = acts.detach().cpu().double().numpy() if isinstance(acts, torch.Tensor) \
        else np.asarray(acts, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3:
        raise UserError(f"activations must be [n, layers, hidden] or [n, hidden], got shape "
                         f"{arr.shape}")
    return arr


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and scale; constant features get scale 1 so they stay at 0."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.where(std > 1e-8 * max(float(std.max()), 1e-30), std, 1.0)


def _stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold id per example, each class dealt round-robin after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    fold_of = np.zeros(len(labels), dtype=int)
    for cls in (0, 1):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        fold_of[idx] = np.arange(len(idx)) % folds
    return fold_of


def _fit_standardised(x: np.ndarray, y: np.ndarray,
                      l2: float) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    mean, scale = _standardiser(x)
    w, b = fit_logistic((x - mean) / scale, y, l2)
    return w, b, mean, scale


@dataclass
class IgnoranceProbe:
    """f in the paper's Eq. 1: P(unknown | R_layer) = sigmoid(w . (R - mean) / scale + b).

    Fitted on the base model's activations and then frozen. ``directions`` holds one unit
    vector per layer (the normal of that layer's probe, in raw activation space, pointing to
    "unknown"); ``direction`` is the one at the probe's own layer.
    """

    layer: int
    l2: float
    weight: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    directions: np.ndarray  # [n_layers, hidden]
    # Per layer at the chosen l2; None where not evaluated (a fixed ``layer``).
    cv_log_loss: list[float | None] = field(default_factory=list)

    # ------------------------------------------------------------------ fitting

    @classmethod
    def fit(cls, base_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
            known_questions: Sequence[str], unknown_questions: Sequence[str],
            layer: int | None = None, l2: float | Sequence[float] = L2_GRID, folds: int = 5,
            seed: int = 0, batch_size: int = 16, progress: bool = True) -> IgnoranceProbe:
        """Read the base model's activations and fit the probe (label 1 = unknown)."""
        known = residual_activations(base_model, tokenizer, known_questions,
                                     batch_size=batch_size, progress=progress)
        unknown = residual_activations(base_model, tokenizer, unknown_questions,
                                       batch_size=batch_size, progress=progress)
        return cls.fit_activations(known, unknown, layer=layer, l2=l2, folds=folds, seed=seed)

    @classmethod
    def fit_activations(cls, known_acts: Activations, unknown_acts: Activations,
                        layer: int | None = None, l2: float | Sequence[float] = L2_GRID,
                        folds: int = 5, seed: int = 0) -> IgnoranceProbe:
        """Fit on activations ``[n, n_layers, hidden]`` of known (0) and unknown (1) questions.

        Layer and L2 strength are chosen by held-out separability: mean log loss over
        ``folds`` stratified cross-validation folds (standardisation refitted inside every
        fold), lowest wins. ``layer`` fixes the layer; a single ``l2`` fixes the strength.
        """
        known, unknown = _as_layers(known_acts), _as_layers(unknown_acts)
        if known.shape[1:] != unknown.shape[1:]:
            raise UserError(f"known and unknown activations differ in shape: "
                             f"{known.shape[1:]} vs {unknown.shape[1:]}")
        folds = min(folds, len(known), len(unknown))
        if folds < 2:
            raise UserError(f"the probe needs at least 2 known and 2 unknown questions, got "
                             f"{len(known)} and {len(unknown)}")
        x = np.concatenate([known, unknown])
        y = np.concatenate([np.zeros(len(known)), np.ones(len(unknown))])
        n_layers = x.shape[1]
        if layer is not None and not -n_layers <= layer < n_layers:
            raise UserError(f"layer {layer} is out of range for {n_layers} hidden states")
        layers = range(n_layers) if layer is None else [layer % n_layers]
        grid = [float(l2)] if isinstance(l2, (int, float)) else [float(v) for v in l2]
        fold_of = _stratified_folds(y, folds, seed)

        cv = np.full((len(grid), n_layers), np.inf)
        for g, strength in enumerate(grid):
            for li in layers:
                losses = []
                for k in range(folds):
                    train, test = fold_of != k, fold_of == k
                    w, b, mean, scale = _fit_standardised(x[train, li], y[train], strength)
                    losses.append(logistic_log_loss((x[test, li] - mean) / scale, y[test], w, b))
                cv[g, li] = float(np.mean(losses))
        g_best, layer_best = np.unravel_index(int(np.argmin(cv)), cv.shape)
        strength = grid[int(g_best)]

        # One probe per layer on all data: the per-layer ignorance directions of Fig. 3b.
        directions = np.zeros((n_layers, x.shape[2]))
        means = np.zeros((n_layers, x.shape[2]))
        scales = np.ones((n_layers, x.shape[2]))
        chosen: tuple[np.ndarray, float] | None = None
        for li in range(n_layers):
            w, b, means[li], scales[li] = _fit_standardised(x[:, li], y, strength)
            raw = w / scales[li]  # w . (r - m) / s = (w / s) . r + const
            norm = np.linalg.norm(raw)
            directions[li] = raw / norm if norm > 0 else raw
            if li == layer_best:
                chosen = (w, b)
        assert chosen is not None
        return cls(layer=int(layer_best), l2=strength, weight=chosen[0], bias=chosen[1],
                   mean=means[layer_best], scale=scales[layer_best], directions=directions,
                   cv_log_loss=[float(v) if np.isfinite(v) else None
                                for v in cv[int(g_best)]])

    # ------------------------------------------------------------------ scoring

    @property
    def direction(self) -> torch.Tensor:
        """Unit ignorance direction at the probe's layer (raw activation space)."""
        return torch.from_numpy(self.directions[self.layer]).float()

    def unknown_probability(self, acts: Activations) -> np.ndarray:
        """f(R): P(unknown) per question, from all-layer (or probe-layer) activations."""
        arr = _as_layers(acts)
        x = arr[:, self.layer] if arr.shape[1] > 1 else arr[:, 0]
        z = ((x - self.mean) / self.scale) @ self.weight + self.bias
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    def log_loss_from_activations(self, known_acts: Activations,
                                  unknown_acts: Activations) -> float:
        """E_Q[S(I, f(R))] with S = binary cross-entropy, over known (I=0) and unknown (I=1)."""
        arr_k, arr_u = _as_layers(known_acts), _as_layers(unknown_acts)
        x = np.concatenate([arr_k[:, self.layer if arr_k.shape[1] > 1 else 0],
                            arr_u[:, self.layer if arr_u.shape[1] > 1 else 0]])
        y = np.concatenate([np.zeros(len(arr_k)), np.ones(len(arr_u))])
        return logistic_log_loss((x - self.mean) / self.scale, y, self.weight, self.bias)

    def ias_from_activations(self, known_acts: Activations, unknown_acts: Activations) -> float:
        """IAS (Eq. 1) = -log loss; higher is better, 0 is perfect."""
        return -self.log_loss_from_activations(known_acts, unknown_acts)

    def log_loss(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                 known_questions: Sequence[str], unknown_questions: Sequence[str],
                 batch_size: int = 16, progress: bool = True) -> float:
        """The probe's log loss on ``model``'s activations (lower is better)."""
        known = residual_activations(model, tokenizer, known_questions, layers=[self.layer],
                                     batch_size=batch_size, progress=progress)
        unknown = residual_activations(model, tokenizer, unknown_questions, layers=[self.layer],
                                       batch_size=batch_size, progress=progress)
        return self.log_loss_from_activations(known, unknown)

    def ias(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
            known_questions: Sequence[str], unknown_questions: Sequence[str],
            batch_size: int = 16, progress: bool = True) -> float:
        """IAS(theta) of Eq. 1 for ``model``: -log loss of the frozen base probe (higher =
        better). Score on questions the probe was not fitted on for an unbiased estimate."""
        return -self.log_loss(model, tokenizer, known_questions, unknown_questions,
                              batch_size=batch_size, progress=progress)

    def summary(self) -> dict[str, Any]:
        return {"layer": self.layer, "l2": self.l2, "cv_log_loss": list(self.cv_log_loss)}


def ia_reduction(base_ias: float, ft_ias: float) -> float:
    """Delta_IA(theta -> theta') = IAS(theta) - IAS(theta') (Eq. 2); > 0 means degraded."""
    return float(base_ias - ft_ias)


# ---------------------------------------------------------------------------- drift

"""The ignorance-awareness suite of the SEAT paper (sections 3 and 6, Figures 2 and 3).

* IAS, Eq. 1: IAS(theta) = E_Q[-S(I, f(R(theta; Q)))], f a probe reading the residual stream
  R, I = 1 when the answer to Q is unknown, S a proper scoring rule. With S = binary
  cross-entropy (the paper's choice, appendix A.3) IAS = -log loss of the probe, in nats: at
  most 0, HIGHER = better ignorance awareness. ``IgnoranceProbe`` is f: a logistic-regression
  probe fitted once on the BASE model's activations (known vs unknown questions) and then
  frozen, so a fine-tuned model is scored by how well its activations still sit on the base's
  side of the boundary.
* IA reduction, Eq. 2: Delta_IA(theta -> theta') = IAS(theta) - IAS(theta')
  = logloss(theta') - logloss(theta); Delta_IA > 0 means the fine-tune degraded ignorance
  awareness.
* Activation drift, Fig. 3a: per layer l, mean over questions of
  ||R_l(theta'; q) - R_l(theta; q)||_2; Fig. 3b: the mean component of that change along the
  probe's ignorance direction (unit normal of the probe's decision boundary, pointing to
  "unknown"), with one probe direction per layer.
* PCA picture, Fig. 2: activations of every question set projected on the first two
  principal components of the unverifiable set's activations, one panel per model.

``ignorance_suite`` runs all of it for a fine-tuned model against its base, reading answers
from the shared generation pass for the IDK scores (IDK_SM and judged IDK).
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.data.records import QARecord
from forgetkit.errors import UserError
from forgetkit.eval.evaluate import ROLE_METRICS, EvalSet
from forgetkit.eval.judge import RefusalJudge, judged_refusals, load_judge
from forgetkit.eval.metrics import idk_rate
from forgetkit.eval.probe import fit_logistic, logistic_log_loss
from forgetkit.lm.activations import residual_activations
from forgetkit.lm.generate import generate_answers

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
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
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
    if title:
        fig.suptitle(title)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png", dpi=120)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


# ---------------------------------------------------------------------------- the suite

def answers_from_evaluation(result: Mapping[str, Any]) -> dict[str, list[str]]:
    """The answers of an ``evaluate()`` result, per set: reuse its generation pass."""
    return {name: [s["answer"] for s in data["samples"]]
            for name, data in result["sets"].items()}


def _named_sets(sets: Mapping[str, Sequence[QARecord]] | Sequence[EvalSet],
                roles: Mapping[str, str] | None) -> list[tuple[str, str, list[QARecord]]]:
    if not isinstance(sets, Mapping):
        return [(s.name, s.role, list(s.records)) for s in sets]
    out = []
    for name, records in sets.items():
        role = (roles or {}).get(name, name)
        if role not in ROLE_METRICS:
            raise UserError(f"question set '{name}': no role. Name the set after its role "
                             f"({', '.join(sorted(ROLE_METRICS))}), pass roles={{'{name}': "
                             "'unseen'}, or pass EvalSet objects")
        if not records:
            raise UserError(f"question set '{name}' is empty")
        out.append((name, role, list(records)))
    return out


def _split_by_subject(records: Sequence[QARecord], score_fraction: float,
                      rng: random.Random) -> tuple[list[int], list[int]]:
    """Indices (fit, score): whole subjects go to one side, so no entity is in both."""
    groups: dict[object, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(r.subject if r.subject else ("q", i), []).append(i)
    if len(groups) < 2:  # one entity only: split its questions instead
        groups = {("q", i): [i] for i in range(len(records))}
    keys = list(groups)
    rng.shuffle(keys)
    score: list[int] = []
    target = score_fraction * len(records)
    for key in keys:
        if len(score) >= target or len(score) + len(groups[key]) >= len(records):
            break
        score.extend(groups[key])
    fit = sorted(set(range(len(records))) - set(score))
    return fit, sorted(score)


def ignorance_suite(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                    base_model: PreTrainedModel, base_tokenizer: PreTrainedTokenizerBase,
                    sets: Mapping[str, Sequence[QARecord]] | Sequence[EvalSet],
                    answers: Mapping[str, Sequence[str]] | None = None,
                    judge: RefusalJudge | None = None, roles: Mapping[str, str] | None = None,
                    score_fraction: float = 0.5, seed: int = 0, batch_size: int = 16,
                    max_new_tokens: int = 48, pca_png: str | os.PathLike[str] | None = None,
                    pca_layer: int = -1, progress: bool = True,
                    activations_out: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """IDK_SM, judged IDK, IAS (base and model), Delta_IA and drift, as plain JSON values.

    ``activations_out``, if given, receives the model's activations per set (for pictures
    across several models without computing them twice).

    ``sets`` maps a set name to its records (the name is its role, or ``roles`` gives it) or
    is a list of ``EvalSet``. Roles: ``unseen`` sets get IDK_SM and judged IDK, computed from
    ``answers[name]`` (the shared generation pass; only sets missing there are answered here);
    every set gets activation drift per layer, in total (Fig. 3a) and along the probe's
    per-layer ignorance direction (Fig. 3b).

    The probe learns known vs unknown from the BASE model's activations on the ``known`` sets
    (label 0) and the ``unseen`` sets (label 1). Records are split by subject: a
    ``1 - score_fraction`` share fits the probe, the rest scores IAS for both models, so IAS
    is measured on questions and entities the probe never saw. ``pca_png`` adds the Fig. 2
    picture at hidden-state index ``pca_layer`` (base and model panels, PCs of the set named
    ``unverifiable`` or else of the first unseen set).
    """
    named = _named_sets(sets, roles)
    if not any(role == "known" for _, role, _ in named) or \
            not any(role == "unseen" for _, role, _ in named):
        raise UserError("the ignorance probe needs at least one 'known' and one 'unseen' "
                         f"question set; got roles {[(n, r) for n, r, _ in named]}")
    if not 0.0 < score_fraction < 1.0:
        raise UserError(f"score_fraction must be in (0, 1), got {score_fraction}")
    judge = judge if judge is not None else load_judge(None)
    answers = dict(answers or {})

    base_acts: dict[str, torch.Tensor] = {}
    model_acts: dict[str, torch.Tensor] = {}
    for name, _, records in named:
        questions = [r.question for r in records]
        base_acts[name] = residual_activations(base_model, base_tokenizer, questions,
                                               batch_size=batch_size, progress=progress)
        model_acts[name] = base_acts[name] if model is base_model else residual_activations(
            model, tokenizer, questions, batch_size=batch_size, progress=progress)
        if model_acts[name].shape != base_acts[name].shape:
            raise UserError(f"set '{name}': model activations {tuple(model_acts[name].shape)}"
                             f" and base activations {tuple(base_acts[name].shape)} differ; "
                             "drift and IAS need a model of the base's architecture")

    # Probe data: every known/unseen record, split by subject into fit and score parts.
    rng = random.Random(f"ignorance-probe:{seed}")
    parts: dict[str, dict[str, list[torch.Tensor]]] = {
        side: {"fit": [], "base": [], "model": []} for side in ("known", "unseen")}
    for name, role, records in named:
        if role not in parts:
            continue
        fit, score = _split_by_subject(records, score_fraction, rng)
        if not score or not fit:
            raise UserError(f"set '{name}' has {len(records)} question(s): too few to split "
                             "into probe-fitting and IAS-scoring parts")
        parts[role]["fit"].append(base_acts[name][fit])
        parts[role]["base"].append(base_acts[name][score])
        parts[role]["model"].append(model_acts[name][score])
    cat = {side: {k: torch.cat(v) for k, v in d.items()} for side, d in parts.items()}
    probe = IgnoranceProbe.fit_activations(cat["known"]["fit"], cat["unseen"]["fit"], seed=seed)
    ias_base = probe.ias_from_activations(cat["known"]["base"], cat["unseen"]["base"])
    ias_model = probe.ias_from_activations(cat["known"]["model"], cat["unseen"]["model"])

    per_set: dict[str, Any] = {}
    for name, role, records in named:
        entry: dict[str, Any] = {
            "role": role, "n": len(records),
            "drift_l2": activation_drift(base_acts[name], model_acts[name]),
            "drift_along_ignorance": drift_along(probe.directions, base_acts[name],
                                                 model_acts[name]),
            "p_unknown_base": float(probe.unknown_probability(base_acts[name]).mean()),
            "p_unknown_model": float(probe.unknown_probability(model_acts[name]).mean()),
        }
        if role == "unseen":
            given = answers.get(name)
            if given is None:
                given = generate_answers(model, tokenizer, [r.question for r in records],
                                         max_new_tokens=max_new_tokens, batch_size=batch_size,
                                         desc=f"answering {name}", progress=progress)
            if len(given) != len(records):
                raise UserError(f"set '{name}': {len(given)} answers for {len(records)} "
                                 "questions")
            per = judged_refusals(records, given, judge)
            entry.update(idk_sm=idk_rate(given),
                         judged_idk=sum(p["idk"] for p in per) / len(per),
                         judge_refusal_rate=sum(p["refusal"] for p in per) / len(per))
        per_set[name] = entry

    if activations_out is not None:
        activations_out.update(model_acts)
    if pca_png is not None:
        unseen = [n for n, role, _ in named if role == "unseen"]
        fit_on = "unverifiable" if "unverifiable" in base_acts else unseen[0]
        pca_figure({"base": base_acts, "model": model_acts}, pca_png, fit_on=fit_on,
                   layer=pca_layer)

    return {
        "judge": judge.name,
        "probe": {**probe.summary(),
                  "n_fit": {"known": len(cat["known"]["fit"]),
                            "unknown": len(cat["unseen"]["fit"])},
                  "n_score": {"known": len(cat["known"]["base"]),
                              "unknown": len(cat["unseen"]["base"])}},
        "ias": {"base": ias_base, "model": ias_model},
        "ia_reduction": ia_reduction(ias_base, ias_model),
        "sets": per_set,
    }


__all__ = ["IgnoranceProbe", "L2_GRID", "activation_drift", "answers_from_evaluation",
           "drift_along", "ia_reduction", "ignorance_suite", "pca_figure"]

"""Latent traces: can a linear readout of the residual stream still recover a forgotten answer?

The probe is a *linear shortcut* readout (Din et al., 2023, "Jump to conclusions"; a tuned
lens fitted by least squares, Belrose et al., 2023), fitted once on the ORIGINAL model and
then applied with fixed weights to every model:

    T_l(h) = ((h - mu_l) / s_l) W_l + c_l  ~  h_L                       (ridge least squares)
    logP_l(a | q) = (1/|a|) sum_t log softmax(U T_l(h_l,t))[a_t]          (U = original's head)

h_l,t is the residual stream after block l at the position predicting answer token a_t
(teacher forcing, ``lm.scoring``), h_L the final normed state the LM head reads, mu_l
and s_l the per-dimension mean and spread of the original's states. T_l is fitted on the
original's states over the retain set's answers (true, paraphrased and perturbed): it
never sees a forget fact nor a label saying which answer is true. At the last index T is
the identity.

The attribute to recover is the forgotten answer itself: for each forget question the
readout scores the true answer and its perturbed (same template, wrong fact) answers, and
it *recovers* the fact when the true answer scores highest. ``accuracy[l]`` is that rate
at layer l; chance is mean 1 / (1 + #perturbed), 0.25 with TOFU-style data's three.

Why this design: a method that only hides the answer (refusal tuning, output suppression)
changes what the last layers emit but leaves intermediate states that the original's own
decoding still reads as the true answer, so its accuracy at intermediate layers stays near
the original's. A method that erased the fact leaves intermediate states that no longer
single it out: accuracy near the retain model's (the oracle, never trained on the forget
set). A "truth direction" probe (one logistic direction for true vs false statements) was
tried first and rejected: on a small model that memorised fictitious facts it did not even
fit its training data (0.6 pairwise accuracy), while the readout recovered every fact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from forgetkit.errors import UserError
from forgetkit.lm.scoring import AnswerScores


def readout_layers(n_layers: int, max_layers: int = 8) -> list[int]:
    """Hidden-state indices to read: up to ``max_layers`` evenly spaced intermediate ones
    (1 .. n_layers - 1) and the last (``n_layers``), so the cost stays bounded on deep
    models."""
    if n_layers < 1 or max_layers < 1:
        raise UserError(f"need n_layers >= 1 and max_layers >= 1, got {n_layers}, {max_layers}")
    inner = list(range(1, n_layers))
    if len(inner) > max_layers:
        inner = sorted({int(round(x)) for x in np.linspace(1, n_layers - 1, max_layers)})
    return inner + [n_layers]


@dataclass
class LatentReadout:
    """Per-layer affine maps to the final state, and the original's LM head (fixed)."""

    layers: list[int]
    final: int                                   # index of the final normed state
    maps: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]
    head_weight: torch.Tensor                    # [vocab, hidden]
    head_bias: torch.Tensor | None = None

    @classmethod
    def fit(cls, original: PreTrainedModel, scores: AnswerScores,
            ridge: float = 1e-2) -> LatentReadout:
        """Fit T_l for every layer of ``scores`` (which must include the last index) on the
        original model's states; ``ridge`` is the L2 strength on standardised inputs."""
        if scores.states is None or scores.layers is None:
            raise UserError("LatentReadout.fit needs scores read with layers=... (states)")
        final = int(original.config.num_hidden_layers)
        if final not in scores.layers:
            raise UserError(f"the states must include the final hidden-state index {final}")
        if ridge <= 0:
            raise UserError(f"ridge must be positive, got {ridge}")
        last = scores.layers.index(final)
        rows = [s for s in scores.states if s is not None and len(s)]
        if not rows:
            raise UserError("LatentReadout.fit got no answer positions to fit on")
        maps = {}
        for k, layer in enumerate(scores.layers):
            if layer == final:
                continue
            maps[layer] = _ridge_map([s[:, k] for s in rows], [s[:, last] for s in rows],
                                     ridge)
        head = original.get_output_embeddings()
        bias = getattr(head, "bias", None)
        return cls(layers=list(scores.layers), final=final, maps=maps,
                   head_weight=head.weight.detach().float().cpu().clone(),
                   head_bias=None if bias is None else bias.detach().float().cpu().clone())

    @torch.no_grad()
    def answer_logprobs(self, scores: AnswerScores, chunk: int = 512) -> np.ndarray:
        """``[n_pairs, len(layers)]``: mean log-prob of each answer under the readout."""
        if scores.states is None or scores.layers != self.layers:
            raise UserError(f"the scores must be read at the readout's layers {self.layers}, "
                             f"got {scores.layers}")
        out = np.full((len(scores.states), len(self.layers)), np.nan)
        rows = [i for i, s in enumerate(scores.states) if s is not None]
        if not rows:
            return out
        flat = torch.cat([scores.states[i] for i in rows])  # [positions, layers, hidden]
        targets = torch.tensor([t for i in rows for t in scores.answer_ids[i]])
        owner = torch.tensor([i for i in rows for _ in scores.answer_ids[i]])
        for k, layer in enumerate(self.layers):
            token_lp = torch.empty(len(flat))
            for start in range(0, len(flat), chunk):
                h = flat[start:start + chunk, k]
                if layer != self.final:
                    h = self._map(layer, h)
                logits = F.linear(h, self.head_weight, self.head_bias)
                token_lp[start:start + chunk] = F.log_softmax(logits, dim=-1).gather(
                    1, targets[start:start + chunk].unsqueeze(1)).squeeze(1)
            sums = torch.zeros(len(scores.states)).index_add_(0, owner, token_lp)
            counts = torch.zeros(len(scores.states)).index_add_(0, owner,
                                                                torch.ones(len(owner)))
            out[rows, k] = (sums[rows] / counts[rows]).numpy()
        return out

    def _map(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        weight, bias, mean, scale = self.maps[layer]
        return ((h - mean) / scale) @ weight + bias


def _ridge_map(xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor], ridge: float,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ridge regression y ~ ((x - mu) / s) W + c, in float64.

    Inputs are standardised per dimension so one ridge strength suits every dimension:
    residual streams have a few dimensions hundreds of times larger than the rest.
    """
    x, y = torch.cat(list(xs)).double(), torch.cat(list(ys)).double()
    mean_x, mean_y = x.mean(0), y.mean(0)
    x, y = x - mean_x, y - mean_y
    cov_xx, cov_xy = x.T @ x / len(x), x.T @ y / len(x)
    scale = cov_xx.diagonal().clamp(min=0).sqrt().clamp(min=1e-6)
    corr = cov_xx / torch.outer(scale, scale)
    eye = torch.eye(len(scale), dtype=torch.float64)
    weight = torch.linalg.solve(corr + ridge * eye, cov_xy / scale[:, None])
    return weight.float(), mean_y.float(), mean_x.float(), scale.float()


def candidate_hits(candidate_scores: Sequence[Sequence[float]]) -> list[float]:
    """Per question: 1 when its true answer (index 0) outscores every perturbed one, 0 when
    one outscores it; ties share the credit (1 / number of tied best candidates)."""
    if len(candidate_scores) == 0:
        raise UserError("candidate_accuracy needs at least one question")
    hits = []
    for scores in candidate_scores:
        s = np.asarray(scores, dtype=np.float64)
        if s.size < 2:
            raise UserError("every question needs its true answer and >= 1 perturbed answer")
        best = s.max()
        hits.append(1.0 / int(np.sum(s == best)) if s[0] == best else 0.0)
    return hits


def candidate_accuracy(candidate_scores: Sequence[Sequence[float]]) -> float:
    """Share of questions whose true answer outscores every perturbed one (``candidate_hits``
    averaged: a model whose scores are all equal sits exactly at chance)."""
    return float(np.mean(candidate_hits(candidate_scores)))


def chance_accuracy(candidate_scores: Sequence[Sequence[float]]) -> float:
    """The accuracy of guessing: mean over questions of 1 / (number of candidates)."""
    return float(np.mean([1.0 / len(s) for s in candidate_scores]))


__all__ = ["LatentReadout", "candidate_accuracy", "candidate_hits", "chance_accuracy",
           "readout_layers"]

"""Residual-stream activations at the last prompt token, and linear probes on them.

``residual_activations`` is the one routine that reads a model's residual stream for a list
of questions; every activation metric (IAS, activation drift, PCA pictures) and the
unlearning work build on it. ``fit_logistic`` / ``logistic_log_loss`` are the linear probe
math shared by the ignorance probe (SEAT paper, Eq. 1) and the embedding refusal judge.

Conventions (SEAT paper, section 3: R_l(theta; q) = residual stream after layer l):

* the prompt is the chat-template prompt of ``prompt_ids``, ending with the assistant header,
  so the last prompt token is where the model decides how to start its answer;
* index 0 is the output of the embeddings, index l the output of block l (Hugging Face
  ``output_hidden_states=True``). As in transformers, the LAST entry is taken after the final
  norm (``tie_last_hidden_states``): it is the representation the LM head reads;
* prompts are left-padded with an attention mask and explicit position ids, so a batched
  read equals a one-at-a-time read (tested to 1e-4).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.data.tokenize import prompt_ids


def left_padded(encoded: Sequence[Sequence[int]], pad_token_id: int,
                device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Left-pad token id lists into ``input_ids``, ``attention_mask`` and ``position_ids``.

    Position ids count real tokens only. Rotary models would not notice the shift padding
    causes (RoPE sees relative positions), but models with learned absolute positions would
    read a left-padded prompt differently from the same prompt alone.
    """
    width = max(len(x) for x in encoded)
    ids = torch.tensor([[pad_token_id] * (width - len(x)) + list(x) for x in encoded],
                       device=device)
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in encoded],
                        device=device)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": positions}


@torch.no_grad()
def residual_activations(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                         questions: Sequence[str], layers: Sequence[int] | None = None,
                         batch_size: int = 16, progress: bool = True) -> torch.Tensor:
    """Residual stream R_l(theta; q) at the last prompt token for every question.

    Returns a float32 CPU tensor of shape ``[n_questions, n_layers + 1, hidden]`` (index 0 =
    embeddings, index l = after block l), or ``[n_questions, len(layers), hidden]`` when
    ``layers`` selects hidden-state indices (negative indices count from the end). Works for
    plain transformers models and peft-wrapped ones alike.
    """
    if not questions:
        raise ValueError("residual_activations needs at least one question")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    encoded = [prompt_ids(tokenizer, q) for q in questions]
    # Similar lengths share a batch: less padding, less compute.
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    rows: list[torch.Tensor | None] = [None] * len(encoded)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    try:
        for idx in tqdm(batches, desc="reading activations", disable=not progress,
                        leave=False):
            batch = left_padded([encoded[i] for i in idx], tokenizer.pad_token_id, device)
            out = model(**batch, output_hidden_states=True, use_cache=False)
            # Left padding puts every prompt's last token at position -1.
            stacked = torch.stack([h[:, -1, :] for h in out.hidden_states], dim=1)
            if layers is not None:
                stacked = stacked[:, _layer_index(layers, stacked.shape[1])]
            for row, i in enumerate(idx):
                rows[i] = stacked[row].float().cpu()
    finally:
        model.train(was_training)
    return torch.stack(rows)  # type: ignore[arg-type]


def _layer_index(layers: Sequence[int], n_states: int) -> list[int]:
    index = []
    for layer in layers:
        if not -n_states <= layer < n_states:
            raise ValueError(f"layer {layer} is out of range: the model has {n_states} hidden "
                             f"states (0 = embeddings .. {n_states - 1} = last block)")
        index.append(layer % n_states)
    return index


# ------------------------------------------------------------------------------- linear probes

def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow for large |z|


def _newton_logistic(x: np.ndarray, y: np.ndarray, l2: float,
                     max_iter: int = 100, tol: float = 1e-10) -> np.ndarray:
    """Damped Newton on mean BCE + l2/2 ||w||^2 (bias unpenalised); returns ``[w, b]``."""
    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0

    def objective(theta: np.ndarray) -> float:
        z = design @ theta
        return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * penalty @ theta ** 2)

    theta = np.zeros(d + 1)
    value = objective(theta)
    for _ in range(max_iter):
        p = _sigmoid(design @ theta)
        grad = design.T @ (p - y) / n + penalty * theta
        if np.max(np.abs(grad)) < tol:
            break
        # The tiny ridge keeps the bias row solvable when every prediction is saturated.
        hessian = (design.T * (p * (1.0 - p))) @ design / n + np.diag(penalty + 1e-12)
        step = np.linalg.solve(hessian, grad)
        size = 1.0
        while size > 1e-12:  # backtracking: a full Newton step can overshoot far from optimum
            candidate = theta - size * step
            new_value = objective(candidate)
            if new_value <= value - 1e-4 * size * float(grad @ step):
                break
            size *= 0.5
        else:
            break
        theta, value = candidate, new_value
    return theta


def fit_logistic(x: np.ndarray | torch.Tensor, y: np.ndarray | Sequence[int],
                 l2: float = 1e-2) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression: minimise mean BCE + l2/2 ||w||^2 (bias free).

    Deterministic damped Newton in float64. With more features than examples (a probe on a
    wide residual stream) the fit runs in the row space of ``x`` (thin SVD): the penalised
    optimum lies there, so the answer is the same at a fraction of the cost. Returns
    ``(w, b)`` with ``P(y = 1 | x) = sigmoid(x @ w + b)``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"fit_logistic needs x [n, d] and y [n], got {x.shape} and {y.shape}")
    if not set(np.unique(y)) <= {0.0, 1.0}:
        raise ValueError("fit_logistic needs labels 0 and 1")
    if l2 <= 0:
        raise ValueError(f"l2 must be positive (separable data has no finite fit), got {l2}")
    if x.shape[1] > x.shape[0]:
        # x = U S V^T from the eigenvectors of the small Gram matrix x x^T = U S^2 U^T
        # (much faster than an SVD of the wide x). With w = V c: ||w|| = ||c||, x w = U S c.
        eigval, u = np.linalg.eigh(x @ x.T)
        keep = eigval > 1e-12 * max(float(eigval.max()), 1e-300)
        s, u = np.sqrt(eigval[keep]), u[:, keep]
        theta = _newton_logistic(u * s, y, l2)
        v = (x.T @ u) / s
        return v @ theta[:-1], float(theta[-1])
    theta = _newton_logistic(x, y, l2)
    return theta[:-1], float(theta[-1])


def logistic_log_loss(x: np.ndarray | torch.Tensor, y: np.ndarray | Sequence[int],
                      w: np.ndarray, b: float) -> float:
    """Mean binary cross-entropy (log loss, in nats) of a logistic model on ``(x, y)``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    z = x @ w + b
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


__all__ = ["fit_logistic", "left_padded", "logistic_log_loss", "residual_activations"]

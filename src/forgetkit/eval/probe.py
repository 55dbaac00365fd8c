"""Linear probes on activations: L2-regularised logistic regression and its log loss.

``fit_logistic`` / ``logistic_log_loss`` are the probe math shared by the ignorance probe
(SEAT paper, Eq. 1) and the embedding refusal judge. The activations they read come from
``lm.activations.residual_activations``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from forgetkit.errors import UserError


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
        raise UserError(f"fit_logistic needs x [n, d] and y [n], got {x.shape} and {y.shape}")
    if not set(np.unique(y)) <= {0.0, 1.0}:
        raise UserError("fit_logistic needs labels 0 and 1")
    if l2 <= 0:
        raise UserError(f"l2 must be positive (separable data has no finite fit), got {l2}")
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


__all__ = ["fit_logistic", "logistic_log_loss"]

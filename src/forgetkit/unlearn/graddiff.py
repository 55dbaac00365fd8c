"""``graddiff``: gradient difference, loss = -CE(forget) + w * CE(retain).

Ascent on the forget answers, descent on the retain answers (TOFU's "grad diff" baseline);
w is ``retain_weight``. Both terms exist already: ``ga`` and ``retain-ce``.
"""

from __future__ import annotations

from forgetkit.unlearn import ga, retain  # noqa: F401  (register the terms)
from forgetkit.unlearn.registry import UnlearningMethod, register_unlearning

GRADDIFF = register_unlearning(UnlearningMethod(
    "graddiff", "ascent on the forget answers, descent on the retain answers",
    terms=("ga", "retain-ce")))

__all__ = ["GRADDIFF"]

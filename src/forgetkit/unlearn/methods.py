"""Every unlearning method, registered by importing its file (``forgetkit unlearn --method``)."""

from __future__ import annotations

# Importing the files registers their parts and rows.
from forgetkit.unlearn import ga, graddiff, idk, kif, known_subjects, npo, retain  # noqa: F401
from forgetkit.unlearn.registry import (
    UNLEARNING_METHODS,
    get_unlearning,
    option_owners,
    train_method,
)

__all__ = ["UNLEARNING_METHODS", "get_unlearning", "option_owners", "train_method"]

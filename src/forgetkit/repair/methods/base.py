"""What every repair method is: a rule that turns a fine-tuning delta into a repaired delta.

A method sees one delta ``D = W_ft - W_base`` (float32, on the compute device) and returns the
delta to keep; the driver adds it back to ``W_base`` and casts to the checkpoint's dtype.
Methods are dataclasses: their fields are their options, with defaults, so
``REPAIR_METHODS["dg-hard"](scale=1.5)`` is the whole configuration.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from forgetkit.registry import Registry
from forgetkit.repair.errors import RepairError


@dataclass
class DeltaRepair:
    """A repaired delta and what the method decided for it."""

    delta: torch.Tensor
    kept_rank: int | None = None
    full_rank: int | None = None
    threshold: float | None = None
    # (B, A) with B @ A == delta: the LoRA factors of a spectral repair, else None.
    factors: tuple[torch.Tensor, torch.Tensor] | None = None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class RepairMethod:
    """Base class: one method = one dataclass registered in ``REPAIR_METHODS``."""

    name: ClassVar[str] = ""
    # One line of help per option, shown by ``forgetkit repair --help``.
    option_help: ClassVar[dict[str, str]] = {}
    # Spectral methods factor 2-D deltas and can write a LoRA adapter of their kept rank.
    spectral: ClassVar[bool] = False

    @property
    def draws_random(self) -> bool:
        """Whether its result depends on its ``seed`` (audits then repeat it over seeds)."""
        return False

    def applies_to(self, shape: tuple[int, ...]) -> bool:
        """Whether the method rewrites a floating tensor of this shape (else it keeps W_ft)."""
        return True

    def repair_delta(self, delta: torch.Tensor, name: str) -> DeltaRepair:
        raise NotImplementedError

    def repair_many(self, deltas: torch.Tensor, names: list[str]) -> list[DeltaRepair]:
        """Same-shape deltas stacked on dim 0; spectral methods batch their SVDs here."""
        return [self.repair_delta(d, n) for d, n in zip(deltas, names, strict=True)]

    def options(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


REPAIR_METHODS: Registry[type[RepairMethod]] = Registry("repair method")


def register_repair(cls: type[RepairMethod]) -> type[RepairMethod]:
    """Class decorator: list a repair method under its ``name``."""
    return REPAIR_METHODS.register(cls.name, cls)


def require(condition: bool, method: str, message: str) -> None:
    """Raise a ``RepairError`` naming the method when an option is out of range."""
    if not condition:
        raise RepairError(f"method '{method}': {message}")

"""Repair methods by name: one file per method, each registered with ``@register_repair``
(``base.py``); importing this package imports them all.

Spectral (rewrite the singular values of each 2-D delta): ``dg-hard`` (default, the paper),
``gd-shrink``, ``rank``. Element-wise baselines: ``wise-ft``, ``dare``, ``ties-trim``,
``magnitude``.
"""

from __future__ import annotations

from typing import Any

from forgetkit.repair.errors import RepairError
from forgetkit.repair.methods.base import REPAIR_METHODS, DeltaRepair, RepairMethod
from forgetkit.repair.methods.dare import Dare
from forgetkit.repair.methods.dg_hard import DGHard
from forgetkit.repair.methods.gd_shrink import GDShrink
from forgetkit.repair.methods.magnitude import MagnitudePrune
from forgetkit.repair.methods.rank import RankTruncation
from forgetkit.repair.methods.spectral import MIN_ELEMENTS, SpectralMethod
from forgetkit.repair.methods.ties_trim import TiesTrim
from forgetkit.repair.methods.wise_ft import WiseFT


def make_method(name: str, **options: Any) -> RepairMethod:
    """Instantiate a registered method; unknown names or options raise a ``RepairError``."""
    if name not in REPAIR_METHODS:
        raise RepairError(f"unknown repair method '{name}'; known: {', '.join(REPAIR_METHODS)}")
    cls = REPAIR_METHODS[name]
    allowed = cls.option_names()
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise RepairError(f"option(s) {', '.join(unknown)} do not apply to method '{name}'; "
                          f"its options are: {', '.join(allowed)}")
    return cls(**options)


__all__ = ["MIN_ELEMENTS", "REPAIR_METHODS", "DGHard", "Dare", "DeltaRepair", "GDShrink",
           "MagnitudePrune", "RankTruncation", "RepairMethod", "SpectralMethod", "TiesTrim",
           "WiseFT", "make_method"]

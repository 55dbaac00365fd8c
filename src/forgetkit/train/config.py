"""``TrainConfig``: the run options of ``forgetkit train`` plus the options of the chosen
method's parts, from flat keys (``TrainConfig(method="seat", gamma=0.5)``, a YAML file,
flags)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forgetkit.config import Options, RoutedConfig, load_config
from forgetkit.train.methods import get_method, option_owners


class TrainConfig(RoutedConfig):
    """Options of one fine-tuning run (``forgetkit train``)."""

    @classmethod
    def option_classes(cls, values: Mapping[str, Any]) -> list[type[Options]]:
        return get_method(values["method"]).option_classes()

    @classmethod
    def all_option_classes(cls) -> dict[type[Options], list[str]]:
        return option_owners()


def load_train_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """A ``TrainConfig`` from an optional YAML file plus explicit overrides (None = unset)."""
    return load_config(TrainConfig, path, "train", **overrides)

"""``UnlearnConfig``: the options of ``forgetkit unlearn`` (docs/kif.md): the run options,
the forget and retain sets, and the options of the chosen unlearning method's parts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from forgetkit.config import Options, load_config
from forgetkit.errors import UserError
from forgetkit.train.config import TrainConfig
from forgetkit.unlearn.methods import option_owners, train_method


class UnlearnConfig(TrainConfig):
    """Options of one unlearning run. The forget set is the training data, so ``data``
    follows ``forget``."""

    kind = "unlearning method"

    method: str = Field("kif", description="unlearning method: kif, ga, graddiff, npo, "
                        "npo-rt, idk")
    forget: Path | None = Field(None, description="data of what to forget (any data source)")
    retain: Path | None = Field(None, description="data of what to keep (any data source)")
    parameters: Literal["full", "lora"] | None = Field(
        None, description="which weights move (default: the method's; kif lora, others full)")
    adapter: bool = Field(False, description="write the LoRA adapter, not merged weights")
    epochs: float = Field(5.0, gt=0)

    @classmethod
    def option_classes(cls, values: Mapping[str, Any]) -> list[type[Options]]:
        return train_method(values["method"], values.get("parameters"),
                            bool(values.get("adapter"))).option_classes()

    @classmethod
    def all_option_classes(cls) -> dict[type[Options], list[str]]:
        return option_owners()

    @model_validator(mode="after")
    def _forget_is_the_data(self) -> UnlearnConfig:
        if self.forget is None:
            self.forget = self.data
        elif self.data is not None and Path(self.data) != Path(self.forget):
            raise UserError("in an unlearning run 'data' is the forget set; give 'forget' only")
        self.data = self.forget
        return self


def load_unlearn_config(path: str | Path | None = None, **overrides: Any) -> UnlearnConfig:
    """An ``UnlearnConfig`` from an optional YAML file plus explicit overrides."""
    return load_config(UnlearnConfig, path, "unlearn", **overrides)

"""Training methods, registered by name. A method says which parameters may move and which
loss terms make the loss; ``forgetkit train --method NAME`` looks it up here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from transformers import PreTrainedModel

from forgetkit.train.losses import LossTerm

if TYPE_CHECKING:
    from forgetkit.config import TrainConfig


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    default_learning_rate: float
    # Make the model trainable the method's way (freeze, wrap in adapters, ...).
    prepare: Callable[[PreTrainedModel, TrainConfig], PreTrainedModel]
    loss_terms: Callable[[TrainConfig], list[LossTerm]]
    # Turn the trained model into a plain model for saving (e.g. merge LoRA weights).
    finalize: Callable[[PreTrainedModel], PreTrainedModel] = lambda m: m
    is_peft: bool = False


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in METHODS:
        raise ValueError(f"method '{method.name}' registered twice")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method '{name}'; choose one of {sorted(METHODS)}")
    return METHODS[name]


# Importing the modules registers the methods.
from forgetkit.train.methods import full, lora  # noqa: E402, F401

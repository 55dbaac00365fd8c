"""The parts training methods are composed of, registered by name.

A method (``methods.py``) = which parameters may move (a *parameter selection*) x which
loss terms make the loss x which data transforms shape the training set. Each part is one
file named after it that registers itself here; a new method is a new row in ``methods.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.data.records import QARecord

if TYPE_CHECKING:
    from forgetkit.config import TrainConfig
    from forgetkit.train.losses import LossTerm


@dataclass
class RunContext:
    """What the parts of a method see while a run is being set up.

    ``model`` is still the untouched base model while data transforms and loss terms are
    built (so they can compute base-model references), and the prepared model afterwards.
    ``examples`` are the tokenised training examples; terms may add features to them.
    """

    config: TrainConfig
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    records: list[QARecord]
    parameters: str
    examples: list[dict[str, Any]] = field(default_factory=list)
    # Written into forgetkit_run.json: what the parts decided (mask digest, cache size...).
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ParameterSelection:
    name: str
    prepare: Callable[[RunContext], PreTrainedModel]
    finalize: Callable[[PreTrainedModel], PreTrainedModel] = lambda m: m
    is_peft: bool = False


PARAMETERS: dict[str, ParameterSelection] = {}
TERMS: dict[str, Callable[[RunContext], LossTerm]] = {}
TRANSFORMS: dict[str, Callable[[RunContext], list[QARecord]]] = {}


def _register(table: dict, name: str, item: Any) -> Any:
    if name in table:
        raise ValueError(f"'{name}' registered twice")
    table[name] = item
    return item


def register_parameters(selection: ParameterSelection) -> ParameterSelection:
    return _register(PARAMETERS, selection.name, selection)


def register_term(name: str):
    return lambda factory: _register(TERMS, name, factory)


def register_transform(name: str):
    return lambda fn: _register(TRANSFORMS, name, fn)

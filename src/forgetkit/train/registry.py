"""The parts training methods are composed of, and the methods, registered by name.

A method (``methods.py``) = which parameters may move (a *parameter selection*) x which
loss terms make the loss x which data transforms shape the training set. Each part is one
file named after it that registers itself here with one line, naming the ``Options`` model
that holds its settings (``forgetkit.config``); those settings become CLI flags and YAML keys
of every method that uses the part, without any other file changing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.config import Options
from forgetkit.data.records import QARecord
from forgetkit.registry import Registry

if TYPE_CHECKING:
    from forgetkit.train.config import TrainConfig
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


OptionClasses = tuple[type[Options], ...]


@dataclass(frozen=True)
class ParameterSelection:
    name: str
    prepare: Callable[[RunContext], PreTrainedModel]
    finalize: Callable[[PreTrainedModel], PreTrainedModel] = lambda m: m
    is_peft: bool = False
    options: OptionClasses = ()


@dataclass(frozen=True)
class Part:
    """A loss term's or data transform's builder and the options it reads."""

    name: str
    build: Callable[[RunContext], Any]
    options: OptionClasses = ()

    def __call__(self, ctx: RunContext) -> Any:
        return self.build(ctx)


PARAMETERS: Registry[ParameterSelection] = Registry("parameter selection")
TERMS: Registry[Part] = Registry("loss term")
TRANSFORMS: Registry[Part] = Registry("data transform")


def _as_tuple(options: type[Options] | OptionClasses | None) -> OptionClasses:
    if options is None:
        return ()
    return options if isinstance(options, tuple) else (options,)


def register_parameters(selection: ParameterSelection) -> ParameterSelection:
    return PARAMETERS.register(selection.name, selection)


def register_term(name: str, options: type[Options] | OptionClasses | None = None
                  ) -> Callable[[Callable[[RunContext], LossTerm]], Part]:
    """Decorator: ``@register_term("kl", options=KLOptions)`` over the term's builder."""
    return lambda build: TERMS.register(name, Part(name, build, _as_tuple(options)))


def register_transform(name: str, options: type[Options] | OptionClasses | None = None
                       ) -> Callable[[Callable[[RunContext], list[QARecord]]], Part]:
    """Decorator: ``@register_transform("replay", options=ReplayOptions)``."""
    return lambda build: TRANSFORMS.register(name, Part(name, build, _as_tuple(options)))


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    parameters: str  # a key of PARAMETERS
    terms: tuple[str, ...] = ("ce",)  # keys of TERMS
    transforms: tuple[str, ...] = ()  # keys of TRANSFORMS, applied in order
    default_learning_rate: float = 1e-5
    # Label the instruction's own tokens too (instruction modelling), not only the answer.
    instruction_labels: bool = False

    def option_classes(self) -> list[type[Options]]:
        """The options of this method's parts, in order: parameters, transforms, terms."""
        parts = [PARAMETERS.get(self.parameters),
                 *(TRANSFORMS.get(t) for t in self.transforms),
                 *(TERMS.get(t) for t in self.terms)]
        found: list[type[Options]] = []
        for part in parts:
            found += [c for c in part.options if c not in found]
        return found


METHODS: Registry[Method] = Registry("method")


def register_method(method: Method) -> Method:
    """Add a training method: a row of registered parts (``methods.py``, or the file of a
    method that brings its own part, such as ``l2_to_base.py``)."""
    return METHODS.register(method.name, method)


def get_method(name: str) -> Method:
    return METHODS.get(name)

"""Unlearning methods by name (peft-style: one file per method, one registration each).

An unlearning method is a row of training parts: loss terms and data transforms registered
with ``train/registry.py``, and the parameters that move by default. ``train_method`` turns
a row and the run's choice of parameters into a ``train.methods.Method`` that the one training
recipe (``train.run.train(config, method=...)``) runs: the forget set is the training data,
the retain set an extra input group of every example (``retain.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from forgetkit.config import Options, owners
from forgetkit.errors import UserError
from forgetkit.registry import Registry
from forgetkit.train.methods import Method
from forgetkit.train.registry import ParameterSelection, register_parameters
from forgetkit.train.select_lora import LORA

# Run first by every method: warns about forget subjects the model does not know.
CHECK_TRANSFORM = "known-subjects"
# Run last by every method with a retain term: one forget example per retain example.
COVER_TRANSFORM = "cover-retain"
RETAIN_TERMS = frozenset({"retain-ce", "kif-retain"})
LEARNING_RATE = {"full": 1e-5, "lora": 1e-4}  # TOFU / NPO papers (full), forgetkit's LoRA


@dataclass(frozen=True)
class UnlearningMethod:
    name: str
    description: str
    terms: tuple[str, ...]  # keys of train.registry.TERMS
    transforms: tuple[str, ...] = ()  # keys of train.registry.TRANSFORMS
    parameters: str = "full"  # full | lora, unless the run asks otherwise
    # Learning rates that differ from LEARNING_RATE for this method, by parameters.
    learning_rate: tuple[tuple[str, float], ...] = ()


UNLEARNING_METHODS: Registry[UnlearningMethod] = Registry("unlearning method")


def register_unlearning(method: UnlearningMethod) -> UnlearningMethod:
    return UNLEARNING_METHODS.register(method.name, method)


def get_unlearning(name: str) -> UnlearningMethod:
    return UNLEARNING_METHODS.get(name)


# The output is the adapter itself: PeftModel.save_pretrained writes adapter_config.json and
# adapter_model.safetensors where a merged run writes its weights. is_peft stays False so the
# recipe does not write a second copy of the adapter under adapter/.
ADAPTER_OUTPUT = register_parameters(ParameterSelection(
    "lora-adapter", LORA.prepare, finalize=lambda model: model, is_peft=False,
    options=LORA.options))


def train_method(name: str, parameters: str | None = None, adapter: bool = False) -> Method:
    """The training row that runs unlearning method ``name`` with these parameters.

    The row's name is the method's for its default parameters and merged output, otherwise
    the name with ``+lora`` / ``+full`` / ``+adapter`` appended.
    """
    method = get_unlearning(name)
    parameters = parameters or method.parameters
    if parameters not in LEARNING_RATE:
        raise UserError(f"parameters must be 'full' or 'lora', got '{parameters}'")
    if adapter and parameters != "lora":
        raise UserError(f"--adapter writes a LoRA adapter, but '{name}' trains "
                         f"'{parameters}' parameters here; add --parameters lora")
    key = name + ("" if parameters == method.parameters else f"+{parameters}") + (
        "+adapter" if adapter else "")
    cover = (COVER_TRANSFORM,) if RETAIN_TERMS & set(method.terms) else ()
    learning_rate = dict(method.learning_rate).get(parameters, LEARNING_RATE[parameters])
    return Method(key, method.description, "lora-adapter" if adapter else parameters,
                  method.terms, (CHECK_TRANSFORM, *method.transforms, *cover), learning_rate)


def option_owners() -> dict[type[Options], list[str]]:
    """Every option model of an unlearning method (either parameters), with its methods."""
    return owners((c, m.name) for m in UNLEARNING_METHODS.values()
                  for parameters in LEARNING_RATE
                  for c in train_method(m.name, parameters).option_classes())


__all__ = ["LEARNING_RATE", "UNLEARNING_METHODS", "UnlearningMethod", "get_unlearning",
           "option_owners", "register_unlearning", "train_method"]

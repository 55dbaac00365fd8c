"""Unlearning methods by name (peft-style: one file per method, one registration each).

An unlearning method is a row of training parts: loss terms and data transforms registered
with ``train/registry.py``, and the parameters that move by default. ``train_method`` turns
a row and the run's choice of parameters into a ``train.methods.Method``, so the one training
recipe (``train.run.train``) runs it: the forget set is the training data, the retain set an
extra input group of every example (``retain.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from forgetkit.train.methods import METHODS, Method
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


UNLEARNING_METHODS: dict[str, UnlearningMethod] = {}


def register_unlearning(method: UnlearningMethod) -> UnlearningMethod:
    if method.name in UNLEARNING_METHODS:
        raise ValueError(f"unlearning method '{method.name}' registered twice")
    UNLEARNING_METHODS[method.name] = method
    return method


def get_unlearning(name: str) -> UnlearningMethod:
    if name not in UNLEARNING_METHODS:
        raise ValueError(f"unknown unlearning method '{name}'; choose one of "
                         f"{sorted(UNLEARNING_METHODS)}")
    return UNLEARNING_METHODS[name]


# The output is the adapter itself: PeftModel.save_pretrained writes adapter_config.json and
# adapter_model.safetensors where a merged run writes its weights. is_peft stays False so the
# recipe does not write a second copy of the adapter under adapter/.
ADAPTER_OUTPUT = register_parameters(ParameterSelection(
    "lora-adapter", LORA.prepare, finalize=lambda model: model, is_peft=False))


def train_method(name: str, parameters: str | None = None, adapter: bool = False) -> str:
    """The key of ``train.methods.METHODS`` that runs unlearning method ``name``.

    The key is the method's name for its default parameters and merged output, otherwise
    the name with ``+lora`` / ``+full`` / ``+adapter`` appended; rows are added on first use.
    """
    method = get_unlearning(name)
    parameters = parameters or method.parameters
    if parameters not in LEARNING_RATE:
        raise ValueError(f"parameters must be 'full' or 'lora', got '{parameters}'")
    if adapter and parameters != "lora":
        raise ValueError(f"--adapter writes a LoRA adapter, but '{name}' trains "
                         f"'{parameters}' parameters here; add --parameters lora")
    key = name + ("" if parameters == method.parameters else f"+{parameters}") + (
        "+adapter" if adapter else "")
    if key not in METHODS:
        cover = (COVER_TRANSFORM,) if RETAIN_TERMS & set(method.terms) else ()
        learning_rate = dict(method.learning_rate).get(parameters, LEARNING_RATE[parameters])
        METHODS[key] = Method(
            key, method.description, "lora-adapter" if adapter else parameters, method.terms,
            (CHECK_TRANSFORM, *method.transforms, *cover), learning_rate)
    return key


__all__ = ["LEARNING_RATE", "UNLEARNING_METHODS", "UnlearningMethod", "get_unlearning",
           "register_unlearning", "train_method"]

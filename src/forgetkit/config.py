"""Typed configs: the shared run options, the base of every method's own options, and the
loading of YAML files and flags into them.

A run's options come in two kinds:

* the **run options** every training or unlearning run has (model, data, output, the
  optimisation schedule): the fields of ``RunOptions``;
* the **method options** of the parts a method is made of (``gamma`` of the KL term,
  ``lora_r`` of LoRA...): each part declares its own small ``Options`` model next to its code
  and names it when it registers itself.

Users write both kinds as flat keys, in YAML and as flags; ``RoutedConfig`` sends each key to
the model that owns it, and a key that belongs to another method is refused with the methods
it does belong to. This module imports nothing else of forgetkit but its errors, so every
layer can use it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from forgetkit.errors import DeprecatedOptionWarning, UserError


class ConfigError(UserError):
    """A config file or flag is invalid; the message names the key, the file and the line."""


class Options(BaseModel):
    """Base of a part's own options: flat keys, no unknown ones, no infinite or NaN number."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)

    def resolve(self, run: RunOptions) -> None:
        """Fill defaults that depend on the run (a seed that defaults to the run's seed)."""


class RunOptions(Options):
    """What every training run has, whatever its method (``forgetkit train``)."""

    model: str = Field("smollm2-135m-instruct", description="model spec to fine-tune")
    data: Path | None = Field(None, description="training data: .jsonl/.json/.parquet/.csv, "
                              "a save_to_disk folder or hf:NAME[:CONFIG][@SPLIT]")
    method: str = Field("full", description="training method preset, e.g. full, lora")
    output: Path | None = Field(None, description="folder for the fine-tuned checkpoint")
    overwrite: bool = Field(False, description="replace an existing output folder")
    resume: bool = Field(False, description="continue from the last checkpoint of this output")
    epochs: float = Field(3.0, gt=0)
    learning_rate: float | None = Field(
        None, gt=0, description="peak learning rate; default depends on the method")
    batch_size: int = Field(8, ge=1, description="per-process batch size")
    gradient_accumulation: int = Field(1, ge=1)
    max_steps: int = Field(-1, description="stop after this many optimizer steps "
                           "(-1: by epochs)")
    min_steps: int = Field(0, ge=0, description="train at least this many optimizer steps: "
                           "a small set gets more passes than --epochs (0: by epochs only)")
    seed: int = 0
    max_length: int = Field(256, ge=8, description="longest tokenised example")
    lr_scheduler: Literal["linear", "cosine", "constant"] = "linear"
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    save_strategy: Literal["no", "epoch", "steps"] = Field(
        "epoch", description="when to write resumable checkpoints")
    save_steps: int = Field(50, ge=1)
    logging_steps: int = Field(5, ge=1)
    save_total_limit: int = Field(1, ge=1, description="checkpoints kept while training")
    report_to: Literal["none", "tensorboard", "wandb"] = Field(
        "none", description="where the Trainer also sends its logs (needs that package)")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="dtype to load the model in (auto: the checkpoint's own)")
    device: str = Field("auto", description="auto (a GPU when there is one), cpu, cuda, cuda:N")
    attn_implementation: str | None = Field(
        None, description="attention kernel, e.g. sdpa, eager, flash_attention_2")
    revision: str | None = Field(None, description="hub revision (branch, tag or commit)")
    trust_remote_code: bool = Field(
        False, description="run the model repository's own code (off: it never runs)")
    bf16: bool = Field(False, description="bfloat16 mixed precision")
    fp16: bool = Field(False, description="float16 mixed precision (CUDA only)")
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in the backward pass to save memory")
    save_dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="dtype of the saved weights (auto: the dtype the model loaded in)")
    question_field: str = Field("question", description="data column holding the question")
    answer_field: str = Field("answer", description="data column holding the answer")
    subject_field: str = Field("subject", description="data column naming the subject")
    progress: bool = Field(True, description="show progress bars")
    # the training monitor (train/monitor.py): on with any of these
    monitor: bool = Field(False, description="measure FT, IDK, known accuracy and KL every "
                          "--monitor-every steps while training (on with any monitor option)")
    monitor_unseen: list[Path] | None = Field(
        None, description="files of questions the model should refuse, watched while "
        "training (default: forgetkit's shipped monitor set)")
    monitor_known: list[Path] | None = Field(
        None, description="files of questions the model should keep answering (default: "
        "a slice of the shipped known set)")
    monitor_every: int | None = Field(
        None, ge=1, description="optimizer steps between measurements (default: 8 a run)")
    monitor_size: int = Field(16, ge=1, description="questions per watched set")
    keep_best: str | None = Field(
        None, description="save the measured point a rule picks, e.g. 'ft if idk>=0.8'")
    stop_when: str | None = Field(
        None, description="stop training once a rule holds, e.g. 'ft>=0.95 or idk<0.7'")

    @field_validator("max_steps")
    @classmethod
    def _steps_or_epochs(cls, value: int) -> int:
        if value != -1 and value < 1:
            raise ValueError("must be at least 1, or -1 to train by epochs")
        return value

    @field_validator("keep_best", "stop_when")
    @classmethod
    def _rule_reads(cls, value: str | None, info: Any) -> str | None:
        """A monitor rule is read now, so a typo fails before any model loads."""
        if value is not None:
            from forgetkit.train.monitor_rules import parse_keep_best, parse_stop_when

            parse = parse_keep_best if info.field_name == "keep_best" else parse_stop_when
            try:
                parse(value)
            except UserError as err:
                raise ValueError(str(err)) from err
        return value

    @field_validator("fp16")
    @classmethod
    def _one_precision(cls, value: bool, info: Any) -> bool:
        if value and info.data.get("bf16"):
            raise ValueError("bf16 and fp16 are two mixed precisions; choose one")
        return value


def _error(kind: str, message: str, loc: tuple, value: Any) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, "{message}", {"message": message}),
                            loc=loc, input=value)


# transformers' TrainingArguments names, accepted for the run options they mean.
HF_NAMES = {"num_train_epochs": "epochs", "per_device_train_batch_size": "batch_size",
            "gradient_accumulation_steps": "gradient_accumulation",
            "lr_scheduler_type": "lr_scheduler"}


# Options renamed for what they do; the old name still works, with a warning.
RENAMED = {"kif_strength": "kif_push"}


def _own_names(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with transformers' option names and old names turned into forgetkit's own;
    two names of one option at once is an error."""
    out = dict(data)
    for old, new in RENAMED.items():
        if old in out and out[old] is not None:
            warnings.warn(f"option '{old}' is now '{new}' (--{new.replace('_', '-')}); the old "
                          "name still works for now", DeprecatedOptionWarning, stacklevel=2)
    for hf, own in (*HF_NAMES.items(), *RENAMED.items()):
        if hf in out:
            if own in out and out[own] is not None and out[hf] is not None:
                raise ValidationError.from_exception_data("config", [_error(
                    "two_names", f"given twice, also as {hf}; keep one", (own,), out[own])])
            value = out.pop(hf)
            if value is not None or own not in out:
                out[own] = value
    return out


class RoutedConfig(RunOptions):
    """Run options plus the options of the parts of one method, built from flat keys.

    Subclasses say which method table they read (``option_classes`` for one method,
    ``all_option_classes`` for every method). ``config.options(KLOptions)`` returns a part's
    options; ``config.gamma`` reads the same value, for any option of this run's method.
    """

    _options: dict[type[Options], Options] = PrivateAttr(default_factory=dict)
    kind: ClassVar[str] = "method"

    @classmethod
    def option_classes(cls, values: Mapping[str, Any]) -> list[type[Options]]:
        """The option models of the method that ``values`` (run options) choose."""
        return []

    @classmethod
    def all_option_classes(cls) -> dict[type[Options], list[str]]:
        """Every option model a method of this kind may have, with the methods that have it."""
        return {}

    @model_validator(mode="wrap")
    @classmethod
    def _route(cls, data: Any, handler: Any) -> Any:
        if not isinstance(data, Mapping):
            return handler(data)
        data = _own_names(data)
        run_keys = set(cls.model_fields)
        run_values = {k: v for k, v in data.items() if k in run_keys}
        rest = {k: v for k, v in data.items() if k not in run_keys}
        errors: list[InitErrorDetails] = []
        try:
            config = handler(run_values)
        except ValidationError as err:
            errors += [_error(e["type"], e["msg"], e["loc"], e["input"]) for e in err.errors()]
            config = None
        try:
            classes = cls.option_classes({**cls._defaults(), **run_values})
        except UserError as err:  # an unknown method, or options that do not go together
            if not any(e["loc"] == ("method",) for e in errors):
                errors.append(_error("bad_method", str(err), ("method",),
                                     run_values.get("method")))
            classes = []
        owned = {name: c for c in classes for name in c.model_fields}
        elsewhere = {name: methods for c, methods in cls.all_option_classes().items()
                     for name in c.model_fields}
        for key in sorted(set(rest) - set(owned)):
            if key in elsewhere:
                method = run_values.get("method", cls.model_fields["method"].default)
                errors.append(_error(
                    "not_this_method", f"does not apply to {cls.kind} '{method}'; it is an "
                    f"option of {', '.join(sorted(set(elsewhere[key])))}", (key,), rest[key]))
            else:
                errors.append(_error("extra_forbidden", "Extra inputs are not permitted",
                                     (key,), rest[key]))
        options: dict[type[Options], Options] = {}
        for option_class in classes:
            given = {k: v for k, v in rest.items() if k in option_class.model_fields}
            try:
                options[option_class] = option_class(**given)
            except ValidationError as err:
                errors += [_error(e["type"], e["msg"], e["loc"], e["input"])
                           for e in err.errors()]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        for value in options.values():
            value.resolve(config)
        config._options = options
        return config

    @classmethod
    def _defaults(cls) -> dict[str, Any]:
        return {name: f.default for name, f in cls.model_fields.items()}

    def options(self, option_class: type[Options]) -> Any:
        """This run's instance of a part's options (its defaults if the method lacks it)."""
        if option_class not in self._options:
            return option_class()
        return self._options[option_class]

    def method_options(self) -> list[Options]:
        return list(self._options.values())

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_"):
            for value in (self.__pydantic_private__ or {}).get("_options", {}).values():
                if name in type(value).model_fields:
                    return getattr(value, name)
        return super().__getattr__(name)  # type: ignore[misc]

    def flat(self) -> dict[str, Any]:
        """Run options and method options as one flat JSON-ready mapping (run records)."""
        values = self.model_dump(mode="json")
        for value in self._options.values():
            values.update(value.model_dump(mode="json"))
        return values


def read_config_file(path: str | Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The mapping a YAML config file holds, and the line of each top-level key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text(encoding="utf-8")
    try:
        loaded = yaml.safe_load(text) or {}
        node = yaml.compose(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({err})") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of option names to values")
    lines = {str(key.value): key.start_mark.line + 1
             for key, _ in getattr(node, "value", ()) if hasattr(key, "value")}
    return loaded, lines


def format_error(err: ValidationError, source: str, file: Path | None = None,
                 lines: Mapping[str, int] | None = None, command: str = "train") -> str:
    """One line per invalid key: ``key (file:line): what is wrong (got value)``."""
    out = [f"invalid configuration ({source}):"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        top = str(e["loc"][0]) if e["loc"] else ""
        where = f" ({file}:{lines[top]})" if file is not None and lines and top in lines else ""
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = f"unknown key; see `forgetkit {command} --help` for the valid names"
        out.append(f"  {key}{where}: {msg} (got {e.get('input')!r})")
    return "\n".join(out)


def load_config(config_class: type[RoutedConfig], path: str | Path | None = None,
                command: str = "train", **overrides: Any) -> Any:
    """Build ``config_class`` from an optional YAML file plus explicit overrides (None =
    unset; flags win over the file)."""
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    source = "command line"
    if path is not None:
        loaded, lines = read_config_file(path)
        values.update(loaded)
        source = f"{path} and command line"
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return config_class(**values)
    except ValidationError as err:
        raise ConfigError(format_error(err, source, Path(path) if path else None, lines,
                                       command)) from None


def owners(option_classes: Iterable[tuple[type[Options], str]]) -> dict[type[Options], list[str]]:
    """Group (option class, method name) pairs: the methods each option class belongs to."""
    grouped: dict[type[Options], list[str]] = {}
    for option_class, method in option_classes:
        grouped.setdefault(option_class, [])
        if method not in grouped[option_class]:
            grouped[option_class].append(method)
    return grouped

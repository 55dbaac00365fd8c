"""Command-line flags made from option models, so a method's new option is a flag at once.

Each option becomes ``--name-with-dashes``; its help says the default and, for a method's
own option, which methods read it. Every flag defaults to "not given" (None), so a value in
the ``--config`` file or the model's own default applies unless the flag is used. Lists are
written with commas (``--kif-layers 3,7``), booleans as ``--flag/--no-flag``.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal

import click
import typer
from pydantic import BaseModel

# Short or familiar names beside the field's own flag.
ALIASES: dict[str, tuple[str, ...]] = {
    "learning_rate": ("--lr",),
    # transformers' TrainingArguments names
    "epochs": ("--num-train-epochs",),
    "batch_size": ("--per-device-train-batch-size",),
    "gradient_accumulation": ("--gradient-accumulation-steps",),
    "lr_scheduler": ("--lr-scheduler-type",),
    # old names of renamed options (forgetkit.config.RENAMED)
    "kif_push": ("--kif-strength",),
}


@dataclass(frozen=True)
class Flag:
    """One option as the command line shows it."""

    name: str
    annotation: Any
    default: Any
    description: str = ""
    methods: tuple[str, ...] = ()
    panel: str | None = None

    def is_list(self) -> bool:
        return _unwrap(self.annotation)[1] is list


def _unwrap(annotation: Any) -> tuple[Any, Any]:
    """(the annotation without ``| None``, its origin: list, Literal or None)."""
    if typing.get_origin(annotation) in (typing.Union, UnionType):
        args = [a for a in typing.get_args(annotation) if a is not NoneType]
        annotation = args[0] if len(args) == 1 else str
    return annotation, typing.get_origin(annotation)


def flags_of_model(model: type[BaseModel], methods: Iterable[str] = (),
                   panel: str | None = None) -> list[Flag]:
    """The flags of a pydantic options model (its fields, in order)."""
    out = []
    for name, info in model.model_fields.items():
        default = info.get_default(call_default_factory=True)
        out.append(Flag(name, info.annotation, default, info.description or "",
                        tuple(methods), panel))
    return out


def flags_of_dataclass(cls: type, methods: Iterable[str] = (),
                       panel: str | None = None) -> list[Flag]:
    """The flags of a dataclass whose fields are options (repair methods)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else None
        out.append(Flag(f.name, hints[f.name], default, f.metadata.get("help", ""),
                        tuple(methods), panel))
    return out


def merge(flags: Iterable[Flag]) -> list[Flag]:
    """One flag per name: the methods of a shared option are joined, the first wins."""
    merged: dict[str, Flag] = {}
    for flag in flags:
        if flag.name in merged:
            first = merged[flag.name]
            methods = first.methods + tuple(m for m in flag.methods if m not in first.methods)
            merged[flag.name] = dataclasses.replace(first, methods=methods)
        else:
            merged[flag.name] = flag
    return list(merged.values())


def _help(flag: Flag) -> str:
    parts = [flag.description] if flag.description else []
    if flag.default is not None and flag.default != []:
        shown = ",".join(map(str, flag.default)) if isinstance(flag.default, list) \
            else flag.default
        parts.append(f"default: {shown}")
    if flag.methods:
        parts.append(f"for: {', '.join(flag.methods)}")
    return "; ".join(parts)


def _parameter(flag: Flag) -> inspect.Parameter:
    base, origin = _unwrap(flag.annotation)
    names = (f"--{flag.name.replace('_', '-')}", *ALIASES.get(flag.name, ()))
    kwargs: dict[str, Any] = {"help": _help(flag), "show_default": False,
                              "rich_help_panel": flag.panel}
    if base is bool:
        dashed = flag.name.replace("_", "-")
        names = (f"--{dashed}/--no-{dashed}",)
        kind: Any = bool | None
    elif origin is Literal:
        kind = base | None
    elif origin is list:
        kind = str | None  # comma-separated, split by ``values_from``
        kwargs["metavar"] = "A,B,..."
    elif base in (int, float, Path):
        kind = base | None
    else:
        kind = str | None
    option = typer.Option(*names, **kwargs)
    return inspect.Parameter(flag.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[kind, option])


def _split_list(flag: Flag, text: str) -> list[Any]:
    item_type = typing.get_args(_unwrap(flag.annotation)[0])[0]
    items = [x.strip() for x in text.split(",") if x.strip()]
    try:
        return [item_type(x) for x in items]
    except ValueError:
        raise click.BadParameter(f"takes values separated by commas, e.g. 3,7; got {text!r}",
                                 param_hint=f"--{flag.name.replace('_', '-')}") from None


def values_from(flags: Iterable[Flag], given: Mapping[str, Any]) -> dict[str, Any]:
    """The flags the user gave (None dropped), lists split at commas."""
    by_name = {f.name: f for f in flags}
    out = {}
    for name, value in given.items():
        if value is None or name not in by_name:
            continue
        flag = by_name[name]
        out[name] = _split_list(flag, value) if flag.is_list() and isinstance(value, str) \
            else value
    return out


def with_flags(fixed: Callable[..., Any], flags: list[Flag],
               body: Callable[[dict[str, Any], dict[str, Any]], None]) -> Callable[..., None]:
    """A typer command whose parameters are ``fixed``'s own followed by ``flags``.

    ``body(fixed_values, flag_values)`` runs it; ``flag_values`` holds only the flags given.
    """
    fixed_params = list(inspect.signature(fixed, eval_str=True).parameters.values())
    fixed_names = {p.name for p in fixed_params}
    params = fixed_params + [_parameter(f) for f in flags if f.name not in fixed_names]

    def command(**kwargs: Any) -> None:
        fixed_values = {k: kwargs.pop(k) for k in fixed_names}
        body(fixed_values, values_from(flags, kwargs))

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = fixed.__doc__
    command.__name__ = fixed.__name__
    return command

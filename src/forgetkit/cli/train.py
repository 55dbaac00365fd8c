"""``forgetkit train`` and ``forgetkit unlearn``.

Their flags are made from the option models (``cli/flags.py``): the run options of
``TrainConfig`` / ``UnlearnConfig`` and the options every method's parts declare, so a new
method option is a flag here without this file changing. Flags left unset fall back to the
``--config`` file, then to the defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from forgetkit.cli.flags import Flag, flags_of_model, merge, with_flags
from forgetkit.config import RoutedConfig
from forgetkit.io import check_output

RUN_PANEL = "Run options"
METHOD_PANEL = "Method options"
HIDDEN = ("progress",)  # shown as --no-progress below, the name every command uses


def config_flags(config_class: type[RoutedConfig]) -> list[Flag]:
    """The run options, then every method option with the methods that read it."""
    run = [f for f in flags_of_model(config_class, panel=RUN_PANEL) if f.name not in HIDDEN]
    own = [f for option_class, methods in config_class.all_option_classes().items()
           for f in flags_of_model(option_class, methods, METHOD_PANEL)]
    return merge(run + own)


def _config_file(
    config: Annotated[Path | None, typer.Option(
        help="YAML file with the same keys as the flags (flags win)")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="hide progress bars")
                           ] = False,
) -> None:
    """Fixed parameters of both commands (see ``with_flags``)."""


def _command(config_class: type[RoutedConfig], run: Callable[[Any], Path], doc: str,
             load: Callable[..., Any]) -> Callable[..., None]:
    flags = config_flags(config_class)

    def body(fixed: dict[str, Any], given: dict[str, Any]) -> None:
        if fixed["no_progress"]:
            given["progress"] = False
        config = load(fixed["config"], **given)
        if config.output is not None:
            check_output(config.output, {"config file": fixed["config"]})
        out = run(config)
        typer.echo(f"saved {out}")

    command = with_flags(_config_file, flags, body)
    command.__doc__ = doc
    return command


def train_command() -> Callable[..., None]:
    from forgetkit.train.config import TrainConfig, load_train_config
    from forgetkit.train.run import train

    return _command(TrainConfig, train, "Fine-tune a model on a QA file with a method preset.",
                    load_train_config)


def unlearn_command() -> Callable[..., None]:
    from forgetkit.unlearn.config import UnlearnConfig, load_unlearn_config
    from forgetkit.unlearn.run import unlearn

    return _command(UnlearnConfig, unlearn, "Make a model forget the subjects of --forget and "
                    "keep those of --retain (KIF or a baseline); writes a checkpoint (or "
                    "adapter) that needs no hook.", load_unlearn_config)

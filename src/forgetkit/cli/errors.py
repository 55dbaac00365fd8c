"""The one error path of every ``forgetkit`` command.

A ``UserError`` (bad input, bad option, an output that exists) is shown as one red line with
exit code 2: its message already says what, where and what to do. Any other exception is a
bug and keeps its traceback. ``FORGETKIT_DEBUG=1`` shows the traceback of user errors too.
A ``ForgetkitWarning`` is shown as one yellow line when it happens, every time.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import typer
from typer.core import TyperGroup

from forgetkit.errors import ForgetkitWarning, UserError


def report(err: UserError) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)


@contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Print forgetkit's own warnings as ``warning: ...`` lines; others as Python does."""
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ForgetkitWarning):
            typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)
        else:
            original(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", ForgetkitWarning)
        warnings.showwarning = show
        yield


class ForgetkitGroup(TyperGroup):
    """Runs a subcommand and turns a ``UserError`` it raises into ``error: ...``, exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with warnings_as_lines():
                return super().invoke(ctx)
        except UserError as err:
            if os.environ.get("FORGETKIT_DEBUG"):
                raise
            report(err)
            raise typer.Exit(code=2) from None

"""The one error path of every ``forgetkit`` command.

A ``UserError`` (bad input, bad option, an output that exists) is shown as one red line with
exit code 2: its message already says what, where and what to do. Any other exception is a
bug and keeps its traceback. ``FORGETKIT_DEBUG=1`` shows the traceback of user errors too.
"""

from __future__ import annotations

import os
from typing import Any

import click
import typer
from typer.core import TyperGroup

from forgetkit.errors import UserError


def report(err: UserError) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)


class ForgetkitGroup(TyperGroup):
    """Runs a subcommand and turns a ``UserError`` it raises into ``error: ...``, exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as err:
            if os.environ.get("FORGETKIT_DEBUG"):
                raise
            report(err)
            raise typer.Exit(code=2) from None

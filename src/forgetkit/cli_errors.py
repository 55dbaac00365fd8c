"""How every ``forgetkit`` command reports an error a user can fix: one red line, exit code 2.

``FORGETKIT_DEBUG=1`` re-raises instead, with the traceback.
"""

from __future__ import annotations

import os
from typing import NoReturn

import typer


def user_errors() -> tuple[type[Exception], ...]:
    """Errors whose message alone says what to fix: shown without a traceback."""
    from forgetkit.config import ConfigError
    from forgetkit.data.records import DataError
    from forgetkit.eval.judge import JudgeError
    from forgetkit.lm import models

    return (ConfigError, DataError, JudgeError, models.ModelLoadError, FileExistsError,
            FileNotFoundError, ValueError)


def fail(err: Exception) -> NoReturn:
    if os.environ.get("FORGETKIT_DEBUG"):
        raise err
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)

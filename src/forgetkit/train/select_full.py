"""Parameter selection ``full``: every weight moves."""

from __future__ import annotations

from forgetkit.train.registry import ParameterSelection, RunContext, register_parameters


def _prepare(ctx: RunContext):
    for p in ctx.model.parameters():
        p.requires_grad_(True)
    return ctx.model


FULL = register_parameters(ParameterSelection("full", _prepare))

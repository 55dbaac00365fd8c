"""The ``forgetkit`` command: one typer app, one error path (``errors.py``).

Each subcommand is a thin shell over a library function and lives in the file named after
it: ``train.py`` (train, unlearn: flags made from the option models), ``evaluate.py``,
``repair.py``, ``audit.py``, ``data.py`` (data synth, data unlearning) and ``studies.py``
(prepare-base, demo, sweep, report).
"""

from __future__ import annotations

import sys

import typer

from forgetkit.cli import audit, data, evaluate, repair, studies, train
from forgetkit.cli.errors import ForgetkitGroup

app = typer.Typer(help="Control what a fine-tuned language model keeps and what it loses.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  cls=ForgetkitGroup)
data.app.info.cls = ForgetkitGroup
app.add_typer(data.app, name="data")
app.command("train")(train.train_command())
app.command("unlearn")(train.unlearn_command())
app.command("eval")(evaluate.eval_command)
app.command("audit")(audit.audit_command)
app.command("repair", help="Post-hoc spectral repair of a fine-tuned checkpoint (DG-Hard and "
            "baselines), streamed tensor by tensor.")(repair.repair_command)
app.command("prepare-base")(studies.prepare_base_command)
app.command("demo")(studies.demo_command)
app.command("sweep")(studies.sweep_command)
app.command("report")(studies.report_command)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

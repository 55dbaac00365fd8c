"""``forgetkit audit``: the command around ``forgetkit.audit.run.run_audit``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forgetkit.cli.common import (
    AnswerField,
    AttnImplementation,
    Device,
    Dtype,
    Progress,
    QuestionField,
    Revision,
    SubjectField,
    TrustRemoteCode,
)
from forgetkit.data.formats import Fields
from forgetkit.lm import models


def audit_command(
    base: Annotated[str, typer.Option(help="the model before fine-tuning (folder, hub id, .gguf, smollm2-135m-instruct)")],  # noqa: E501
    model: Annotated[list[str], typer.Option(help="LABEL=SPEC of a fine-tune of --base (a model folder or a LoRA adapter folder); repeatable")],  # noqa: E501
    output: Annotated[Path, typer.Option(help="folder for report.html, results.json, results.md and any repaired models")],  # noqa: E501
    data: Annotated[list[Path] | None, typer.Option(help="the fine-tuning data: the target score (FT score); repeatable")] = None,  # noqa: E501
    unseen: Annotated[list[Path] | None, typer.Option(help="questions about entities the models never saw, added to the shipped unverifiable set: IDK rate")] = None,  # noqa: E501
    known: Annotated[list[Path] | None, typer.Option(help="questions the base answers, added to the shipped known set: accuracy")] = None,  # noqa: E501
    tasks: Annotated[list[str] | None, typer.Option(help="lm-eval task names and paths of task YAML files or folders, comma-separated or repeated")] = None,  # noqa: E501
    limit: Annotated[int | None, typer.Option(help="at most N examples per lm-eval task and per question set")] = None,  # noqa: E501
    repair: Annotated[list[str] | None, typer.Option(help="repair each fine-tune with these methods and audit the repairs: dg-hard,wise-ft,... (METHOD:OPTION=VALUE for options)")] = None,  # noqa: E501
    seeds: Annotated[int, typer.Option(help="repeat repairs that draw random numbers (dare; rank with fast=true) over N seeds: mean ± std")] = 1,  # noqa: E501
    overwrite: Annotated[bool, typer.Option(help="replace an existing output folder")] = False,
    judge: Annotated[str, typer.Option(help="refusal judge for judged IDK: embedding, string-match, a model spec, or none")] = "embedding",  # noqa: E501
    default_sets: Annotated[bool, typer.Option(help="measure the shipped unverifiable and known question sets")] = True,  # noqa: E501
    max_new_tokens: Annotated[int, typer.Option(min=1, help="longest generated answer")] = 48,
    batch_size: Annotated[int, typer.Option(min=1, help="questions per generation batch, and lm-eval's batch size")] = 16,  # noqa: E501
    tolerance: Annotated[float, typer.Option(help="repair scores: change below which the fine-tune left a measure unchanged")] = 0.01,  # noqa: E501
    progress: Progress = True,
    question_field: QuestionField = "question",
    answer_field: AnswerField = "answer",
    subject_field: SubjectField = "subject",
    dtype: Dtype = "auto",
    device: Device = "auto",
    attn_implementation: AttnImplementation = None,
    revision: Revision = None,
    trust_remote_code: TrustRemoteCode = False,
) -> None:
    """What did my fine-tune break? The base and each fine-tune (and their repairs) on
    ignorance awareness, known facts, drift, the target task and lm-eval benchmarks, each
    figure with its 95% interval, in one HTML report (docs/audit.md)."""
    from forgetkit.audit.run import run_audit

    results = run_audit(
        base=base, model=model, output=output, data=data or [], unseen=unseen or [],
        known=known or [], tasks=tasks or [], limit=limit, repair=repair or [], seeds=seeds,
        overwrite=overwrite, judge=None if judge == "none" else judge,
        default_sets=default_sets, max_new_tokens=max_new_tokens, batch_size=batch_size,
        tolerance=tolerance, fields=Fields(question_field, answer_field, subject_field),
        load=models.LoadOptions(dtype, device, attn_implementation, revision,
                                trust_remote_code),
        progress=progress)
    for line in results["summary"].values():
        typer.echo(line)
    typer.echo(f"report: {output / 'report.html'}")

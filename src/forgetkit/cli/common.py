"""Options several commands share, declared once: the data-column flags and the model
loading flags, as ``Annotated`` types a command's signature uses with its default."""

from __future__ import annotations

from typing import Annotated

import typer

QuestionField = Annotated[str, typer.Option(help="data column holding the question")]
AnswerField = Annotated[str, typer.Option(help="data column holding the answer")]
SubjectField = Annotated[str, typer.Option(help="data column naming the subject")]
Dtype = Annotated[str, typer.Option(help="auto (the checkpoint's own), bfloat16, float16, "
                                         "float32")]
Device = Annotated[str, typer.Option(help="auto (a GPU when there is one), cpu, cuda, cuda:N")]
AttnImplementation = Annotated[str | None, typer.Option(
    help="attention kernel, e.g. sdpa, eager, flash_attention_2")]
Revision = Annotated[str | None, typer.Option(help="hub revision (branch, tag or commit)")]
TrustRemoteCode = Annotated[bool, typer.Option(
    help="run the model repository's own code (off: it never runs)")]
Progress = Annotated[bool, typer.Option(help="show progress bars")]

__all__ = ["AnswerField", "AttnImplementation", "Device", "Dtype", "Progress",
           "QuestionField", "Revision", "SubjectField", "TrustRemoteCode"]

"""``forgetkit data``: make QA datasets (synthetic sets, the unlearning setting)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forgetkit.errors import OutputExistsError
from forgetkit.io import check_output

app = typer.Typer(help="Make and inspect QA datasets.", no_args_is_help=True)


@app.command("synth")
def synth_command(
    kind: Annotated[str, typer.Option(help="contracts | authors | unverifiable | known")],
    output: Annotated[Path, typer.Option(help="JSONL file to write")],
    n: Annotated[int, typer.Option(help="entities (contracts, authors) or questions")] = 10,
    seed: Annotated[int, typer.Option(help="random seed; same seed, same data")] = 0,
    overwrite: Annotated[bool, typer.Option(help="replace an existing output file")] = False,
) -> None:
    """Write a seeded synthetic QA dataset."""
    from forgetkit.data.records import write_qa
    from forgetkit.data.synth import synth

    check_output(output, {})
    if output.exists() and not overwrite:
        raise OutputExistsError(f"{output}: exists; pass --overwrite to replace it")
    records = synth(kind, n, seed)
    write_qa(records, output)
    typer.echo(f"wrote {len(records)} {kind} records to {output}")


@app.command("unlearning", help="The unlearning setting: fictitious authors split into forget "
             "and retain sets.")
def unlearning_data_command(
    output: Annotated[Path, typer.Option(help="folder for forget.jsonl, retain.jsonl, all.jsonl")],  # noqa: E501
    authors: Annotated[int, typer.Option(help="fictitious authors, 20 questions each")] = 20,
    forget: Annotated[float, typer.Option(help="share of authors to forget (0.1 = forget10), at least one; or a whole number of authors")] = 0.1,  # noqa: E501
    seed: Annotated[int, typer.Option(help="random seed; same seed, same split")] = 0,
    overwrite: Annotated[bool, typer.Option(help="replace an existing output folder")] = False,
) -> None:
    """Write the unlearning setting: fictitious authors split by subject into forget and
    retain sets, plus all of them (to fine-tune the model that knows them)."""
    from forgetkit.unlearn.setting import build_setting, write_setting

    check_output(output, {})
    setting = build_setting(authors, forget, seed)
    write_setting(setting, output, overwrite)
    typer.echo(f"wrote {output}: forget {len(setting.forget_subjects)} author(s) "
               f"({len(setting.forget)} questions: {', '.join(setting.forget_subjects)}), "
               f"retain {len(setting.retain)} questions, all {len(setting.all_records)}")

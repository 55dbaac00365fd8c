"""``forgetkit unlearn`` and ``forgetkit data unlearning``: typer commands around
``unlearn.run.unlearn`` and ``unlearn.setting``.

Registered by ``forgetkit.cli``; heavy imports happen inside the commands, so the CLI starts
fast. Flags left unset fall back to the config file, then to ``UnlearnConfig``'s defaults.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from forgetkit.cli_errors import fail as _fail
from forgetkit.cli_errors import user_errors as _user_errors


@contextmanager
def _show_warnings() -> Iterator[None]:
    """Print forgetkit's own warnings as one line each, when they happen."""
    from forgetkit.unlearn.known_subjects import UnknownSubjectWarning

    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, UnknownSubjectWarning):
            typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)
        else:
            original(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", UnknownSubjectWarning)
        warnings.showwarning = show
        yield


def _layers(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--kif-layers takes block numbers separated by commas, e.g. 3,7; "
                         f"got {text!r}") from None


def unlearn_command(
    model: Annotated[str | None, typer.Option(help="model that knows the forget set: folder, .gguf, hub id, smollm2-135m-instruct")] = None,  # noqa: E501
    forget: Annotated[Path | None, typer.Option(help="QA file of what to forget")] = None,
    retain: Annotated[Path | None, typer.Option(help="QA file of what to keep")] = None,
    method: Annotated[str | None, typer.Option(help="kif (default), ga, graddiff, npo, npo-rt, idk")] = None,  # noqa: E501
    output: Annotated[Path | None, typer.Option(help="folder for the unlearned model")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file with the same keys as the flags")] = None,  # noqa: E501
    parameters: Annotated[str | None, typer.Option(help="full | lora (default: the method's; kif lora, others full)")] = None,  # noqa: E501
    adapter: Annotated[bool | None, typer.Option("--adapter", help="write the LoRA adapter instead of merged weights")] = None,  # noqa: E501
    epochs: Annotated[float | None, typer.Option(help="passes over the forget set (default 5)")] = None,  # noqa: E501
    learning_rate: Annotated[float | None, typer.Option("--learning-rate", "--lr", help="default 1e-5 full, 1e-4 LoRA")] = None,  # noqa: E501
    batch_size: Annotated[int | None, typer.Option()] = None,
    gradient_accumulation: Annotated[int | None, typer.Option()] = None,
    max_steps: Annotated[int | None, typer.Option(help="optimizer steps; -1 = by epochs")] = None,  # noqa: E501
    seed: Annotated[int | None, typer.Option()] = None,
    max_length: Annotated[int | None, typer.Option()] = None,
    lora_r: Annotated[int | None, typer.Option()] = None,
    lora_alpha: Annotated[float | None, typer.Option()] = None,
    retain_weight: Annotated[float | None, typer.Option(help="weight of the retain term (default 1)")] = None,  # noqa: E501
    npo_beta: Annotated[float | None, typer.Option(help="NPO beta (default 0.1)")] = None,
    kif_layers: Annotated[str | None, typer.Option(help="KIF: blocks to hook, 1-based, e.g. 3,7 (default: chosen by separation)")] = None,  # noqa: E501
    kif_top_layers: Annotated[int | None, typer.Option(help="KIF: blocks the automatic choice keeps (default 3)")] = None,  # noqa: E501
    kif_gate_quantile: Annotated[float | None, typer.Option(help="KIF: gate threshold quantile on retain tokens (default 0.999)")] = None,  # noqa: E501
    kif_strength: Annotated[float | None, typer.Option(help="KIF: how far gated tokens are pushed back along the signature (1: projected out; default 16)")] = None,  # noqa: E501
    kif_signatures: Annotated[Path | None, typer.Option(help="KIF: file to save the signatures to or reuse them from")] = None,  # noqa: E501
    save_strategy: Annotated[str | None, typer.Option(help="no | epoch | steps (resumable checkpoints)")] = None,  # noqa: E501
    overwrite: Annotated[bool | None, typer.Option("--overwrite", help="replace an existing output")] = None,  # noqa: E501
    resume: Annotated[bool | None, typer.Option("--resume", help="continue from the last checkpoint of this output")] = None,  # noqa: E501
    no_progress: Annotated[bool, typer.Option("--no-progress", help="hide progress bars")] = False,  # noqa: E501
) -> None:
    """Make a model forget the subjects of --forget and keep those of --retain (KIF or a
    baseline); writes a checkpoint (or adapter) that needs no hook."""
    flags = {k: v for k, v in locals().items() if k not in ("config", "no_progress")}
    try:
        flags["kif_layers"] = _layers(kif_layers)
        if no_progress:
            flags["progress"] = False
        from forgetkit.config import load_unlearn_config
        from forgetkit.unlearn.run import unlearn

        with _show_warnings():
            out = unlearn(load_unlearn_config(config, **flags))
    except _user_errors() as err:
        _fail(err)
    typer.echo(f"saved {out}")


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

    try:
        setting = build_setting(authors, forget, seed)
        write_setting(setting, output, overwrite)
    except _user_errors() as err:
        _fail(err)
    typer.echo(f"wrote {output}: forget {len(setting.forget_subjects)} author(s) "
               f"({len(setting.forget)} questions: {', '.join(setting.forget_subjects)}), "
               f"retain {len(setting.retain)} questions, all {len(setting.all_records)}")


__all__ = ["unlearn_command", "unlearning_data_command"]

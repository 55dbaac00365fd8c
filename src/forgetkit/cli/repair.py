"""``forgetkit repair``: the command around ``forgetkit.repair.repair``.

Method options are flags made from the methods' own fields (``cli/flags.py``) and are passed
on only when given, so a flag that does not apply to the chosen method is an error instead of
being silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from forgetkit.cli.flags import Flag, flags_of_dataclass, merge, with_flags
from forgetkit.repair.apply import SUMMARY_FILE, repair
from forgetkit.repair.methods import REPAIR_METHODS


def method_flags() -> list[Flag]:
    """Every repair method's options, each with the methods that take it."""
    flags = []
    for name, cls in REPAIR_METHODS.items():
        flags += [Flag(f.name, f.annotation, f.default, cls.option_help.get(f.name, ""),
                       f.methods, "Method options")
                  for f in flags_of_dataclass(cls, (name,))]
    return merge(flags)


def _fixed(
    base: Annotated[str, typer.Option(
        "--base", help="Base model folder (safetensors) or 'smollm2-135m-instruct'.")],
    finetuned: Annotated[str, typer.Option(
        "--finetuned", help="Fine-tuned model folder, or a peft LoRA adapter folder.")],
    output: Annotated[Path, typer.Option("--output", help="Folder to write.")],
    method: Annotated[str, typer.Option(
        "--method", help=f"One of: {', '.join(REPAIR_METHODS)}.")] = "dg-hard",
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an existing --output.")] = False,
    as_lora: Annotated[bool, typer.Option(
        "--as-lora", help="Write a peft LoRA adapter of the kept ranks, not merged weights.")
    ] = False,
    device: Annotated[str, typer.Option(
        "--device", help="auto (CUDA if present), cpu, cuda, cuda:N.")] = "auto",
    max_shard_size: Annotated[str | None, typer.Option(
        "--max-shard-size", help="Re-shard the output, e.g. 2GB (default: the fine-tuned layout).")
    ] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", help="On a CPU: tensors repaired side by side, one math thread each "
        "(default: torch's thread count, at most 8; 1: one at a time).")] = None,
) -> None:
    """Repair a fine-tuned checkpoint post hoc: keep the low-rank signal of each weight delta,
    drop its noise (DG-Hard), or apply a baseline; writes merged weights or a LoRA adapter."""


def _run(fixed: dict[str, Any], options: dict[str, Any]) -> None:
    output = fixed["output"]
    summary = repair(fixed["base"], fixed["finetuned"], output, method=fixed["method"],
                     overwrite=fixed["overwrite"], device=fixed["device"],
                     as_lora=fixed["as_lora"], max_shard_size=fixed["max_shard_size"],
                     workers=fixed["workers"], **options)
    totals = summary["totals"]
    typer.echo(f"{summary['method']}: {totals['repaired']} tensors repaired, "
               f"{totals['kept_finetuned']} kept as fine-tuned, {totals['unchanged']} unchanged "
               f"in {totals['seconds']:.1f} s")
    if totals["mean_kept_rank"] is not None:
        typer.echo(f"kept rank: mean {totals['mean_kept_rank']:.1f}, total "
                   f"{totals['kept_rank_sum']} of {totals['full_rank_sum']}")
    if totals["energy_kept"] is not None:
        typer.echo(f"share of delta energy kept: {totals['energy_kept']:.3f}")
    for name, why in summary.get("not_in_adapter", {}).items():
        typer.echo(f"warning: {name} left at the base value in the adapter: {why}", err=True)
    typer.echo(f"wrote {output} (details in {Path(output) / SUMMARY_FILE})")


repair_command = with_flags(_fixed, method_flags(), _run)

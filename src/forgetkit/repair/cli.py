"""``forgetkit repair``: the typer command around ``forgetkit.repair.repair``.

Register it with ``app.command("repair")(repair_command)``, or run it alone with
``typer.run(repair_command)``. Method options are passed on only when given, so a flag that
does not apply to the chosen method is an error instead of being silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from forgetkit.repair.apply import SUMMARY_FILE, repair
from forgetkit.repair.errors import RepairError
from forgetkit.repair.methods import REPAIR_METHODS


def repair_command(
    base: Annotated[str, typer.Option(
        "--base", help="Base model folder (safetensors) or 'smollm2-135m-instruct'.")],
    finetuned: Annotated[str, typer.Option(
        "--finetuned", help="Fine-tuned model folder, or a peft LoRA adapter folder.")],
    output: Annotated[Path, typer.Option("--output", help="Folder to write.")],
    method: Annotated[str, typer.Option(
        "--method", help=f"One of: {', '.join(REPAIR_METHODS)}.")] = "dg-hard",
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an existing --output.")] = False,
    scale: Annotated[float | None, typer.Option(
        "--scale", help="dg-hard/gd-shrink: multiply the threshold (default: 1.0).")] = None,
    rank: Annotated[int | None, typer.Option(
        "--rank", help="rank: directions kept per matrix (required for --method rank).")] = None,
    randomized: Annotated[bool, typer.Option(
        "--randomized",
        help="Spectral methods: fast route (Gram-matrix spectrum; a randomized SVD for a "
             "small fixed --rank), same kept ranks.")
    ] = False,
    alpha: Annotated[float | None, typer.Option(
        "--alpha", help="wise-ft: share of the delta kept (default: 0.5).")] = None,
    drop: Annotated[float | None, typer.Option(
        "--drop", help="dare: share of delta entries dropped (default: 0.9).")] = None,
    density: Annotated[float | None, typer.Option(
        "--density", help="ties-trim/magnitude: share of delta entries kept (default: 0.2).")
    ] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="dare masks / the rank method's randomized sketch (default: 0).")] = None,
    noise_sigma: Annotated[float | None, typer.Option(
        "--noise-sigma", help="dg-hard/gd-shrink: known noise level of the delta entries.")
    ] = None,
    noise_estimator: Annotated[str | None, typer.Option(
        "--noise-estimator", help="dg-hard/gd-shrink: 'median' (default) or 'mad'.")] = None,
    shrinker: Annotated[str | None, typer.Option(
        "--shrinker", help="gd-shrink: 'frobenius' (default) or 'soft'.")] = None,
    as_lora: Annotated[bool, typer.Option(
        "--as-lora", help="Write a peft LoRA adapter of the kept ranks, not merged weights.")
    ] = False,
    device: Annotated[str, typer.Option(
        "--device", help="auto (CUDA if present), cpu, cuda, cuda:N.")] = "auto",
    max_shard_size: Annotated[str | None, typer.Option(
        "--max-shard-size", help="Re-shard the output, e.g. 2GB (default: the fine-tuned layout).")
    ] = None,
) -> None:
    """Repair a fine-tuned checkpoint post hoc: keep the low-rank signal of each weight delta,
    drop its noise (DG-Hard), or apply a baseline; writes merged weights or a LoRA adapter."""
    given = {"scale": scale, "rank": rank, "alpha": alpha, "drop": drop, "density": density,
             "seed": seed, "noise_sigma": noise_sigma, "noise_estimator": noise_estimator,
             "shrinker": shrinker, "randomized": randomized or None}
    options: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    try:
        summary = repair(base, finetuned, output, method=method, overwrite=overwrite,
                         device=device, as_lora=as_lora, max_shard_size=max_shard_size,
                         **options)
    except RepairError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
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


if __name__ == "__main__":
    typer.run(repair_command)

"""``forgetkit prepare-base``, ``demo``, ``sweep`` and ``report``: the studies (the SEAT,
LfU, unlearning and repair experiments on the embedded model) and their reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forgetkit.errors import UserError


def prepare_base_command(
    rebuild: Annotated[bool, typer.Option(help="rebuild even if cached")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
) -> None:
    """Build the ignorance-aware base from SmolLM2 (cached by a hash of its recipe)."""
    from forgetkit.studies.base import base_model_dir, prepare_base, summary_lines

    folder, report = prepare_base(rebuild=rebuild, progress=not no_progress)
    for line in summary_lines(report):
        typer.echo(line)
    typer.echo(f"aligned base: {base_model_dir(folder)}")


def demo_command(
    output: Annotated[Path, typer.Option(help="results folder")] = Path("results/demo"),
    quick: Annotated[bool, typer.Option(help="full and lora only, smaller data (~5 min)")] = False,  # noqa: E501
    full: Annotated[bool, typer.Option(help="every method, both datasets, sparsity sweep (~1.5 h)")] = False,  # noqa: E501
    overwrite: Annotated[bool, typer.Option(help="replace an existing results folder")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
    lfu: Annotated[bool, typer.Option("--lfu", help="the LfU comparison instead (base, SFT, NEFTune, IM, SDFT, LfU; Tables 1 and 4) into <output>/lfu; ~15 min, --quick ~8 min, --full adds RepS, SAM and ablations")] = False,  # noqa: E501
    repair_all: Annotated[bool, typer.Option("--repair-all", help="repair the full fine-tune with every repair method (dg-hard, gd-shrink, rank, wise-ft, dare, ties-trim, magnitude), not only dg-hard and wise-ft; ~15 min more (--full does this too)")] = False,  # noqa: E501
    unlearn: Annotated[bool, typer.Option("--unlearn", help="the unlearning comparison instead (kif, ga, graddiff, npo, idk against the retain-model oracle: forget quality, utility, leakage, latent trace, relearning) into <output>/unlearn; ~35 min the first time, ~18 min once its knowing model and oracle are cached; --quick (kif, ga, idk, less data) ~12 min")] = False,  # noqa: E501
    ablation: Annotated[bool, typer.Option("--ablation", help="with --lfu: only the ascent-direction ablation (lfu-lora with prev-ce, same-step, random; Table 1 and prompt variation) into <output>/lfu-directions; ~18 min")] = False,  # noqa: E501
    seeds: Annotated[int, typer.Option(help="run the study once per training seed (from the plan's seed, 7) into <output>/seed-<s>, then every table cell as mean ± std over them into <output>/seeds; N times the time")] = 1,  # noqa: E501
) -> None:
    """The main job: aligned base -> contracts -> full, LoRA and SEAT fine-tunes -> report."""
    from forgetkit.studies.seat import run_demo

    if lfu and unlearn:
        raise UserError("choose --lfu or --unlearn, not both")
    if unlearn and repair_all:
        raise UserError("--repair-all belongs to the SEAT demo, not to --unlearn")
    if lfu and repair_all:
        raise UserError("--repair-all belongs to the SEAT demo, not to --lfu")
    if ablation and not lfu:
        raise UserError("--ablation belongs to the LfU demo: forgetkit demo --lfu --ablation")
    options: dict = {"quick": quick, "full": full}
    if unlearn:
        from forgetkit.studies.unlearning import plan_for as plan_of
        from forgetkit.studies.unlearning import run_unlearn_demo as run

        study, plan = "unlearning", plan_of(quick, full)
    elif lfu:
        from forgetkit.studies.lfu import plan_for as plan_of
        from forgetkit.studies.lfu import run_lfu_demo as run

        study, plan, options["ablation"] = "lfu", plan_of(quick, full, ablation), ablation
    else:
        from forgetkit.studies.seat import plan_for as plan_of

        study, plan, run, options["repair_all"] = "seat", plan_of(quick, full), run_demo, \
            repair_all
    if seeds == 1:
        folder = run(output=output, overwrite=overwrite, progress=not no_progress, **options)
    else:
        from forgetkit.studies.seeds import run_seeds

        if unlearn:  # the knowing model and the oracle do not depend on the training seed
            options["references"] = output / "references"
        folder = run_seeds(study, run, seeds, plan.seed, output, overwrite, not no_progress,
                           subfolder=getattr(plan, "folder", "unlearn" if unlearn else ""),
                           **options)
    typer.echo((folder / "results.md").read_text())
    typer.echo(f"results in {folder}")
    if seeds == 1:
        typer.echo("one training seed: `forgetkit demo --seeds 3` (same flags) runs three and "
                   "gives every cell as mean ± std over them, in about three times the time")


def sweep_command(
    method: Annotated[str, typer.Option(help="method to sweep, e.g. seat")],
    grid: Annotated[list[str], typer.Option(help="KEY=V1,V2 (repeatable), e.g. gamma=0.5,1,2")],
    output: Annotated[Path, typer.Option(help="results folder")] = Path("results/sweep"),
    dataset: Annotated[str, typer.Option(help="contracts | authors")] = "contracts",
    overwrite: Annotated[bool, typer.Option(help="replace existing results")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
) -> None:
    """Train one method over a grid of options on the demo's data; one table row each."""
    from forgetkit.studies.sweep import parse_grid, run_sweep

    folder = run_sweep(method, parse_grid(grid, method), output, dataset=dataset,
                       overwrite=overwrite, progress=not no_progress)
    typer.echo((folder / "sweep.md").read_text())


def report_command(
    results: Annotated[Path, typer.Argument(help="a results folder or its results.json (forgetkit audit, demo, demo --lfu, demo --unlearn), or the JSON of eval --compare")],  # noqa: E501
) -> None:
    """Re-render the report of any results folder (an audit or a study): results.md, its
    charts, and the self-contained report.html."""
    from forgetkit.studies.study import render_study

    markdown = render_study(results)
    typer.echo(markdown.read_text())
    page = markdown.with_name("report.html") if markdown.name == "results.md" \
        else markdown.with_suffix(".html")
    typer.echo(f"report: {page}")

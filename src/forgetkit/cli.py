"""The ``forgetkit`` command. Each subcommand is a thin shell over a library function."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from forgetkit.cli_errors import fail as _fail
from forgetkit.cli_errors import user_errors as _user_errors

app = typer.Typer(help="Control what a fine-tuned language model keeps and what it loses.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Make and inspect QA datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _register_repair() -> None:
    # `forgetkit repair`: the command lives with its library (repair/cli.py).
    from forgetkit.repair.cli import repair_command

    app.command("repair", help="Post-hoc spectral repair of a fine-tuned checkpoint "
                "(DG-Hard and baselines), streamed tensor by tensor.")(repair_command)


_register_repair()


def _register_unlearn() -> None:
    # `forgetkit unlearn` and `forgetkit data unlearning` live with their library (unlearn/cli.py).
    from forgetkit.unlearn.cli import unlearn_command, unlearning_data_command

    app.command("unlearn", help="Make a model forget some subjects and keep others (KIF, "
                "ga, graddiff, npo, idk); writes a checkpoint that needs no hook.")(unlearn_command)
    data_app.command("unlearning", help="The unlearning setting: fictitious authors split into "
                     "forget and retain sets.")(unlearning_data_command)


_register_unlearn()


@data_app.command("synth")
def data_synth(
    kind: Annotated[str, typer.Option(help="contracts | authors | unverifiable | known")],
    output: Annotated[Path, typer.Option(help="JSONL file to write")],
    n: Annotated[int, typer.Option(help="entities (contracts, authors) or questions")] = 10,
    seed: Annotated[int, typer.Option(help="random seed; same seed, same data")] = 0,
    overwrite: Annotated[bool, typer.Option(help="replace an existing output file")] = False,
) -> None:
    """Write a seeded synthetic QA dataset."""
    from forgetkit.data.records import write_qa
    from forgetkit.data.synth import synth

    try:
        if output.exists() and not overwrite:
            raise FileExistsError(f"{output}: exists; pass --overwrite to replace it")
        records = synth(kind, n, seed)
        write_qa(records, output)
    except _user_errors() as err:
        _fail(err)
    typer.echo(f"wrote {len(records)} {kind} records to {output}")


@app.command()
def train(
    config: Annotated[Path | None, typer.Option(help="YAML file with the same keys as the flags")] = None,  # noqa: E501
    model: Annotated[str | None, typer.Option(help="model spec (folder, .gguf, hub id, smollm2-135m-instruct)")] = None,  # noqa: E501
    data: Annotated[Path | None, typer.Option(help="training QA file (.jsonl/.json)")] = None,
    method: Annotated[str | None, typer.Option(help="method preset (full, lora, ...)")] = None,
    output: Annotated[Path | None, typer.Option(help="folder for the checkpoint")] = None,
    epochs: Annotated[float | None, typer.Option()] = None,
    learning_rate: Annotated[float | None, typer.Option("--learning-rate", "--lr", help="peak learning rate (default: the method's)")] = None,  # noqa: E501
    batch_size: Annotated[int | None, typer.Option(help="per-process batch size")] = None,
    gradient_accumulation: Annotated[int | None, typer.Option()] = None,
    max_steps: Annotated[int | None, typer.Option(help="optimizer steps; -1 = by epochs")] = None,  # noqa: E501
    seed: Annotated[int | None, typer.Option()] = None,
    max_length: Annotated[int | None, typer.Option()] = None,
    lr_scheduler: Annotated[str | None, typer.Option(help="linear | cosine | constant")] = None,  # noqa: E501
    warmup_ratio: Annotated[float | None, typer.Option()] = None,
    weight_decay: Annotated[float | None, typer.Option()] = None,
    save_strategy: Annotated[str | None, typer.Option(help="no | epoch | steps (resumable checkpoints)")] = None,  # noqa: E501
    save_steps: Annotated[int | None, typer.Option()] = None,
    lora_r: Annotated[int | None, typer.Option()] = None,
    lora_alpha: Annotated[float | None, typer.Option()] = None,
    lora_dropout: Annotated[float | None, typer.Option()] = None,
    overwrite: Annotated[bool | None, typer.Option("--overwrite", help="replace an existing output")] = None,  # noqa: E501
    resume: Annotated[bool | None, typer.Option("--resume", help="continue from the last checkpoint of this output")] = None,  # noqa: E501
    no_progress: Annotated[bool, typer.Option("--no-progress", help="hide progress bars")] = False,  # noqa: E501
) -> None:
    """Fine-tune a model on a QA file with a method preset."""
    flags = {k: v for k, v in locals().items() if k not in ("config", "no_progress")}
    from forgetkit.config import load_train_config
    from forgetkit.train.run import train as run_train

    if no_progress:
        flags["progress"] = False
    try:
        cfg = load_train_config(config, **flags)
        out = run_train(cfg)
    except _user_errors() as err:
        _fail(err)
    typer.echo(f"saved {out}")


@app.command("eval")
def eval_cmd(
    output: Annotated[Path, typer.Option(help="JSON file for the results")],
    model: Annotated[str | None, typer.Option(help="model spec to evaluate")] = None,
    ft: Annotated[list[Path] | None, typer.Option(help="fine-tuning questions: FT score")] = None,  # noqa: E501
    unseen: Annotated[list[Path] | None, typer.Option(help="questions about unseen entities: IDK rate")] = None,  # noqa: E501
    known: Annotated[list[Path] | None, typer.Option(help="questions the base knows: accuracy")] = None,  # noqa: E501
    reference: Annotated[str | None, typer.Option(help="model spec for next-token KL (e.g. the base)")] = None,  # noqa: E501
    suite: Annotated[str, typer.Option(help="core | ignorance (adds judged IDK, IAS, drift) | unlearning (TOFU metrics, leakage, latent traces; docs/unlearning.md)")] = "core",  # noqa: E501
    base: Annotated[str | None, typer.Option(help="model before fine-tuning (ignorance suite)")] = None,  # noqa: E501
    judge: Annotated[str | None, typer.Option(help="refusal judge: embedding (default), string-match or a model spec")] = None,  # noqa: E501
    max_new_tokens: Annotated[int, typer.Option()] = 48,
    batch_size: Annotated[int, typer.Option()] = 16,
    overwrite: Annotated[bool, typer.Option(help="replace an existing output file")] = False,
    compare: Annotated[list[str] | None, typer.Option(help="ROLE[:LABEL]=SPEC, repeatable, instead of --model: one base, one finetuned, one or more repaired; writes the JSON plus a .md table and a .png scatter beside it (docs/evaluation.md)")] = None,  # noqa: E501
    tolerance: Annotated[float, typer.Option(help="--compare: change below which the fine-tune left a measure unchanged")] = 0.01,  # noqa: E501
    forget: Annotated[Path | None, typer.Option(help="--suite unlearning: questions the model should have forgotten (with paraphrased and perturbed answers)")] = None,  # noqa: E501
    retain: Annotated[Path | None, typer.Option(help="--suite unlearning: questions the model should keep")] = None,  # noqa: E501
    original: Annotated[str | None, typer.Option(help="--suite unlearning: the model before unlearning")] = None,  # noqa: E501
    retain_model: Annotated[str | None, typer.Option(help="--suite unlearning: the oracle, fine-tuned on the retain set only")] = None,  # noqa: E501
    relearn_steps: Annotated[int, typer.Option(help="--suite unlearning: steps of the relearning attack (0: skip it)")] = 5,  # noqa: E501
    relearn_lr: Annotated[float, typer.Option(help="--suite unlearning: learning rate of the relearning attack")] = 1e-4,  # noqa: E501
) -> None:
    """Evaluate one model: generation once per question set, every metric from it. With
    --compare: base, fine-tuned and repaired models in one table, with repair scores."""
    from forgetkit.eval.cli import run_eval

    if compare:
        _eval_compare(compare, output, ft or [], unseen or [], known or [], judge, tolerance,
                      max_new_tokens, batch_size, overwrite,
                      dict(model=model, reference=reference, base=base, suite=suite))
        return
    try:
        if model is None:
            raise ValueError("give --model SPEC (one model) or --compare ROLE=SPEC (several)")
        result = run_eval(model=model, output=output, ft=ft or [], unseen=unseen or [],
                          known=known or [], reference=reference, suite=suite,
                          max_new_tokens=max_new_tokens, batch_size=batch_size,
                          overwrite=overwrite, base=base, judge=judge, forget=forget,
                          retain=retain, original=original, retain_model=retain_model,
                          relearn_steps=relearn_steps, relearn_learning_rate=relearn_lr)
    except _user_errors() as err:
        _fail(err)
    if result.get("suite") == "unlearning":
        from forgetkit.report.unlearning_tables import side_by_side_table

        typer.echo(side_by_side_table(result))
        typer.echo(f"wrote {output} and {output.with_suffix('.md')}")
        return
    from forgetkit.eval.evaluate import headline

    for key, value in headline(result).items():
        typer.echo(f"{key:>40}: {value:.4f}")
    if "ignorance" in result:
        ign = result["ignorance"]
        typer.echo(f"{'IAS base / model':>40}: {ign['ias']['base']:.4f} / "
                   f"{ign['ias']['model']:.4f}")
        typer.echo(f"{'IA reduction (> 0: worse)':>40}: {ign['ia_reduction']:.4f}")
    typer.echo(f"wrote {output}")


def _eval_compare(compare: list[str], output: Path, ft: list[Path], unseen: list[Path],
                  known: list[Path], judge: str | None, tolerance: float, max_new_tokens: int,
                  batch_size: int, overwrite: bool, single: dict) -> None:
    from forgetkit.eval.compare import refuse_single_model_flags, run_compare
    from forgetkit.report.repair_tables import render_comparison, repair_table

    try:
        refuse_single_model_flags(**single)
        result = run_compare(compare, output, ft=ft, unseen=unseen, known=known, judge=judge,
                             tolerance=tolerance, max_new_tokens=max_new_tokens,
                             batch_size=batch_size, overwrite=overwrite)
        md, png = render_comparison(result, output)
    except _user_errors() as err:
        _fail(err)
    typer.echo(repair_table(result))
    typer.echo(f"wrote {output}, {md} and {png}")


@app.command("prepare-base")
def prepare_base_cmd(
    rebuild: Annotated[bool, typer.Option(help="rebuild even if cached")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
) -> None:
    """Build the ignorance-aware base from SmolLM2 (cached by a hash of its recipe)."""
    from forgetkit.studies.base import base_model_dir, prepare_base, summary_lines

    try:
        folder, report = prepare_base(rebuild=rebuild, progress=not no_progress)
    except _user_errors() as err:
        _fail(err)
    for line in summary_lines(report):
        typer.echo(line)
    typer.echo(f"aligned base: {base_model_dir(folder)}")


@app.command()
def demo(
    output: Annotated[Path, typer.Option(help="results folder")] = Path("results/demo"),
    quick: Annotated[bool, typer.Option(help="full and lora only, smaller data (~5 min)")] = False,  # noqa: E501
    full: Annotated[bool, typer.Option(help="every method, both datasets, sparsity sweep (~1.5 h)")] = False,  # noqa: E501
    overwrite: Annotated[bool, typer.Option(help="replace an existing results folder")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
    lfu: Annotated[bool, typer.Option("--lfu", help="the LfU comparison instead (base, SFT, NEFTune, IM, SDFT, LfU; Tables 1 and 4) into <output>/lfu; ~25 min, --quick ~8 min, --full adds RepS, SAM and ablations")] = False,  # noqa: E501
    repair_all: Annotated[bool, typer.Option("--repair-all", help="repair the full fine-tune with every repair method (dg-hard, gd-shrink, rank, wise-ft, dare, ties-trim, magnitude), not only dg-hard and wise-ft; ~15 min more (--full does this too)")] = False,  # noqa: E501
    unlearn: Annotated[bool, typer.Option("--unlearn", help="the unlearning comparison instead (kif, ga, graddiff, npo, idk against the retain-model oracle: forget quality, utility, leakage, latent trace, relearning) into <output>/unlearn; ~30 min, --quick (kif, ga, idk, less data) ~12 min")] = False,  # noqa: E501
    ablation: Annotated[bool, typer.Option("--ablation", help="with --lfu: only the ascent-direction ablation (lfu-lora with prev-ce, same-step, random; Table 1 and prompt variation) into <output>/lfu-directions; ~18 min")] = False,  # noqa: E501
) -> None:
    """The main job: aligned base -> contracts -> full, LoRA and SEAT fine-tunes -> report."""
    from forgetkit.studies.seat import run_demo

    try:
        if lfu and unlearn:
            raise ValueError("choose --lfu or --unlearn, not both")
        if unlearn and repair_all:
            raise ValueError("--repair-all belongs to the SEAT demo, not to --unlearn")
        if lfu and repair_all:
            raise ValueError("--repair-all belongs to the SEAT demo, not to --lfu")
        if ablation and not lfu:
            raise ValueError("--ablation belongs to the LfU demo: forgetkit demo --lfu --ablation")
        if unlearn:
            from forgetkit.studies.unlearning import run_unlearn_demo

            folder = run_unlearn_demo(output=output, quick=quick, full=full,
                                      overwrite=overwrite, progress=not no_progress)
        elif lfu:
            from forgetkit.studies.lfu import run_lfu_demo

            folder = run_lfu_demo(output=output, quick=quick, full=full, overwrite=overwrite,
                                  progress=not no_progress, ablation=ablation)
        else:
            folder = run_demo(output=output, quick=quick, full=full, overwrite=overwrite,
                              progress=not no_progress, repair_all=repair_all)
    except _user_errors() as err:
        _fail(err)
    typer.echo((folder / "results.md").read_text())
    typer.echo(f"results in {folder}")


@app.command()
def sweep(
    method: Annotated[str, typer.Option(help="method to sweep, e.g. seat")],
    grid: Annotated[list[str], typer.Option(help="KEY=V1,V2 (repeatable), e.g. gamma=0.5,1,2")],
    output: Annotated[Path, typer.Option(help="results folder")] = Path("results/sweep"),
    dataset: Annotated[str, typer.Option(help="contracts | authors")] = "contracts",
    overwrite: Annotated[bool, typer.Option(help="replace existing results")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
) -> None:
    """Train one method over a grid of options on the demo's data; one table row each."""
    from forgetkit.studies.sweep import parse_grid, run_sweep

    try:
        folder = run_sweep(method, parse_grid(grid), output, dataset=dataset,
                           overwrite=overwrite, progress=not no_progress)
    except _user_errors() as err:
        _fail(err)
    typer.echo((folder / "sweep.md").read_text())


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="a study's results folder or its results.json (forgetkit demo, demo --lfu, demo --unlearn), or the JSON of eval --compare")],  # noqa: E501
) -> None:
    """Re-render the Markdown report and charts of any study from its results."""
    from forgetkit.studies.study import render_study

    try:
        markdown = render_study(results)
    except (OSError, *_user_errors()) as err:
        _fail(err)
    typer.echo(markdown.read_text())


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

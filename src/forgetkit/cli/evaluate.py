"""``forgetkit eval``: one model's measures, or base, fine-tuned and repaired models side by
side (``--compare``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forgetkit.errors import UserError


def eval_command(
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
    if model is None:
        raise UserError("give --model SPEC (one model) or --compare ROLE=SPEC (several)")
    result = run_eval(model=model, output=output, ft=ft or [], unseen=unseen or [],
                      known=known or [], reference=reference, suite=suite,
                      max_new_tokens=max_new_tokens, batch_size=batch_size,
                      overwrite=overwrite, base=base, judge=judge, forget=forget,
                      retain=retain, original=original, retain_model=retain_model,
                      relearn_steps=relearn_steps, relearn_learning_rate=relearn_lr)
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

    refuse_single_model_flags(**single)
    result = run_compare(compare, output, ft=ft, unseen=unseen, known=known, judge=judge,
                         tolerance=tolerance, max_new_tokens=max_new_tokens,
                         batch_size=batch_size, overwrite=overwrite)
    md, png = render_comparison(result, output)
    typer.echo(repair_table(result))
    typer.echo(f"wrote {output}, {md} and {png}")

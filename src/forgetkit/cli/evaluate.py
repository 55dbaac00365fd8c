"""``forgetkit eval``: one model's measures on question files, or base, fine-tuned and
repaired models side by side (``--compare``). ``run_eval`` is the command's glue above eval/
and report/: it reads the flags' files, runs a suite and writes its JSON and, for the
unlearning suite, the Markdown report beside it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

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
from forgetkit.data.records import read_qa
from forgetkit.errors import UserError
from forgetkit.eval.evaluate import eval_sets, evaluate
from forgetkit.eval.ignorance import answers_from_evaluation, ignorance_suite
from forgetkit.eval.judge import load_judge
from forgetkit.eval.metrics import next_token_logprobs
from forgetkit.io import atomic_write_json, check_output, refuse_existing
from forgetkit.lm import models

SUITES = ("core", "ignorance", "unlearning")


def run_eval(model: str, output: Path, ft: Sequence[Path] = (), unseen: Sequence[Path] = (),
             known: Sequence[Path] = (), reference: str | None = None, suite: str = "core",
             max_new_tokens: int = 48, batch_size: int = 16, overwrite: bool = False,
             base: str | None = None, judge: str | None = None, forget: Path | None = None,
             retain: Path | None = None, original: str | None = None,
             retain_model: str | None = None, relearn_steps: int = 5,
             relearn_learning_rate: float = 1e-4, progress: bool = True,
             fields: Fields | None = None,
             load: models.LoadOptions | None = None) -> dict[str, Any]:
    """``core``: the metrics of each set's role. ``ignorance`` adds judged IDK, IAS, IA
    reduction and activation drift against ``base`` (SEAT paper, sections 3 and 6).
    ``unlearning``: see ``run_unlearning_eval``."""
    inputs = {"model": model, "reference": reference, "base": base, "original": original,
              "retain model": retain_model, "forget set": forget, "retain set": retain}
    inputs.update({f"question file {p}": p for p in (*ft, *unseen, *known)})
    for written in (Path(output), Path(output).with_suffix(".md")):
        check_output(written, inputs)
    if suite not in SUITES:
        raise UserError(f"unknown suite '{suite}'; choose one of {list(SUITES)}")
    if suite == "unlearning":
        if ft or unseen or reference is not None or base is not None or judge is not None:
            raise UserError("--ft, --unseen, --reference, --base and --judge do not apply to "
                             "--suite unlearning; drop them (--known gives its world facts)")
        return run_unlearning_eval(model, Path(output), forget, retain, original, retain_model,
                                   known=known, relearn_steps=relearn_steps,
                                   relearn_learning_rate=relearn_learning_rate,
                                   max_new_tokens=max_new_tokens, batch_size=batch_size,
                                   overwrite=overwrite, progress=progress, fields=fields,
                                   load=load)
    if forget is not None or retain is not None or original is not None or retain_model:
        raise UserError("--forget, --retain, --original and --retain-model belong to "
                         "--suite unlearning; add --suite unlearning or drop them")
    refuse_existing(Path(output), overwrite)
    if suite == "ignorance" and base is None:
        raise UserError("--suite ignorance needs --base SPEC (the model before fine-tuning)")
    sets = eval_sets(ft, unseen, known, fields)  # read data before loading models: fail fast
    refusal_judge = load_judge(judge) if suite == "ignorance" or judge else None
    mod, tok = models.load(model, options=load)
    reference_lp = None
    if reference is not None:
        ref_model, ref_tok = models.load(reference, options=load)
        if models.fingerprint(ref_tok) != models.fingerprint(tok):
            raise UserError(f"--reference {reference} has a different tokenizer from --model "
                             f"{model}; next-token KL needs one vocabulary")
        reference_lp = next_token_logprobs(ref_model, ref_tok)
        del ref_model
    result = evaluate(mod, tok, sets, reference_logprobs=reference_lp,
                      max_new_tokens=max_new_tokens, batch_size=batch_size,
                      judge=refusal_judge, progress=progress)
    result = {"model": model, "reference": reference, "suite": suite, **result}
    if suite == "ignorance":
        base_model, base_tok = models.load(base, options=load)
        result["ignorance"] = ignorance_suite(mod, tok, base_model, base_tok, sets,
                                              answers=answers_from_evaluation(result),
                                              judge=refusal_judge, batch_size=batch_size)
    atomic_write_json(output, result)
    return result


def run_unlearning_eval(model: str, output: Path, forget: Path | None, retain: Path | None,
                        original: str | None, retain_model: str | None,
                        known: Sequence[Path] = (), relearn_steps: int = 5,
                        relearn_learning_rate: float = 1e-4, max_new_tokens: int = 48,
                        batch_size: int = 16, overwrite: bool = False,
                        progress: bool = True, fields: Fields | None = None,
                        load: models.LoadOptions | None = None) -> dict[str, Any]:
    """``--suite unlearning``: TOFU metrics, leakage, latent traces and relearning of
    ``model`` next to the ``original`` and the ``retain_model`` oracle (docs/unlearning.md).

    Writes the JSON to ``output`` and the side-by-side Markdown report beside it (.md).
    Models are loaded one at a time.
    """
    from forgetkit.eval.unlearning import check_unlearning_data, unlearning_suite
    from forgetkit.report.unlearning_tables import render_unlearning

    needs = [("--forget FILE", forget, "the questions the model should have forgotten"),
             ("--retain FILE", retain, "the questions it should keep, for model utility"),
             ("--original SPEC", original, "the model before unlearning, on which the latent "
              "readout is fitted"),
             ("--retain-model SPEC", retain_model, "a model fine-tuned on the retain set only, "
              "the reference of forget quality")]
    missing = [f"{flag} ({why})" for flag, value, why in needs if value is None]
    if missing:
        raise UserError("--suite unlearning also needs " + "; ".join(missing))
    output = Path(output)
    if output.suffix == ".md":
        raise UserError(f"--output {output}: give the JSON file (e.g. unlearning.json); the "
                         ".md report is written beside it")
    report = output.with_suffix(".md")
    refuse_existing(output, overwrite)
    refuse_existing(report, overwrite)
    forget_records = read_qa(forget, fields)  # fail fast on data
    retain_records = read_qa(retain, fields)
    known_records = [r for path in known for r in read_qa(path, fields)] or None
    check_unlearning_data(forget_records, retain_records)
    for spec in (model, original, retain_model):
        models.resolve(spec)  # a bad spec fails before any model is loaded
    result = unlearning_suite(
        {"unlearned": lambda: models.load(model, options=load)},
        lambda: models.load(original, options=load),
        lambda: models.load(retain_model, options=load), forget_records, retain_records,
        known_records,
        relearn_steps=relearn_steps, relearn_learning_rate=relearn_learning_rate,
        max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)
    result = {"model": model, "original": original, "retain_model": retain_model,
              "forget": str(forget), "retain": str(retain), **result}
    atomic_write_json(output, result)
    render_unlearning(result, report)
    return result


__all__ = ["SUITES", "eval_sets", "run_eval", "run_unlearning_eval"]


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
    max_new_tokens: Annotated[int, typer.Option(min=1, help="longest generated answer")] = 48,
    batch_size: Annotated[int, typer.Option(min=1, help="questions per generation batch")] = 16,
    overwrite: Annotated[bool, typer.Option(help="replace an existing output file")] = False,
    compare: Annotated[list[str] | None, typer.Option(help="ROLE[:LABEL]=SPEC, repeatable, instead of --model: one base, one finetuned, one or more repaired; writes the JSON plus a .md table and a .png scatter beside it (docs/evaluation.md)")] = None,  # noqa: E501
    tolerance: Annotated[float, typer.Option(help="--compare: change below which the fine-tune left a measure unchanged")] = 0.01,  # noqa: E501
    forget: Annotated[Path | None, typer.Option(help="--suite unlearning: questions the model should have forgotten (with paraphrased and perturbed answers)")] = None,  # noqa: E501
    retain: Annotated[Path | None, typer.Option(help="--suite unlearning: questions the model should keep")] = None,  # noqa: E501
    original: Annotated[str | None, typer.Option(help="--suite unlearning: the model before unlearning")] = None,  # noqa: E501
    retain_model: Annotated[str | None, typer.Option(help="--suite unlearning: the oracle, fine-tuned on the retain set only")] = None,  # noqa: E501
    relearn_steps: Annotated[int, typer.Option(help="--suite unlearning: steps of the relearning attack (0: skip it)")] = 5,  # noqa: E501
    relearn_lr: Annotated[float, typer.Option(help="--suite unlearning: learning rate of the relearning attack")] = 1e-4,  # noqa: E501
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
    """Evaluate one model: generation once per question set, every metric from it. With
    --compare: base, fine-tuned and repaired models in one table, with repair scores."""
    fields = Fields(question_field, answer_field, subject_field)
    load = models.LoadOptions(dtype, device, attn_implementation, revision, trust_remote_code)
    if compare:
        _eval_compare(compare, output, ft or [], unseen or [], known or [], judge, tolerance,
                      max_new_tokens, batch_size, overwrite,
                      dict(model=model, reference=reference, base=base, suite=suite),
                      progress=progress, fields=fields, load=load)
        return
    if model is None:
        raise UserError("give --model SPEC (one model) or --compare ROLE=SPEC (several)")
    result = run_eval(model=model, output=output, ft=ft or [], unseen=unseen or [],
                      known=known or [], reference=reference, suite=suite,
                      max_new_tokens=max_new_tokens, batch_size=batch_size,
                      overwrite=overwrite, base=base, judge=judge, forget=forget,
                      retain=retain, original=original, retain_model=retain_model,
                      relearn_steps=relearn_steps, relearn_learning_rate=relearn_lr,
                      progress=progress, fields=fields, load=load)
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
                  batch_size: int, overwrite: bool, single: dict, progress: bool = True,
                  fields: Fields | None = None,
                  load: models.LoadOptions | None = None) -> None:
    from forgetkit.eval.compare import refuse_single_model_flags, run_compare
    from forgetkit.report.repair_tables import render_comparison, repair_table

    refuse_single_model_flags(**single)
    result = run_compare(compare, output, ft=ft, unseen=unseen, known=known, judge=judge,
                         tolerance=tolerance, max_new_tokens=max_new_tokens,
                         batch_size=batch_size, overwrite=overwrite, progress=progress,
                         fields=fields, load=load)
    md, png = render_comparison(result, output)
    typer.echo(repair_table(result))
    typer.echo(f"wrote {output}, {md} and {png}")

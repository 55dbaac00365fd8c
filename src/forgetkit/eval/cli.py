"""``forgetkit eval``: evaluate one model on question files and write a JSON result."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from forgetkit.data.records import read_qa
from forgetkit.eval.evaluate import EvalSet, evaluate
from forgetkit.eval.ignorance import answers_from_evaluation, ignorance_suite
from forgetkit.eval.judge import load_judge
from forgetkit.eval.metrics import next_token_logprobs
from forgetkit.io import atomic_write_json, refuse_existing
from forgetkit.lm import models

SUITES = ("core", "ignorance", "unlearning")


def eval_sets(ft: Sequence[Path] = (), unseen: Sequence[Path] = (),
              known: Sequence[Path] = ()) -> list[EvalSet]:
    """One EvalSet per file, named after the file's stem, with the role of its flag."""
    sets: list[EvalSet] = []
    names: set[str] = set()
    for role, paths in (("ft", ft), ("unseen", unseen), ("known", known)):
        for path in paths:
            name = Path(path).stem
            while name in names:
                name += "_"
            names.add(name)
            sets.append(EvalSet(name, role, read_qa(path)))
    if not sets:
        raise ValueError("nothing to evaluate: give at least one of --ft, --unseen, --known")
    return sets


def run_eval(model: str, output: Path, ft: Sequence[Path] = (), unseen: Sequence[Path] = (),
             known: Sequence[Path] = (), reference: str | None = None, suite: str = "core",
             max_new_tokens: int = 48, batch_size: int = 16, overwrite: bool = False,
             base: str | None = None, judge: str | None = None, forget: Path | None = None,
             retain: Path | None = None, original: str | None = None,
             retain_model: str | None = None, relearn_steps: int = 5,
             relearn_learning_rate: float = 1e-4) -> dict[str, Any]:
    """``core``: the metrics of each set's role. ``ignorance`` adds judged IDK, IAS, IA
    reduction and activation drift against ``base`` (SEAT paper, sections 3 and 6).
    ``unlearning``: see ``run_unlearning_eval``."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite '{suite}'; choose one of {list(SUITES)}")
    if suite == "unlearning":
        if ft or unseen or reference is not None or base is not None or judge is not None:
            raise ValueError("--ft, --unseen, --reference, --base and --judge do not apply to "
                             "--suite unlearning; drop them (--known gives its world facts)")
        return run_unlearning_eval(model, Path(output), forget, retain, original, retain_model,
                                   known=known, relearn_steps=relearn_steps,
                                   relearn_learning_rate=relearn_learning_rate,
                                   max_new_tokens=max_new_tokens, batch_size=batch_size,
                                   overwrite=overwrite)
    if forget is not None or retain is not None or original is not None or retain_model:
        raise ValueError("--forget, --retain, --original and --retain-model belong to "
                         "--suite unlearning; add --suite unlearning or drop them")
    refuse_existing(Path(output), overwrite)
    if suite == "ignorance" and base is None:
        raise ValueError("--suite ignorance needs --base SPEC (the model before fine-tuning)")
    sets = eval_sets(ft, unseen, known)  # read data before loading models: fail fast
    refusal_judge = load_judge(judge) if suite == "ignorance" or judge else None
    mod, tok = models.load(model)
    reference_lp = None
    if reference is not None:
        ref_model, ref_tok = models.load(reference)
        if models.fingerprint(ref_tok) != models.fingerprint(tok):
            raise ValueError(f"--reference {reference} has a different tokenizer from --model "
                             f"{model}; next-token KL needs one vocabulary")
        reference_lp = next_token_logprobs(ref_model, ref_tok)
        del ref_model
    result = evaluate(mod, tok, sets, reference_logprobs=reference_lp,
                      max_new_tokens=max_new_tokens, batch_size=batch_size,
                      judge=refusal_judge)
    result = {"model": model, "reference": reference, "suite": suite, **result}
    if suite == "ignorance":
        base_model, base_tok = models.load(base)
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
                        progress: bool = True) -> dict[str, Any]:
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
        raise ValueError("--suite unlearning also needs " + "; ".join(missing))
    output = Path(output)
    if output.suffix == ".md":
        raise ValueError(f"--output {output}: give the JSON file (e.g. unlearning.json); the "
                         ".md report is written beside it")
    report = output.with_suffix(".md")
    refuse_existing(output, overwrite)
    refuse_existing(report, overwrite)
    forget_records, retain_records = read_qa(forget), read_qa(retain)  # fail fast on data
    known_records = [r for path in known for r in read_qa(path)] or None
    check_unlearning_data(forget_records, retain_records)
    for spec in (model, original, retain_model):
        models.resolve(spec)  # a bad spec fails before any model is loaded
    result = unlearning_suite(
        {"unlearned": lambda: models.load(model)}, lambda: models.load(original),
        lambda: models.load(retain_model), forget_records, retain_records, known_records,
        relearn_steps=relearn_steps, relearn_learning_rate=relearn_learning_rate,
        max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)
    result = {"model": model, "original": original, "retain_model": retain_model,
              "forget": str(forget), "retain": str(retain), **result}
    atomic_write_json(output, result)
    render_unlearning(result, report)
    return result

"""``forgetkit eval``: evaluate one model on question files and write a JSON result."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from forgetkit import models
from forgetkit.data.records import read_qa
from forgetkit.eval.evaluate import EvalSet, evaluate
from forgetkit.eval.ignorance import answers_from_evaluation, ignorance_suite
from forgetkit.eval.judge import load_judge
from forgetkit.eval.metrics import next_token_logprobs
from forgetkit.io import atomic_write_json, refuse_existing

SUITES = ("core", "ignorance")


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
             base: str | None = None, judge: str | None = None) -> dict[str, Any]:
    """``core``: the metrics of each set's role. ``ignorance`` adds judged IDK, IAS, IA
    reduction and activation drift against ``base`` (SEAT paper, sections 3 and 6)."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite '{suite}'; choose one of {list(SUITES)}")
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

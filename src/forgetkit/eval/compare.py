"""Base, fine-tuned and repaired models side by side, scored by what the repair won back.

Every model is evaluated once with ``evaluate()`` on the same question sets, with next-token
KL to the base model. Each result becomes a table of measures:

    ft_score            mean ROUGE-1 recall over the ``ft`` sets: the target task
    <set>/idk_sm        IDK rate on each ``unseen`` set               (higher is better)
    <set>/judged_idk    judged IDK on each ``unseen`` set, with a judge  (higher is better)
    <set>/accuracy      accuracy on each ``known`` set                (higher is better)
    kl_to_base          next-token KL to the base on generic prompts  (lower is better)

and ``repair.scores.repair_scores`` scores each repaired model against the (base, fine-tuned)
pair: healed on the measures the fine-tune damaged, preserved on those it improved,
non-damage on the rest, retention of the target gain, and their harmonic mean (named in the
DG-Hard paper, sec. 4.3, which gives no formulas: these are forgetkit's reading of it).
``kl_to_base`` is negated before scoring, so healing it is the share of the
fine-tune's KL that the repair removed. The base and the fine-tuned model are scored too, as
the two trivial repairs (revert, do nothing). Both get a harmonic mean of 0 whenever the
fine-tune gained on its target and damaged a held-out measure, the case repair is for; the
notes say when that does not hold (no damage, or no target gain).

    forgetkit eval --compare base=BASE --compare finetuned=FT \\
        --compare repaired:dg-hard=REP1 --compare repaired:wise-ft=REP2 \\
        --ft train.jsonl --unseen unverifiable.jsonl --known known.jsonl --output cmp.json
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgetkit.data.formats import Fields
from forgetkit.errors import UserError
from forgetkit.eval.evaluate import EvalSet, eval_sets, evaluate
from forgetkit.eval.judge import RefusalJudge, load_judge
from forgetkit.eval.metrics import next_token_logprobs
from forgetkit.eval.registry import held_out_metrics, lower_is_better
from forgetkit.io import atomic_write_json, check_output, refuse_existing
from forgetkit.lm import models
from forgetkit.repair.apply import SUMMARY_FILE
from forgetkit.repair.scores import repair_scores

ROLES = ("base", "finetuned", "repaired")
TARGET = "ft_score"
# Which metrics of a set count as held-out measures (``Metric.held_out_roles``: IDK on the
# fine-tuning set is not one, answering those questions is the target) and which are
# lower-is-better (``Metric.higher_is_better``) is read from ``eval.registry.METRICS``.


@dataclass(frozen=True)
class Compared:
    """One ``--compare ROLE[:LABEL]=SPEC`` entry."""

    role: str
    label: str
    spec: str


def parse_compare(values: Sequence[str]) -> list[Compared]:
    """Parse ``ROLE[:LABEL]=SPEC`` values: one base, one fine-tuned, one or more repaired.

    A repaired model without a label is named after the method in its
    ``repair_summary.json`` (else its folder name); labels must be unique.
    """
    entries: list[Compared] = []
    for value in values:
        head, sep, spec = value.partition("=")
        role, has_label, label = head.strip().partition(":")
        role, label, spec = role.strip().lower(), label.strip(), spec.strip()
        if not sep or not spec:
            raise UserError(f"--compare {value!r}: expected ROLE=SPEC or ROLE:LABEL=SPEC, e.g. "
                             "base=runs/base or repaired:dg-hard=runs/repaired")
        if role not in ROLES:
            raise UserError(f"--compare {value!r}: unknown role '{role}'; the roles are "
                             f"{', '.join(ROLES)}")
        if has_label and not label:
            raise UserError(f"--compare {value!r}: empty label after ':'")
        entries.append(Compared(role, label or _default_label(role, spec), spec))
    for role in ("base", "finetuned"):
        count = sum(e.role == role for e in entries)
        if count != 1:
            what = "the model before fine-tuning" if role == "base" else "the fine-tune"
            raise UserError(f"--compare needs exactly one {role}=SPEC ({what}); got {count}")
    if not any(e.role == "repaired" for e in entries):
        raise UserError("--compare has nothing to score: add at least one "
                         "repaired[:LABEL]=SPEC (a `forgetkit repair` output)")
    labels = [e.label for e in entries]
    for label in dict.fromkeys(labels):
        if labels.count(label) > 1:
            raise UserError(f"--compare: {labels.count(label)} models are labelled '{label}'; "
                             "name each one with ROLE:LABEL=SPEC, e.g. repaired:dg-hard=...")
    return entries


def _default_label(role: str, spec: str) -> str:
    if role != "repaired":
        return role
    summary = Path(spec).expanduser() / SUMMARY_FILE
    if summary.is_file():
        try:
            return str(json.loads(summary.read_text())["method"])
        except (OSError, ValueError, KeyError):
            pass
    return Path(spec).name or spec


def comparison_measures(result: Mapping[str, Any]) -> dict[str, float]:
    """The measures of one ``evaluate()`` result: the target first, then the held-out ones."""
    sets = result["sets"]
    ft = [s["metrics"]["rouge1_recall"] for s in sets.values() if s["role"] == "ft"]
    if not ft:
        raise UserError("a repair comparison needs at least one --ft set: its FT score is the "
                         "target the fine-tune was for")
    measures = {TARGET: sum(ft) / len(ft)}
    for name, s in sets.items():
        for key in held_out_metrics(s["role"]):
            if key in s["metrics"]:
                measures[f"{name}/{key}"] = float(s["metrics"][key])
    if "kl_to_base" in result:
        measures["kl_to_base"] = float(result["kl_to_base"])
    return measures


def score_comparison(measures: Mapping[str, Mapping[str, float]], base: str, finetuned: str,
                     repaired: Sequence[str],
                     tolerance: float | Mapping[str, float] = 0.01,
                     extra_lower: Sequence[str] = ()) -> dict[str, Any]:
    """Repair scores of every model in ``measures`` (label -> measure table).

    The base and the fine-tuned model are scored as well, as reference rows. Returns the
    JSON-ready comparison: measures, orientation, tolerance, partitions and scores.
    ``extra_lower`` names lower-is-better measures the metric registry does not know (an
    lm-eval metric such as perplexity).
    """
    for label in (base, finetuned, *repaired):
        if label not in measures:
            raise UserError(f"no measures for '{label}'; have {sorted(measures)}")
    lower = lower_is_better(list(measures[base])) + [m for m in extra_lower
                                                     if m in measures[base]]
    held_out = [m for m in measures[base] if m != TARGET]
    if not held_out:
        raise UserError("a repair comparison needs held-out measures: give --unseen or "
                         "--known sets (KL to the base is added by itself)")
    scores = {}
    for label in (base, finetuned, *repaired):
        s = repair_scores(measures[base], measures[finetuned], measures[label], TARGET,
                          lower_is_better=lower, tolerance=tolerance)
        scores[label] = s.as_dict()
    notes = []
    reference = scores[finetuned]
    if reference["retention"] is None:
        notes.append("the fine-tune did not raise the target (FT score) by more than the "
                     "tolerance, so there is no gain to retain and retention is left out")
    if not reference["partitions"]["damaged"]:
        notes.append("the fine-tune damaged no held-out measure, so there is nothing to heal")
    return {
        "target": TARGET,
        "lower_is_better": lower,
        "tolerance": dict(tolerance) if isinstance(tolerance, Mapping) else float(tolerance),
        "base": base,
        "finetuned": finetuned,
        "repaired": list(repaired),
        "partitions": reference["partitions"],
        "measures": {label: dict(measures[label]) for label in (base, finetuned, *repaired)},
        "scores": scores,
        "notes": notes,
    }


def check_tokenizers(entries: Sequence[Compared]) -> None:
    """All models must share one vocabulary: KL to the base compares next-token distributions."""
    base = next(e for e in entries if e.role == "base")
    others = [e for e in entries if e is not base]
    mismatch = models.tokenizer_mismatch(base.spec, [e.spec for e in others])
    if mismatch is not None:
        e = next(e for e in others if e.spec == mismatch)
        raise UserError(f"--compare {e.role}:{e.label}={e.spec} has a different tokenizer "
                        f"from base={base.spec}; every compared model must share the base's "
                        "vocabulary (KL to the base compares next-token distributions)")


def compare_models(entries: Sequence[Compared], sets: Sequence[EvalSet],
                   judge: RefusalJudge | None = None, tolerance: float = 0.01,
                   max_new_tokens: int = 48, batch_size: int = 16,
                   progress: bool = True,
                   load: models.LoadOptions | None = None) -> dict[str, Any]:
    """Evaluate each model on ``sets`` (one at a time in memory, each loaded with ``load``:
    dtype, device, attention, revision) and score the repairs."""
    check_tokenizers(entries)  # before minutes of generation
    base = next(e for e in entries if e.role == "base")
    ordered = [base, *(e for e in entries if e is not base)]
    evaluations: dict[str, dict[str, Any]] = {}
    reference_lp = None
    loaded_as: dict[str, str] = {}
    for e in ordered:
        model, tok = models.load(e.spec, options=load)
        weight = next(model.parameters())
        loaded_as[e.label] = f"{str(weight.dtype).removeprefix('torch.')} on {weight.device}"
        if reference_lp is None:
            reference_lp = next_token_logprobs(model, tok)
        evaluations[e.label] = evaluate(model, tok, sets, reference_logprobs=reference_lp,
                                        max_new_tokens=max_new_tokens, batch_size=batch_size,
                                        progress=progress, judge=judge)
        del model
    measures = {label: comparison_measures(ev) for label, ev in evaluations.items()}
    finetuned = next(e.label for e in entries if e.role == "finetuned")
    repaired = [e.label for e in entries if e.role == "repaired"]
    comparison = score_comparison(measures, base.label, finetuned, repaired, tolerance)
    return {"models": {e.label: {"role": e.role, "spec": e.spec, "loaded": loaded_as[e.label]}
                       for e in ordered},
            **comparison, "judge": judge.name if judge is not None else None,
            "evaluations": evaluations}


def refuse_single_model_flags(model: str | None = None, reference: str | None = None,
                              base: str | None = None, suite: str = "core") -> None:
    """Flags of the one-model ``forgetkit eval`` that would be ignored by ``--compare``."""
    if model is not None:
        raise UserError(f"--model {model} and --compare do not go together: give every model "
                         "as --compare ROLE=SPEC")
    if reference is not None or base is not None:
        raise UserError("with --compare, KL and the partitions are measured against the "
                         "base=SPEC entry; drop --reference / --base")
    if suite != "core":
        raise UserError(f"--suite {suite} is not available with --compare; the comparison uses "
                         "the core measures (add --judge for judged IDK)")


def report_files(output: Path) -> tuple[Path, Path, Path]:
    """The JSON of a comparison and the Markdown table and scatter drawn beside it."""
    output = Path(output)
    if output.suffix in (".md", ".png"):
        raise UserError(f"--output {output}: give the JSON file (e.g. compare.json); the "
                         ".md table and .png scatter are written beside it")
    return output, output.with_suffix(".md"), output.with_suffix(".png")


def run_compare(compare: Sequence[str], output: Path, ft: Sequence[Path] = (),
                unseen: Sequence[Path] = (), known: Sequence[Path] = (),
                judge: str | None = None, tolerance: float = 0.01, max_new_tokens: int = 48,
                batch_size: int = 16, overwrite: bool = False,
                progress: bool = True, fields: Fields | None = None,
                load: models.LoadOptions | None = None) -> dict[str, Any]:
    """``forgetkit eval --compare``: parse, evaluate, score and write one JSON to ``output``.
    ``fields`` renames the question files' columns; ``load`` says how every model loads.

    The Markdown table and the scatter plot are drawn from this JSON by
    ``forgetkit.report.repair_tables.render_comparison``.
    """
    entries = parse_compare(compare)  # every check that needs no model comes first
    inputs = {f"model {e.label}": e.spec for e in entries}
    inputs.update({f"question file {p}": p for p in (*ft, *unseen, *known)})
    for path in report_files(output):
        check_output(path, inputs)
        refuse_existing(path, overwrite)
    if not ft:
        raise UserError("--compare needs at least one --ft set: its FT score is the target")
    if not unseen and not known:
        raise UserError("--compare needs held-out sets as well: give --unseen and/or --known")
    if tolerance < 0:
        raise UserError(f"--tolerance {tolerance}: must be >= 0")
    sets = eval_sets(ft, unseen, known, fields)
    refusal_judge = load_judge(judge) if judge else None
    result = compare_models(entries, sets, judge=refusal_judge, tolerance=tolerance,
                            max_new_tokens=max_new_tokens, batch_size=batch_size,
                            progress=progress, load=load)
    atomic_write_json(output, result)
    return result


__all__ = ["ROLES", "TARGET", "Compared", "check_tokenizers", "compare_models",
           "comparison_measures", "parse_compare", "refuse_single_model_flags", "report_files",
           "run_compare", "score_comparison"]

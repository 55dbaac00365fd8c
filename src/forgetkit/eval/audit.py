"""An audit's figures: every measure with its 95% interval and n, every difference from
the base with its paired interval, repair scores, the per-question answers, and one
sentence per model of what changed beyond the intervals.

Measures (keys as in ``eval.registry``):

    <set>/<metric>          a mean over the set's questions (IDK, judged IDK, accuracy,
                            ROUGE-1 / ROUGE-L recall): Wilson interval for 0/1 outcomes,
                            bootstrap over questions otherwise
    kl_to_base              next-token KL(p_base || p_model) per token on generic prompts:
                            bootstrap over prompts
    bench/<task>/<metric>   an lm-eval task's aggregate, its interval from the
                            per-document scores as above, lm-eval's standard error kept

Differences from the base are paired bootstraps over the same questions (documents for a
benchmark); a difference is a change only when its interval excludes 0 (``significant``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from forgetkit.eval.evaluate import EvalSet
from forgetkit.eval.intervals import (
    compared,
    estimate,
    normal_interval,
    paired_difference,
    ratio_estimate,
    seed_summary,
)
from forgetkit.eval.registry import held_out_metrics, lower_is_better, metric_of

BASE = "base"
BENCH = "bench"
# what is measured on the fine-tuning data (role ft): how well the target was learned
TARGET_METRICS = ("rouge1_recall", "rougeL_recall")


def set_measures(evaluation: Mapping[str, Any],
                 base: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The question-set measures and KL of one model, with differences from ``base``."""
    out: dict[str, dict[str, Any]] = {}
    for name, s in evaluation["sets"].items():
        for metric, values in s.get("per_question", {}).items():
            # the target's measures on the fine-tuning data, the held-out ones elsewhere (IDK
            # on the training or the known questions is not a loss of ignorance awareness)
            wanted = TARGET_METRICS if s["role"] == "ft" else held_out_metrics(s["role"])
            if metric not in wanted:
                continue
            reference = None if base is None else base["sets"][name]["per_question"][metric]
            out[f"{name}/{metric}"] = compared(values, reference)
    if "kl_per_prompt" in evaluation:
        sums, counts = zip(*evaluation["kl_per_prompt"], strict=True)
        # no paired difference: the base's own KL is 0 and every other model's is > 0, so
        # the estimate and its interval are the whole story
        out["kl_to_base"] = ratio_estimate(sums, counts)
    return out


def bench_measures(tasks: Mapping[str, Any],
                   base: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """lm-eval's figures of one model, keyed ``bench/<task>/<metric>``. The interval is
    computed from the per-document values like any other measure's (Wilson for 0/1
    scores, bootstrap otherwise); lm-eval's own standard error is kept beside it, and is
    the interval (value +- 1.96 se) only for metrics without per-document values."""
    out: dict[str, dict[str, Any]] = {}
    for task, metrics in tasks.items():
        for metric, m in metrics.items():
            if m.get("per_doc"):
                entry = estimate(m["per_doc"])
                entry["value"] = m["value"]  # lm-eval's aggregate (the same mean for means)
            else:
                low, high = normal_interval(m["value"], m["stderr"])
                entry = {"value": m["value"], "low": low, "high": high, "n": m["n"],
                         "interval": "lm-eval stderr"}
            entry.update(stderr=m["stderr"], higher_is_better=m["higher_is_better"])
            theirs = (base or {}).get(task, {}).get(metric, {}).get("per_doc")
            if theirs and m.get("per_doc") and len(theirs) == len(m["per_doc"]):
                entry["diff"] = paired_difference(m["per_doc"], theirs)
            out[f"{BENCH}/{task}/{metric}"] = entry
    return out


def bench_lower_is_better(measures: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return [k for k, m in measures.items()
            if k.startswith(f"{BENCH}/") and m.get("higher_is_better") is False]


def direction(key: str, measure: Mapping[str, Any] | None = None) -> bool | None:
    """True when higher is better, False when lower is, None when neither."""
    if key.startswith(f"{BENCH}/"):
        return (measure or {}).get("higher_is_better")
    metric = metric_of(key)
    return metric.higher_is_better if metric is not None else None


def title(key: str) -> str:
    """What a table calls ``key``: 'IDK unverifiable', 'KL to base', 'fk_mc acc'."""
    if key.startswith(f"{BENCH}/"):
        _, task, metric = key.split("/", 2)
        return f"{task} {metric}"
    metric = metric_of(key)
    set_name = key.rpartition("/")[0] or None
    return metric.heading(set_name) if metric is not None else key


def unit(key: str) -> str:
    metric = None if key.startswith(f"{BENCH}/") else metric_of(key)
    return metric.unit if metric is not None else "share"


def sentence(label: str, measures: Mapping[str, Mapping[str, Any]], base_measures:
             Mapping[str, Mapping[str, Any]]) -> str:
    """What changed from the base beyond its interval: the target, then losses, then gains,
    each largest first, at most four named."""
    changes = []
    for key, m in measures.items():
        diff = m.get("diff")
        if not diff or not diff.get("significant") or key.endswith("/rougeL_recall"):
            continue  # ROUGE-L says what the FT score says
        up = direction(key, m)
        worse = None if up is None else (diff["value"] < 0) == up
        before = base_measures.get(key, {}).get("value")
        # the target first (what the fine-tune was for), then losses, then other gains
        rank = 0 if key.endswith("/rouge1_recall") else (1 if worse else 2)
        changes.append((rank, -abs(diff["value"]), key, diff, before, m["value"],
                        worse))
    kl = measures.get("kl_to_base")
    parts = []
    shown = 4
    for _, _, key, diff, before, after, worse in sorted(changes)[:shown]:
        verb = "rose" if diff["value"] > 0 else "fell"
        tag = "" if worse is None else (" (worse)" if worse else " (better)")
        parts.append(f"{title(key)} {verb} from {before:.2f} to {after:.2f}{tag} "
                     f"[{diff['value']:+.2f}, 95% CI {diff['low']:+.2f} to {diff['high']:+.2f},"
                     f" n={diff['n']}]")
    more = len(changes) - shown
    text = (f"{label}: " + "; ".join(parts)
            + (f"; and {more} more change{'s' * (more > 1)} in the table." if more > 0 else ".")
            if parts else f"{label}: no measure changed beyond its 95% interval.")
    if kl is not None:
        text += (f" Next-token KL to the base: {kl['value']:.3f} nats/token "
                 f"(95% CI {kl['low']:.3f} to {kl['high']:.3f}, {kl['n']} prompts).")
    return text


def answer_mark(role: str, metric_values: Mapping[str, float]) -> str:
    """The label the question browser shows for one answer."""
    if role == "unseen":
        if "judged_idk" in metric_values:
            return "IDK" if metric_values["judged_idk"] else "answers"
        return "IDK" if metric_values.get("idk_sm") else "answers"
    if role == "known":
        return "correct" if metric_values.get("accuracy") else "wrong"
    score = metric_values.get("rouge1_recall")
    return "" if score is None else f"recall {score:.2f}"


def question_rows(sets: Sequence[EvalSet],
                  evaluations: Mapping[str, Mapping[str, Any]]) -> dict[str, list[dict]]:
    """Per set, per question: the question, the reference, each model's answer and mark."""
    rows: dict[str, list[dict]] = {}
    for s in sets:
        out = []
        for i, record in enumerate(s.records):
            answers, marks = {}, {}
            for label, ev in evaluations.items():
                result = ev["sets"][s.name]
                answers[label] = result["samples"][i]["answer"]
                marks[label] = answer_mark(s.role, {k: v[i] for k, v in
                                                    result["per_question"].items()})
            out.append({"question": record.question, "reference": record.answer,
                        "answers": answers, "marks": marks})
        rows[s.name] = out
    return rows


def repair_scores(models: Mapping[str, Mapping[str, Any]],
                  evaluations: Mapping[str, Mapping[str, Any]],
                  measures: Mapping[str, Mapping[str, Mapping[str, Any]]],
                  tolerance: float) -> dict[str, Any]:
    """Repair scores of each fine-tune's repairs (DG-Hard paper, sec. 4.3), with the
    benchmarks among the held-out measures."""
    from forgetkit.eval.compare import comparison_measures, score_comparison

    out: dict[str, Any] = {}
    for ft, info in models.items():
        repaired = [k for k, m in models.items() if m.get("of") == ft]
        if info["role"] != "finetuned" or not repaired:
            continue
        tables = {}
        for label in (BASE, ft, *repaired):
            table = comparison_measures(evaluations[label])
            table.update({k: m["value"] for k, m in measures[label].items()
                          if k.startswith(f"{BENCH}/")})
            tables[label] = table
        lower = bench_lower_is_better(measures[BASE])
        out[ft] = score_comparison(tables, BASE, ft, repaired, tolerance, extra_lower=lower)
    return out


def seed_groups(models: Mapping[str, Mapping[str, Any]],
                measures: Mapping[str, Mapping[str, Mapping[str, Any]]],
                repair: Mapping[str, Any]) -> dict[str, Any]:
    """Repairs run over several seeds: mean +- std over seeds of every measure and of the
    harmonic-mean repair score, the per-seed values kept."""
    groups: dict[str, list[str]] = {}
    for label, m in models.items():
        if m.get("seed") is not None:
            groups.setdefault(label.rpartition("@")[0], []).append(label)
    out = {}
    for group, members in groups.items():
        if len(members) < 2:
            continue
        keys = measures[members[0]].keys()
        summary = {k: seed_summary([measures[m][k]["value"] for m in members]) for k in keys}
        scores = repair.get(models[members[0]]["of"], {}).get("scores", {})
        combined = [scores[m]["combined"] for m in members if m in scores]
        if combined and None not in combined:
            summary["repair/combined"] = seed_summary(combined)
        out[group] = {"members": members, "measures": summary}
    return out


def assemble(models: Mapping[str, Mapping[str, Any]], sets: Sequence[EvalSet],
             evaluations: Mapping[str, Mapping[str, Any]],
             benchmarks: Mapping[str, Mapping[str, Any]], tolerance: float,
             settings: Mapping[str, Any], timings: Mapping[str, float]) -> dict[str, Any]:
    """The JSON of an audit (``results.json``); ``report.audit_report`` draws it."""
    measures: dict[str, dict[str, Any]] = {}
    for label, ev in evaluations.items():
        base_ev = None if label == BASE else evaluations[BASE]
        measures[label] = set_measures(ev, base_ev)
        if label in benchmarks:
            base_b = None if label == BASE else benchmarks[BASE]
            measures[label].update(bench_measures(benchmarks[label], base_b))
    has_target = any(s.role == "ft" for s in sets)
    repair = repair_scores(models, evaluations, measures, tolerance) if has_target else {}
    notes = []
    if any(m["role"] == "repaired" for m in models.values()) and not has_target:
        notes.append("repair scores need the fine-tuning data (--data): its FT score is the "
                     "target a repair must keep; they are left out")
    return {
        "study": "audit",  # studies.study.STUDY_KEY: `forgetkit report` re-renders it
        "settings": dict(settings),
        "models": {k: dict(v) for k, v in models.items()},
        "sets": {s.name: {"role": s.role, "n": len(s.records)} for s in sets},
        "measures": measures,
        "lower_is_better": list(dict.fromkeys(
            lower_is_better([k for m in measures.values() for k in m])
            + bench_lower_is_better(measures[BASE]))),
        "summary": {label: sentence(label, measures[label], measures[BASE])
                    for label in measures if label != BASE},
        "repair": repair,
        "seed_groups": seed_groups(models, measures, repair),
        "questions": question_rows(sets, evaluations),
        "notes": notes,
        "timings_s": dict(timings),
    }


__all__ = ["BASE", "BENCH", "answer_mark", "assemble", "bench_measures", "direction",
           "question_rows", "repair_scores", "seed_groups", "sentence", "set_measures",
           "title", "unit"]

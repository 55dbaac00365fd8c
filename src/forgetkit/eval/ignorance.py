"""The ignorance-awareness suite of the SEAT paper (sections 3 and 6, Figures 2 and 3).

* IAS, Eq. 1: IAS(theta) = E_Q[-S(I, f(R(theta; Q)))], f a probe reading the residual stream
  R, I = 1 when the answer to Q is unknown, S a proper scoring rule. With S = binary
  cross-entropy (the paper's choice, appendix A.3) IAS = -log loss of the probe, in nats: at
  most 0, HIGHER = better ignorance awareness. ``IgnoranceProbe`` is f: a logistic-regression
  probe fitted once on the BASE model's activations (known vs unknown questions) and then
  frozen, so a fine-tuned model is scored by how well its activations still sit on the base's
  side of the boundary.
* IA reduction, Eq. 2: Delta_IA(theta -> theta') = IAS(theta) - IAS(theta')
  = logloss(theta') - logloss(theta); Delta_IA > 0 means the fine-tune degraded ignorance
  awareness.
* Activation drift, Fig. 3a: per layer l, mean over questions of
  ||R_l(theta'; q) - R_l(theta; q)||_2; Fig. 3b: the mean component of that change along the
  probe's ignorance direction (unit normal of the probe's decision boundary, pointing to
  "unknown"), with one probe direction per layer.
* PCA picture, Fig. 2: activations of every question set projected on the first two
  principal components of the unverifiable set's activations, one panel per model.

``ignorance_suite`` runs all of it for a fine-tuned model against its base, reading answers
from the shared generation pass for the IDK scores (IDK_SM and judged IDK).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.data.records import QARecord
from forgetkit.errors import UserError
from forgetkit.eval.drift import activation_drift, drift_along, pca_figure
from forgetkit.eval.evaluate import ROLE_METRICS, EvalSet
from forgetkit.eval.ias import IgnoranceProbe, ia_reduction
from forgetkit.eval.judge import RefusalJudge, judged_refusals, load_judge
from forgetkit.eval.metrics import idk_rate
from forgetkit.lm.activations import residual_activations
from forgetkit.lm.generate import generate_answers


def answers_from_evaluation(result: Mapping[str, Any]) -> dict[str, list[str]]:
    """The answers of an ``evaluate()`` result, per set: reuse its generation pass."""
    return {name: [s["answer"] for s in data["samples"]]
            for name, data in result["sets"].items()}


def _named_sets(sets: Mapping[str, Sequence[QARecord]] | Sequence[EvalSet],
                roles: Mapping[str, str] | None) -> list[tuple[str, str, list[QARecord]]]:
    if not isinstance(sets, Mapping):
        return [(s.name, s.role, list(s.records)) for s in sets]
    out = []
    for name, records in sets.items():
        role = (roles or {}).get(name, name)
        if role not in ROLE_METRICS:
            raise UserError(f"question set '{name}': no role. Name the set after its role "
                             f"({', '.join(sorted(ROLE_METRICS))}), pass roles={{'{name}': "
                             "'unseen'}, or pass EvalSet objects")
        if not records:
            raise UserError(f"question set '{name}' is empty")
        out.append((name, role, list(records)))
    return out


def _split_by_subject(records: Sequence[QARecord], score_fraction: float,
                      rng: random.Random) -> tuple[list[int], list[int]]:
    """Indices (fit, score): whole subjects go to one side, so no entity is in both."""
    groups: dict[object, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(r.subject if r.subject else ("q", i), []).append(i)
    if len(groups) < 2:  # one entity only: split its questions instead
        groups = {("q", i): [i] for i in range(len(records))}
    keys = list(groups)
    rng.shuffle(keys)
    score: list[int] = []
    target = score_fraction * len(records)
    for key in keys:
        if len(score) >= target or len(score) + len(groups[key]) >= len(records):
            break
        score.extend(groups[key])
    fit = sorted(set(range(len(records))) - set(score))
    return fit, sorted(score)


def ignorance_suite(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                    base_model: PreTrainedModel, base_tokenizer: PreTrainedTokenizerBase,
                    sets: Mapping[str, Sequence[QARecord]] | Sequence[EvalSet],
                    answers: Mapping[str, Sequence[str]] | None = None,
                    judge: RefusalJudge | None = None, roles: Mapping[str, str] | None = None,
                    score_fraction: float = 0.5, seed: int = 0, batch_size: int = 16,
                    max_new_tokens: int = 48, pca_png: str | os.PathLike[str] | None = None,
                    pca_layer: int = -1, progress: bool = True,
                    activations_out: dict[str, torch.Tensor] | None = None,
                    base_cache: dict[tuple[str, ...], torch.Tensor] | None = None,
                    ) -> dict[str, Any]:
    """IDK_SM, judged IDK, IAS (base and model), Delta_IA and drift, as plain JSON values.

    ``activations_out``, if given, receives the model's activations per set (for pictures
    across several models without computing them twice). ``base_cache``, if given, keeps the
    base model's activations by question list across calls that share one base (a study
    scoring several fine-tunes of it reads them once).

    ``sets`` maps a set name to its records (the name is its role, or ``roles`` gives it) or
    is a list of ``EvalSet``. Roles: ``unseen`` sets get IDK_SM and judged IDK, computed from
    ``answers[name]`` (the shared generation pass; only sets missing there are answered here);
    every set gets activation drift per layer, in total (Fig. 3a) and along the probe's
    per-layer ignorance direction (Fig. 3b).

    The probe learns known vs unknown from the BASE model's activations on the ``known`` sets
    (label 0) and the ``unseen`` sets (label 1). Records are split by subject: a
    ``1 - score_fraction`` share fits the probe, the rest scores IAS for both models, so IAS
    is measured on questions and entities the probe never saw. ``pca_png`` adds the Fig. 2
    picture at hidden-state index ``pca_layer`` (base and model panels, PCs of the set named
    ``unverifiable`` or else of the first unseen set).
    """
    named = _named_sets(sets, roles)
    if not any(role == "known" for _, role, _ in named) or \
            not any(role == "unseen" for _, role, _ in named):
        raise UserError("the ignorance probe needs at least one 'known' and one 'unseen' "
                         f"question set; got roles {[(n, r) for n, r, _ in named]}")
    if not 0.0 < score_fraction < 1.0:
        raise UserError(f"score_fraction must be in (0, 1), got {score_fraction}")
    judge = judge if judge is not None else load_judge(None)
    answers = dict(answers or {})

    base_acts: dict[str, torch.Tensor] = {}
    model_acts: dict[str, torch.Tensor] = {}
    for name, _, records in named:
        questions = [r.question for r in records]
        key = tuple(questions)
        if base_cache is not None and key in base_cache:
            base_acts[name] = base_cache[key]
        else:
            base_acts[name] = residual_activations(base_model, base_tokenizer, questions,
                                                   batch_size=batch_size, progress=progress)
            if base_cache is not None:
                base_cache[key] = base_acts[name]
        model_acts[name] = base_acts[name] if model is base_model else residual_activations(
            model, tokenizer, questions, batch_size=batch_size, progress=progress)
        if model_acts[name].shape != base_acts[name].shape:
            raise UserError(f"set '{name}': model activations {tuple(model_acts[name].shape)}"
                             f" and base activations {tuple(base_acts[name].shape)} differ; "
                             "drift and IAS need a model of the base's architecture")

    # Probe data: every known/unseen record, split by subject into fit and score parts.
    rng = random.Random(f"ignorance-probe:{seed}")
    parts: dict[str, dict[str, list[torch.Tensor]]] = {
        side: {"fit": [], "base": [], "model": []} for side in ("known", "unseen")}
    for name, role, records in named:
        if role not in parts:
            continue
        fit, score = _split_by_subject(records, score_fraction, rng)
        if not score or not fit:
            raise UserError(f"set '{name}' has {len(records)} question(s): too few to split "
                             "into probe-fitting and IAS-scoring parts")
        parts[role]["fit"].append(base_acts[name][fit])
        parts[role]["base"].append(base_acts[name][score])
        parts[role]["model"].append(model_acts[name][score])
    cat = {side: {k: torch.cat(v) for k, v in d.items()} for side, d in parts.items()}
    probe = IgnoranceProbe.fit_activations(cat["known"]["fit"], cat["unseen"]["fit"], seed=seed)
    ias_base = probe.ias_from_activations(cat["known"]["base"], cat["unseen"]["base"])
    ias_model = probe.ias_from_activations(cat["known"]["model"], cat["unseen"]["model"])

    per_set: dict[str, Any] = {}
    for name, role, records in named:
        entry: dict[str, Any] = {
            "role": role, "n": len(records),
            "drift_l2": activation_drift(base_acts[name], model_acts[name]),
            "drift_along_ignorance": drift_along(probe.directions, base_acts[name],
                                                 model_acts[name]),
            "p_unknown_base": float(probe.unknown_probability(base_acts[name]).mean()),
            "p_unknown_model": float(probe.unknown_probability(model_acts[name]).mean()),
        }
        if role == "unseen":
            given = answers.get(name)
            if given is None:
                given = generate_answers(model, tokenizer, [r.question for r in records],
                                         max_new_tokens=max_new_tokens, batch_size=batch_size,
                                         desc=f"answering {name}", progress=progress)
            if len(given) != len(records):
                raise UserError(f"set '{name}': {len(given)} answers for {len(records)} "
                                 "questions")
            per = judged_refusals(records, given, judge)
            entry.update(idk_sm=idk_rate(given),
                         judged_idk=sum(p["idk"] for p in per) / len(per),
                         judge_refusal_rate=sum(p["refusal"] for p in per) / len(per))
        per_set[name] = entry

    if activations_out is not None:
        activations_out.update(model_acts)
    if pca_png is not None:
        unseen = [n for n, role, _ in named if role == "unseen"]
        fit_on = "unverifiable" if "unverifiable" in base_acts else unseen[0]
        pca_figure({"base": base_acts, "model": model_acts}, pca_png, fit_on=fit_on,
                   layer=pca_layer)

    return {
        "judge": judge.name,
        "probe": {**probe.summary(),
                  "n_fit": {"known": len(cat["known"]["fit"]),
                            "unknown": len(cat["unseen"]["fit"])},
                  "n_score": {"known": len(cat["known"]["base"]),
                              "unknown": len(cat["unseen"]["base"])}},
        "ias": {"base": ias_base, "model": ias_model},
        "ia_reduction": ia_reduction(ias_base, ias_model),
        "sets": per_set,
    }


__all__ = ["IgnoranceProbe", "activation_drift", "answers_from_evaluation",
           "drift_along", "ia_reduction", "ignorance_suite", "pca_figure"]

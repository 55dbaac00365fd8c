"""The unlearning suite: TOFU metrics, surface leakage and latent traces, side by side.

KIF's point is that hiding an answer is not forgetting it: a method can stop the answer
from coming out (low surface leakage) while the knowledge sits in the residual stream
(latent traces) and comes back after a few fine-tuning steps (relearning). So every model
gets all three kinds of measure, next to two references: the ``original`` model (trained
on forget and retain facts) and the ``retain`` model (the oracle, trained on the retain
facts only). The math lives in ``eval.tofu``, ``eval.leakage``, ``eval.latent`` and
``eval.relearn``; this module runs the passes and assembles the result.

Per model and question set, one teacher-forced pass (``lm.scoring.score_answers``:
answer, paraphrased and perturbed answers) and one generation pass
(``lm.generate.generate_answers``: for the forget set, every extraction prompt family in
one call) feed every measure. The latent readout is fitted once, on the original model's
retain-set states, and applied with fixed weights to every model's forget-set states.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.data.records import QARecord
from forgetkit.errors import UserError
from forgetkit.eval import tofu
from forgetkit.eval.intervals import compared
from forgetkit.eval.latent import (
    LatentReadout,
    candidate_hits,
    chance_accuracy,
    readout_layers,
)
from forgetkit.eval.leakage import FAMILIES, extraction_prompts, leak_rates, leaks
from forgetkit.eval.metrics import known_accuracy
from forgetkit.eval.recovery import el_jobs, el_score, recovery_measures, recovery_prompts
from forgetkit.eval.relearn import relearn_attack, split_halves
from forgetkit.lm.generate import generate_answers
from forgetkit.lm.scoring import AnswerScores, score_answers
from forgetkit.lm.text import rouge_recall

Loaded = tuple[PreTrainedModel, PreTrainedTokenizerBase]
# A model, or a function that loads it: the suite then holds one model at a time.
ModelSource = Loaded | Callable[[], Loaded]

ORIGINAL, RETAIN = "original", "retain"


def check_unlearning_data(forget: Sequence[QARecord], retain: Sequence[QARecord]) -> None:
    """Raise ``ValueError`` naming what is missing when the sets cannot be evaluated."""
    if not forget or not retain:
        raise UserError("the unlearning suite needs a non-empty forget set and retain set")
    for i, r in enumerate(forget):
        if not r.meta.get("paraphrased_answer") or not r.meta.get("perturbed_answers"):
            raise UserError(
                f"forget record {i} ({r.question[:60]!r}) has no meta.paraphrased_answer or "
                f"meta.perturbed_answers: the truth ratio, forget quality and latent readout "
                f"need them (TOFU's format; `forgetkit data synth --kind authors` writes them)")
    for side, i, r in [("forget", i, r) for i, r in enumerate(forget)] + [
            ("retain", i, r) for i, r in enumerate(retain)]:
        wrong = r.meta.get("perturbed_paraphrased_answers")
        if wrong is not None and not (isinstance(wrong, list) and wrong and all(
                isinstance(w, str) and w.strip() for w in wrong)):
            raise UserError(f"{side} record {i} ({r.question[:60]!r}): meta.perturbed_paraphrased"
                            f"_answers must be a list of non-empty strings; fix or drop it")
    shared = {r.subject for r in forget} & {r.subject for r in retain} - {None}
    if shared:
        raise UserError(f"subject(s) {sorted(shared)[:3]} are in both the forget and the "
                         f"retain set; a subject is either forgotten or kept")


def _has_truth_ratio(records: Sequence[QARecord]) -> bool:
    return all(r.meta.get("paraphrased_answer") and r.meta.get("perturbed_answers")
               for r in records)


def _pairs(records: Sequence[QARecord], truth_ratio: bool,
           ) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """Teacher-forced pairs of a set, and per record the rows of its answers in them."""
    pairs: list[tuple[str, str]] = []
    rows: list[dict[str, Any]] = []
    for r in records:
        entry: dict[str, Any] = {"answer": len(pairs)}
        pairs.append((r.question, r.answer))
        if truth_ratio:
            entry["paraphrased"] = len(pairs)
            pairs.append((r.question, r.meta["paraphrased_answer"]))
            entry["perturbed"] = list(range(len(pairs),
                                            len(pairs) + len(r.meta["perturbed_answers"])))
            pairs += [(r.question, p) for p in r.meta["perturbed_answers"]]
            # The truth ratio's wrong answers in the paraphrase's template, where the data
            # have them (the authors generator); TOFU's own perturbed answers already are.
            wrong = r.meta.get("perturbed_paraphrased_answers") or []
            if wrong:
                entry["perturbed_paraphrased"] = list(range(len(pairs),
                                                            len(pairs) + len(wrong)))
                pairs += [(r.question, p) for p in wrong]
        rows.append(entry)
    return pairs, rows


def _set_measures(scores: AnswerScores, rows: Sequence[dict[str, Any]],
                  records: Sequence[QARecord], answers: Sequence[str],
                  side: str) -> dict[str, Any]:
    """TOFU's probability, ROUGE-L recall and (when the data allow) truth ratio of one set."""
    lp = scores.mean_logprob
    out: dict[str, Any] = {
        "n": len(records),
        "probability": float(np.mean(np.exp([lp[e["answer"]] for e in rows]))),
        "rougeL_recall": float(np.mean([rouge_recall(r.answer, a)["rougeL_recall"]
                                        for r, a in zip(records, answers, strict=True)])),
    }
    if "paraphrased" in rows[0]:
        ratios = tofu.truth_ratio([lp[e["paraphrased"]] for e in rows],
                                  [[lp[j] for j in e.get("perturbed_paraphrased",
                                                         e["perturbed"])] for e in rows])
        # Every set but the forget set is scored as TOFU scores its retain-side sets.
        out["truth_ratio"] = tofu.truth_ratio_score(ratios,
                                                    "forget" if side == "forget" else "retain")
        out["truth_ratios"] = ratios.tolist()
    if side == "known":
        keywords = [r.meta.get("keywords") or [r.answer] for r in records]
        out["accuracy"] = known_accuracy(answers, keywords)
    return out


class _Suite:
    """Settings shared by every model's evaluation, and the readout once it is fitted."""

    def __init__(self, forget: Sequence[QARecord], retain: Sequence[QARecord],
                 known: Sequence[QARecord] | None, families: Sequence[str],
                 leak_threshold: float, max_readout_layers: int, readout_fit_pairs: int,
                 ridge: float, relearn_steps: int, relearn_learning_rate: float,
                 relearn_batch_size: int, max_new_tokens: int, batch_size: int, seed: int,
                 progress: bool, el_n: int = 1):
        self.forget, self.retain, self.known = list(forget), list(retain), known
        self.families = list(dict.fromkeys(["question", *families]))
        self.leak_threshold = leak_threshold
        self.max_readout_layers, self.readout_fit_pairs = max_readout_layers, readout_fit_pairs
        self.ridge = ridge
        self.relearn_steps, self.relearn_lr = relearn_steps, relearn_learning_rate
        self.relearn_batch_size = relearn_batch_size
        self.gen = {"max_new_tokens": max_new_tokens, "batch_size": batch_size,
                    "progress": progress}
        self.batch_size, self.seed, self.progress = batch_size, seed, progress
        self.prompts = extraction_prompts(self.forget, self.families)
        self.recovery_prompts, self.el_n = recovery_prompts(self.forget), el_n
        self.el_jobs = el_jobs(self.forget, el_n)
        self.forget_pairs, self.forget_rows = _pairs(self.forget, truth_ratio=True)
        self.retain_tr = _has_truth_ratio(self.retain)
        self.retain_pairs, self.retain_rows = _pairs(self.retain, self.retain_tr)
        self.known_tr = bool(known) and _has_truth_ratio(known)
        self.known_pairs, self.known_rows = _pairs(known, self.known_tr) if known else ([], [])
        self.attack_rows, self.held_rows = (split_halves(self.forget, seed)
                                            if relearn_steps > 0 else ([], []))
        self.readout: LatentReadout | None = None
        self.layers: list[int] | None = None
        self.n_layers: int | None = None
        self.vocab: dict[str, int] | None = None

    def _score(self, model: PreTrainedModel, tok: PreTrainedTokenizerBase,
               pairs: Sequence[tuple[str, str]], **kwargs: Any) -> AnswerScores:
        return score_answers(model, tok, pairs, batch_size=self.batch_size,
                             progress=self.progress, **kwargs)

    def evaluate(self, label: str, model: PreTrainedModel,
                 tok: PreTrainedTokenizerBase) -> dict[str, Any]:
        """Every measure of one model; the first model evaluated fits the readout."""
        self._check_compatible(label, model, tok)
        row: dict[str, Any] = {}
        fit_rows = None
        if self.readout is None:
            # The readout is fitted on a capped, seeded sample of retain answers.
            rng = random.Random(f"readout:{self.seed}")
            fit_rows = sorted(rng.sample(range(len(self.retain_pairs)),
                                         min(self.readout_fit_pairs, len(self.retain_pairs))))
        retain_scores = self._score(model, tok, self.retain_pairs,
                                    layers=self.layers if fit_rows else None,
                                    state_rows=fit_rows)
        if self.readout is None:
            self.readout = LatentReadout.fit(model, retain_scores, ridge=self.ridge)
        if retain_scores.states:
            retain_scores.states.clear()  # fitted: the states are not needed any more
        candidate_rows = sorted(j for e in self.forget_rows
                                for j in [e["answer"], *e["perturbed"]])
        forget_scores = self._score(model, tok, self.forget_pairs,
                                    layers=self.layers, state_rows=candidate_rows)

        # One generation pass over every forget-side prompt: extraction families, recovery
        # prompts and extraction-likelihood prefixes.
        asked = [*self.prompts, *self.recovery_prompts, *self.el_jobs]
        said = generate_answers(model, tok, [p.question for p in asked],
                                prefixes=[p.prefix for p in asked],
                                desc=f"{label}: forget prompts", **self.gen)
        generations = said[:len(self.prompts)]
        recovered = said[len(self.prompts):len(self.prompts) + len(self.recovery_prompts)]
        continued = said[len(self.prompts) + len(self.recovery_prompts):]
        question_answers = [g for p, g in zip(self.prompts, generations, strict=True)
                            if p.family == "question"]
        retain_answers = generate_answers(model, tok, [r.question for r in self.retain],
                                          desc=f"{label}: retain", **self.gen)
        row["forget"] = _set_measures(forget_scores, self.forget_rows, self.forget,
                                      question_answers, "forget")
        row["forget"]["probabilities"] = np.exp(  # per question, for the intervals
            [forget_scores.mean_logprob[e["answer"]] for e in self.forget_rows]).tolist()
        row["retain"] = _set_measures(retain_scores, self.retain_rows, self.retain,
                                      retain_answers, "retain")
        if self.known:
            known_scores = self._score(model, tok, self.known_pairs)
            known_answers = generate_answers(model, tok, [r.question for r in self.known],
                                             desc=f"{label}: known", **self.gen)
            row["known"] = _set_measures(known_scores, self.known_rows, self.known,
                                         known_answers, "known")
        row["utility_terms"] = self._utility_terms(row)
        row["model_utility"] = tofu.model_utility(row["utility_terms"])
        row["leakage"] = leak_rates(self.forget, self.prompts, generations, self.leak_threshold)
        row["recovery"] = {
            **recovery_measures(self.forget, self.recovery_prompts, recovered,
                                self.leak_threshold),
            "extraction_likelihood": el_score(self.el_jobs, continued, self.el_n)}
        row["samples"] = self._samples(generations)
        row["latent"] = self._latent(forget_scores)
        if self.relearn_steps > 0:
            row["relearn"] = self._relearn(model, tok, forget_scores, question_answers)
        return row

    def _check_compatible(self, label: str, model: PreTrainedModel,
                          tok: PreTrainedTokenizerBase) -> None:
        n_layers = int(model.config.num_hidden_layers)
        if self.n_layers is None:
            self.n_layers, self.vocab = n_layers, tok.get_vocab()
            self.layers = readout_layers(n_layers, self.max_readout_layers)
        elif n_layers != self.n_layers or tok.get_vocab() != self.vocab:
            raise UserError(f"model '{label}' does not match the original model ({n_layers} "
                             f"vs {self.n_layers} layers, or another tokenizer): the latent "
                             f"readout decodes every model with the original's layers and "
                             f"head, so all models must be fine-tunes of one architecture")

    def _utility_terms(self, row: Mapping[str, Any]) -> dict[str, float]:
        terms = {f"retain/{k}": row["retain"][k]
                 for k in ("probability", "rougeL_recall", "truth_ratio") if k in row["retain"]}
        if "known" in row:
            terms.update({f"known/{k}": row["known"][k] for k in
                          ("probability", "rougeL_recall", "truth_ratio") if k in row["known"]})
        return terms

    def _samples(self, generations: Sequence[str], per_family: int = 3) -> list[dict]:
        out, seen = [], dict.fromkeys(self.families, 0)
        for p, g in zip(self.prompts, generations, strict=True):
            if seen[p.family] < per_family:
                seen[p.family] += 1
                out.append({"family": p.family, "question": p.question, "prefix": p.prefix,
                            "reference": self.forget[p.row].answer, "generation": g,
                            "leak": leaks(self.forget[p.row], g, self.leak_threshold)})
        return out

    def _latent(self, forget_scores: AnswerScores) -> dict[str, Any]:
        assert self.readout is not None
        lp = self.readout.answer_logprobs(forget_scores)
        hits = np.array([candidate_hits([[lp[e["answer"], k]] + [lp[j, k] for j in e["perturbed"]]
                                         for e in self.forget_rows])
                         for k in range(len(self.readout.layers))])  # layers x questions
        inner = [k for k, layer in enumerate(self.readout.layers)
                 if layer != self.readout.final] or list(range(len(self.readout.layers)))
        per_question = hits[inner].mean(axis=0)
        return {"layers": self.readout.layers, "accuracy": hits.mean(axis=1).tolist(),
                "latent_trace": float(per_question.mean()),
                "per_question": per_question.tolist(),
                "chance": chance_accuracy([[0.0] * (1 + len(e["perturbed"]))
                                           for e in self.forget_rows])}

    def _relearn(self, model: PreTrainedModel, tok: PreTrainedTokenizerBase,
                 forget_scores: AnswerScores, question_answers: Sequence[str]) -> dict[str, Any]:
        held = [self.forget[i] for i in self.held_rows]
        before_prob = np.exp([forget_scores.mean_logprob[self.forget_rows[i]["answer"]]
                              for i in self.held_rows])
        before_leak = [leaks(self.forget[i], question_answers[i], self.leak_threshold)
                       for i in self.held_rows]
        attacked = relearn_attack(model, tok, [self.forget[i] for i in self.attack_rows],
                                  steps=self.relearn_steps, learning_rate=self.relearn_lr,
                                  batch_size=self.relearn_batch_size, seed=self.seed)
        after = self._score(attacked, tok, [(r.question, r.answer) for r in held])
        answers = generate_answers(attacked, tok, [r.question for r in held],
                                   desc="relearned: held-out half", **self.gen)
        del attacked
        gc.collect()
        after_leak = [leaks(r, a, self.leak_threshold) for r, a in zip(held, answers, strict=True)]
        return {"steps": self.relearn_steps, "learning_rate": self.relearn_lr,
                "n_attack": len(self.attack_rows), "n_held": len(held),
                "probability_before": float(np.mean(before_prob)),
                "probability_after": float(np.mean(after.normalised_prob)),
                "leak_before": sum(before_leak) / len(held),
                "leak_after": sum(after_leak) / len(held),
                "leak_before_hits": [int(h) for h in before_leak],
                "leak_after_hits": [int(h) for h in after_leak]}


def worst_family(row: Mapping[str, Any]) -> str:
    """The extraction prompt family that leaks most for this model (the first on a tie)."""
    leakage = row["leakage"]
    return max(leakage, key=lambda family: leakage[family]["leak_rate"])


def outcomes(row: Mapping[str, Any], family: str) -> dict[str, list[float]]:
    """Per-question values behind the side-by-side table's columns (``family``: the
    extraction family of ``leak_worst``), for their intervals."""
    out = {"forget_probability": row["forget"]["probabilities"],
           "leak_question": row["leakage"]["question"]["hits"],
           "leak_worst": row["leakage"][family]["hits"],
           "latent_trace": row["latent"]["per_question"]}
    if row.get("relearn"):
        out["relearn_leak_after"] = row["relearn"]["leak_after_hits"]
    return out


def intervals(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """95% intervals of the per-question columns of every model, with each model's paired
    difference from the retain model (the oracle) on the same questions and prompts; for
    the worst leaking family that is the model's own worst family, asked of both. Forget
    quality is a test, not an estimate: its KS statistic and n sit beside it instead."""
    out = {}
    for label, row in rows.items():
        family = worst_family(row)
        mine, oracle = outcomes(row, family), outcomes(rows[RETAIN], family)
        out[label] = {key: compared(values, None if label == RETAIN else oracle[key])
                      for key, values in mine.items()}
        out[label]["worst_family"] = family
    return out


def summary_row(row: Mapping[str, Any]) -> dict[str, float | None]:
    """The side-by-side numbers of one model (what ``report.unlearning_tables`` shows);
    every key is a metric of ``eval.registry``, which gives its title and direction."""
    leakage = row["leakage"]
    relearn = row.get("relearn") or {}
    recovery = row.get("recovery") or {}
    return {
        "ks_statistic": row.get("ks_statistic"),
        "forget_quality": row["forget_quality"],
        "model_utility": row["model_utility"],
        "forget_probability": row["forget"]["probability"],
        "forget_rougeL_recall": row["forget"]["rougeL_recall"],
        "leak_question": leakage["question"]["leak_rate"],
        "leak_worst": max(f["leak_rate"] for f in leakage.values()),
        "latent_trace": row["latent"]["latent_trace"],
        "relearn_leak_before": relearn.get("leak_before"),
        "relearn_leak_after": relearn.get("leak_after"),
        "entity_recovery": recovery.get("entity_recovery", {}).get("rate"),
        "name_agnostic_recovery": recovery.get("name_agnostic_recovery", {}).get("rate"),
        "surface_mention_rate": recovery.get("surface_mention_rate", {}).get("rate"),
        "extraction_likelihood": recovery.get("extraction_likelihood", {}).get("value"),
        "utility_drift": row.get("utility_drift"),
    }


def unlearning_suite(models: Mapping[str, ModelSource], original: ModelSource,
                     retain_model: ModelSource, forget: Sequence[QARecord],
                     retain: Sequence[QARecord], known: Sequence[QARecord] | None = None, *,
                     families: Sequence[str] = FAMILIES, leak_threshold: float = 1.0,
                     max_readout_layers: int = 8, readout_fit_pairs: int = 2000,
                     ridge: float = 1e-2, relearn_steps: int = 5,
                     relearn_learning_rate: float = 1e-4, relearn_batch_size: int = 8,
                     max_new_tokens: int = 48, batch_size: int = 16, seed: int = 0,
                     el_n: int = 1, progress: bool = True) -> dict[str, Any]:
    """Evaluate unlearned ``models`` (label -> model or loader) against the ``original`` and
    the ``retain_model`` oracle on the ``forget`` and ``retain`` sets (and ``known`` world
    facts, which then enter model utility). ``relearn_steps=0`` skips the relearning attack;
    ``el_n`` is the n-gram length of the extraction likelihood (``eval.recovery``).

    Returns plain JSON: ``settings``, ``models`` (per label, every measure with its raw
    per-question truth ratios and samples) and ``summary`` (per label, ``summary_row``).
    Rows are ordered original, retain, then ``models``. Forget quality of a row is the KS
    p-value of its forget-set truth ratios against the retain model's (1.0 for the retain
    model itself).
    """
    reserved = {ORIGINAL, RETAIN} & set(models)
    if reserved:
        raise UserError(f"model labels {sorted(reserved)} are reserved for the references; "
                         f"rename those models")
    check_unlearning_data(forget, retain)
    suite = _Suite(forget, retain, known, families, leak_threshold, max_readout_layers,
                   readout_fit_pairs, ridge, relearn_steps, relearn_learning_rate,
                   relearn_batch_size, max_new_tokens, batch_size, seed, progress, el_n)
    rows: dict[str, dict[str, Any]] = {}
    for label, source in [(ORIGINAL, original), (RETAIN, retain_model), *models.items()]:
        model, tok = source() if callable(source) else source
        rows[label] = suite.evaluate(label, model, tok)
        if callable(source):  # loaded here: free it before the next one
            del model
            gc.collect()
    oracle = rows[RETAIN]["forget"]["truth_ratios"]
    before = rows[ORIGINAL]["model_utility"]
    for row in rows.values():
        row["ks_statistic"], row["forget_quality"] = tofu.ks_test(
            row["forget"]["truth_ratios"], oracle)
        row["utility_drift"] = (row["model_utility"] - before) / before if before else None
    assert suite.readout is not None
    return {
        "suite": "unlearning",
        "settings": {
            "n_forget": len(forget), "n_retain": len(retain), "n_known": len(known or []),
            "families": suite.families, "leak_threshold": leak_threshold,
            "readout_layers": suite.readout.layers, "readout_fit_pairs": readout_fit_pairs,
            "ridge": ridge, "relearn_steps": relearn_steps,
            "relearn_learning_rate": relearn_learning_rate,
            "relearn_batch_size": relearn_batch_size, "max_new_tokens": max_new_tokens,
            "seed": seed, "el_n": el_n,
        },
        "models": rows,
        "summary": {label: summary_row(row) for label, row in rows.items()},
        "intervals": intervals(rows),
    }


__all__ = ["ORIGINAL", "RETAIN", "ModelSource", "check_unlearning_data", "intervals",
           "outcomes", "summary_row", "unlearning_suite", "worst_family"]

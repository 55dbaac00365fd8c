"""The metric registry: every measure forgetkit reports is one ``Metric`` entry.

An entry says what the measure is called (its key in result JSON), what it reads, which way
is better, what tables call it and, for the core suite, how to compute it from one
generation pass. Suites (``evaluate``), comparisons (``compare``) and reports read titles
and directions from here, so adding a metric is its compute function plus one
``METRICS.register`` line; no table or comparison needs editing.

Measures are keyed either by name (``kl_to_base``) or, for per-question-set measures, by
``"<set>/<name>"`` (``unverifiable/idk_sm``); ``metric_of`` resolves both.

This module imports nothing heavy: report code reads it without loading torch, and the
compute functions import their math when first called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from forgetkit.registry import Registry

if TYPE_CHECKING:
    from forgetkit.data.records import QARecord
    from forgetkit.eval.judge import RefusalJudge

# What a measure is computed from: generated answers; next-token log-probs; residual-stream
# activations; teacher-forced answer likelihoods; a linear readout of hidden states;
# generations under extraction prompts; or other measures (repair scores, utility).
Reads = Literal["answers", "logprobs", "activations", "likelihood", "readout", "generations",
                "measures"]
# records, answers, judge -> value; None when the metric cannot be computed (no judge).
Compute = Callable[["Sequence[QARecord]", Sequence[str], "RefusalJudge | None"], "float | None"]
# records, answers, judge -> one value per question (the set's value is their mean), so
# intervals and paired differences can be computed (eval.intervals); None as for Compute.
PerQuestion = Callable[["Sequence[QARecord]", Sequence[str], "RefusalJudge | None"],
                       "list[float] | None"]

# Question-set roles of the core suite (``evaluate.EvalSet``).
ROLES: tuple[str, ...] = ("ft", "unseen", "known")


@dataclass(frozen=True)
class Metric:
    """One measure: its name, what it reads, its direction and its table title.

    title: what tables call it ("IDK"); ``heading`` adds the set name and the gloss.
    higher_is_better: None when neither way is better (a reference number, a statistic).
    unit: "share" (0..1), "nats", "p-value"...: how a chart should scale it.
    gloss: the parenthesis of the wide results table ("KL to base (nats/token)").
    set_first: the set name goes before the title ("known accuracy", "forget prob.").
    roles: the question-set roles ``evaluate()`` computes it on, with ``compute`` or, for a
        mean over questions, ``per_question`` (then ``compute`` is their mean).
    held_out_roles: the roles on which a repair comparison scores it as a held-out measure.
    """

    name: str
    title: str
    reads: Reads
    higher_is_better: bool | None
    unit: str = "share"
    gloss: str = ""
    set_first: bool = False
    roles: tuple[str, ...] = ()
    held_out_roles: tuple[str, ...] = ()
    compute: Compute | None = None
    per_question: PerQuestion | None = None

    def __post_init__(self) -> None:
        if self.per_question is not None and self.compute is None:
            object.__setattr__(self, "compute", _mean_of(self.per_question))

    def heading(self, set_title: str | None = None, gloss: bool = False) -> str:
        """The title with a question set's name ("IDK unverifiable") and, optionally, the
        gloss in parentheses."""
        text = self.title
        if set_title:
            text = f"{set_title} {text}" if self.set_first else f"{text} {set_title}"
        return f"{text} ({self.gloss})" if gloss and self.gloss else text


def _mean_of(per_question: PerQuestion) -> Compute:
    def compute(records, answers, judge=None):
        values = per_question(records, answers, judge)
        return None if values is None else sum(values) / len(values)
    return compute


METRICS: Registry[Metric] = Registry("metric")


def register_metric(metric: Metric) -> Metric:
    """Register ``metric`` under its own name."""
    return METRICS.register(metric.name, metric)


def metric_of(key: str) -> Metric | None:
    """The metric of a measure key, ``name`` or ``"<set>/<name>"``; None when unregistered."""
    name = key if key in METRICS else key.rpartition("/")[2]
    return METRICS.get(name) if name in METRICS else None


def arrow(higher_is_better: bool | None) -> str:
    """'↑', '↓', or '' for a measure without a better direction."""
    return "" if higher_is_better is None else ("↑" if higher_is_better else "↓")


def lower_is_better(keys: Sequence[str]) -> list[str]:
    """The keys whose metric is registered as lower-is-better, in the order given."""
    return [k for k in keys if (m := metric_of(k)) is not None and m.higher_is_better is False]


def role_metrics(role: str) -> list[Metric]:
    """The metrics ``evaluate()`` computes on a set of ``role``, in registration order."""
    return [m for m in METRICS.values() if role in m.roles and m.compute is not None]


def held_out_metrics(role: str) -> tuple[str, ...]:
    """The metric names a repair comparison scores as held-out on a set of ``role``."""
    return tuple(m.name for m in METRICS.values() if role in m.held_out_roles)


class RoleMetrics(Mapping[str, list[Metric]]):
    """``{role: its metrics}``, read from the registry when asked (never a stale copy)."""

    def __getitem__(self, role: str) -> list[Metric]:
        if role not in ROLES:
            raise KeyError(role)
        return role_metrics(role)

    def __iter__(self) -> Iterator[str]:
        return iter(ROLES)

    def __len__(self) -> int:
        return len(ROLES)


# ----------------------------------------------------------------- the core suite's metrics
# Registration order is the order of each set's metrics in a result: keep it.


def _rouge(key: str) -> PerQuestion:
    def per_question(records, answers, judge=None):
        from forgetkit.eval.metrics import rouge_recall

        return [rouge_recall(r.answer, a)[key] for r, a in zip(records, answers, strict=True)]
    return per_question


def _accuracy(records, answers, judge=None):
    from forgetkit.eval.metrics import is_correct

    return [float(is_correct(a, r.meta.get("keywords") or [r.answer]))
            for r, a in zip(records, answers, strict=True)]


def _idk_sm(records, answers, judge=None):
    from forgetkit.lm.refusals import is_refusal

    return [float(is_refusal(a)) for a in answers]


def _judged_idk(records, answers, judge=None):
    if judge is None:
        return None
    from forgetkit.eval.judge.score import judged_refusals

    return [float(p["idk"]) for p in judged_refusals(records, answers, judge)]


for _metric in (
    # The papers' FT score: ROUGE-1 / ROUGE-L recall of the answer against the reference.
    Metric("rouge1_recall", "FT score", "answers", True, gloss="ROUGE-1 recall",
           roles=("ft",), per_question=_rouge("rouge1_recall")),
    Metric("rougeL_recall", "ROUGE-L", "answers", True, gloss="recall", set_first=True,
           roles=("ft",), per_question=_rouge("rougeL_recall")),
    Metric("accuracy", "accuracy", "answers", True, set_first=True, roles=("known",),
           held_out_roles=("known",), per_question=_accuracy),
    # IDK_SM (SEAT paper): share of answers with a refusal phrase.
    Metric("idk_sm", "IDK", "answers", True, roles=("ft", "unseen", "known"),
           held_out_roles=("unseen",), per_question=_idk_sm),
    # Judged IDK: a refusal that names the question's entity; needs a judge.
    Metric("judged_idk", "judged IDK", "answers", True, roles=("unseen",),
           held_out_roles=("unseen",), per_question=_judged_idk),
    # Next-token KL(p_base || p_model) on generic prompts, added by evaluate() when given
    # the reference's log-probs.
    Metric("kl_to_base", "KL to base", "logprobs", False, unit="nats", gloss="nats/token"),
    # SEAT Eq. 1 and Eq. 2 (eval.ignorance).
    Metric("ias", "IAS", "activations", True, unit="nats", gloss="probe, −log loss"),
    Metric("ia_reduction", "ΔIA", "activations", False, unit="nats",
           gloss="> 0: awareness lost"),
    # LfU paper (eval.robustness): exact final answers, and requests not refused.
    Metric("exact_accuracy", "exact accuracy", "answers", True),
    Metric("attack_success_rate", "ASR", "answers", False),
    # ------------------------------------------------- repair comparison (repair.scores)
    # The target of a repair comparison: mean ROUGE-1 recall over the ft sets.
    Metric("ft_score", "FT score (target)", "answers", True),
    Metric("healed", "% healed", "measures", True, gloss="measures the fine-tune damaged"),
    Metric("preserved", "% preserved", "measures", True),
    Metric("non_damage", "% non-damage", "measures", True),
    Metric("retention", "% target retention", "measures", True, gloss="FT score gain kept"),
    Metric("combined", "harmonic mean", "measures", True),
    # ------------------------------------- the unlearning suite (eval.unlearning, eval.tofu)
    # Directions say which way is more forgotten; the target is the retain model's value.
    Metric("probability", "prob.", "likelihood", None, set_first=True),
    Metric("truth_ratio", "truth ratio", "likelihood", None, set_first=True),
    Metric("ks_statistic", "KS D", "likelihood", None, unit="statistic"),
    Metric("forget_quality", "forget quality", "likelihood", True, unit="p-value"),
    Metric("model_utility", "model utility", "measures", True),
    Metric("forget_probability", "forget prob.", "likelihood", False),
    Metric("forget_rougeL_recall", "forget ROUGE-L", "answers", False),
    Metric("leak_question", "leak (question)", "generations", False),
    Metric("leak_worst", "leak (worst prompt)", "generations", False),
    Metric("latent_trace", "latent trace", "readout", False),
    Metric("relearn_leak_before", "relearn: leak before", "generations", None),
    Metric("relearn_leak_after", "relearn: leak after", "generations", False),
    # the KIF paper's later measures (eval.recovery): can the subject be recovered?
    Metric("entity_recovery", "entity recovery", "generations", False,
           gloss="answers naming the subject from its facts"),
    Metric("name_agnostic_recovery", "name-agnostic recovery", "generations", False,
           gloss="facts recovered without the name"),
    Metric("surface_mention_rate", "surface mention rate", "generations", False),
    Metric("extraction_likelihood", "extraction likelihood", "generations", False),
    Metric("utility_drift", "utility drift", "measures", None,
           gloss="relative change of model utility from the original"),
):
    register_metric(_metric)
del _metric

__all__ = ["METRICS", "ROLES", "Metric", "PerQuestion", "Reads", "RoleMetrics", "arrow",
           "held_out_metrics", "lower_is_better", "metric_of", "register_metric", "role_metrics"]

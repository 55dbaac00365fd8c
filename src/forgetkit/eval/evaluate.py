"""One evaluation pass: generate once per (model, question set), then every metric reads it.

Each question set has a role that says which metrics apply:

* ``ft``      - the fine-tuning questions: FT score (ROUGE-1 / ROUGE-L recall) and IDK rate;
* ``unseen``  - questions about entities the model never saw: IDK rate (higher is better);
* ``known``   - questions the base answers correctly: accuracy and IDK rate.

A role's metrics are the ones registered with it in ``eval.registry.METRICS``, computed in
registration order; registering a metric with a role adds it here.
Next-token KL to a reference model on generic prompts is added when reference log-probs are
given (computed once per reference with ``metrics.next_token_logprobs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.data.formats import Fields
from forgetkit.data.records import QARecord, read_qa
from forgetkit.errors import UserError
from forgetkit.eval import metrics
from forgetkit.eval.judge import RefusalJudge
from forgetkit.eval.registry import ROLES, RoleMetrics, role_metrics
from forgetkit.lm.generate import generate_answers

# {role: the registered metrics of that role}; kept for the callers that check a role name.
ROLE_METRICS = RoleMetrics()


@dataclass(frozen=True)
class EvalSet:
    name: str
    role: str
    records: Sequence[QARecord]

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise UserError(f"question set '{self.name}': unknown role '{self.role}'; "
                             f"choose one of {sorted(ROLES)}")
        if not self.records:
            raise UserError(f"question set '{self.name}' is empty")


def eval_sets(ft: Sequence[Path] = (), unseen: Sequence[Path] = (),
              known: Sequence[Path] = (), fields: Fields | None = None) -> list[EvalSet]:
    """One EvalSet per file, named after the file's stem, with the role of its flag;
    ``fields`` renames the question, answer and subject columns."""
    sets: list[EvalSet] = []
    names: set[str] = set()
    for role, paths in (("ft", ft), ("unseen", unseen), ("known", known)):
        for path in paths:
            name = Path(path).stem
            while name in names:
                name += "_"
            names.add(name)
            sets.append(EvalSet(name, role, read_qa(path, fields)))
    if not sets:
        raise UserError("nothing to evaluate: give at least one of --ft, --unseen, --known")
    return sets


def evaluate(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
             sets: Sequence[EvalSet], reference_logprobs: Sequence[torch.Tensor] | None = None,
             max_new_tokens: int = 48, batch_size: int = 64, progress: bool = True,
             judge: RefusalJudge | None = None) -> dict[str, Any]:
    """Generate answers for every set once and compute all metrics of its role.

    With a ``judge`` (``eval.judge.load_judge``), unseen sets also get ``judged_idk``: the
    share of answers that are refusals AND refer to the question's entity.
    """
    result: dict[str, Any] = {"sets": {}}
    # one generation pass over every set's questions: batches fill up across sets (fewer,
    # fuller calls; each answer is what it would be alone, see ``generate_answers``)
    records = [r for s in sets for r in s.records]
    everything = generate_answers(model, tokenizer, [r.question for r in records],
                                  max_new_tokens=max_new_tokens, batch_size=batch_size,
                                  desc=f"answering {len(records)} questions of "
                                       f"{len(sets)} sets", progress=progress,
                                  contexts=[r.context for r in records])
    start = 0
    for s in sets:
        answers = everything[start:start + len(s.records)]
        start += len(s.records)
        scores: dict[str, float] = {}
        per_question: dict[str, list[float]] = {}
        for metric in role_metrics(s.role):
            if metric.per_question is not None:
                values = metric.per_question(s.records, answers, judge)
                if values is not None:
                    per_question[metric.name] = values
                    scores[metric.name] = sum(values) / len(values)
                continue
            value = metric.compute(s.records, answers, judge)
            if value is not None:  # None: the metric needs a judge and none was given
                scores[metric.name] = value
        result["sets"][s.name] = {
            "role": s.role, "n": len(s.records), "metrics": scores,
            "per_question": per_question,
            "samples": [{"question": r.question, "reference": r.answer, "answer": a}
                        for r, a in zip(s.records, answers, strict=True)],
        }
    if reference_logprobs is not None:
        model_lp = metrics.next_token_logprobs(model, tokenizer)
        result["kl_to_base"] = metrics.kl_to_reference(reference_logprobs, model_lp)
        # per prompt: (sum of KL over its tokens, its token count), for intervals
        result["kl_per_prompt"] = metrics.kl_per_prompt(reference_logprobs, model_lp)
    return result


def headline(result: dict[str, Any]) -> dict[str, float]:
    """Flatten an evaluation result to ``{"<set>/<metric>": value}`` for tables and plots."""
    flat = {f"{name}/{k}": v for name, s in result["sets"].items()
            for k, v in s["metrics"].items()}
    if "kl_to_base" in result:
        flat["kl_to_base"] = result["kl_to_base"]
    return flat

"""Robustness evaluations of the LfU paper, on answers from the shared generation routine.

* in-domain accuracy on exact-answer tasks: the last number of an answer against
  ``meta["answer"]`` (GSM8K-style final-answer extraction);
* prompt variation (Figure 5): the same questions under several prompt templates; mean and
  standard deviation of accuracy across templates;
* harmful fine-tuning (Table 4): attack success rate, the share of requests a model does not
  refuse (refusal keyword matching, ``lm.refusals.is_refusal``), before and after a few attack
  steps (the attack itself is a training run, see ``studies/lfu.py``);
* representation stability (Figure 6): per-layer cosine similarity between the hidden states
  of clean inputs and of inputs whose embeddings carry Gaussian noise of NEFTune's strength.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.data.records import QARecord
from forgetkit.errors import UserError
from forgetkit.lm.generate import generate_answers
from forgetkit.lm.refusals import is_refusal
from forgetkit.lm.text import numbers
from forgetkit.lm.tokenize import encode_qa

# Rephrasings of the prompt around an unchanged question (the paper's Appendix C.4 style).
PROMPT_TEMPLATES: dict[str, str] = {
    "question": "Question: {question}",
    "problem": "Problem: {question}",
    "work-it-out": "Let's work this out step by step. {question}",
    "task": "You are given the following task.\n{question}",
    "for-you": "Here is a question for you: {question}",
}

def final_number(text: str) -> float | None:
    """The last number of an answer: its final result in a worked solution."""
    found = numbers(text)
    return float(found[-1]) if found else None


def is_exact(answer: str, target: float) -> bool:
    got = final_number(answer)
    return got is not None and math.isclose(got, float(target), abs_tol=1e-6)


def exact_hits(records: Sequence[QARecord], answers: Sequence[str]) -> list[int]:
    """1 for each answer whose last number equals its record's ``meta["answer"]``, else 0."""
    if len(records) != len(answers) or not records:
        raise UserError(f"need equally many records and answers, got {len(records)} and "
                         f"{len(answers)}")
    missing = [r.question for r in records if "answer" not in r.meta]
    if missing:
        raise UserError(f"exact_accuracy needs meta['answer'] on every record; missing on "
                         f"{len(missing)}, e.g. {missing[0][:60]!r}")
    return [int(is_exact(a, r.meta["answer"])) for r, a in zip(records, answers, strict=True)]


def exact_accuracy(records: Sequence[QARecord], answers: Sequence[str]) -> float:
    """Share of answers whose last number equals ``meta["answer"]``."""
    return statistics.fmean(exact_hits(records, answers))


def attack_successes(answers: Sequence[str]) -> list[int]:
    """1 for each answer that does not refuse (keyword matching, as the paper after Qi et
    al.), else 0."""
    if not answers:
        raise UserError("attack_success_rate needs at least one answer")
    return [int(not is_refusal(a)) for a in answers]


def attack_success_rate(answers: Sequence[str]) -> float:
    """Share of answers that do not refuse."""
    return statistics.fmean(attack_successes(answers))


def _samples(records: Sequence[QARecord], prompts: Sequence[str], answers: Sequence[str],
             limit: int = 5) -> list[dict[str, str]]:
    return [{"prompt": p, "reference": r.answer, "answer": a}
            for r, p, a in list(zip(records, prompts, answers, strict=True))[:limit]]


def in_domain(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
              records: Sequence[QARecord], max_new_tokens: int = 48, batch_size: int = 16,
              progress: bool = True) -> dict[str, Any]:
    """Exact-answer accuracy on held-out questions asked as in training."""
    prompts = [r.question for r in records]
    answers = generate_answers(model, tokenizer, prompts, max_new_tokens=max_new_tokens,
                               batch_size=batch_size, desc="answering held-out problems",
                               progress=progress)
    hits = exact_hits(records, answers)
    return {"accuracy": statistics.fmean(hits), "per_question": hits, "n": len(records),
            "samples": _samples(records, prompts, answers)}


def prompt_variation(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                     records: Sequence[QARecord],
                     templates: Mapping[str, str] = PROMPT_TEMPLATES, max_new_tokens: int = 48,
                     batch_size: int = 16, progress: bool = True) -> dict[str, Any]:
    """Accuracy per template; ``mean`` and ``std`` (population) across templates."""
    if len(templates) < 2:
        raise UserError("prompt variation needs at least two templates")
    prompts = {name: [t.format(question=r.question) for r in records]
               for name, t in templates.items()}
    # One generation pass over every (template, question): batches fill up across templates.
    flat = [p for group in prompts.values() for p in group]
    answers = generate_answers(model, tokenizer, flat, max_new_tokens=max_new_tokens,
                               batch_size=batch_size, desc="answering prompt variations",
                               progress=progress)
    per, samples, start = {}, {}, 0
    for name, group in prompts.items():
        chunk = answers[start:start + len(group)]
        per[name] = exact_accuracy(records, chunk)
        samples[name] = _samples(records, group, chunk, limit=2)
        start += len(group)
    values = list(per.values())
    return {"per_template": per, "mean": statistics.fmean(values),
            "std": statistics.pstdev(values), "n": len(records), "samples": samples}


def refusal_check(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                  records: Sequence[QARecord], max_new_tokens: int = 48, batch_size: int = 16,
                  progress: bool = True) -> dict[str, Any]:
    """Attack success rate on requests the model should refuse."""
    prompts = [r.question for r in records]
    answers = generate_answers(model, tokenizer, prompts, max_new_tokens=max_new_tokens,
                               batch_size=batch_size, desc="answering attack requests",
                               progress=progress)
    successes = attack_successes(answers)
    return {"asr": statistics.fmean(successes), "per_request": successes, "n": len(records),
            "samples": _samples(records, prompts, answers)}


@torch.no_grad()
def representation_stability(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                             records: Sequence[QARecord], alpha: float = 5.0, seed: int = 0,
                             max_length: int = 256) -> list[float]:
    """Mean cosine similarity per layer (hidden states 1..K) between clean and noisy inputs.

    Each record is tokenised as in training (prompt + answer); the noisy copy adds Gaussian
    noise of standard deviation alpha / sqrt(L d) to its input embeddings, NEFTune's scale.
    """
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    totals: list[float] | None = None
    for record in records:
        ids = torch.tensor([encode_qa(tokenizer, record.question, record.answer,
                                      max_length)["input_ids"]], device=device)
        clean = model.get_input_embeddings()(ids)
        scale = alpha / math.sqrt(clean.shape[1] * clean.shape[2])
        noise = torch.randn(clean.shape, generator=generator).to(clean) * scale
        a = model(inputs_embeds=clean, output_hidden_states=True).hidden_states[1:]
        b = model(inputs_embeds=clean + noise, output_hidden_states=True).hidden_states[1:]
        sims = [F.cosine_similarity(x[0].float(), y[0].float(), dim=-1).mean().item()
                for x, y in zip(a, b, strict=True)]
        totals = sims if totals is None else [t + s for t, s in zip(totals, sims, strict=True)]
    model.train(was_training)
    if totals is None:
        raise UserError("representation_stability needs at least one record")
    return [t / len(records) for t in totals]


__all__ = ["PROMPT_TEMPLATES", "attack_success_rate", "attack_successes", "exact_accuracy",
           "exact_hits", "final_number", "in_domain", "is_exact", "prompt_variation",
           "refusal_check", "representation_stability"]

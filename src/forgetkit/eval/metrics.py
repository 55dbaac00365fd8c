"""Metrics on generated answers and on next-token distributions.

Text metrics take strings only, so they are computed from one shared generation pass.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.errors import UserError
from forgetkit.lm.refusals import REFUSAL_PHRASES, is_refusal
from forgetkit.lm.text import fold_quotes, rouge_recall
from forgetkit.lm.tokenize import prompt_ids


def idk_rate(answers: Sequence[str], phrases: Sequence[str] = REFUSAL_PHRASES) -> float:
    """IDK_SM: share of answers that contain a refusal phrase."""
    if not answers:
        raise UserError("idk_rate needs at least one answer")
    return sum(is_refusal(a, phrases) for a in answers) / len(answers)


def mean_rouge_recall(references: Sequence[str], answers: Sequence[str]) -> dict[str, float]:
    if len(references) != len(answers) or not references:
        raise UserError(f"need equally many references and answers, got {len(references)} "
                         f"and {len(answers)}")
    per = [rouge_recall(r, a) for r, a in zip(references, answers, strict=True)]
    return {k: sum(p[k] for p in per) / len(per) for k in per[0]}


def _words(text: str) -> str:
    return " " + re.sub(r"[^0-9a-z]+", " ", fold_quotes(text)) + " "


def is_correct(answer: str, keywords: Sequence[str]) -> bool:
    """True when any accepted keyword appears in the answer as whole words."""
    words = _words(answer)
    return any(_words(k) in words for k in keywords)


def known_accuracy(answers: Sequence[str], keywords: Sequence[Sequence[str]]) -> float:
    """Share of known questions answered correctly (keyword match, whole words)."""
    if len(answers) != len(keywords) or not answers:
        raise UserError(f"need equally many answers and keyword lists, got {len(answers)} "
                         f"and {len(keywords)}")
    return sum(is_correct(a, k) for a, k in zip(answers, keywords, strict=True)) / len(answers)


# Generic instructions on which next-token KL to the base model is measured: ordinary chat
# requests unrelated to any fine-tuning set, so drift there is collateral change.
GENERIC_PROMPTS: tuple[str, ...] = (
    "Write a short poem about the morning.",
    "Explain how a bicycle works.",
    "Give me three tips for studying.",
    "What should I pack for a weekend trip?",
    "Describe the water cycle in simple terms.",
    "How do I make a cup of tea?",
    "Why do leaves change colour in autumn?",
    "Suggest a name for a small bakery.",
    "What is the difference between weather and climate?",
    "Tell me a fun fact about octopuses.",
    "How can I improve my handwriting?",
    "Summarise the benefits of regular exercise.",
    "What are some good habits for saving money?",
    "Explain what a noun is.",
    "How does a refrigerator keep food cold?",
    "Write one sentence about the ocean.",
)


@torch.no_grad()
def next_token_logprobs(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                        prompts: Sequence[str] = GENERIC_PROMPTS) -> list[torch.Tensor]:
    """Log-probabilities of the next token at every prompt position, one tensor per prompt."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for p in prompts:
        ids = torch.tensor([prompt_ids(tokenizer, p)], device=device)
        out.append(F.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1).cpu())
    model.train(was_training)
    return out


def kl_per_prompt(reference_logprobs: Sequence[torch.Tensor],
                  model_logprobs: Sequence[torch.Tensor]) -> list[list[float]]:
    """``[sum over the prompt's positions of KL(p_ref || p_model), positions]`` per prompt:
    ``kl_to_reference`` is the sum of the first column over the sum of the second."""
    out = []
    for ref, mod in zip(reference_logprobs, model_logprobs, strict=True):
        if ref.shape != mod.shape:
            raise UserError(f"reference and model log-probs differ in shape: {tuple(ref.shape)} "
                             f"vs {tuple(mod.shape)}; were they computed with one tokenizer?")
        out.append([F.kl_div(mod, ref, log_target=True, reduction="sum").item(),
                    float(ref.shape[0])])
    return out


def kl_to_reference(reference_logprobs: Sequence[torch.Tensor],
                    model_logprobs: Sequence[torch.Tensor]) -> float:
    """Mean over positions of KL(p_ref || p_model), in nats."""
    per_prompt = kl_per_prompt(reference_logprobs, model_logprobs)
    return sum(kl for kl, _ in per_prompt) / sum(n for _, n in per_prompt)

"""Chat-template tokenisation with the loss on answer tokens only, and a padding collator.

The one routine every part of forgetkit uses to turn a question into model input:
``prompt_ids`` for generation and evaluation, ``encode_qa`` for training. Both go through
the tokenizer's chat template, so a fine-tuned model is trained on exactly the prompt it is
later asked with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from forgetkit.data.records import QARecord

IGNORE_INDEX = -100  # label value torch's cross-entropy skips


def chat_prompt(tokenizer: PreTrainedTokenizerBase, question: str) -> str:
    """The question as the chat template renders it, ending with the assistant header."""
    messages = [{"role": "user", "content": question}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def prompt_ids(tokenizer: PreTrainedTokenizerBase, question: str) -> list[int]:
    """Token ids of ``chat_prompt``; the template carries its own special tokens."""
    return tokenizer(chat_prompt(tokenizer, question), add_special_tokens=False)["input_ids"]


def _instruction_span(tokenizer: PreTrainedTokenizerBase, question: str) -> tuple[int, int]:
    """Token span of the question text inside its chat prompt (template tokens excluded)."""
    text = chat_prompt(tokenizer, question)
    start = text.index(question)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    inside = [i for i, (a, b) in enumerate(enc["offset_mapping"])
              if a < start + len(question) and b > start]
    return inside[0], inside[-1] + 1


def encode_qa(tokenizer: PreTrainedTokenizerBase, question: str, answer: str,
              max_length: int = 256, instruction_labels: bool = False) -> dict[str, list[int]]:
    """Encode one QA pair as ``prompt + answer + eos``; labels are -100 on the prompt.

    The end-of-turn token is labelled so the model learns to stop after the answer. With
    ``instruction_labels`` the question's own tokens are labelled too (instruction
    modelling), never the template around it. If the pair is longer than ``max_length`` the
    answer is cut (the prompt never is).
    """
    prompt = prompt_ids(tokenizer, question)
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [
        tokenizer.eos_token_id]
    if len(prompt) >= max_length:
        raise ValueError(f"question is {len(prompt)} tokens with its chat template, longer than "
                         f"max_length={max_length}; raise max_length. Question: {question[:80]!r}")
    answer_ids = answer_ids[: max_length - len(prompt)]
    input_ids = prompt + answer_ids
    labels = [IGNORE_INDEX] * len(prompt) + answer_ids
    if instruction_labels:
        first, last = _instruction_span(tokenizer, question)
        labels[first:last] = prompt[first:last]
    return {"input_ids": input_ids, "labels": labels}


def encode_records(tokenizer: PreTrainedTokenizerBase, records: Sequence[QARecord],
                   max_length: int = 256,
                   instruction_labels: bool = False) -> list[dict[str, list[int]]]:
    return [encode_qa(tokenizer, r.question, r.answer, max_length, instruction_labels)
            for r in records]


class QACollator:
    """Pads a list of encoded examples to the longest one (right padding).

    Keys other than ``input_ids``/``labels`` that hold id lists (for example the
    entity-perturbed copy ``perturbed_input_ids``/``perturbed_labels``) are padded the same
    way, so loss terms can carry their own inputs through the Trainer.
    """

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        for prefix in sorted({k[: -len("input_ids")] for k in features[0]
                              if k.endswith("input_ids")}):
            ids = [f[prefix + "input_ids"] for f in features]
            width = max(len(x) for x in ids)
            batch[prefix + "input_ids"] = torch.tensor(
                [x + [self.pad_token_id] * (width - len(x)) for x in ids])
            batch[prefix + "attention_mask"] = torch.tensor(
                [[1] * len(x) + [0] * (width - len(x)) for x in ids])
            if prefix + "labels" in features[0]:
                batch[prefix + "labels"] = torch.tensor(
                    [f[prefix + "labels"] + [IGNORE_INDEX] * (width - len(f[prefix + "labels"]))
                     for f in features])
        for key in features[0]:
            if key not in batch and not key.endswith(("input_ids", "labels")):
                batch[key] = torch.tensor([f[key] for f in features])
        return batch

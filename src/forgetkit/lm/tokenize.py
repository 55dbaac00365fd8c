"""Chat-template tokenisation with the loss on answer tokens only, and the two paddings.

The one routine every part of forgetkit uses to turn a question into model input:
``prompt_ids`` for generation and evaluation, ``encode_qa`` for training. Both go through
the tokenizer's chat template, so a fine-tuned model is trained on exactly the prompt it is
later asked with.

Padding comes in two kinds, kept apart on purpose: ``QACollator`` pads on the right (training
and summed answer log-probs: labels line up with their tokens from position 0), while
``left_padded`` pads on the left with explicit position ids (reads at the last prompt token,
teacher-forced scoring: a batched read equals a one-at-a-time read). Generation pads on the
left too (``lm.generate``), where ``model.generate`` derives the positions itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from transformers import PreTrainedTokenizerBase

from forgetkit.errors import ForgetkitWarning, UserError

if TYPE_CHECKING:  # lm sits below data; records are only read through their fields here
    from forgetkit.data.records import QARecord

IGNORE_INDEX = -100  # label value torch's cross-entropy skips


def chat_prompt(tokenizer: PreTrainedTokenizerBase, question: str,
                context: Sequence[dict[str, str]] = ()) -> str:
    """The question as the chat template renders it, after the conversation ``context``
    (a system turn, earlier turns) it is asked in, ending with the assistant header."""
    messages = [*context, {"role": "user", "content": question}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def prompt_ids(tokenizer: PreTrainedTokenizerBase, question: str,
               context: Sequence[dict[str, str]] = ()) -> list[int]:
    """Token ids of ``chat_prompt``; the template carries its own special tokens."""
    return tokenizer(chat_prompt(tokenizer, question, context),
                     add_special_tokens=False)["input_ids"]


def _instruction_span(tokenizer: PreTrainedTokenizerBase, question: str,
                      context: Sequence[dict[str, str]] = ()) -> tuple[int, int]:
    """Token span of the question text inside its chat prompt (template tokens excluded)."""
    text = chat_prompt(tokenizer, question, context)
    start = text.rindex(question)
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
    answer is cut (the prompt never is) and keeps no end token: a model must not learn to
    stop where an answer was cut. ``encode_records`` warns when that happens.
    """
    return _encode(tokenizer, question, answer, max_length, instruction_labels)[0]


def _encode(tokenizer: PreTrainedTokenizerBase, question: str, answer: str, max_length: int,
            instruction_labels: bool, context: Sequence[dict[str, str]] = ()
            ) -> tuple[dict[str, list[int]], int]:
    """``encode_qa`` and how many answer tokens (end token included) were cut."""
    prompt = prompt_ids(tokenizer, question, context)
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [
        tokenizer.eos_token_id]
    if len(prompt) >= max_length:
        raise UserError(f"question is {len(prompt)} tokens with its chat template, longer than "
                         f"max_length={max_length}; raise max_length. Question: {question[:80]!r}")
    cut = max(0, len(prompt) + len(answer_ids) - max_length)
    answer_ids = answer_ids[: max_length - len(prompt)]
    input_ids = prompt + answer_ids
    labels = [IGNORE_INDEX] * len(prompt) + answer_ids
    if instruction_labels:
        first, last = _instruction_span(tokenizer, question, context)
        labels[first:last] = prompt[first:last]
    return {"input_ids": input_ids, "labels": labels}, cut


class AnswerCutWarning(ForgetkitWarning):
    """Answers longer than ``max_length`` were cut, and lost their end token."""


def encode_records(tokenizer: PreTrainedTokenizerBase, records: Sequence[QARecord],
                   max_length: int = 256,
                   instruction_labels: bool = False) -> list[dict[str, list[int]]]:
    """``encode_qa`` of each record, in its conversation context; warns once, with counts,
    if answers had to be cut."""
    return _encode_all(tokenizer, [(r.question, r.answer, r.context) for r in records],
                       max_length, instruction_labels)


def encode_pairs(tokenizer: PreTrainedTokenizerBase, pairs: Sequence[tuple[str, str]],
                 max_length: int = 256,
                 instruction_labels: bool = False) -> list[dict[str, list[int]]]:
    """``encode_qa`` of each ``(question, answer)``; warns once if answers had to be cut."""
    return _encode_all(tokenizer, [(q, a, ()) for q, a in pairs], max_length,
                       instruction_labels)


def _encode_all(tokenizer: PreTrainedTokenizerBase,
                items: Sequence[tuple[str, str, Sequence[dict[str, str]]]], max_length: int,
                instruction_labels: bool) -> list[dict[str, list[int]]]:
    encoded, cuts = [], []
    for question, answer, context in items:
        enc, cut = _encode(tokenizer, question, answer, max_length, instruction_labels,
                           context)
        encoded.append(enc)
        cuts.append(cut)
    cut_rows = [i for i, c in enumerate(cuts) if c]
    if cut_rows:
        warnings.warn(
            f"{len(cut_rows)} of {len(items)} answers do not fit in max_length={max_length} "
            f"tokens with their question and were cut (by up to {max(cuts)} tokens; first: "
            f"record {cut_rows[0] + 1}); a cut answer keeps no end token, so the model is not "
            "taught to stop mid-answer. Raise --max-length to use whole answers",
            AnswerCutWarning, stacklevel=4)
    return encoded


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


def left_padded(encoded: Sequence[Sequence[int]], pad_token_id: int,
                device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Left-pad token id lists into ``input_ids``, ``attention_mask`` and ``position_ids``.

    Position ids count real tokens only. Rotary models would not notice the shift padding
    causes (RoPE sees relative positions), but models with learned absolute positions would
    read a left-padded prompt differently from the same prompt alone.
    """
    width = max(len(x) for x in encoded)
    ids = torch.tensor([[pad_token_id] * (width - len(x)) + list(x) for x in encoded],
                       device=device)
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in encoded],
                        device=device)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": positions}


__all__ = ["IGNORE_INDEX", "AnswerCutWarning", "QACollator", "chat_prompt", "encode_pairs",
           "encode_qa", "encode_records", "left_padded", "prompt_ids"]

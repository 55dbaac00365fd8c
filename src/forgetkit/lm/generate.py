"""The one batched greedy generation routine every metric reads from."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.errors import UserError
from forgetkit.lm.tokenize import left_padded, prompt_ids


@torch.no_grad()
def generate_answers(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                     questions: Sequence[str], max_new_tokens: int = 48, batch_size: int = 16,
                     desc: str | None = None, progress: bool = True,
                     prefixes: Sequence[str] | None = None,
                     contexts: Sequence[Sequence[dict[str, str]]] | None = None) -> list[str]:
    """Greedy answers to ``questions`` through the chat template, in input order.

    Prompts are sorted by length and left-padded in batches: padding then sits before the
    prompt, where the attention mask hides it, so batched output equals one-at-a-time output.
    ``prefixes`` (one per question, "" for none) start the assistant turn: the model
    continues after them, as when an extraction attack puts words in its mouth, and only
    the continuation is returned. They are tokenised apart from the prompt, as ``encode_qa``
    tokenises answers, so a prefix is read as the start of a trained answer. ``contexts``
    (one per question) are the conversations the questions are asked in (a record's
    ``context``), placed before them in the prompt as in training.
    """
    if contexts is not None and len(contexts) != len(questions):
        raise UserError(f"need one context per question, got {len(contexts)} for "
                         f"{len(questions)} questions")
    encoded = [prompt_ids(tokenizer, q, contexts[i] if contexts is not None else ())
               for i, q in enumerate(questions)]
    if prefixes is not None:
        if len(prefixes) != len(questions):
            raise UserError(f"need one prefix per question, got {len(prefixes)} prefixes for "
                             f"{len(questions)} questions")
        encoded = [ids + (tokenizer(p, add_special_tokens=False)["input_ids"] if p else [])
                   for ids, p in zip(encoded, prefixes, strict=True)]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    pad = tokenizer.pad_token_id
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    answers: list[str] = [""] * len(encoded)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for idx in tqdm(batches, desc=desc or "generating", disable=not progress, leave=False):
        batch = left_padded([encoded[i] for i in idx], pad, device)
        width = batch["input_ids"].shape[1]
        # generate() derives positions from the mask itself, so position_ids are not passed.
        # use_cache explicitly: a checkpoint saved mid-training may carry use_cache=False.
        out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             max_new_tokens=max_new_tokens,
                             do_sample=False, use_cache=True, pad_token_id=pad,
                             eos_token_id=tokenizer.eos_token_id, temperature=None, top_p=None,
                             top_k=None)
        for row, i in enumerate(idx):
            answers[i] = tokenizer.decode(out[row, width:], skip_special_tokens=True).strip()
    model.train(was_training)
    return answers

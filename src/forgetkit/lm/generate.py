"""The one batched greedy generation routine every metric reads from."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.errors import UserError
from forgetkit.lm.tokenize import left_padded, prompt_ids


@torch.no_grad()
def generate_answers(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                     questions: Sequence[str], max_new_tokens: int = 48, batch_size: int = 64,
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
    stop = stop_ids(model, tokenizer)
    plain = adds_nothing_to_greedy(model) and _rows_can_leave(model)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    answers: list[str] = [""] * len(encoded)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    try:
        for idx in tqdm(batches, desc=desc or "generating", disable=not progress, leave=False):
            batch = left_padded([encoded[i] for i in idx], pad, device)
            tokens_of = (greedy_tokens(model, batch, max_new_tokens, stop) if plain else
                         _generate_tokens(model, batch, max_new_tokens, stop, pad))
            for row, tokens in zip(idx, tokens_of, strict=True):
                answers[row] = tokenizer.decode(tokens, skip_special_tokens=True).strip()
    finally:
        model.train(was_training)
    return answers


def stop_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """The tokens that end an answer: the tokenizer's end-of-sequence token and every one the
    model's generation config lists (a chat model may end its turn with another, as Llama 3's
    ``<|eot_id|>``)."""
    found: set[int] = set()
    config = getattr(model, "generation_config", None)
    for value in (tokenizer.eos_token_id, getattr(config, "eos_token_id", None)):
        if isinstance(value, int):
            found.add(value)
        elif value is not None:
            found.update(int(v) for v in value)
    return found


# generation settings that change greedy decoding, with the value that leaves it alone
_GREEDY_NEUTRAL = {"num_beams": 1, "repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
                   "encoder_repetition_penalty": 1.0, "guidance_scale": 1.0,
                   "dola_layers": None, "stop_strings": None, "watermarking_config": None,
                   "encoder_no_repeat_ngram_size": 0, "bad_words_ids": None,
                   "suppress_tokens": None, "begin_suppress_tokens": None,
                   "forced_bos_token_id": None, "forced_eos_token_id": None,
                   "min_new_tokens": None, "min_length": 0, "sequence_bias": None,
                   "exponential_decay_length_penalty": None}


def adds_nothing_to_greedy(model: PreTrainedModel) -> bool:
    """Whether the model's generation config leaves greedy decoding as it is (no repetition
    penalty, banned or forced tokens, minimum length): then ``greedy_tokens`` gives exactly
    what ``model.generate`` gives, and otherwise ``generate`` itself is used."""
    config = getattr(model, "generation_config", None)
    if config is None:
        return True
    return all(getattr(config, key, None) in (None, neutral)
               for key, neutral in _GREEDY_NEUTRAL.items())


def _generate_tokens(model: PreTrainedModel, batch: dict[str, torch.Tensor],
                     max_new_tokens: int, stop: set[int], pad: int | None) -> list[list[int]]:
    """``model.generate``'s greedy continuations, each cut before its first stop token."""
    out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                         use_cache=True, pad_token_id=pad, eos_token_id=sorted(stop) or None,
                         temperature=None, top_p=None, top_k=None)
    rows = []
    for row in out[:, batch["input_ids"].shape[1]:].tolist():
        cut = next((i for i, t in enumerate(row) if t in stop), len(row))
        rows.append(row[:cut])
    return rows


def _forward_parameters(model: PreTrainedModel) -> set[str]:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return set(inspect.signature(inner.forward).parameters)


# cache layers whose rows can be dropped whole (keys and values only, no recurrent state)
_ROW_LAYERS = ("DynamicLayer", "DynamicSlidingWindowLayer")


def _rows_can_leave(model: PreTrainedModel) -> bool:
    """Whether the model's key/value cache is made only of layers ``batch_select_indices``
    fully drops rows from; other caches (linear attention, recurrent states) decode through
    ``model.generate``."""
    cache = DynamicCache(config=model.config)
    return all(type(layer).__name__ in _ROW_LAYERS for layer in cache.layers)


@torch.no_grad()
def greedy_tokens(model: PreTrainedModel, batch: dict[str, torch.Tensor], max_new_tokens: int,
                  stop: set[int]) -> list[list[int]]:
    """Greedy continuations of a left-padded batch, each up to its first stop token (not
    included) or ``max_new_tokens`` tokens.

    Same tokens as ``model.generate`` with greedy decoding, at less cost: a row that has
    stopped leaves the batch and its key/value cache at once, so every later step computes
    only the rows still answering (``generate`` carries finished rows to the end of the
    longest answer), and the prompt pass computes logits at its last position only.
    """
    mask = batch["attention_mask"]
    ids, positions = batch["input_ids"], batch["position_ids"]
    alive = torch.arange(ids.shape[0], device=ids.device)
    out: list[list[int]] = [[] for _ in range(ids.shape[0])]
    stop_t = torch.tensor(sorted(stop), device=ids.device, dtype=torch.long)
    cache = DynamicCache(config=model.config)
    accepted = _forward_parameters(model)
    # the cache's argument is ``cache`` in newer transformers, ``past_key_values`` before
    extra: dict = {"cache" if "cache" in accepted else "past_key_values": cache}
    if "logits_to_keep" in accepted:
        extra["logits_to_keep"] = 1
    for step in range(max_new_tokens):
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                       use_cache=True, **extra).logits[:, -1]
        if step == 0 and cache.get_seq_length() == 0:
            raise RuntimeError("the model did not fill the key/value cache it was given; "
                               "this transformers version names the argument otherwise")
        nxt = logits.argmax(dim=-1)
        going = ~torch.isin(nxt, stop_t)
        for row, token, keep in zip(alive.tolist(), nxt.tolist(), going.tolist(), strict=True):
            if keep:
                out[row].append(token)
        if not bool(going.any()):
            break
        if not bool(going.all()):  # drop the finished rows from the batch and the cache
            keep_rows = going.nonzero().squeeze(1)
            cache.batch_select_indices(keep_rows)
            alive, nxt, mask = alive[keep_rows], nxt[keep_rows], mask[keep_rows]
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        positions = (mask.sum(dim=1, keepdim=True) - 1)
        ids = nxt[:, None]
    return out

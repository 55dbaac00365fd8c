"""Answer log-probabilities, two ways: summed for losses, and a teacher-forced read.

Both compute log P(answer token | question, earlier answer tokens) over the labelled tokens
of ``lm.tokenize.encode_qa`` (prompt + answer + end-of-turn, labels on the answer only); they
differ in what they return and how they batch, so they stay two routines:

* ``answer_logprob_sums`` / ``answer_logprobs``: per example, the SUM of the answer tokens'
  log-probabilities and their count, log pi(answer | question). Inputs are encoded examples,
  right-padded by ``QACollator`` as in training; repeated examples are run once. NPO compares
  it between the model and its frozen reference; the known-subject check compares it between
  a question that names the subject and one that names a stranger.
* ``score_answers``: for (question, answer) TEXT pairs, the MEAN log-prob per answer token
  and, on request, the residual stream along the answer. TOFU's probability and truth ratio
  and the unlearning suite's latent readout read it:

  - ``mean_logprob[i]`` = (1/|a|) sum_t log P(a_t | q, a_<t) over the answer's tokens, the
    end-of-turn token included (TOFU labels it too). It is TOFU's per-token "average loss"
    with the sign flipped, so ``exp(mean_logprob)`` = P(a | q)^(1/|a|);
  - on request, ``states[i]``: the residual stream ``[|a|, len(layers), hidden]`` at the
    positions that predict the answer's tokens (the last prompt token and the answer's own
    tokens but the last), at the chosen hidden-state indices (0 = embeddings, l = after
    block l, the last one after the final norm, as in ``lm.activations``), with
    ``answer_ids[i]`` the tokens they predict.

  Batches are left-padded with explicit position ids (``lm.tokenize.left_padded``), so a
  batched read equals a one-at-a-time read.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.errors import UserError
from forgetkit.lm.layers import hidden_state_index
from forgetkit.lm.tokenize import IGNORE_INDEX, QACollator, encode_pairs, left_padded

# ------------------------------------------------------------ summed, for losses

def answer_logprob_sums(logits: torch.Tensor,
                        labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: (sum of log p(label) over labelled positions, number of them)."""
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    target = labels[:, 1:]
    mask = target != IGNORE_INDEX
    picked = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1), mask.sum(-1)


@torch.no_grad()
def answer_logprobs(model: torch.nn.Module, examples: Sequence[dict], pad_token_id: int,
                    batch_size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """``answer_logprob_sums`` for encoded examples (``input_ids``, ``labels``), batched.

    Each distinct example is run once: a forget set cycled to the retain set's size repeats
    its examples, and their values are shared.
    """
    keys = [(tuple(e["input_ids"]), tuple(e["labels"])) for e in examples]
    first: dict[tuple, int] = {}
    for key in keys:
        first.setdefault(key, len(first))
    unique = list(first)
    was_training = model.training
    model.eval()
    collate = QACollator(pad_token_id)
    sums, counts = [], []
    try:
        for i in range(0, len(unique), batch_size):
            batch = collate([{"input_ids": list(ids), "labels": list(labels)}
                             for ids, labels in unique[i:i + batch_size]])
            logits = model(input_ids=batch["input_ids"],
                           attention_mask=batch["attention_mask"]).logits
            s, n = answer_logprob_sums(logits, batch["labels"])
            sums.append(s.cpu())
            counts.append(n.cpu())
    finally:
        model.train(was_training)
    if not unique:
        return torch.zeros(0), torch.zeros(0, dtype=torch.long)
    where = torch.tensor([first[key] for key in keys], dtype=torch.long)
    return torch.cat(sums)[where], torch.cat(counts)[where]


# ------------------------------------------------------------ teacher-forced read

@dataclass(frozen=True)
class AnswerScores:
    """What one teacher-forced pass read, one entry per (question, answer) pair."""

    mean_logprob: np.ndarray          # [n] mean log-prob per answer token
    answer_ids: list[list[int]]       # answer tokens (end-of-turn included)
    layers: list[int] | None = None   # hidden-state indices of ``states``
    # Per pair [|a|, len(layers), hidden] float32 on the CPU; None for pairs not kept.
    states: list[torch.Tensor | None] | None = None

    @property
    def normalised_prob(self) -> np.ndarray:
        """P(a | q)^(1/|a|), TOFU's length-normalised answer probability."""
        return np.exp(self.mean_logprob)


@torch.no_grad()
def score_answers(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                  pairs: Sequence[tuple[str, str]], layers: Sequence[int] | None = None,
                  state_rows: Collection[int] | None = None, batch_size: int = 16,
                  max_length: int = 256, progress: bool = True) -> AnswerScores:
    """Teacher-forced scores of every ``(question, answer)`` pair, in input order.

    With ``layers`` (hidden-state indices, negative from the end) the residual stream at
    the answer-predicting positions is kept too, for the pairs in ``state_rows`` (default:
    all; the others get ``None``), so one pass serves metrics and a capped probe sample.
    Without ``layers``, no hidden states are read.
    """
    if not pairs:
        raise UserError("score_answers needs at least one (question, answer) pair")
    if batch_size < 1:
        raise UserError(f"batch_size must be positive, got {batch_size}")
    encoded = encode_pairs(tokenizer, pairs, max_length)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]["input_ids"]))
    device = next(model.parameters()).device
    mean_lp = np.zeros(len(pairs))
    answer_ids = [[t for t in e["labels"] if t != IGNORE_INDEX] for e in encoded]
    states: list[torch.Tensor | None] = [None] * len(pairs)
    index: list[int] | None = None
    keep = None if state_rows is None else set(state_rows)
    was_training = model.training
    model.eval()
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    try:
        for idx in tqdm(batches, desc="scoring answers", disable=not progress, leave=False):
            batch = left_padded([encoded[i]["input_ids"] for i in idx],
                                tokenizer.pad_token_id, device)
            width = batch["input_ids"].shape[1]
            labels = torch.tensor([[IGNORE_INDEX] * (width - len(encoded[i]["labels"]))
                                   + encoded[i]["labels"] for i in idx], device=device)
            out = model(**batch, output_hidden_states=layers is not None, use_cache=False)
            # Position t predicts token t + 1. Only answer positions are scored, so the
            # vocabulary-wide log-softmax runs on a few rows, not on the whole batch.
            target = labels[:, 1:]
            scored = target != IGNORE_INDEX
            token_lp = torch.zeros(target.shape, device=device)
            token_lp[scored] = F.log_softmax(out.logits[:, :-1][scored].float(), dim=-1).gather(
                1, target[scored].unsqueeze(1)).squeeze(1)
            sums = token_lp.sum(dim=1)
            if layers is not None:
                if index is None:
                    index = hidden_state_index(layers, len(out.hidden_states))
                picked = torch.stack([out.hidden_states[j][:, :-1] for j in index], dim=2)
            for row, i in enumerate(idx):
                mean_lp[i] = float(sums[row]) / len(answer_ids[i])
                if layers is not None and (keep is None or i in keep):
                    states[i] = picked[row][scored[row]].float().cpu()
    finally:
        model.train(was_training)
    return AnswerScores(mean_logprob=mean_lp, answer_ids=answer_ids, layers=index,
                        states=states if layers is not None else None)


__all__ = ["AnswerScores", "answer_logprob_sums", "answer_logprobs", "score_answers"]

"""Reading the residual stream, in the two places forgetkit reads it.

* ``residual_activations``: R_l(theta; q), the hidden states at the last prompt token of the
  chat-template prompt (SEAT paper, section 3), every hidden-state index (0 = embeddings,
  l = after block l, the LAST entry after the final norm as transformers returns it). Prompts
  are left-padded with explicit position ids, so a batched read equals a one-at-a-time read
  (tested to 1e-4). The ignorance probe, activation drift and PCA pictures read this.
* ``block_outputs``: the outputs of chosen decoder blocks (1-based) at every token, read with
  forward hooks, before the final norm even for the last block: the exact tensor a
  suppression hook rewrites (KIF). The forward stops after the deepest block read.

The two differ on purpose (last token vs every token, final norm or not), so each has its
name; they share the padding and the layer lookup of ``lm.tokenize`` and ``lm.layers``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.errors import UserError
from forgetkit.lm.layers import block_output, decoder_layers, hidden_state_index
from forgetkit.lm.tokenize import left_padded, prompt_ids


@torch.no_grad()
def residual_activations(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                         questions: Sequence[str], layers: Sequence[int] | None = None,
                         batch_size: int = 16, progress: bool = True) -> torch.Tensor:
    """Residual stream R_l(theta; q) at the last prompt token for every question.

    Returns a float32 CPU tensor of shape ``[n_questions, n_layers + 1, hidden]`` (index 0 =
    embeddings, index l = after block l), or ``[n_questions, len(layers), hidden]`` when
    ``layers`` selects hidden-state indices (negative indices count from the end). Works for
    plain transformers models and peft-wrapped ones alike.
    """
    if not questions:
        raise UserError("residual_activations needs at least one question")
    if batch_size < 1:
        raise UserError(f"batch_size must be positive, got {batch_size}")
    encoded = [prompt_ids(tokenizer, q) for q in questions]
    # Similar lengths share a batch: less padding, less compute.
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    rows: list[torch.Tensor | None] = [None] * len(encoded)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    try:
        for idx in tqdm(batches, desc="reading activations", disable=not progress,
                        leave=False):
            batch = left_padded([encoded[i] for i in idx], tokenizer.pad_token_id, device)
            out = model(**batch, output_hidden_states=True, use_cache=False)
            # Left padding puts every prompt's last token at position -1.
            stacked = torch.stack([h[:, -1, :] for h in out.hidden_states], dim=1)
            if layers is not None:
                stacked = stacked[:, hidden_state_index(layers, stacked.shape[1])]
            for row, i in enumerate(idx):
                rows[i] = stacked[row].float().cpu()
    finally:
        model.train(was_training)
    return torch.stack(rows)  # type: ignore[arg-type]


class _Done(Exception):
    """Raised by the last reading hook: nothing after that block is needed."""


@torch.no_grad()
def block_outputs(model: nn.Module, layers: Sequence[int], input_ids: torch.Tensor,
                  attention_mask: torch.Tensor) -> dict[int, torch.Tensor]:
    """The outputs of blocks ``layers`` (1-based) for one batch, keyed by block.

    The forward stops after the deepest of them: the later blocks and the LM head (a fifth of
    a small model's compute, with a large vocabulary) are never run. Hooks already on the
    blocks (the suppression) run first, so their result is what is read.
    """
    store: dict[int, torch.Tensor] = {}
    blocks, deepest = decoder_layers(model), max(layers)

    def keep(layer: int):
        def hook(module: nn.Module, args: tuple, out: torch.Tensor | tuple) -> None:
            store[layer] = block_output(out).detach()
            if layer == deepest:
                raise _Done
        return hook

    handles = [blocks[layer - 1].register_forward_hook(keep(layer)) for layer in layers]
    try:
        model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    except _Done:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return store


__all__ = ["block_outputs", "residual_activations"]

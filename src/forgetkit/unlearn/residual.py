"""Reading the residual stream after each decoder block, token by token.

KIF reads and writes the same place: the output of decoder block l (1-based), before the
final norm even for the last block. ``eval.activations`` reads hidden states at the last
prompt token only (its last entry after the final norm); KIF needs every token of a span and
the exact tensor its hook rewrites, so it reads the blocks' outputs with forward hooks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from forgetkit.data.tokenize import chat_prompt


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder blocks of a (possibly peft-wrapped) model, in order."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    n_layers = base.config.num_hidden_layers
    for module in base.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers:
            return module
    raise ValueError(f"cannot find the {n_layers} decoder blocks of {type(base).__name__}; "
                     "KIF supports decoders that keep their blocks in one ModuleList")


def block_output(out: torch.Tensor | tuple) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def check_layers(layers: Sequence[int], n_layers: int) -> list[int]:
    """Validate 1-based block numbers: in 1..n_layers, no repeats."""
    bad = [layer for layer in layers if not 1 <= layer <= n_layers]
    if bad:
        raise ValueError(f"kif_layers {bad} out of range: the model has {n_layers} decoder "
                         f"blocks, numbered 1..{n_layers}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"kif_layers {list(layers)} repeats a block")
    if not layers:
        raise ValueError("kif_layers is empty; give at least one block or leave it unset")
    return sorted(layers)


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


def subject_start(tokenizer: PreTrainedTokenizerBase, question: str,
                  subject: str | None) -> int:
    """Index, in ``prompt_ids(question)``, of the first token of the subject's name.

    The first token of the question when the name does not occur in it (or there is none).
    """
    text = chat_prompt(tokenizer, question)
    start = text.index(question)
    found = re.search(re.escape(subject), question, re.IGNORECASE) if subject else None
    char = start + (found.start() if found else 0)
    offsets = tokenizer(text, add_special_tokens=False,
                        return_offsets_mapping=True)["offset_mapping"]
    return next(i for i, (_, end) in enumerate(offsets) if end > char)


__all__ = ["block_output", "block_outputs", "check_layers", "decoder_layers", "subject_start"]

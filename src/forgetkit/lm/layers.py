"""Where a decoder's layers are: its block list, and hidden-state indices checked against it.

Two numberings meet here, and both are kept as the papers use them:

* hidden-state indices (``hidden_state_index``): 0 = embeddings, l = output of block l, as in
  Hugging Face ``output_hidden_states=True`` (the last entry is taken after the final norm);
* block modules (``decoder_layers``): the blocks themselves, for forward hooks that read or
  rewrite a block's output before any final norm.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from forgetkit.errors import UserError


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder blocks of a (possibly peft-wrapped) model, in order.

    They are the first ``ModuleList`` holding ``config.num_hidden_layers`` modules: every
    Llama-style decoder keeps its blocks in one such list.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    n_layers = base.config.num_hidden_layers
    for module in base.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers:
            return module
    raise UserError(f"cannot find the {n_layers} decoder blocks of {type(base).__name__}; "
                     "forgetkit supports decoders that keep their blocks in one ModuleList")


def block_output(out: torch.Tensor | tuple) -> torch.Tensor:
    """The hidden state a decoder block returned (blocks return a tuple or a tensor)."""
    return out[0] if isinstance(out, tuple) else out


def hidden_state_index(layers: Sequence[int], n_states: int) -> list[int]:
    """Hidden-state indices (negative from the end) checked and made non-negative."""
    index = []
    for layer in layers:
        if not -n_states <= layer < n_states:
            raise UserError(f"layer {layer} is out of range: the model has {n_states} hidden "
                             f"states (0 = embeddings .. {n_states - 1} = last block)")
        index.append(layer % n_states)
    return index


__all__ = ["block_output", "decoder_layers", "hidden_state_index"]

"""Loss term ``neftune``: NEFTune, noisy embeddings for fine-tuning (Jain et al., 2023).

While the model trains, every input embedding gets uniform noise in [-m, m] with
m = alpha / sqrt(L * d) (L: the batch's padded sequence length, d: the embedding width), and
the loss is the ordinary answer cross-entropy of that noisy forward. The noise comes from a
forward hook on the embedding layer that does nothing in eval mode, so generation and
evaluation see clean embeddings; the hook is removed when training ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import Field
from torch import nn
from transformers import TrainerCallback

from forgetkit.config import Options
from forgetkit.train.losses import answer_cross_entropy
from forgetkit.train.registry import RunContext, register_term


def noise_magnitude(alpha: float, length: int, width: int) -> float:
    """NEFTune's bound m = alpha / sqrt(L d) of the uniform noise."""
    return alpha / math.sqrt(length * width)


def add_embedding_noise(embedding: nn.Module, alpha: float) -> Any:
    """Hook uniform noise onto ``embedding``'s output in training mode; returns the handle."""

    def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor | None:
        if not module.training:
            return None
        m = noise_magnitude(alpha, out.shape[1], out.shape[2])
        return out + torch.empty_like(out).uniform_(-m, m)

    return embedding.register_forward_hook(hook)


class _RemoveHook(TrainerCallback):
    def __init__(self, handle: Any):
        self.handle = handle

    def on_train_end(self, args, state, control, **kwargs):
        self.handle.remove()


@dataclass
class NoisyEmbeddingCE:
    """CE(answer | prompt) of a forward whose input embeddings carry NEFTune's noise."""

    handle: Any
    weight: float = 1.0
    name: str = "ce"
    needs_hidden_states: bool = False
    _cleanup_registered: bool = False

    def __call__(self, ctx) -> torch.Tensor:
        if not self._cleanup_registered and ctx.trainer is not None:
            ctx.trainer.add_callback(_RemoveHook(self.handle))
            self._cleanup_registered = True
        return answer_cross_entropy(ctx.outputs.logits, ctx.labels)


class NEFTuneOptions(Options):
    neftune_alpha: float = Field(
        5.0, gt=0, description="NEFTune: noise scale; uniform noise of alpha/sqrt(L*d)")


@register_term("neftune", options=NEFTuneOptions)
def build_neftune(ctx: RunContext) -> NoisyEmbeddingCE:
    # Hooked on the base model's embedding layer, which peft keeps when it adds adapters.
    handle = add_embedding_noise(ctx.model.get_input_embeddings(), ctx.config.neftune_alpha)
    ctx.notes["neftune"] = {"alpha": ctx.config.neftune_alpha}
    return NoisyEmbeddingCE(handle)


__all__ = ["NoisyEmbeddingCE", "add_embedding_noise", "noise_magnitude"]

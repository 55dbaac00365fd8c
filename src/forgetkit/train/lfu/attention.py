"""The split attention of LfU's answer span with LoRA: the copies read the clean prompt
without sending it gradient."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

SPLIT_ATTENTION = "forgetkit-lfu-split"


def _split_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor,
                     value: torch.Tensor, attention_mask: torch.Tensor | None,
                     dropout: float = 0.0, scaling: float | None = None,
                     **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Attention in which the answer-span copies read the clean prompt without sending it
    gradient: their keys and values of the clean tokens are detached.

    The consistency term compares the copies with ``detach(h)``: the clean model is its
    target, not something it trains. Without the split, its gradient would still reach the
    clean prompt through the copies' attention, and from there the LoRA hooks' "CE gradient".
    Outside a packed forward (``lfu_clean_width`` unset) this is plain SDPA attention.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    width = getattr(module, "lfu_clean_width", None)
    if width is None or query.shape[2] <= width or attention_mask is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      dropout=dropout, scaling=scaling, **kwargs)
    repeat = query.shape[1] // key.shape[1]  # grouped-query attention
    key, value = key.repeat_interleave(repeat, 1), value.repeat_interleave(repeat, 1)
    p = dropout if module.training else 0.0

    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               mask: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p,
                                              scale=scaling)

    clean = attend(query[:, :, :width], key[:, :, :width], value[:, :, :width],
                   attention_mask[..., :width, :width])
    copies = attend(query[:, :, width:],
                    torch.cat([key[:, :, :width].detach(), key[:, :, width:]], 2),
                    torch.cat([value[:, :, :width].detach(), value[:, :, width:]], 2),
                    attention_mask[..., width:, :])
    return torch.cat([clean, copies], 2).transpose(1, 2).contiguous(), None


def register_split_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(SPLIT_ATTENTION, _split_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(SPLIT_ATTENTION, sdpa_mask)


__all__ = ["SPLIT_ATTENTION", "register_split_attention"]

"""KIF step 2: dynamic suppression, a hook that removes a subject's signature where it is present.

At each chosen block l, for every token's residual h (the block's output) and subject s:

    gate:      fire = cos((h - c_l), u_{s,l}) > tau_{s,l}
    suppress:  h <- h - alpha * ((h - c_l) . u_{s,l}) u_{s,l}     where the gate fires

alpha = 1 moves the component along the signature to the retain centre's (the signature is
projected out relative to the retain mean). Subjects are applied one after another. A token
no gate fires on is returned untouched, bit for bit, so retain text passes through as is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from forgetkit.lm.layers import block_output, decoder_layers
from forgetkit.unlearn.signature import Signatures


def suppress(h: torch.Tensor, centre: torch.Tensor, directions: torch.Tensor,
             thresholds: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """Remove each subject's signature component from the tokens its gate fires on.

    h [..., d]; centre [d]; directions [S, d] (unit); thresholds [S]. Returns ``h`` itself when
    no gate fires anywhere.
    """
    out = h
    for u, tau in zip(directions.to(h), thresholds.tolist(), strict=True):
        x = out - centre.to(h)
        component = x @ u
        fire = component / x.norm(dim=-1).clamp_min(1e-12) > tau
        if fire.any():
            out = torch.where(fire.unsqueeze(-1), out - strength * component.unsqueeze(-1) * u,
                              out)
    return out


def _hook(sig: Signatures, index: int):
    def hook(module: nn.Module, args: tuple, out):
        h = block_output(out)
        new = suppress(h, sig.centres[index], sig.directions[:, index], sig.thresholds[:, index],
                       sig.strength)
        if new is h:
            return None
        return (new, *out[1:]) if isinstance(out, tuple) else new
    return hook


@contextmanager
def suppressed(model: nn.Module, signatures: Signatures) -> Iterator[nn.Module]:
    """Run ``model`` with the suppression hooks on its chosen blocks (removed on exit)."""
    blocks = decoder_layers(model)
    handles = [blocks[layer - 1].register_forward_hook(_hook(signatures, i))
               for i, layer in enumerate(signatures.layers)]
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()


__all__ = ["suppress", "suppressed"]

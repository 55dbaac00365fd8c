"""Loss term ``clora``: CLoRA's subspace regularisation of LoRA (Lu et al., ACL 2025).

Every adapted module gets two fixed random matrices with orthonormal columns (or rows, when
``k`` exceeds the dimension), P_A of shape (in, k) and P_B of shape (out, k). The LoRA
factors A (r x in) and B (out x r) are pushed to have no component in those subspaces:

    L_reg = sum over modules of 1/2 ||A P_A||_F^2 + 1/2 ||B^T P_B||_F^2,
    L = CE + lambda * L_reg          (lambda = ``clora_lambda``, default 1 as in the paper)

which keeps the update B A from changing the output along the regularised directions.
The paper's code uses k = 512 for 4096-wide models; ``clora_k`` defaults to 128.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import torch
from pydantic import Field
from torch import nn

from forgetkit.config import Options
from forgetkit.errors import UserError
from forgetkit.train.registry import RunContext, register_term


def _orthogonal(rows: int, cols: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(rows, cols, generator=g)
    q, r = torch.linalg.qr(m if rows >= cols else m.T)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)  # a unique, uniformly random basis
    return q if rows >= cols else q.T


@dataclass
class CLoRARegulariser:
    k: int
    seed: int
    weight: float = 1.0
    name: str = "clora"
    needs_hidden_states: bool = False
    _bases: dict[str, torch.Tensor] = field(default_factory=dict)

    def _basis(self, name: str, dim: int) -> torch.Tensor:
        if name not in self._bases:
            self._bases[name] = _orthogonal(dim, self.k, self.seed + zlib.crc32(name.encode()))
        return self._bases[name]

    def __call__(self, ctx) -> torch.Tensor:
        model: nn.Module = ctx.model
        total = None
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            if ".lora_A." in name:  # A: (r, in)
                reg = p @ self._basis(name, p.shape[1]).to(p.device)
            elif ".lora_B." in name:  # B: (out, r)
                reg = p.T @ self._basis(name, p.shape[0]).to(p.device)
            else:
                continue
            term = 0.5 * reg.pow(2).sum()
            total = term if total is None else total + term
        if total is None:
            raise UserError("the clora term needs LoRA adapters; use it with --method clora")
        return total


class CLoRAOptions(Options):
    clora_k: int = Field(128, ge=1, description="CLoRA: size of the regularised subspace")
    clora_lambda: float = Field(1.0, ge=0, description="CLoRA: weight of the regulariser")


@register_term("clora", options=CLoRAOptions)
def build_clora(ctx: RunContext) -> CLoRARegulariser:
    return CLoRARegulariser(k=ctx.config.clora_k, seed=ctx.config.seed,
                            weight=ctx.config.clora_lambda)

"""Sparse fine-tuning with a fixed binary mask (SEAT paper, section 5, Eq. 4).

Only the coordinates a mask marks trainable may move; the rest stay at their base values,
bit for bit. Each masked weight is re-parametrised as

    W = scatter(W_base, trainable_index, values)

where ``values`` (one entry per trainable coordinate) is the only ``nn.Parameter``. So the
optimizer keeps state for trainable coordinates only, weight decay can only touch them, and
frozen coordinates cannot drift. ``unsparsify`` turns the model back into plain weights.

Memory: a plain parametrisation hands the dense W to ``F.linear``, and autograd keeps every
layer's W until the backward, a whole extra copy of the model. Linear layers therefore run
through ``SparseLinear``, which keeps only ``values`` and rebuilds W block by block of rows
when it needs it. Trainable positions are stored as int32 and widened per call.
"""

from __future__ import annotations

import hashlib
import types
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from forgetkit.errors import UserError

MASK_STRATEGIES = ("random", "magnitude", "fisher")


class SparseError(UserError):
    """Bad sparse-tuning settings; the message names the setting."""


def check_sparsity(sparsity: float) -> float:
    if not 0.0 < sparsity < 1.0:
        raise SparseError(f"sparsity must be strictly between 0 and 1 (the share of frozen "
                          f"weights; SEAT uses 0.8), got {sparsity}")
    return sparsity


def _generator(seed: int, name: str) -> torch.Generator:
    # Seeded per tensor name, so a tensor's mask does not depend on which others exist.
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + zlib.crc32(name.encode())) % (2**63))
    return g


def build_masks(params: dict[str, torch.Tensor], sparsity: float, strategy: str = "random",
                seed: int = 0, scores: dict[str, torch.Tensor] | None = None
                ) -> dict[str, torch.Tensor]:
    """A boolean mask per tensor, True where the weight may move.

    Every tensor keeps the same share ``1 - sparsity`` trainable (rounded; at least one
    coordinate). ``random`` draws them uniformly (seeded per tensor name); ``magnitude``
    keeps the largest |w|; ``fisher`` keeps the largest ``scores`` (diagonal Fisher).
    """
    check_sparsity(sparsity)
    if strategy not in MASK_STRATEGIES:
        raise SparseError(f"unknown mask strategy '{strategy}'; choose one of "
                          f"{list(MASK_STRATEGIES)}")
    if strategy == "fisher" and scores is None:
        raise SparseError("the fisher mask strategy needs Fisher scores")
    masks = {}
    for name, w in params.items():
        n = w.numel()
        k = max(1, round((1.0 - sparsity) * n))
        if strategy == "random":
            chosen = torch.randperm(n, generator=_generator(seed, name))[:k]
        else:
            score = w.detach().abs() if strategy == "magnitude" else scores[name]
            chosen = torch.topk(score.flatten().float(), k, sorted=False).indices
        mask = torch.zeros(n, dtype=torch.bool)
        mask[chosen] = True
        masks[name] = mask.view(w.shape)
    return masks


def mask_digest(masks: dict[str, torch.Tensor]) -> str:
    """A short hash of a set of masks, recorded with the run to show which mask it used."""
    h = hashlib.sha256()
    for name in sorted(masks):
        h.update(name.encode())
        h.update(np.packbits(masks[name].flatten().numpy()).tobytes())
    return h.hexdigest()[:16]


class SparseDelta(nn.Module):
    """Parametrisation ``values -> W``: base weights with the trainable coordinates replaced."""

    def __init__(self, base: torch.Tensor, mask: torch.Tensor):
        super().__init__()
        self.shape = base.shape
        self.register_buffer("base", base.detach().clone().flatten())
        positions = mask.flatten().nonzero().squeeze(1)
        # int32 halves the index's memory; scatter needs int64, built per call (transient).
        dtype = torch.int32 if base.numel() < 2**31 else torch.int64
        self.register_buffer("index", positions.to(dtype))
        self._blocks: tuple[int, list] | None = None  # (rows per block, blocks), see below

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return self.base.scatter(0, self.index.long(), values).view(self.shape)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.detach().flatten()[self.index.long()].clone()


# Rows of W rebuilt at once in ``SparseLinear``: about 16 MB of float32, so a large
# output layer (e.g. 49152 x 576) never has a dense copy or a dense gradient in memory.
_BLOCK_ELEMENTS = 1 << 22


def _row_blocks(delta: SparseDelta) -> list[tuple[int, int, slice]]:
    """(first row, end row, slice of ``delta.index``) per block of W's rows.

    The index is fixed and sorted (row-major positions), so each block owns one contiguous
    slice of it; the slices are found once, on the CPU, and kept.
    """
    n_out, n_in = delta.shape
    rows = max(1, _BLOCK_ELEMENTS // n_in)
    if delta._blocks is None or delta._blocks[0] != rows:
        starts = torch.arange(0, n_out + rows, rows).clamp(max=n_out) * n_in
        index = delta.index.cpu()
        bounds = torch.searchsorted(index, starts.to(index.dtype)).tolist()
        blocks = [(b * rows, min(n_out, (b + 1) * rows), slice(bounds[b], bounds[b + 1]))
                  for b in range(len(bounds) - 1) if b * rows < n_out]
        delta._blocks = (rows, blocks)
    return delta._blocks[1]


def _weight_rows(delta: SparseDelta, values: torch.Tensor, r0: int, r1: int,
                 part: slice) -> torch.Tensor:
    n_in = delta.shape[1]
    local = (delta.index[part] - r0 * n_in).long()
    return delta.base[r0 * n_in:r1 * n_in].scatter(0, local, values[part]).view(r1 - r0, n_in)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    # Under autocast (e.g. bf16 mixed precision) the matmuls run in the autocast dtype.
    device = x.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return x.dtype


class SparseLinear(torch.autograd.Function):
    """``y = x W^T + b`` with ``W = scatter(base, index, values)``, W never kept whole.

    Same result and gradients as ``F.linear(x, delta(values), b)``. W is rebuilt block by
    block of rows, in the forward and again in the backward, and the gradient of ``values``
    is read off each block's dense gradient ``g^T x``. So neither the dense W nor its dense
    gradient outlives one block. Matmuls run in the autocast dtype when autocast is on, as
    ``F.linear`` would; gradients come back in the dtypes of ``x`` and ``values``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, values: torch.Tensor, delta: SparseDelta,
                bias: torch.Tensor | None) -> torch.Tensor:
        dtype = _compute_dtype(x)
        ctx.delta, ctx.dtype, ctx.has_bias = delta, dtype, bias is not None
        ctx.bias_dtype = None if bias is None else bias.dtype
        ctx.save_for_backward(x, values)
        with torch.autocast(x.device.type, enabled=False):
            xc = x.to(dtype)
            bias = None if bias is None else bias.to(dtype)
            if delta.base.numel() <= _BLOCK_ELEMENTS:  # one block: the plain, faster path
                return F.linear(xc, delta(values).to(dtype), bias)
            out = xc.new_empty(*x.shape[:-1], delta.shape[0])
            for r0, r1, part in _row_blocks(delta):
                out[..., r0:r1] = F.linear(
                    xc, _weight_rows(delta, values, r0, r1, part).to(dtype),
                    None if bias is None else bias[r0:r1])
            return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, values = ctx.saved_tensors
        delta, dtype = ctx.delta, ctx.dtype
        g = grad_out.to(dtype).reshape(-1, grad_out.shape[-1])
        x2 = x.to(dtype).reshape(-1, x.shape[-1])
        grad_bias = (g.sum(0).to(ctx.bias_dtype)
                     if ctx.has_bias and ctx.needs_input_grad[3] else None)
        grad_x = grad_values = None
        if delta.base.numel() <= _BLOCK_ELEMENTS:
            if ctx.needs_input_grad[0]:
                grad_x = (g @ delta(values).to(dtype)).view_as(x).to(x.dtype)
            if ctx.needs_input_grad[1]:
                grad_values = (g.T @ x2).flatten()[delta.index.long()].to(values.dtype)
            return grad_x, grad_values, None, grad_bias
        # Blocks: sum grad_x in float32 so low-precision rounding does not add up per block.
        acc = torch.zeros(x2.shape, dtype=torch.float32, device=x.device) \
            if ctx.needs_input_grad[0] else None
        if ctx.needs_input_grad[1]:
            grad_values = torch.empty_like(values)
        n_in = delta.shape[1]
        for r0, r1, part in _row_blocks(delta):
            if acc is not None:
                acc.addmm_(g[:, r0:r1].float(),
                           _weight_rows(delta, values, r0, r1, part).to(dtype).float())
            if grad_values is not None:
                block_grad = g[:, r0:r1].T @ x2
                grad_values[part] = block_grad.flatten()[
                    (delta.index[part] - r0 * n_in).long()].to(values.dtype)
        if acc is not None:
            grad_x = acc.view_as(x).to(x.dtype)
        return grad_x, grad_values, None, grad_bias


def _sparse_linear_forward(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    # Bound to a parametrised nn.Linear in place of its forward (see ``sparsify``).
    weight = self.parametrizations.weight
    return SparseLinear.apply(x, weight.original, weight[0], self.bias)


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    module_name, _, attr = name.rpartition(".")
    return model.get_submodule(module_name), attr


def sparsify(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Freeze ``model`` except the masked coordinates (in place); returns the model.

    Parameters absent from ``masks`` are frozen whole. Tied parameters (e.g. input and
    output embeddings) share one set of trainable values.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    seen: dict[int, tuple[nn.Module, str]] = {}
    # named_parameters() skips the second name of a tied weight; find the ties ourselves.
    all_names = [(n, p) for n, p in model.named_parameters(remove_duplicate=False)]
    for name, param in all_names:
        owner, attr = _owner(model, name)
        if id(param) in seen:
            first_owner, first_attr = seen[id(param)]
            if (first_owner, first_attr) != (owner, attr):
                # Registering resized the shared Parameter in place to the trainable values;
                # give the second user the same parametrisation over the same values.
                first = first_owner.parametrizations[first_attr]
                delattr(owner, attr)
                owner.register_parameter(attr, nn.Parameter(first[0](first.original).detach()))
                parametrize.register_parametrization(owner, attr, first[0], unsafe=True)
                owner.parametrizations[attr].original = first.original
                _use_sparse_linear(owner, attr)
            continue
        if name not in masks:
            continue
        seen[id(param)] = (owner, attr)
        parametrize.register_parametrization(owner, attr, SparseDelta(param, masks[name]),
                                             unsafe=True)
        owner.parametrizations[attr].original.requires_grad_(True)
        _use_sparse_linear(owner, attr)
    return model


def _use_sparse_linear(module: nn.Module, attr: str) -> None:
    # Only a plain Linear forward (parametrize subclasses the module's class) is replaced.
    if isinstance(module, nn.Linear) and type(module).forward is nn.Linear.forward \
            and attr == "weight":
        module.forward = types.MethodType(_sparse_linear_forward, module)


def unique_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with each shared tensor once, under its first name.

    Tied weights under a sparse parametrisation (input and output embeddings) share their
    trainable values, frozen base and index under two names each, which safetensors refuses
    to save. Loading the checkpoint back into the same sparse model fills both users, since
    they hold the same tensors.
    """
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    out: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in seen:
            continue
        seen.add(key)
        out[name] = tensor
    return out


def unsparsify(model: nn.Module) -> nn.Module:
    """Replace every sparse parametrisation by its plain current weight (in place)."""
    tied: dict[int, nn.Parameter] = {}
    for module in list(model.modules()):
        if not parametrize.is_parametrized(module):
            continue
        module.__dict__.pop("forward", None)  # back to the class's own forward
        for attr in list(module.parametrizations.keys()):
            values = module.parametrizations[attr].original
            if id(values) in tied:  # the second user of tied values: re-tie, do not copy
                parametrize.remove_parametrizations(module, attr, leave_parametrized=False)
                setattr(module, attr, tied[id(values)])
                continue
            parametrize.remove_parametrizations(module, attr, leave_parametrized=True)
            tied[id(values)] = getattr(module, attr)
    for p in model.parameters():
        p.requires_grad_(True)
    return model

"""The two auxiliary models of the LfU paper: shifted LoRA factors (Algorithm 1) and a
steering vector per layer (RepS, Algorithm 2)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from forgetkit.errors import UserError
from forgetkit.train.lfu.auxiliary import Auxiliary, representation_points


class LoRAAuxiliary(Auxiliary):
    """theta_aux = LoRA factors + alpha g/||g|| on the perturbed tokens (Algorithm 1).

    Forward hooks on each adapter's ``lora_A`` and ``lora_B`` layers recompute the perturbed
    tokens' u = (A + dA) x and v = (B + dB) u (rank r: cheap), so those tokens see
    (B + dB)(A + dA) x. With ``prev-ce`` the same hooks rebuild the clean tokens' CE gradient
    of A and B from the activations during the backward.
    """

    kind = "lora"
    split_prompt = True  # the captured CE gradient includes the clean prompt's tokens

    def _install(self, base: nn.Module) -> None:
        from peft.tuners.lora import LoraLayer

        self._held: dict[str, torch.Tensor] = {}  # perturbed inputs, pre-hook to hook
        self.modules: dict[str, nn.Linear] = {}
        for name, module in base.named_modules():
            if not isinstance(module, LoraLayer):
                continue
            for adapter in module.active_adapters:
                if adapter not in module.lora_A:
                    continue
                if adapter in getattr(module, "lora_variant", {}):
                    raise UserError(f"{name}: LfU supports plain LoRA adapters, not variants "
                                     "such as DoRA")
                a, b = module.lora_A[adapter], module.lora_B[adapter]
                if not (a.weight.requires_grad and b.weight.requires_grad):
                    continue
                for key, layer in ((f"{name}.{adapter}.A", a), (f"{name}.{adapter}.B", b)):
                    self.modules[key] = layer
                    self._handles.append(layer.register_forward_pre_hook(self._pre_hook(key)))
                    self._handles.append(layer.register_forward_hook(self._hook(key)))
        if not self.modules:
            raise UserError("lfu-lora perturbs trainable LoRA adapters and found none; use it "
                             "with the 'lora' parameter selection (e.g. --method lfu-lora)")
        for point in representation_points(base):
            self._handles.append(point.register_forward_hook(self._stash_hook))

    def _shapes(self) -> dict[str, torch.Tensor]:
        return {k: m.weight for k, m in self.modules.items()}

    def _ce_gradient(self, ce: torch.Tensor) -> dict[str, torch.Tensor]:
        weights = [m.weight for m in self.modules.values()]
        grads = torch.autograd.grad(ce, weights, allow_unused=True, materialize_grads=True)
        return dict(zip(self.modules, grads, strict=True))

    def weight_grads(self) -> dict[str, torch.Tensor] | None:
        grads = {k: m.weight.grad for k, m in self.modules.items()}
        if any(g is None for g in grads.values()):
            return None
        return {k: g.detach().clone() for k, g in grads.items()}

    def _trailing_dim(self) -> int | None:
        """0 or 1 when the perturbed tokens are the trailing rows or columns of the input."""
        rows, cols = self.region
        if cols.start is None and rows.start > 0 and self.group == self.n_groups - 1:
            return 0
        return 1 if self.span == "answer" else None

    def _pre_hook(self, key: str):
        def pre_hook(module: nn.Module, args: tuple) -> tuple | None:
            if self.region is None or self.delta is None or self._trailing_dim() is None:
                return None
            # The layer runs on the clean tokens only; the hook below adds the perturbed ones.
            x, (rows, cols) = args[0], self.region
            self._held[key] = x[self.region]
            return (x[:rows.start] if self._trailing_dim() == 0 else x[:, :cols.start],
                    *args[1:])
        return pre_hook

    def _hook(self, key: str):
        def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor | None:
            if self.region is None:
                return None
            inp = args[0]
            if self.delta is not None:
                # The perturbed tokens through the shifted factor: x (A + dA)^T, u (B + dB)^T.
                weight = module.weight + self.delta[key].to(module.weight.dtype)
                held = self._held.pop(key, None)
                if held is not None:
                    out = torch.cat([out, F.linear(held, weight, module.bias)],
                                    self._trailing_dim())
                else:
                    out = self._replace(out, F.linear(inp[self.region], weight, module.bias))
            if self.capturing and out.requires_grad:
                clean = self.clean
                # Popped once used: the graph, and this hook with it, lives until the whole
                # backward is done; the layer's input is needed until it reaches this layer.
                held = [inp[clean].detach()]
                # dA = g_u^T x (A: r x in), dB = g_v^T u (B: out x r), clean tokens only.
                # In float32: under mixed precision the gradient and the input differ.
                out.register_hook(lambda g: self._accumulate(
                    key, g[clean].flatten(0, -2).float().T @ held.pop().flatten(0, -2).float()))
            return out
        return hook


class RepSAuxiliary(Auxiliary):
    """theta_aux = theta with h'_l = h_l + d_l on the perturbed tokens (Algorithm 2).

    d_l is added to the representations the consistency compares (the model's hidden states
    1..K: each decoder layer's output, and the final normalised state). Its gradient at d = 0
    is the CE gradient at the clean tokens' h_l summed over the tokens it would steer,
    captured by the same hooks during the backward.
    """

    kind = "reps"

    def _install(self, base: nn.Module) -> None:
        points = representation_points(base)
        self.width_hidden = base.config.hidden_size
        self.device = next(base.parameters()).device
        self.keys = [f"d{i + 1}" for i in range(len(points))]
        for key, module in zip(self.keys, points, strict=True):
            # Prepended: transformers records hidden states with its own forward hook, which
            # must see the steered representation.
            self._handles.append(module.register_forward_hook(self._hook(key), prepend=True))

    def _shapes(self) -> dict[str, torch.Tensor]:
        ref = torch.empty(self.width_hidden, device=self.device)
        return dict.fromkeys(self.keys, ref)

    def _ce_gradient(self, ce: torch.Tensor) -> dict[str, torch.Tensor]:
        # d ce / d d_l at d = 0 is the CE gradient at h_l, summed over the tokens d_l steers.
        grads = torch.autograd.grad(ce, self._probe_states)
        return {key: g[self.steered].sum(0) if self.span == "answer" else g.sum((0, 1))
                for key, g in zip(self.keys, grads, strict=True)}

    def _hook(self, key: str):
        def hook(module: nn.Module, args: tuple, out: Any) -> Any:
            if self.region is None:
                if self._probing:  # the same-step probe: keep h_l to differentiate at
                    self._probe_states.append(out[0] if isinstance(out, tuple) else out)
                return None
            h = out[0] if isinstance(out, tuple) else out
            if self.delta is not None:
                h = self._replace(h, h[self.region] + self.delta[key].to(h.dtype))
            if self.capturing and h.requires_grad:
                clean, steered = self.clean, self.steered if self.span == "answer" else None
                h.register_hook(lambda g: self._accumulate(
                    key, g[clean][steered].sum(0) if steered is not None
                    else g[clean].sum((0, 1))))
            self._stash(h)
            return (h, *out[1:]) if isinstance(out, tuple) else h
        return hook

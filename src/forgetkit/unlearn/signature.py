"""KIF step 1: activation signatures, one direction per forgotten subject and layer.

Inputs are prompt activations a_l(q) (the residual stream after block l, averaged over the
prompt's tokens from the subject's name on; read in ``kif.py``). For subject s at layer l:

    c_l     = mean of a_l over the retain prompts                       (the centre)
    u_{s,l} = (mean of a_l over the prompts about s  -  c_l) / ||.||   (the signature)

Layers are chosen by how well u separates held-out prompts: project p = (a_l - c_l) . u_{s,l}
and score the Fisher ratio (mean p_s - mean p_r)^2 / (var p_s + var p_r); a layer's score is
the mean over subjects. The gate threshold tau_{s,l} is a high quantile of the cosine
similarity cos((h - c_l), u_{s,l}) over retain tokens, so retain text almost never fires it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from forgetkit.errors import UserError


def signature(subject_acts: torch.Tensor,
              retain_acts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(u, c) from activations [n_s, ..., d] and [n_r, ..., d]: unit mean difference, centre."""
    centre = retain_acts.mean(0)
    diff = subject_acts.mean(0) - centre
    return diff / diff.norm(dim=-1, keepdim=True).clamp_min(1e-12), centre


def fisher_ratio(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """(mean pos - mean neg)^2 / (var pos + var neg) of two 1-D samples (var 0 for one value)."""
    def var(x: torch.Tensor) -> float:
        return float(x.var()) if x.numel() > 1 else 0.0
    return float((pos.mean() - neg.mean()) ** 2) / (var(pos) + var(neg) + 1e-12)


def separation(mine_s: torch.Tensor, mine_r: torch.Tensor, held_s: torch.Tensor,
               held_r: torch.Tensor) -> list[float]:
    """Held-out Fisher ratio per layer of the direction mined on ``mine_*`` ([n, layers, d])."""
    u, centre = signature(mine_s, mine_r)
    proj_s = ((held_s - centre) * u).sum(-1)  # [n_s, layers]
    proj_r = ((held_r - centre) * u).sum(-1)
    return [fisher_ratio(proj_s[:, i], proj_r[:, i]) for i in range(u.shape[0])]


def choose_layers(scores: list[float], layers: list[int], top: int) -> list[int]:
    """The ``top`` best-scoring layers (ties: the earlier one), in increasing order."""
    ranked = sorted(range(len(layers)), key=lambda i: (-scores[i], i))[:top]
    return sorted(layers[i] for i in ranked)


def cosine(h: torch.Tensor, centre: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """cos((h - c), u_s) for every subject: h [..., d], directions [S, d] -> [..., S]."""
    x = h.float() - centre
    return (x @ directions.T) / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def gate_thresholds(retain_cosines: torch.Tensor, quantile: float) -> torch.Tensor:
    """tau per subject: the ``quantile`` of retain tokens' cosines [tokens, S] -> [S]."""
    return torch.from_numpy(np.quantile(retain_cosines.numpy(), quantile, axis=0)).float()


@dataclass
class Signatures:
    """What the suppression hook needs: per chosen block, a centre and one direction and one
    gate threshold per subject. ``layers`` are 1-based block numbers."""

    subjects: list[str]
    layers: list[int]
    directions: torch.Tensor  # [S, m, d], unit rows
    centres: torch.Tensor  # [m, d]
    thresholds: torch.Tensor  # [S, m]
    strength: float = 1.0
    report: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path, fingerprint: str = "") -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # processes may race
        meta = {"subjects": json.dumps(self.subjects), "layers": json.dumps(self.layers),
                "strength": repr(self.strength), "report": json.dumps(self.report),
                "fingerprint": fingerprint}
        save_file({"directions": self.directions.contiguous(), "centres": self.centres.contiguous(),
                   "thresholds": self.thresholds.contiguous()}, str(tmp), metadata=meta)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Signatures:
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        if "subjects" not in meta:
            raise UserError(f"{path}: not a KIF signatures file (no subjects in its metadata)")
        return cls(json.loads(meta["subjects"]), json.loads(meta["layers"]),
                   tensors["directions"], tensors["centres"], tensors["thresholds"],
                   float(meta["strength"]), json.loads(meta.get("report", "{}")))

    @staticmethod
    def fingerprint_of(path: str | Path) -> str:
        with safe_open(str(path), "pt") as fh:
            return (fh.metadata() or {}).get("fingerprint", "")


__all__ = ["Signatures", "choose_layers", "cosine", "fisher_ratio", "gate_thresholds",
           "separation", "signature"]

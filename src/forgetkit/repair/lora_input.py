"""Reading a peft LoRA adapter as a fine-tuning delta: the base's weights plus B A scaled,
tensor by tensor (``forgetkit repair --finetuned ADAPTER``)."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from forgetkit.repair.errors import RepairError, name_list
from forgetkit.repair.io import ADAPTER_CONFIG, ADAPTER_WEIGHTS, read_header, read_tensor

_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+?)\."
                       r"(?P<part>lora_A\.weight|lora_B\.weight|lora_embedding_A|"
                       r"lora_embedding_B|lora_magnitude_vector(?:\.weight)?)$")


@dataclass
class _LoraModule:
    a_key: str = ""
    b_key: str = ""
    embedding: bool = False
    scaling: float = 1.0


class LoraAdapter:
    """A peft LoRA folder (``adapter_config.json`` + ``adapter_model.safetensors``).

    The fine-tuned weight of each target module is ``W + scaling * B @ A`` with
    ``scaling = lora_alpha / r`` (``lora_alpha / sqrt(r)`` with ``use_rslora``), per-module r
    and alpha from ``rank_pattern`` / ``alpha_pattern``. Full tensors the adapter stores
    (``modules_to_save``, a saved embedding ``base_layer``) replace the base tensor.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        cfg_path, weights = self.folder / ADAPTER_CONFIG, self.folder / ADAPTER_WEIGHTS
        if not weights.is_file():
            raise RepairError(f"{self.folder}: has {ADAPTER_CONFIG} but no {ADAPTER_WEIGHTS}; "
                              "re-save the adapter with safe_serialization=True")
        self.config = json.loads(cfg_path.read_text())
        if self.config.get("peft_type", "LORA") != "LORA":
            raise RepairError(f"{cfg_path}: peft_type {self.config.get('peft_type')} is not "
                              "supported; repair reads LoRA adapters only")
        if self.config.get("use_dora"):
            raise RepairError(f"{cfg_path}: DoRA adapters (use_dora) are not supported: their "
                              "update is not B @ A; merge it (merge_and_unload) and save a "
                              "full checkpoint instead")
        self.path = weights
        infos, _ = read_header(weights)
        self.fan_in_fan_out = bool(self.config.get("fan_in_fan_out"))
        self.modules: dict[str, _LoraModule] = {}
        self.replacements: dict[str, str] = {}  # base tensor name -> adapter key
        for info in infos:
            match = _LORA_KEY.match(info.name)
            if match is None:
                # modules_to_save / saved embedding layers: full tensors under the model's name
                target = info.name.removeprefix("base_model.model.").replace(".base_layer.", ".")
                self.replacements[target] = info.name
                continue
            module, part = match["module"], match["part"]
            if part.startswith("lora_magnitude_vector"):
                raise RepairError(f"{weights}: holds DoRA magnitudes ({info.name}); not supported")
            entry = self.modules.setdefault(module, _LoraModule())
            entry.embedding = part.startswith("lora_embedding")
            if part in ("lora_A.weight", "lora_embedding_A"):
                entry.a_key = info.name
            else:
                entry.b_key = info.name
        broken = [m for m, e in self.modules.items() if not (e.a_key and e.b_key)]
        if broken:
            raise RepairError(f"{weights}: LoRA modules with only one of A/B: {name_list(broken)}")
        shapes = {i.name: i.shape for i in infos}
        for module, entry in self.modules.items():
            rank = shapes[entry.a_key][0]
            entry.scaling = self._scaling(module, rank)

    def _scaling(self, module: str, rank: int) -> float:
        alpha = self.config.get("lora_alpha", 8)
        for key, value in (self.config.get("alpha_pattern") or {}).items():
            if re.match(rf"(.*\.)?({key})$", module):  # peft's own pattern rule
                alpha = value
                break
        if self.config.get("use_rslora"):
            return alpha / math.sqrt(rank)
        return alpha / rank

    def target_names(self) -> list[str]:
        """Base tensor names the adapter changes."""
        return [f"{m}.weight" for m in self.modules] + list(self.replacements)

    def delta(self, name: str) -> torch.Tensor | None:
        """scaling * B @ A for the module owning tensor ``name`` (float32), or None."""
        entry = self.modules.get(name.removesuffix(".weight")) if name.endswith(".weight") else None
        if entry is None:
            return None
        a = read_tensor(self.path, entry.a_key).float()
        b = read_tensor(self.path, entry.b_key).float()
        delta = entry.scaling * (b @ a)
        # peft stores embedding factors transposed, and Conv1D-style layers as (in, out).
        return delta.T if entry.embedding or self.fan_in_fan_out else delta

    def replacement(self, name: str) -> torch.Tensor | None:
        key = self.replacements.get(name)
        return None if key is None else read_tensor(self.path, key)


def is_adapter_folder(folder: str | os.PathLike[str]) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file()


# --------------------------------------------------------------------------- writing

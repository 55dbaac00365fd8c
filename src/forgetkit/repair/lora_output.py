"""Write a spectral repair as a peft LoRA adapter instead of merged weights.

A kept delta ``U_k S_k V_k^T`` is exactly a rank-k LoRA update: ``B = U_k sqrt(S_k)``,
``A = sqrt(S_k) V_k^T`` with scaling 1 (``lora_alpha = r`` per module through
``alpha_pattern``). Each module gets its own kept rank through ``rank_pattern``. Deltas LoRA
cannot express are handled like this:

* 1-D tensors and small matrices whose fine-tuned value differs from the base (norms, biases)
  go in whole through ``modules_to_save``;
* modules that are neither ``nn.Linear`` nor an untied ``nn.Embedding`` (for example an input
  embedding tied to the output head) stay at the base value and are listed in the summary
  under ``not_in_adapter``; write merged weights to keep them.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import nn

from forgetkit.repair.errors import RepairError
from forgetkit.repair.io import ADAPTER_CONFIG, ADAPTER_WEIGHTS, SpooledWriter

PREFIX = "base_model.model."


def module_kinds(base_folder: Path) -> dict[str, str]:
    """Module name -> 'linear' | 'embedding' | 'tied-embedding' | class name, from the config.

    The model is built on the meta device: no weights are allocated.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(base_folder)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except (OSError, ValueError, KeyError) as err:
        raise RepairError(f"--as-lora needs the base architecture from {base_folder}/config.json "
                          f"to be known to transformers: {err}") from err
    tied = bool(getattr(config.get_text_config(), "tie_word_embeddings", False))
    inputs = model.get_input_embeddings()
    kinds = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            kinds[name] = "linear"
        elif isinstance(module, nn.Embedding):
            kinds[name] = "tied-embedding" if tied and module is inputs else "embedding"
        else:
            kinds[name] = type(module).__name__
    return kinds


class LoraAdapterWriter:
    """Collects per-module factors and full tensors; ``close`` writes a peft adapter folder."""

    def __init__(self, folder: Path, base_folder: Path) -> None:
        self.folder = folder
        self.base_folder = base_folder
        self.kinds = module_kinds(base_folder)
        self.writer = SpooledWriter(folder / ADAPTER_WEIGHTS)
        self.ranks: dict[str, int] = {}
        self.modules_to_save: list[str] = []
        self.not_in_adapter: dict[str, str] = {}

    def add_factors(self, name: str, B: torch.Tensor, A: torch.Tensor,
                    dtype: torch.dtype) -> bool:
        """Add the LoRA factors of weight ``name`` (B @ A = kept delta); False if impossible."""
        module, _, param = name.rpartition(".")
        kind = self.kinds.get(module, "unknown module")
        if param != "weight" or kind not in ("linear", "embedding"):
            why = {"tied-embedding": "input embedding tied to the output head"}.get(kind, kind)
            self.not_in_adapter[name] = f"LoRA cannot express this delta ({why})"
            return False
        if kind == "linear":
            parts = {"lora_A.weight": A, "lora_B.weight": B}
        else:  # peft stores an embedding update transposed: delta = (B_e @ A_e)^T
            parts = {"lora_embedding_A": B.T, "lora_embedding_B": A.T}
        for part, tensor in parts.items():
            self.writer.write(f"{PREFIX}{module}.{part}", tensor.to("cpu", dtype).contiguous())
        self.ranks[module] = int(A.shape[0])
        return True

    def add_full(self, name: str, tensor: torch.Tensor) -> None:
        """A tensor stored whole (norm weights, small matrices) through ``modules_to_save``."""
        module = name.rpartition(".")[0]
        if module in self.ranks:
            raise RepairError(f"{name}: module {module} already has LoRA factors")
        self.writer.write(f"{PREFIX}{name}", tensor.to("cpu").contiguous())
        if module not in self.modules_to_save:
            self.modules_to_save.append(module)

    def close(self) -> dict[str, Any]:
        if not self.ranks:
            raise RepairError("the repair kept no direction in any LoRA-expressible module, so "
                              "the adapter would be empty; write merged weights instead")
        self.writer.close()
        # The most common rank is the default r; others go to rank_pattern. alpha = r keeps
        # scaling = alpha / r = 1 so B @ A is the kept delta exactly.
        common = Counter(self.ranks.values()).most_common(1)[0][0]
        pattern = {m: r for m, r in self.ranks.items() if r != common}
        config = {
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": str(self.base_folder),
            "r": common,
            "lora_alpha": common,
            "rank_pattern": pattern,
            "alpha_pattern": dict(pattern),
            "target_modules": sorted(self.ranks),
            "modules_to_save": self.modules_to_save or None,
            "lora_dropout": 0.0,
            "bias": "none",
            "fan_in_fan_out": False,
            "use_rslora": False,
            "use_dora": False,
            "init_lora_weights": True,
            "inference_mode": True,
        }
        (self.folder / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        return config

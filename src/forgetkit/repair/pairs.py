"""A (base, fine-tuned) weight pair, checked once and then read tensor by tensor.

Two kinds of fine-tuned side: a full checkpoint folder (``CheckpointPair``) or a peft LoRA
adapter on top of the base (``AdapterPair``). Both answer the same few questions per tensor:
its output info, the base tensor, the fine-tuned tensor, and the float32 delta between them.
All mismatches are found before anything is written and reported in one ``RepairError``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from forgetkit.repair.errors import RepairError, name_list
from forgetkit.repair.io import CheckpointReader, ShardPlan, TensorInfo, read_header
from forgetkit.repair.lora_input import LoraAdapter

# Config fields that must agree for two checkpoints to be the same architecture.
_ARCH_FIELDS = ("model_type", "architectures", "hidden_size", "num_hidden_layers",
                "intermediate_size", "num_attention_heads", "num_key_value_heads")
_EMBEDDING_HINTS = ("embed", "wte", "lm_head", "word_embeddings", "output.weight")


class CheckpointPair:
    """Base and fine-tuned checkpoints with the same architecture and tensor names."""

    def __init__(self, base: CheckpointReader, finetuned: CheckpointReader) -> None:
        self.base, self.finetuned = base, finetuned
        _check_configs(base, finetuned)
        problems = []
        only_base = [n for n in base.tensors if n not in finetuned.tensors]
        only_ft = [n for n in finetuned.tensors if n not in base.tensors]
        if only_base:
            problems.append(f"missing from the fine-tuned checkpoint: {name_list(only_base)}")
        if only_ft:
            problems.append(f"missing from the base checkpoint: {name_list(only_ft)}")
        if any(n.endswith("lm_head.weight") for n in only_base + only_ft):
            problems.append("one checkpoint stores an output head the other ties to its input "
                            "embeddings; save both with the same tie_word_embeddings")
        shapes = [n for n in finetuned.tensors
                  if n in base.tensors and base.tensors[n].shape != finetuned.tensors[n].shape]
        if shapes:
            problems.append("different shapes: " + name_list(
                f"{n} {list(base.tensors[n].shape)} vs {list(finetuned.tensors[n].shape)}"
                for n in shapes))
        if problems:
            raise RepairError(
                f"base {base.folder} and fine-tuned {finetuned.folder} do not hold the same "
                "tensors; repair needs a fine-tune of exactly this base model:\n  - "
                + "\n  - ".join(problems))

    @property
    def names(self) -> list[str]:
        return self.finetuned.names

    def info(self, name: str) -> TensorInfo:
        return self.finetuned.tensors[name]

    def base_tensor(self, name: str) -> torch.Tensor:
        return self.base.read(name)

    def finetuned_tensor(self, name: str) -> torch.Tensor:
        return self.finetuned.read(name)

    def delta(self, name: str, device: torch.device) -> torch.Tensor:
        # One input mapped at a time: copy W_ft, let its pages go, then subtract W_base in
        # place. Peak: two copies of the tensor, not three.
        delta = self.finetuned.read(name).to(device, torch.float32, copy=True)
        delta -= self.base.read(name).to(device, torch.float32)
        return delta

    def nonfinite_side(self, name: str) -> str:
        """Which checkpoint holds NaN/Inf in ``name`` (for the error message)."""
        sides = [label for label, reader in (("fine-tuned", self.finetuned), ("base", self.base))
                 if not torch.isfinite(reader.read(name).float()).all()]
        return " and ".join(sides) or "neither (the difference overflows float32)"

    def layout(self) -> tuple[list[ShardPlan], str | None]:
        return self.finetuned.layout(), self.finetuned.index_name

    def side_file_sources(self) -> list[Path]:
        return [self.finetuned.folder]


class AdapterPair:
    """A base checkpoint and a LoRA adapter trained on it: W_ft = W_base + scaling * B @ A."""

    def __init__(self, base: CheckpointReader, adapter: LoraAdapter) -> None:
        self.base, self.adapter = base, adapter
        problems = []
        missing = [n for n in adapter.target_names() if n not in base.tensors]
        if missing:
            problems.append(f"adapter targets tensors the base lacks: {name_list(missing)}")
        shapes = []
        factor_shapes = _adapter_shapes(adapter)
        for name, shape in factor_shapes.items():
            if name in base.tensors and base.tensors[name].shape != shape:
                shapes.append(f"{name} base {list(base.tensors[name].shape)} vs adapter "
                              f"{list(shape)}")
        if shapes:
            problems.append("different shapes: " + name_list(shapes))
        if problems:
            expected = adapter.config.get("base_model_name_or_path")
            raise RepairError(
                f"adapter {adapter.folder} does not fit base {base.folder} (the adapter was "
                f"trained on {expected!r}):\n  - " + "\n  - ".join(problems))

    @property
    def names(self) -> list[str]:
        return self.base.names

    def info(self, name: str) -> TensorInfo:
        return self.base.tensors[name]

    def base_tensor(self, name: str) -> torch.Tensor:
        return self.base.read(name)

    def finetuned_tensor(self, name: str) -> torch.Tensor:
        dtype = self.base.tensors[name].torch_dtype
        replaced = self.adapter.replacement(name)
        start = replaced if replaced is not None else self.base.read(name)
        delta = self.adapter.delta(name)
        return start if delta is None else (start.float() + delta).to(dtype)

    def delta(self, name: str, device: torch.device) -> torch.Tensor | None:
        replaced = self.adapter.replacement(name)
        delta = self.adapter.delta(name)
        if replaced is None and delta is None:
            return None
        delta = torch.zeros(()) if delta is None else delta
        if replaced is not None:
            delta = delta + replaced.float() - self.base.read(name).float()
        return delta.to(device, torch.float32).expand(self.base.tensors[name].shape).clone()

    def nonfinite_side(self, name: str) -> str:
        if not torch.isfinite(self.base.read(name).float()).all():
            return "base"
        return "LoRA adapter"

    def layout(self) -> tuple[list[ShardPlan], str | None]:
        return self.base.layout(), self.base.index_name

    def side_file_sources(self) -> list[Path]:
        return [self.adapter.folder, self.base.folder]


def _adapter_shapes(adapter: LoraAdapter) -> dict[str, tuple[int, ...]]:
    """Shape of the full weight each adapter entry changes, from the factor shapes alone."""
    infos = {i.name: i.shape for i in read_header(adapter.path)[0]}
    shapes: dict[str, tuple[int, ...]] = {}
    for module, entry in adapter.modules.items():
        (_, n_in), (n_out, _) = infos[entry.a_key], infos[entry.b_key]
        transposed = entry.embedding or adapter.fan_in_fan_out
        shapes[f"{module}.weight"] = (n_in, n_out) if transposed else (n_out, n_in)
    for name, key in adapter.replacements.items():
        shapes[name] = infos[key]
    return shapes


def _check_configs(base: CheckpointReader, finetuned: CheckpointReader) -> None:
    """Different architectures or vocabularies get one clear message before any tensor."""
    cfg_base, cfg_ft = base.config(), finetuned.config()
    if not cfg_base or not cfg_ft:
        return
    cfg_base = cfg_base.get("text_config", cfg_base) if "vocab_size" not in cfg_base else cfg_base
    cfg_ft = cfg_ft.get("text_config", cfg_ft) if "vocab_size" not in cfg_ft else cfg_ft
    if cfg_base.get("vocab_size") != cfg_ft.get("vocab_size"):
        embeddings = [n for n in base.tensors if any(h in n for h in _EMBEDDING_HINTS)]
        raise RepairError(
            f"vocabulary sizes differ: base {cfg_base.get('vocab_size')} "
            f"({base.folder}) vs fine-tuned {cfg_ft.get('vocab_size')} ({finetuned.folder}); "
            f"tensors affected: {name_list(embeddings)}. Repair needs the fine-tune's "
            "tokenizer unchanged; resize the base embeddings the same way first.")
    differ = [f"{k}: {cfg_base.get(k)!r} vs {cfg_ft.get(k)!r}" for k in _ARCH_FIELDS
              if cfg_base.get(k) != cfg_ft.get(k)]
    if differ:
        raise RepairError(f"different architectures (base {base.folder} vs fine-tuned "
                          f"{finetuned.folder}): {'; '.join(differ)}")

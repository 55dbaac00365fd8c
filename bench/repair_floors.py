"""What a repair cannot go below, measured on this machine, and checkpoints big enough to
show it: used by ``bench_repair.py``.

* ``io_floor``: read both checkpoints and write one, through the repair's own reader and
  sharded writer, with no math.
* ``eigh_floor``: the cheapest full spectrum of every repaired matrix, a float32 ``eigh``
  of its Gram matrix (the deltas are read first; only the math is timed).
* ``synthetic_pair``: a base and a fine-tuned checkpoint of N decoder layers of an 8B-shaped
  Llama (hidden 4096, MLP 14336, 8 key-value heads), bf16, one shard a layer, built on the
  fly from random weights; the fine-tune adds a rank-16 change and small noise to every
  weight.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

HIDDEN, MLP, KV = 4096, 14336, 1024
LAYER = {"self_attn.q_proj.weight": (HIDDEN, HIDDEN), "self_attn.k_proj.weight": (KV, HIDDEN),
         "self_attn.v_proj.weight": (KV, HIDDEN), "self_attn.o_proj.weight": (HIDDEN, HIDDEN),
         "mlp.gate_proj.weight": (MLP, HIDDEN), "mlp.up_proj.weight": (MLP, HIDDEN),
         "mlp.down_proj.weight": (HIDDEN, MLP), "input_layernorm.weight": (HIDDEN,),
         "post_attention_layernorm.weight": (HIDDEN,)}


def _config(layers: int) -> dict:
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": HIDDEN, "intermediate_size": MLP, "num_hidden_layers": layers,
            "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
            "torch_dtype": "bfloat16"}


def synthetic_pair(layers: int, root: Path) -> tuple[Path, Path]:
    """(base, fine-tuned) folders of ``layers`` 8B-shaped layers; reused when present."""
    import torch
    from safetensors.torch import save_file

    base, ft = root / f"synth8b-{layers}l-base", root / f"synth8b-{layers}l-ft"
    if (ft / "model.safetensors.index.json").is_file():
        return base, ft
    g = torch.Generator().manual_seed(layers)
    for folder in (base, ft):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(_config(layers), indent=2))
    weight_map: dict[str, str] = {}
    for i in range(layers):
        shard = f"model-{i + 1:05d}-of-{layers:05d}.safetensors"
        b_sd, f_sd = {}, {}
        for part, shape in LAYER.items():
            name = f"model.layers.{i}.{part}"
            if len(shape) == 1:
                w = torch.ones(shape)
                change = 1e-3 * torch.randn(shape, generator=g)
            else:
                w = torch.randn(shape, generator=g) * shape[1] ** -0.5
                u = torch.randn(shape[0], 16, generator=g) * 1e-2
                v = torch.randn(16, shape[1], generator=g) * shape[1] ** -0.5
                change = u @ v + 1e-4 * torch.randn(shape, generator=g)
            b_sd[name], f_sd[name] = w.bfloat16(), (w + change).bfloat16()
            weight_map[name] = shard
        save_file(b_sd, str(base / shard), metadata={"format": "pt"})
        save_file(f_sd, str(ft / shard), metadata={"format": "pt"})
    index = json.dumps({"metadata": {}, "weight_map": weight_map}, indent=2)
    for folder in (base, ft):
        (folder / "model.safetensors.index.json").write_text(index)
    return base, ft


def io_floor(base: str, finetuned: str, out: str) -> dict:
    """Both checkpoints read tensor by tensor, the fine-tuned one written in its own layout."""
    from forgetkit.repair.apply import _MergedSink, open_pair

    pair = open_pair(Path(base), Path(finetuned))
    Path(out).mkdir(parents=True, exist_ok=True)
    sink = _MergedSink(Path(out), pair, None)
    for name in pair.names:
        pair.base_tensor(name)  # read and dropped, as the repair reads it
        sink.keep_finetuned(name)
    sink.close()
    return {}


def eigh_floor(base: str, finetuned: str, out: str) -> dict:
    """Seconds of float32 Gram + eigh over every matrix a spectral repair touches."""
    import torch

    from forgetkit.repair.apply import open_pair

    pair = open_pair(Path(base), Path(finetuned))
    math_s = 0.0
    for name in pair.names:
        if len(pair.info(name).shape) != 2:
            continue
        delta = pair.delta(name, torch.device("cpu"))
        started = time.perf_counter()
        gram = delta.T @ delta if delta.shape[0] >= delta.shape[1] else delta @ delta.T
        torch.linalg.eigh(gram)
        math_s += time.perf_counter() - started
    return {"math_seconds": math_s}

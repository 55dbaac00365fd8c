"""``repair()``: stream a (base, fine-tuned) pair through a repair method into a new checkpoint.

Per tensor, in the fine-tuned checkpoint's order:

    D = W_ft - W_base (float32, on the compute device)
    D == 0                         -> write W_base                          ("unchanged")
    not a float / method skips it  -> write W_ft (1-D, < 1024 entries)      ("kept-finetuned")
    otherwise                      -> write W_base + method(D), W_ft dtype  ("repaired")

Everything goes to a temporary folder that replaces ``output`` only when all tensors, the side
files and ``repair_summary.json`` are written (``forgetkit.io.atomic_output_dir``); on any error
it is removed. With ``as_lora`` the kept directions are written as a peft adapter instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from forgetkit.io import (
    OutputOverlapsInputError,
    atomic_output_dir,
    atomic_write_json,
    check_output,
)
from forgetkit.repair.errors import RepairError
from forgetkit.repair.io import (
    SIDE_FILE_PATTERNS,
    CheckpointReader,
    ShardedWriter,
    copy_side_files,
    parse_size,
    plan_max_shard_size,
)
from forgetkit.repair.lora_input import LoraAdapter, is_adapter_folder
from forgetkit.repair.lora_output import LoraAdapterWriter
from forgetkit.repair.methods import DeltaRepair, RepairMethod, make_method
from forgetkit.repair.pairs import AdapterPair, CheckpointPair
from forgetkit.repair.workers import InOrder

SUMMARY_FILE = "repair_summary.json"
Progress = Callable[[int, int, str], None]
MAX_DEFAULT_WORKERS = 8  # each holds a delta and its result: memory grows with the count


@dataclass
class TensorRecord:
    """One line of ``repair_summary.json``."""

    name: str
    shape: list[int]
    dtype: str
    action: str  # repaired | kept-finetuned | unchanged
    method: str
    kept_rank: int | None = None
    full_rank: int | None = None
    energy_kept: float | None = None  # ||D_repaired||^2 / ||D||^2
    threshold: float | None = None
    delta_energy: float = 0.0  # ||D||_F^2
    notes: dict[str, Any] = field(default_factory=dict)


def repair(base: str | Path, finetuned: str | Path, output: str | Path, method: str = "dg-hard",
           overwrite: bool = False, *, device: str = "auto", as_lora: bool = False,
           max_shard_size: str | int | None = None, batch_bytes: int | None = None,
           workers: int | None = None, progress: Progress | None = None,
           **options: Any) -> dict[str, Any]:
    """Repair ``finetuned`` against ``base`` and write the result to ``output``.

    base: a model folder with safetensors weights, or 'smollm2-135m-instruct'.
    finetuned: a model folder, or a peft LoRA adapter folder trained on ``base``.
    method: a name in ``REPAIR_METHODS``; ``options`` are its fields (e.g. ``scale``, ``rank``,
        ``fast``, ``alpha``, ``drop``, ``density``, ``seed``, ``noise_sigma``).
    device: 'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:1', ...
    as_lora: write a peft LoRA adapter of the kept ranks instead of merged weights.
    max_shard_size: re-shard the output ('2GB', bytes); default: the fine-tuned layout.
    batch_bytes: stack same-shape deltas up to this size for one batched SVD (default 1 GiB on
        CUDA, off on CPU where batching brings nothing).
    workers: on a CPU, how many tensors are repaired side by side, each on its own thread
        with one math thread (default: torch's thread count, at most 8; 1: one tensor at a
        time with every thread); up to ``workers + 1`` deltas are held at once. Results agree
        with ``workers=1`` to round-off (``repair/workers.py`` says why this is faster).
        On CUDA one tensor at a time.
    Returns the summary also written to ``output/repair_summary.json``.
    """
    started = time.perf_counter()
    rule = make_method(method, **options)
    if as_lora and not rule.spectral:
        raise RepairError(f"--as-lora needs a spectral method (dg-hard, gd-shrink, rank); "
                          f"'{method}' does not produce low-rank factors")
    base_dir, ft_dir = resolve_folder(base, "--base"), resolve_folder(finetuned, "--finetuned")
    out = Path(output)
    _check_output(out, [base_dir, ft_dir], overwrite)
    pair = open_pair(base_dir, ft_dir)
    dev = pick_device(device)
    budget = batch_bytes if batch_bytes is not None else (1 << 30 if dev.type == "cuda" else 0)
    if workers is not None and workers < 1:
        raise RepairError(f"workers must be at least 1, got {workers}")
    if workers is None:
        workers = 1 if dev.type != "cpu" else min(torch.get_num_threads(),
                                                  MAX_DEFAULT_WORKERS)

    with atomic_output_dir(out, overwrite) as tmp:
        sink = _LoraSink(tmp, pair, base_dir) if as_lora else _MergedSink(tmp, pair,
                                                                           max_shard_size)
        with InOrder(workers if dev.type == "cpu" else 1) as pool:
            records = _repair_tensors(pair, rule, dev, sink, budget, pool, progress)
        if all(r.action == "unchanged" for r in records):
            raise RepairError(f"base {base_dir} and fine-tuned {ft_dir} hold identical weights: "
                              "there is nothing to repair")
        extra = sink.close()
        copy_side_files(pair.side_file_sources(), tmp, sink.side_patterns)
        summary = _summary(records, rule, base_dir, ft_dir, out, dev, as_lora, extra,
                           time.perf_counter() - started)
        atomic_write_json(tmp / SUMMARY_FILE, summary)
    return summary


# --------------------------------------------------------------------------- the loop


def _repair_tensors(pair: CheckpointPair | AdapterPair, rule: RepairMethod, dev: torch.device,
                    sink: _MergedSink | _LoraSink, budget: int, pool: InOrder,
                    progress: Progress | None) -> list[TensorRecord]:
    records: dict[str, TensorRecord] = {}
    batched = budget > 0 and rule.spectral and not getattr(rule, "fast", False)
    pending: dict[tuple[int, ...], list[tuple[str, torch.Tensor, float]]] = {}

    def finish(name: str, energy: float, result: DeltaRepair) -> None:
        info = pair.info(name)
        kept = _energy(result.delta)
        records[name] = TensorRecord(
            name, list(info.shape), info.dtype, "repaired", rule.name, result.kept_rank,
            result.full_rank, kept / energy if energy > 0 else None, result.threshold, energy,
            result.notes)
        sink.repaired(name, result)

    def flush(shape: tuple[int, ...]) -> None:
        items = pending.pop(shape)
        results = rule.repair_many(torch.stack([d for _, d, _ in items]), [n for n, _, _ in items])
        for (name, _, energy), result in zip(items, results, strict=True):
            finish(name, energy, result)

    names = pair.names
    for i, name in enumerate(names):
        if progress is not None:
            progress(i + 1, len(names), name)
        info = pair.info(name)
        record = TensorRecord(name, list(info.shape), info.dtype, "kept-finetuned", "passthrough")
        if not info.is_float:  # integer buffers: nothing to repair
            pool.submit(None, lambda _, n=name: sink.keep_finetuned(n))
            records[name] = record
            continue
        delta = pair.delta(name, dev)
        # NaN/Inf anywhere makes the energy non-finite (no isfinite temporaries); zero energy
        # is a zero delta, unless its entries are so small that it underflows.
        energy = 0.0 if delta is None else _energy(delta)
        if energy == 0 and delta is not None and bool(delta.any()):
            energy = float(delta.double().square().sum())
        if energy == 0:
            pool.submit(None, lambda _, n=name: sink.keep_base(n))
            spectral = rule.spectral and rule.applies_to(info.shape)
            records[name] = TensorRecord(name, list(info.shape), info.dtype, "unchanged", "none",
                                         kept_rank=0 if spectral else None)
            continue
        if not math.isfinite(energy):
            bad = int((~torch.isfinite(delta)).sum())
            if bad:
                raise RepairError(f"tensor {name}: the delta has {bad} NaN/Inf value(s), from "
                                  f"the {pair.nonfinite_side(name)} checkpoint; repair needs "
                                  "finite weights (re-export or fix that checkpoint)")
            energy = float(delta.double().square().sum())  # finite entries, float32 overflow
        if not rule.applies_to(info.shape):
            del delta
            pool.submit(None, lambda _, n=name: sink.keep_finetuned(n))
            record.energy_kept, record.delta_energy = 1.0, energy
            records[name] = record
        elif batched and delta.numel() * 4 <= budget:
            group = pending.setdefault(tuple(info.shape), [])
            group.append((name, delta, energy))
            if (len(group) + 1) * delta.numel() * 4 > budget:
                flush(tuple(info.shape))
        else:  # the worker holds the delta; dropped before the merge, which holds W_base
            pool.submit(lambda d=delta, n=name: rule.repair_delta(d, n),
                        lambda result, n=name, e=energy: finish(n, e, result))
            del delta
    for shape in list(pending):
        flush(shape)
    pool.drain()
    return [records[n] for n in names]


class _MergedSink:
    """Merged weights with the fine-tuned checkpoint's dtypes and shard layout."""

    side_patterns = SIDE_FILE_PATTERNS

    def __init__(self, folder: Path, pair: CheckpointPair | AdapterPair,
                 max_shard_size: str | int | None) -> None:
        self.pair = pair
        shards, index = pair.layout()
        if max_shard_size is not None:
            infos = [info for shard in shards for info in shard.tensors]
            shards, index = plan_max_shard_size(infos, parse_size(max_shard_size)), None
        self.writer = ShardedWriter(folder, shards, index)

    def keep_base(self, name: str) -> None:
        self.writer.write(name, self.pair.base_tensor(name).to(self.pair.info(name).torch_dtype))

    def keep_finetuned(self, name: str) -> None:
        dtype = self.pair.info(name).torch_dtype
        self.writer.write(name, self.pair.finetuned_tensor(name).to(dtype))

    def repaired(self, name: str, result: DeltaRepair) -> None:
        merged = result.delta.to("cpu")
        merged += self.pair.base_tensor(name).float()  # in place: the delta is not reused
        self.writer.write(name, merged.to(self.pair.info(name).torch_dtype))

    def close(self) -> dict[str, Any]:
        self.writer.close()
        return {}


class _LoraSink:
    """A peft adapter: LoRA factors of the kept directions, whole tensors for the rest."""

    side_patterns = tuple(p for p in SIDE_FILE_PATTERNS
                          if p not in ("config.json", "generation_config.json"))

    def __init__(self, folder: Path, pair: CheckpointPair | AdapterPair, base_dir: Path) -> None:
        self.pair = pair
        self.adapter = LoraAdapterWriter(folder, base_dir)

    def keep_base(self, name: str) -> None:
        pass  # the adapter leaves the base weight alone

    def keep_finetuned(self, name: str) -> None:
        self.adapter.add_full(name, self.pair.finetuned_tensor(name))

    def repaired(self, name: str, result: DeltaRepair) -> None:
        if result.kept_rank and result.factors is not None:
            B, A = result.factors
            self.adapter.add_factors(name, B, A, self.pair.info(name).torch_dtype)

    def close(self) -> dict[str, Any]:
        config = self.adapter.close()
        return {"adapter_config": config, "not_in_adapter": self.adapter.not_in_adapter}


def _energy(tensor: torch.Tensor) -> float:
    """||T||_F^2 without a squared temporary the size of T."""
    return float(torch.linalg.vector_norm(tensor)) ** 2


# --------------------------------------------------------------------------- plumbing


def resolve_folder(spec: str | Path, flag: str) -> Path:
    """A local folder for ``spec``; 'smollm2-135m-instruct' maps to its cached safetensors."""
    path = Path(spec).expanduser()
    if path.is_dir():  # the common case; no need to import transformers (seconds) for it
        return path
    from forgetkit.lm import models

    if str(spec) == models.BUNDLED:
        try:
            return models._bundled_folder()
        except models.ModelLoadError as err:
            raise RepairError(f"{flag} {spec}: {err}") from err
    if str(spec) == models.TINY:
        raise RepairError(f"{flag} {spec}: repair streams weights from files, and this model "
                          "only exists in memory; save it first with forgetkit.lm.models.save("
                          "*forgetkit.lm.models.load('tiny-random-llama'), folder) and pass the "
                          "folder")
    raise RepairError(f"{flag} {spec}: no such folder; repair reads local safetensors "
                      f"folders (save_pretrained / forgetkit.lm.models.save output) or "
                      f"'{models.BUNDLED}'; download hub models first")


def check_inputs(base: str | Path, finetuned: str | Path) -> None:
    """What ``repair`` checks of its two inputs before any work (local folders, readable
    weight headers, a config beside merged weights), for a caller that repairs later: an
    audit refuses a hub base here, not after minutes of other checks."""
    open_pair(resolve_folder(base, "--base"), resolve_folder(finetuned, "--finetuned"))


def open_pair(base_dir: Path, ft_dir: Path) -> CheckpointPair | AdapterPair:
    if base_dir.resolve() == ft_dir.resolve():
        raise RepairError(f"--base and --finetuned are the same folder ({base_dir}): there is "
                          "nothing to repair")
    base = CheckpointReader(base_dir)
    if is_adapter_folder(ft_dir):
        return AdapterPair(base, LoraAdapter(ft_dir))
    finetuned = CheckpointReader(ft_dir)  # says first what is wrong with the weights
    if not (ft_dir / "config.json").is_file():
        raise RepairError(f"{ft_dir}: no config.json beside the weights; the repaired model "
                          "takes the fine-tune's config so that it reloads. Save the fine-tune "
                          "with save_pretrained, or copy its config.json into the folder")
    return CheckpointPair(base, finetuned)


def pick_device(device: str) -> torch.device:
    """The compute device, with an explicit CUDA index (the one current now), so every tensor
    of the run lands on the same device whatever later changes the current one."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise RepairError(f"--device {device!r}: {err}; use auto, cpu, cuda or cuda:N") from err
    if dev.type not in ("cpu", "cuda"):
        raise RepairError(f"--device {device}: repair runs on cpu or cuda (it needs float64 "
                          "linear algebra); use auto, cpu, cuda or cuda:N")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RepairError(f"--device {device}: no CUDA device here; use --device cpu or "
                              "auto")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def _check_output(out: Path, inputs: list[Path], overwrite: bool) -> None:
    try:
        check_output(out, {f"checkpoint {i + 1}": f for i, f in enumerate(inputs)})
    except OutputOverlapsInputError as err:
        raise RepairError(str(err)) from None
    if out.exists() and not overwrite:
        raise RepairError(f"{out}: output already exists; pass --overwrite (overwrite=True) to "
                          "replace it")


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/Inf become null."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _summary(records: list[TensorRecord], rule: RepairMethod, base: Path, ft: Path, out: Path,
             dev: torch.device, as_lora: bool, extra: dict[str, Any],
             seconds: float) -> dict[str, Any]:
    repaired = [r for r in records if r.action == "repaired"]
    energy = sum(r.delta_energy for r in records)
    kept = sum(r.delta_energy * (r.energy_kept or 0.0) for r in records)
    ranked = [r for r in repaired if r.kept_rank is not None]
    totals = {
        "tensors": len(records),
        "repaired": len(repaired),
        "kept_finetuned": sum(r.action == "kept-finetuned" for r in records),
        "unchanged": sum(r.action == "unchanged" for r in records),
        "delta_energy": energy,
        "energy_kept": kept / energy if energy else None,
        "kept_rank_sum": sum(r.kept_rank or 0 for r in ranked) if ranked else None,
        "full_rank_sum": sum(r.full_rank or 0 for r in ranked) if ranked else None,
        "mean_kept_rank": (sum(r.kept_rank or 0 for r in ranked) / len(ranked)) if ranked
        else None,
        "seconds": round(seconds, 3),
    }
    from forgetkit import __version__

    return _clean({
        "method": rule.name,
        "options": rule.options(),
        "base": str(base),
        "finetuned": str(ft),
        "output": str(out),
        "as_lora": as_lora,
        "device": str(dev),
        "forgetkit_version": __version__,
        "totals": totals,
        **extra,
        "tensors": [asdict(r) for r in records],
    })

"""Streaming checkpoint I/O for repair: read one tensor at a time, write shard by shard.

The repair math never sees a whole model (mergekit-style). Peak memory is a few copies of the
largest tensor:

* ``CheckpointReader`` reads the safetensors headers (names, shapes, dtypes, file layout)
  without touching weights, and loads one tensor per call through ``safe_open``. The file is
  opened per call on purpose: an open safetensors handle keeps every page it has touched
  mapped, so one long-lived handle grows the resident set to the whole shard.
* ``LoraAdapter`` reads a peft LoRA folder; the fine-tuned weight of a target module is
  ``W_base + scaling * B @ A``.
* ``ShardedWriter`` knows every output tensor's shape and dtype in advance (they equal the
  input's), so it writes each shard's header first and each tensor at its final offset as
  soon as it is repaired, in any order.
* ``SpooledWriter`` is for outputs whose shapes are only known at the end (a LoRA adapter of
  the kept ranks): tensors are appended to a spool file and the header is written last.

Inputs are only ever opened for reading.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from forgetkit.repair.errors import RepairError, name_list

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"

DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
DTYPE_CODES: dict[torch.dtype, str] = {v: k for k, v in DTYPES.items()}
FLOAT_CODES = {"F64", "F32", "F16", "BF16"}

# Files a model folder needs besides its weights: config, generation defaults, tokenizer.
SIDE_FILE_PATTERNS = ("config.json", "generation_config.json", "tokenizer*", "vocab.*",
                      "merges.txt", "special_tokens_map.json", "added_tokens.json",
                      "chat_template.*", "*.tiktoken", "spiece.model")


@dataclass(frozen=True)
class TensorInfo:
    """What a safetensors header says about one tensor; no data."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # safetensors code: F32, BF16, ...
    file: str = ""  # file name inside its folder

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * DTYPES[self.dtype].itemsize

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_CODES


def read_header(path: Path) -> tuple[list[TensorInfo], dict[str, str]]:
    """Tensors of one safetensors file in on-disk order, and its ``__metadata__``.

    The format is an 8-byte little-endian header length, then a JSON header; reading just that
    gives the layout without mapping any weight.
    """
    try:
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
    except (OSError, struct.error, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RepairError(f"{path}: not a readable safetensors file ({err})") from err
    metadata = header.pop("__metadata__", {}) or {}
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    infos = []
    for name, meta in entries:
        if meta["dtype"] not in DTYPES:
            raise RepairError(f"{path}: tensor {name} has dtype {meta['dtype']}, which repair "
                              f"does not handle (known: {sorted(DTYPES)})")
        infos.append(TensorInfo(name, tuple(meta["shape"]), meta["dtype"], path.name))
    return infos, metadata


def read_tensor(path: Path, name: str) -> torch.Tensor:
    """One tensor, through a ``safe_open`` handle that is closed again straight away."""
    with safe_open(path, framework="pt") as fh:
        return fh.get_tensor(name)


class CheckpointReader:
    """Lazy view of a model folder's safetensors weights (single file or sharded with index)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise RepairError(f"{self.folder}: no such folder; give a model folder holding "
                              f"{SINGLE_FILE} or {INDEX_FILE}")
        index = self.folder / INDEX_FILE
        if index.is_file():
            self.index_name: str | None = INDEX_FILE
            weight_map = json.loads(index.read_text())["weight_map"]
            files = list(dict.fromkeys(weight_map.values()))
        elif (self.folder / SINGLE_FILE).is_file():
            self.index_name = None
            weight_map, files = None, [SINGLE_FILE]
        else:
            found = sorted(p.name for p in self.folder.iterdir())
            hint = (" (only PyTorch .bin weights: load and re-save them with "
                    "save_pretrained(safe_serialization=True))" if any(
                        f.endswith(".bin") for f in found) else "")
            raise RepairError(f"{self.folder}: no {SINGLE_FILE} or {INDEX_FILE}{hint}; "
                              f"files present: {name_list(found)}")
        self.tensors: dict[str, TensorInfo] = {}
        self.metadata: dict[str, str] = {}
        for file in files:
            if not (self.folder / file).is_file():
                raise RepairError(f"{index}: lists shard {file}, which is missing from the folder")
            infos, self.metadata = read_header(self.folder / file)
            self.tensors.update((info.name, info) for info in infos)
        if weight_map is not None:
            missing = [n for n in weight_map if n not in self.tensors]
            if missing:
                raise RepairError(f"{index}: lists tensors absent from their shards: "
                                  f"{name_list(missing)}")

    @property
    def names(self) -> list[str]:
        return list(self.tensors)

    def read(self, name: str) -> torch.Tensor:
        info = self.tensors[name]
        return read_tensor(self.folder / info.file, name)

    def config(self) -> dict[str, Any] | None:
        path = self.folder / "config.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def layout(self) -> list[ShardPlan]:
        """The shard files and their tensors, in on-disk order."""
        shards: dict[str, list[TensorInfo]] = {}
        for info in self.tensors.values():
            shards.setdefault(info.file, []).append(info)
        return [ShardPlan(file, infos) for file, infos in shards.items()]


@dataclass
class ShardPlan:
    """One output shard: its file name and its tensors in on-disk order."""

    file: str
    tensors: list[TensorInfo] = field(default_factory=list)


def parse_size(size: str | int) -> int:
    """``"5GB"``, ``"500MB"``, ``"2GiB"`` or a byte count -> bytes."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?)(i?)B?\s*", str(size), flags=re.IGNORECASE)
    if not match:
        raise RepairError(f"max shard size {size!r}: use a byte count or e.g. '500MB', '5GB'")
    number, unit, binary = float(match[1]), match[2].upper(), match[3]
    base = 1024 if binary else 1000
    return int(number * base ** " KMGT".index(unit or " "))


def plan_max_shard_size(tensors: Iterable[TensorInfo], max_bytes: int) -> list[ShardPlan]:
    """Greedy shards of at most ``max_bytes`` (a larger tensor gets a shard of its own)."""
    shards: list[list[TensorInfo]] = [[]]
    size = 0
    for info in tensors:
        if shards[-1] and size + info.nbytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(info)
        size += info.nbytes
    if len(shards) == 1:
        return [ShardPlan(SINGLE_FILE, shards[0])]
    total = len(shards)
    return [ShardPlan(f"model-{i:05d}-of-{total:05d}.safetensors", infos)
            for i, infos in enumerate(shards, start=1)]


def _write_at(path: Path, offset: int, data: memoryview | bytes) -> None:
    """Write ``data`` at byte ``offset`` of an existing file (one place to fail on a full disk)."""
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def tensor_bytes(tensor: torch.Tensor) -> memoryview:
    """Raw little-endian bytes of a CPU tensor, without an extra copy when contiguous."""
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy())


def _header_bytes(tensors: list[TensorInfo]) -> tuple[bytes, list[int]]:
    """safetensors header for ``tensors`` packed back to back; returns it and the offsets."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offsets, cursor = [], 0
    for info in tensors:
        header[info.name] = {"dtype": info.dtype, "shape": list(info.shape),
                             "data_offsets": [cursor, cursor + info.nbytes]}
        offsets.append(cursor)
        cursor += info.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # data starts 8-byte aligned, as safetensors writes it
    return struct.pack("<Q", len(text)) + text, offsets


class ShardedWriter:
    """Write a planned set of safetensors shards tensor by tensor, in any order.

    Each tensor goes to its final offset as soon as it arrives, so memory stays at one tensor.
    ``close`` checks that every planned tensor was written and writes the index when there is
    more than one shard (or when ``index_name`` asks for one, to mirror a sharded input).
    """

    def __init__(self, folder: Path, shards: list[ShardPlan], index_name: str | None = None):
        self.folder = folder
        self.shards = shards
        self.index_name = index_name or (INDEX_FILE if len(shards) > 1 else None)
        self._where: dict[str, tuple[Path, int, TensorInfo]] = {}
        self._written: set[str] = set()
        for shard in shards:
            path = folder / shard.file
            header, offsets = _header_bytes(shard.tensors)
            try:
                path.write_bytes(b"")
                _write_at(path, 0, header)
            except OSError as err:
                raise RepairError(f"could not create {path.name}: {err.strerror or err}") from err
            for info, offset in zip(shard.tensors, offsets, strict=True):
                self._where[info.name] = (path, len(header) + offset, info)

    def write(self, name: str, tensor: torch.Tensor) -> None:
        path, offset, info = self._where[name]
        if tuple(tensor.shape) != info.shape or tensor.dtype != info.torch_dtype:
            raise RepairError(f"{name}: writer expected {info.dtype} {list(info.shape)}, got "
                              f"{tensor.dtype} {list(tensor.shape)} (a repair method bug)")
        try:
            _write_at(path, offset, tensor_bytes(tensor))
        except OSError as err:
            raise RepairError(f"could not write {name} to {path.name}: {err.strerror or err}; "
                              "nothing was written to the output path (free disk space or "
                              "choose another --output)") from err
        self._written.add(name)

    def close(self) -> None:
        missing = [n for n in self._where if n not in self._written]
        if missing:
            raise RepairError(f"output incomplete, tensors never written: {name_list(missing)}")
        if self.index_name:
            weight_map = {info.name: s.file for s in self.shards for info in s.tensors}
            total = sum(info.nbytes for s in self.shards for info in s.tensors)
            index = {"metadata": {"total_size": total}, "weight_map": weight_map}
            (self.folder / self.index_name).write_text(json.dumps(index, indent=2) + "\n")


class SpooledWriter:
    """One safetensors file whose shapes are known only at the end (e.g. a LoRA adapter).

    Tensors are appended to a spool file; ``close`` writes the header and then copies the
    spool after it in chunks, so memory stays at one chunk.
    """

    def __init__(self, path: Path, chunk_bytes: int = 16 << 20) -> None:
        self.path = path
        self.spool = path.with_name(path.name + ".spool")
        self.spool.write_bytes(b"")
        self.tensors: list[TensorInfo] = []
        self.chunk_bytes = chunk_bytes
        self._size = 0

    def write(self, name: str, tensor: torch.Tensor) -> None:
        info = TensorInfo(name, tuple(tensor.shape), DTYPE_CODES[tensor.dtype])
        try:
            _write_at(self.spool, self._size, tensor_bytes(tensor))
        except OSError as err:
            raise RepairError(f"could not write {name}: {err.strerror or err}") from err
        self.tensors.append(info)
        self._size += info.nbytes

    def close(self) -> None:
        header, _ = _header_bytes(self.tensors)
        try:
            with open(self.path, "wb") as out, open(self.spool, "rb") as spool:
                out.write(header)
                shutil.copyfileobj(spool, out, self.chunk_bytes)
        except OSError as err:
            raise RepairError(f"could not write {self.path.name}: {err.strerror or err}") from err
        self.spool.unlink()


def copy_side_files(sources: list[Path], dest: Path,
                    patterns: tuple[str, ...] = SIDE_FILE_PATTERNS) -> list[str]:
    """Copy config, generation config and tokenizer files; the first source that has a file
    wins (for a LoRA input: the adapter's tokenizer before the base model's)."""
    copied: list[str] = []
    for source in sources:
        for pattern in patterns:
            for path in sorted(source.glob(pattern)):
                if path.is_file() and path.name not in copied:
                    shutil.copy2(path, dest / path.name)
                    copied.append(path.name)
    return copied

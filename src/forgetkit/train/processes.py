"""What a run's processes share: its work folder, which process writes, and set-up passes
that one process computes for all.

Under ``torchrun`` or ``accelerate launch`` every process builds the method. A set-up pass
(SEAT's cached base log-probs, EWC's Fisher, SDFT's rewrites) gives the same result on every
rank, so the first process computes it, writes it to the run's work folder, and the others
read it: one pass instead of one per GPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """The process that writes shared files (rank 0 under torchrun / accelerate)."""
    return int(os.environ.get("RANK", "0")) == 0


def work_dir(output: Path) -> Path:
    """Where resumable Trainer checkpoints of a run live until its output is complete."""
    output = Path(output)
    return output.with_name(f".{output.name}.checkpoints")


def once_across_processes(name: str, output: Path | None, compute: Callable[[], T],
                          notes: dict[str, Any] | None = None) -> T:
    """``compute()`` in the first process only; the others load what it saved.

    One process: ``compute()`` as it is. The value must survive ``torch.save`` (tensors,
    lists, dicts, strings). ``notes`` gets ``{name: "computed once, shared by N processes"}``.
    """
    if world_size() == 1 or output is None:
        return compute()
    import torch.distributed as dist

    if not dist.is_initialized():  # the Trainer's accelerate state adopts this group later
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo",
                                timeout=timedelta(seconds=1800))  # the Trainer's ddp_timeout
    path = work_dir(Path(output)) / f"setup-{name}.pt"
    value: Any = None
    if is_main_process():
        value = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(value, tmp)
        tmp.replace(path)
    dist.barrier()
    if not is_main_process():
        # Written by this run's first process; read onto the CPU, as it was computed there.
        value = torch.load(path, map_location="cpu", weights_only=False)
    dist.barrier()  # nobody removes the file while another still reads it
    if notes is not None:
        notes.setdefault("shared_setup", {})[name] = (
            f"computed once, shared by {world_size()} processes")
    return value


__all__ = ["is_main_process", "once_across_processes", "work_dir", "world_size"]

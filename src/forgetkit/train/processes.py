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

from forgetkit.errors import UserError

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


def sharding(trainer: Any = None) -> str | None:
    """``"FSDP"`` or ``"DeepSpeed"`` when accelerate runs the training (and may shard its
    weights across processes), else None. A trainer says what it runs; without one (while
    the run is set up) the launcher's environment tells what was asked for."""
    from accelerate.utils import parse_flag_from_env

    for name, flag, attribute in (("DeepSpeed", "ACCELERATE_USE_DEEPSPEED",
                                   "is_deepspeed_enabled"),
                                  ("FSDP", "ACCELERATE_USE_FSDP", "is_fsdp_enabled")):
        if (getattr(trainer, attribute, False) if trainer is not None
                else parse_flag_from_env(flag)):
            return name
    return None


def _group() -> Any:
    """The default process group, started (gloo on the CPU, nccl on GPUs) if the Trainer has
    not started it yet; its accelerate state adopts it later."""
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo",
                                timeout=timedelta(seconds=1800))  # the Trainer's ddp_timeout
    return dist


def on_first_process(what: str, work: Callable[[], T]) -> T | None:
    """``work()`` in the first process only; every other process waits for it and, if it
    failed, stops too with an error that names ``what`` and the first process's error
    (rather than failing later on a closed connection, or waiting for a timeout).
    One process: ``work()`` as it is."""
    if world_size() == 1:
        return work()
    dist = _group()
    value: T | None = None
    error: Exception | None = None
    if is_main_process():
        try:
            value = work()
        except Exception as exc:  # told to the others below, then raised here
            error = exc
    outcome = [None if error is None else f"{type(error).__name__}: {error}"]
    dist.broadcast_object_list(outcome, src=0)
    if error is not None:
        raise error
    if outcome[0] is not None:
        raise UserError(f"the first process failed in {what} ({outcome[0]}); this process "
                        "stops as well")
    return value


def once_across_processes(name: str, output: Path | None, compute: Callable[[], T],
                          notes: dict[str, Any] | None = None) -> T:
    """``compute()`` in the first process only; the others load what it saved.

    One process: ``compute()`` as it is. The value must survive ``torch.save`` (tensors,
    lists, dicts, strings). ``notes`` gets ``{name: "computed once, shared by N processes"}``.
    """
    if world_size() == 1 or output is None:
        return compute()
    path = work_dir(Path(output)) / f"setup-{name}.pt"

    def compute_and_save() -> T:
        value = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(value, tmp)
        tmp.replace(path)
        return value

    value = on_first_process(f"the set-up pass '{name}'", compute_and_save)
    if not is_main_process():
        # Written by this run's first process; read onto the CPU, as it was computed there.
        value = torch.load(path, map_location="cpu", weights_only=False)
    _group().barrier()  # nobody removes the file while another still reads it
    if notes is not None:
        notes.setdefault("shared_setup", {})[name] = (
            f"computed once, shared by {world_size()} processes")
    return value  # type: ignore[return-value]


__all__ = ["is_main_process", "on_first_process", "once_across_processes", "sharding",
           "work_dir", "world_size"]

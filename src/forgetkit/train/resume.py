"""A resumed run is the run it claims to be.

A run's checkpoints live in a work folder beside its output (``.NAME.checkpoints``). When a
run starts it writes there what defines it: its settings and a fingerprint of each input. A
``--resume`` reads it back and refuses, naming each difference, to continue with other data,
another model or other settings. It continues from the newest *complete* checkpoint: one a
full disk or a kill cut short is skipped, with a word.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forgetkit.errors import ForgetkitWarning, MissingInputError, UserError
from forgetkit.io import OWNER_FILE, atomic_write_json, writer_alive
from forgetkit.lm.models import safetensors_problem

DEFINITION_FILE = "forgetkit_run_definition.json"
_VERSION = 1
# Settings that change how a run is watched or kept, not what it computes.
NOT_DEFINING = frozenset({"output", "overwrite", "resume", "progress", "logging_steps", "device",
                          "save_strategy", "save_steps", "save_total_limit", "report_to",
                          # the training monitor's sets and pace (its rules do define a run)
                          "monitor", "monitor_unseen", "monitor_known", "monitor_every",
                          "monitor_size"})


class SkippedCheckpointWarning(ForgetkitWarning):
    """``--resume`` passed over checkpoints that a kill or a full disk cut short."""


class ClearedCheckpointsWarning(ForgetkitWarning):
    """A new run removed what an interrupted run of the same output had left."""


class ResumeError(UserError):
    """``--resume`` was asked of checkpoints that belong to another run, or that are unusable."""


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
SAMPLED_ABOVE = 64 << 20  # weight files larger than this are read in samples
SAMPLES, SAMPLE_BYTES = 16, 64 << 10


def file_digest(path: Path, digest: Any) -> None:
    """Feed ``path``'s content to ``digest``: every byte, except for a weight file over 64
    MiB, which gives its size and 16 blocks of 64 KiB spread over it (its header among
    them). A fine-tune changes weights all through a file, so samples see it; reading
    gigabytes of weights would take minutes."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        if path.suffix in WEIGHT_SUFFIXES and size > SAMPLED_ABOVE:
            digest.update(f"{size}\n".encode())
            for i in range(SAMPLES):
                fh.seek((size - SAMPLE_BYTES) * i // (SAMPLES - 1))
                digest.update(fh.read(SAMPLE_BYTES))
            return
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)


def fingerprint(path: str | os.PathLike[str]) -> str:
    """What an input holds, by content only (a copy with new file times is the same input):
    a file's bytes; a folder's files (a model, an adapter, a ``save_to_disk`` dataset) by
    relative name and content, hidden ones left out. Large weight files are sampled
    (``file_digest``)."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        for item in sorted(path.rglob("*")):
            relative = item.relative_to(path)
            if item.is_file() and not any(part.startswith(".") for part in relative.parts):
                digest.update(f"{relative.as_posix()}\n".encode())
                file_digest(item, digest)
    else:
        file_digest(path, digest)
    return digest.hexdigest()


def run_definition(settings: Mapping[str, Any], method: str,
                   inputs: Mapping[str, str | os.PathLike[str] | None]) -> dict[str, Any]:
    """What defines a run: its method, its settings and what each of its inputs holds.

    ``settings`` are the flat options of the run; an input given as a path that exists is
    compared by content, so a data file moved elsewhere is still the same data.
    """
    files = {what: path for what, path in inputs.items()
             if path is not None and Path(path).expanduser().exists()}
    input_keys = {key for key, value in settings.items()
                  if value is not None and any(str(value) == str(p) for p in files.values())}
    kept = {k: v for k, v in settings.items() if k not in NOT_DEFINING | input_keys}
    return {
        "forgetkit_run_definition": _VERSION,
        "method": method,
        "settings": json.loads(json.dumps(kept, default=str)),
        "inputs": {what: fingerprint(Path(path).expanduser()) for what, path in files.items()},
        "processes": int(os.environ.get("WORLD_SIZE", "1")),
    }


def start_fresh(checkpoints: Path, definition: Mapping[str, Any]) -> None:
    """Before a new (not resumed) run: clear what a killed run left in the work folder, then
    record this run's definition. A live run's folder is never touched."""
    if checkpoints.exists():
        owner = checkpoints / OWNER_FILE
        mine = owner.is_file() and owner.read_text() == _owner()  # an earlier call, ended
        if not mine and writer_alive(checkpoints):
            if owner.is_file():
                raise UserError(f"{checkpoints}: another run for this output is still "
                                "writing checkpoints there; wait for it, or choose another "
                                "output")
            raise UserError(f"{checkpoints}: checkpoints left less than a day ago by a run "
                            "that does not say whether it is still going; continue it with "
                            "--resume, or delete the folder to start again")
        if not mine and any(checkpoints.glob("checkpoint-*")):
            warnings.warn(f"removed the checkpoints of an earlier, interrupted run of this "
                          f"output ({checkpoints}); to continue such a run, pass --resume",
                          ClearedCheckpointsWarning, stacklevel=2)
        shutil.rmtree(checkpoints)
    checkpoints.mkdir(parents=True)
    (checkpoints / OWNER_FILE).write_text(_owner())
    atomic_write_json(checkpoints / DEFINITION_FILE, dict(definition))


def _owner() -> str:
    import socket

    return f"{socket.gethostname()} {os.getpid()}\n"


def _differences(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    out = []
    if saved.get("method") != now["method"]:
        out.append(f"method {saved.get('method')!r} -> {now['method']!r}")
    old, new = saved.get("settings", {}), now["settings"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            out.append(f"{key} {old.get(key)!r} -> {new.get(key)!r}")
    old, new = saved.get("inputs", {}), now["inputs"]
    for what in sorted(set(old) | set(new)):
        if what not in new:
            out.append(f"{what}: the run had one, none now")
        elif what not in old:
            out.append(f"{what}: none in the run, one now")
        elif old[what] != new[what]:
            out.append(f"{what}: its content changed")
    if saved.get("processes") != now["processes"]:
        out.append(f"processes {saved.get('processes')} -> {now['processes']}")
    return out


def checkpoint_problem(folder: Path) -> str | None:
    """Why checkpoint ``folder`` cannot be resumed from (cut short by a kill or a full disk),
    or None. Reads file headers only."""
    state = folder / "trainer_state.json"
    try:
        json.loads(state.read_text())
    except FileNotFoundError:
        return "it has no trainer_state.json"
    except (OSError, ValueError) as err:
        return f"its trainer_state.json is unreadable ({err})"
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        return "it holds no weights"
    for path in weights:
        problem = safetensors_problem(path)
        if problem:
            return f"{path.name} is incomplete ({problem})"
    for path in sorted(folder.glob("*.pt")) + sorted(folder.glob("*.pth")):
        try:
            with zipfile.ZipFile(path) as zf:  # torch.save writes a zip; a cut one has no index
                zf.infolist()
        except (OSError, zipfile.BadZipFile) as err:
            return f"{path.name} is incomplete ({err})"
    return None


def _step(folder: Path) -> int:
    match = re.fullmatch(r"checkpoint-(\d+)", folder.name)
    return int(match.group(1)) if match else -1


def resume_point(checkpoints: Path, definition: Mapping[str, Any]) -> Path:
    """The checkpoint a ``--resume`` continues from: the newest complete one, of this run.

    Refuses checkpoints made with other settings or inputs (naming each difference) and says
    which incomplete checkpoints it skipped.
    """
    if not checkpoints.is_dir():
        raise MissingInputError(f"--resume: no checkpoints for this output ({checkpoints} does "
                                "not exist); start the run without --resume")
    try:
        saved = json.loads((checkpoints / DEFINITION_FILE).read_text())
    except (OSError, ValueError):
        raise ResumeError(f"--resume: {checkpoints} does not say which run made its checkpoints "
                          f"(no readable {DEFINITION_FILE}), so resuming could mix two runs; "
                          "start again without --resume (with --overwrite)") from None
    owner = checkpoints / OWNER_FILE
    if owner.is_file() and owner.read_text() != _owner() and writer_alive(checkpoints):
        raise ResumeError(f"--resume: another run is still writing {checkpoints}; wait for it "
                          "to end (or stop it) before resuming")
    differences = _differences(saved, definition)
    if differences:
        raise ResumeError("--resume: the checkpoints in " f"{checkpoints} belong to a run with "
                          "other settings: " + "; ".join(differences) + ". Resume with the "
                          "settings and inputs of that run, or start again without --resume")
    found = sorted((f for f in checkpoints.glob("checkpoint-*") if _step(f) >= 0), key=_step,
                   reverse=True)
    skipped = []
    for folder in found:
        problem = checkpoint_problem(folder)
        if problem is None:
            if skipped:
                warnings.warn("--resume: skipped incomplete " + "; ".join(skipped)
                              + f"; continuing from {folder.name}", SkippedCheckpointWarning,
                              stacklevel=2)
            (checkpoints / OWNER_FILE).write_text(_owner())
            return folder
        skipped.append(f"{folder.name} ({problem})")
    detail = ": " + "; ".join(skipped) if skipped else ""
    raise ResumeError(f"--resume: no complete checkpoint in {checkpoints}{detail}; start the run "
                      "again without --resume (with --overwrite)")


__all__ = ["DEFINITION_FILE", "ResumeError", "SkippedCheckpointWarning", "checkpoint_problem",
           "fingerprint", "resume_point", "run_definition", "start_fresh"]

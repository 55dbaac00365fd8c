"""Atomic writes: a result or checkpoint is either complete at its path or not there at all."""

from __future__ import annotations

import ctypes
import errno
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from forgetkit.errors import OutputExistsError, UserError


class WriteFailedError(UserError, OSError):
    """A write failed for want of space: a full disk, a quota or a file-size limit."""


_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# How the same failure reads when a library reports it in its own words (torch's zip
# writer, safetensors' Rust code) rather than as an OSError.
_FULL_WORDS = ("no space left", "file too large", "disk quota", "os error 28", "os error 27",
               "os error 122", "file write failed", "unexpected pos")


def disk_full(err: BaseException) -> bool:
    """Whether ``err`` (or what caused it) is a write that failed for want of space."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _FULL_ERRNOS:
            return True
        if any(word in str(err).lower() for word in _FULL_WORDS):
            return True
        err = err.__cause__ or err.__context__
    return False


def write_failed(what: str, where: str | os.PathLike[str], err: BaseException,
                 then: str) -> WriteFailedError:
    """The one message for a write that ran out of space: what, where, and what to do."""
    return WriteFailedError(f"could not write {what} {where}: {err}. The disk is full, or a "
                            f"quota or file-size limit was reached. {then}")


class OutputOverlapsInputError(UserError):
    """The output path is, holds, or sits inside one of the command's inputs."""


def check_output(output: str | os.PathLike[str],
                 inputs: Mapping[str, str | os.PathLike[str] | None]) -> None:
    """Before any long work: the output can be written where it is asked for, and inputs are
    never written to, so it may not be an input, hold one (replacing it would delete it) or
    sit inside one, whatever ``overwrite`` says.

    ``inputs`` maps what each input is ("model", "data file", "config file"...) to its path;
    None entries and paths that do not exist (hub ids, outputs still to be made) are skipped.
    """
    folder = Path(output).expanduser().absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"the output {output} cannot be written: {folder} is a file, not a "
                        "folder; choose another output path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"the output {output} cannot be written: no permission to create "
                        f"files in {folder}; choose a folder you can write to")
    target = Path(output).expanduser().resolve()
    for what, path in inputs.items():
        if path is None or not Path(path).expanduser().exists():
            continue
        source = Path(path).expanduser().resolve()
        if target == source:
            how = "is"
        elif source.is_relative_to(target):
            how = "holds"
        elif target.is_relative_to(source):
            how = "sits inside"
        else:
            continue
        raise OutputOverlapsInputError(
            f"the output {output} {how} the input {what} {path}; inputs are never written to, "
            "with or without --overwrite: choose an output outside every input")


def refuse_existing(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: output already exists; pass --overwrite "
                              "(overwrite=True) to replace it")


def umask() -> int:
    """The process's file-mode creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


OWNER_FILE = ".forgetkit-owner"  # in a temporary output folder: "<host> <pid>" of its writer
UNMARKED_STALE_AFTER_S = 24 * 3600  # a temporary folder without an owner, untouched this long


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _host_tag(host: str) -> str:
    return hashlib.sha256(host.encode()).hexdigest()[:8]


def _owner_tag() -> str:
    """'<pid>-<host hash>': put in a temporary folder's name, so the folder says whose it is
    from the moment it exists (a run killed before writing ``OWNER_FILE`` is still known)."""
    return f"{os.getpid()}-{_host_tag(socket.gethostname())}"


_TAGGED = re.compile(r"\.(\d+)-([0-9a-f]{8})-[^./]*\.tmp$")


def writer_alive(tmp: Path) -> bool:
    """Whether the run that made temporary folder ``tmp`` may still be writing it."""
    try:
        host, pid = (tmp / OWNER_FILE).read_text().split()
    except (OSError, ValueError):
        tagged = _TAGGED.search(tmp.name)
        if tagged is None:
            age = time.time() - tmp.stat().st_mtime
            return age < UNMARKED_STALE_AFTER_S
        pid, host_hash = tagged.groups()
        if host_hash != _host_tag(socket.gethostname()):
            return True
        host = socket.gethostname()
    if host != socket.gethostname():
        return True  # another machine's run on a shared disk: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Clean up what killed runs left beside ``out``: their temporary folders (never a live
    run's), and the ``.old`` copy of an interrupted replacement (put back if ``out`` is gone,
    deleted otherwise)."""
    removed = []
    for tmp in out.parent.glob(f".{glob.escape(out.name)}.*.tmp"):
        if tmp.is_dir() and not writer_alive(tmp):
            _remove(tmp)
            removed.append(tmp)
    old = out.with_name(f".{out.name}.old")
    if old.exists() and not out.exists():
        old.rename(out)  # killed between the two renames of a replacement: the old output is back
    elif old.exists() or old.is_symlink():
        _remove(old)
        removed.append(old)
    return removed


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2  # <fcntl.h>, <linux/fs.h>


def _exchange(a: Path, b: Path) -> bool:
    """Swap paths ``a`` and ``b`` in one step (Linux ``renameat2``); False where the system or
    file system cannot, so the caller falls back to two renames."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _replace(out: Path, new: Path) -> None:
    """Put folder ``new`` at ``out`` and delete what was there. Where the system can swap two
    paths in one step, ``out`` is never missing; elsewhere it is missing between two renames,
    and a killed run's ``.old`` copy is put back by the next run (`remove_stale_temporaries`)."""
    old = out.with_name(f".{out.name}.old")
    _remove(old)
    if _exchange(new, out):
        new.rename(old)  # the old output: marked for removal by name, then removed
    else:
        out.rename(old)
        new.rename(out)
    _remove(old)


@contextmanager
def atomic_output_dir(out: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; it replaces ``out`` only if the block succeeds.

    On any error the temporary folder is removed and ``out`` is left as it was. Temporaries
    of earlier runs of the same output that were killed are cleaned up first.
    """
    out = Path(out)
    remove_stale_temporaries(out)
    refuse_existing(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.{_owner_tag()}-",
                                suffix=".tmp"))
    try:
        (tmp / OWNER_FILE).write_text(f"{socket.gethostname()} {os.getpid()}\n")
        yield tmp
        (tmp / OWNER_FILE).unlink(missing_ok=True)
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes it owner-only; outputs are not
        if out.exists():
            _replace(out, tmp)
        else:
            tmp.rename(out)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, Exception) and not isinstance(err, UserError) and disk_full(err):
            raise write_failed("the output", out, err, "Nothing was written there and any "
                               "earlier output is unchanged: free space and run again") from err
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write a file through a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes it owner-only; outputs are not
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, Exception) and disk_full(err):
            raise write_failed("the file", path, err, "It is unchanged: free space and run "
                               "again") from err
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write a UTF-8 text file through a temporary file renamed into place."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Save a matplotlib figure as a PNG, atomically."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")

"""Killed runs leave nothing that piles up or breaks the next run: stale temporaries of the
same output are removed (a live run's never), a stray .old never blocks --overwrite."""

import os
import socket
import subprocess
import sys

from forgetkit.io import OWNER_FILE, atomic_output_dir


def _tmp(parent, name, owner):
    folder = parent / name
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"x" * 100)
    if owner is not None:
        (folder / OWNER_FILE).write_text(owner)
    return folder


def test_stale_temporaries_go_and_live_ones_stay(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    host = socket.gethostname()
    stale = _tmp(tmp_path, ".out.abc.tmp", f"{host} {dead}")
    live = _tmp(tmp_path, ".out.def.tmp", f"{host} {os.getpid()}")
    unmarked = _tmp(tmp_path, ".out.ghi.tmp", None)  # fresh, writer unknown: kept
    other = _tmp(tmp_path, ".other.jkl.tmp", f"{host} {dead}")  # another output's
    with atomic_output_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("new")
    assert not stale.exists()
    assert live.exists() and unmarked.exists() and other.exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt"]


def test_a_stray_old_copy_does_not_break_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old")
    (tmp_path / ".out.old").write_text("a file where a folder would go")
    with atomic_output_dir(out, overwrite=True) as tmp:
        (tmp / "a.txt").write_text("new")
    assert (out / "a.txt").read_text() == "new"
    assert not (tmp_path / ".out.old").exists()


def test_a_replacement_killed_between_its_renames_gets_the_old_output_back(tmp_path):
    old = tmp_path / ".out.old"  # out was moved aside, the new one never arrived
    old.mkdir()
    (old / "a.txt").write_text("complete old output")
    try:
        with atomic_output_dir(tmp_path / "out", overwrite=False):
            raise AssertionError("refused before: the old output is back at out")
    except FileExistsError:
        pass
    assert (tmp_path / "out" / "a.txt").read_text() == "complete old output"


def test_a_replacement_swaps_in_one_step_so_the_output_is_never_missing(tmp_path, monkeypatch):
    """Linux swaps two paths at once (renameat2): stopped right after the swap, the output
    is already the new one, and the old one waits beside it to be removed."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old")
    renames = []
    real = type(out).rename

    def stop_at_first_rename(self, target):
        renames.append((self.name, os.path.basename(target)))
        raise KeyboardInterrupt  # a kill at the first step after the swap
    monkeypatch.setattr(type(out), "rename", stop_at_first_rename)
    try:
        with atomic_output_dir(out, overwrite=True) as tmp:
            (tmp / "a.txt").write_text("new")
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(type(out), "rename", real)
    assert (out / "a.txt").read_text() == "new"
    assert renames == [(renames[0][0], ".out.old")]  # the swapped-out old output, by name


def test_a_run_killed_before_marking_its_folder_is_still_known_by_the_folders_name(tmp_path):
    """Killed between creating its temporary folder and writing OWNER_FILE: the folder's
    name carries the owner, so the next run removes it instead of keeping it for a day."""
    from forgetkit.io import _host_tag, writer_alive

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = _tmp(tmp_path, f".out.{dead}-{_host_tag(socket.gethostname())}-x1.tmp", None)
    live = _tmp(tmp_path, f".out.{os.getpid()}-{_host_tag(socket.gethostname())}-x2.tmp", None)
    elsewhere = _tmp(tmp_path, f".out.{dead}-{_host_tag('another-machine')}-x3.tmp", None)
    assert not writer_alive(stale) and writer_alive(live) and writer_alive(elsewhere)
    with atomic_output_dir(tmp_path / "out") as tmp:
        assert tmp.name.startswith(f".out.{os.getpid()}-")  # tagged from the start
        (tmp / "a.txt").write_text("new")
    assert not stale.exists() and live.exists() and elsewhere.exists()

"""Two-process runs for the data-parallel tests."""

import os
import shutil
import signal
import subprocess
import sys


def torchrun(args: list[str], timeout: float, port: int | str) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node 2`` in its own process group: on a timeout the ranks are
    killed with it, never left behind."""
    runner = shutil.which("torchrun")
    cmd = ([runner] if runner else [sys.executable, "-m", "torch.distributed.run"])
    proc = subprocess.Popen([*cmd, "--nproc_per_node", "2", "--master_port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

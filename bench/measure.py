"""What every benchmark here measures the same way: a child's own peak memory, and the
allocator settings its children run with.

Peak memory is the process's own high-water mark (``VmHWM``; ``ru_maxrss`` can report the
parent's). glibc raises its mmap threshold after every large free, so later activation-sized
blocks come from the heap and stay resident once freed: the high-water mark then follows the
allocator's history more than the memory a step needs (a SEAT run ends with 3 GB resident for
0.9 GB of live tensors). ``child_env("fixed")`` pins the threshold
(``MALLOC_MMAP_THRESHOLD_=65536``) so large blocks go back to the system when freed and the
high-water mark follows live memory; ``child_env("default")`` leaves glibc as it comes.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

ALLOCATORS = ("fixed", "default")


def peak_rss_mb() -> float:
    """This process's own peak resident memory in MB (VmHWM; ru_maxrss without /proc)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_env(allocator: str = "fixed") -> dict[str, str]:
    """Environment for a measured child: passive OpenMP waits, and the allocator policy."""
    if allocator not in ALLOCATORS:
        raise ValueError(f"allocator must be one of {ALLOCATORS}, got {allocator!r}")
    env = dict(os.environ)
    # Spinning OpenMP threads steal the other core from whatever else runs on a 2-core box.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if allocator == "fixed":
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    else:
        env.pop("MALLOC_MMAP_THRESHOLD_", None)
    return env

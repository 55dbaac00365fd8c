"""Tensors repaired side by side on a CPU, their results handed on in order.

The SVDs and eigendecompositions of one weight delta (hundreds to a few thousand on a side)
use one core well and a second one poorly, so a CPU repair runs several tensors at once,
each on its own thread with one math thread, while the calling thread reads, subtracts,
merges and writes. The calling thread drops to one math thread too while the workers run:
a second OpenMP team would spin-wait for the cores they need.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch


class InOrder:
    """Runs each tensor's repair on one of ``workers`` threads (one math thread each) and
    hands the results on in the order they were submitted, with at most ``workers + 1``
    tensors in flight (so memory stays that of a few tensors). One worker: everything runs
    at once on the calling thread, as a plain loop would."""

    def __init__(self, workers: int) -> None:
        self.limit = workers + 1
        self.executor = None if workers == 1 else ThreadPoolExecutor(
            workers, thread_name_prefix="forgetkit-repair", initializer=torch.set_num_threads,
            initargs=(1,))
        self.queue: deque[tuple[Future | None, Callable[[Any], None]]] = deque()

    def submit(self, work: Callable[[], Any] | None, then: Callable[[Any], None]) -> None:
        """Run ``work`` (None: nothing to compute) and later ``then(its result)`` on the
        calling thread, after every earlier ``then``."""
        if self.executor is None:
            then(work() if work is not None else None)
            return
        self.queue.append((self.executor.submit(work) if work is not None else None, then))
        while self.queue and (len(self.queue) > self.limit or self.queue[0][0] is None
                              or self.queue[0][0].done()):
            self._next()

    def _next(self) -> None:
        future, then = self.queue.popleft()
        then(future.result() if future is not None else None)

    def drain(self) -> None:
        """Hand on every result still in flight."""
        while self.queue:
            self._next()

    def __enter__(self) -> InOrder:
        self.threads = torch.get_num_threads()
        if self.executor is not None:
            torch.set_num_threads(1)
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        try:
            if kind is None:
                self.drain()
        finally:
            if self.executor is not None:
                self.executor.shutdown(wait=True, cancel_futures=True)
                torch.set_num_threads(self.threads)


__all__ = ["InOrder"]

"""What runs on this thread: the current process, and ``blocking()``.

The leaf every other runtime module may read. A substrate sets the current
process while it runs one; the pooled scheduler also sets the worker, so
``blocking()`` can hand a waiting worker's place on to a spare thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

__all__ = ["HandsOff", "blocking", "current_process", "set_current_process", "set_worker"]


class HandsOff(Protocol):
    """A worker thread that can hand its place on while it waits."""

    def handing_off(self) -> AbstractContextManager[None]: ...


class _ThreadState(threading.local):
    """What runs on this thread. Class defaults, so a thread that never ran a
    process reads ``None`` without the failed lookup (an exception inside
    ``getattr``) that cost ~0.5 µs on every ask from outside a process."""

    process: Any = None
    worker: HandsOff | None = None


_local = _ThreadState()


def current_process() -> Any:
    """The ref of the process running on this thread, or ``None`` outside one."""
    return _local.process


def set_current_process(ref: Any) -> None:
    """For substrates: ``ref``'s code runs on this thread now (``None``: no process's)."""
    _local.process = ref


def set_worker(worker: HandsOff | None) -> None:
    """For the pooled scheduler: this thread is ``worker``."""
    _local.worker = worker


@contextmanager
def blocking() -> Iterator[None]:
    """Mark code that waits (I/O, a lock, another process's reply).

    On a pooled worker the worker's place is handed to a spare thread for the
    duration, so a waiting process never starves the others, and an ``ask``
    from inside a process cannot deadlock a small pool. On a dedicated thread,
    and outside any process, it costs nothing.
    """
    worker = _local.worker
    if worker is None:
        yield
        return
    with worker.handing_off():
        yield

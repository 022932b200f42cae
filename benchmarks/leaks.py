"""What a run left behind: the one leak check of the tests, the crash drill and
the benchmark scenarios.

Take a :class:`Baseline` before the run; after it, :meth:`Baseline.settle`
waits (with a deadline, never a fixed sleep) for the processes and threads
started since to finish exiting, and :meth:`Baseline.leaks` lists what is
still there, by kind: ``processes`` (``actors`` processes), ``threads``,
``pykka actors``, ``timers`` (pending ``send_after``), ``temp files`` (new
entries of a folder) and ``file descriptors`` (new ones, optionally only
those whose target a predicate picks).
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import pykka

import actors

__all__ = ["KINDS", "Baseline", "Leaks", "as_text", "new_descriptors", "open_descriptors"]

Leaks = dict[str, list[Any]]
"""Kind -> what of it was left behind."""

KINDS = ("processes", "threads", "pykka actors", "timers", "temp files", "file descriptors")


def open_descriptors() -> tuple[bool, dict[str, str]]:
    """The open file descriptors, number -> what it points at (its
    ``/proc/self/fd`` link: a path, ``socket:[inode]``, ``pipe:[inode]``...);
    ``(False, {})`` where they cannot be listed.

    Without ``/proc`` (macOS), ``psutil`` gives only a count: the numbers
    ``0..count-1`` stand in, so only a growing count shows there."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        try:
            import psutil
        except ImportError:
            return False, {}
        return True, {str(i): "?" for i in range(psutil.Process().num_fds())}
    found = {}
    for name in names:
        try:
            found[name] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass  # the directory listing's own descriptor, closed already
    return True, found


def new_descriptors(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Descriptors open in ``after`` that were not open in ``before``: a number
    not open then, or open then on something else (closed, and its number
    reused). Compared as sets, not counts, so a leak is seen even when the
    run also closed a descriptor that was open before it."""
    return sorted(
        (f"{fd} -> {target}" for fd, target in after.items() if before.get(fd) != target),
        key=lambda line: int(line.split(" ", 1)[0]),
    )


def _entries(folder: str | None, ignore: tuple[str, ...]) -> set[str]:
    if folder is None or not os.path.isdir(folder):
        return set()
    return {os.path.join(folder, name) for name in os.listdir(folder) if not name.startswith(ignore)}


class Baseline:
    """What exists now, to compare with what exists after a run.

    ``temp_dir``: the folder whose new entries are temp files left behind
    (``ignore``: name prefixes not counted). ``descriptors``: which file
    descriptor targets count (default: all). ``collect``: run the garbage
    collector first, so an unreachable object's descriptor is not counted.
    """

    def __init__(
        self,
        *,
        temp_dir: str | None = None,
        ignore: Iterable[str] = (),
        descriptors: Callable[[str], bool] | None = None,
        collect: bool = False,
    ) -> None:
        self.temp_dir = temp_dir
        self.ignore = tuple(ignore)
        self.descriptors = descriptors
        self.collect = collect
        if collect:
            gc.collect()
        self.threads = set(threading.enumerate())
        self.processes = set(actors.processes())
        self.pykka_actors = set(pykka.ActorRegistry.get_all())
        self.temp_files = _entries(temp_dir, self.ignore)
        self.fds = open_descriptors()[1]
        self.fds_measured = True

    def settle(self, grace: float) -> None:
        """Wait until the processes and threads started since are gone, or ``grace`` seconds passed."""
        deadline = time.monotonic() + grace
        while True:
            procs = set(actors.processes()) - self.processes
            threads = [t for t in threading.enumerate() if t not in self.threads and t.is_alive()]
            if not (procs or threads) or time.monotonic() >= deadline:
                return
            for ref in procs:
                with contextlib.suppress(pykka.Timeout):
                    actors.await_exit(ref, max(0.0, deadline - time.monotonic()))
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))

    def leaks(self, kinds: Iterable[str] = KINDS) -> Leaks:
        """What of ``kinds`` is there now that was not at the baseline, by kind
        (an empty list where nothing was left)."""
        pending = actors.pending_timers()
        found: Leaks = {
            "processes": sorted(set(actors.processes()) - self.processes, key=str),
            "threads": sorted(
                (t for t in threading.enumerate() if t not in self.threads and t.is_alive()), key=lambda t: t.name
            ),
            "pykka actors": sorted(set(pykka.ActorRegistry.get_all()) - self.pykka_actors, key=str),
            "timers": [f"{pending} pending"] if pending else [],
            "temp files": sorted(_entries(self.temp_dir, self.ignore) - self.temp_files),
        }
        if self.collect:
            gc.collect()
        self.fds_measured, fds = open_descriptors()
        picked = self.descriptors or (lambda _target: True)
        found["file descriptors"] = [
            line for line in new_descriptors(self.fds, fds) if picked(line.split(" -> ", 1)[1])
        ]
        return {kind: found[kind] for kind in kinds}


def as_text(leaks: Leaks) -> dict[str, list[str]]:
    """``leaks`` as plain strings (a thread by its name), for a report."""
    return {
        kind: [item.name if isinstance(item, threading.Thread) else str(item) for item in items]
        for kind, items in leaks.items()
    }

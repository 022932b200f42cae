"""A journal of writer calls, and a writer that keeps one.

``Journal`` is the one record of what happened to an upload's writer that the
tests, the crash drill and the benchmarks read: a thread-safe list appended to
from the channels' threads, each entry stamped with ``time.perf_counter()``,
waited on with a deadline (a condition variable, never a sleep).

Two writers append to it: :class:`~writers.faulty.FaultyWriter` (option
``journal``) and :class:`JournalingWriter`, which wraps any writer (a
``TmpFileWriter`` by default) and journals each callback::

    ("init", *tag)  ("path", *tag, path)  ("chunk", *tag, n)
    ("close", *tag, reason)  ("release", *tag)

``tag`` (default ``()``) tells apart the uploads sharing one journal, e.g.
``(entry name,)``; ``("path", ...)`` follows a successful ``init`` of a writer
whose state has a ``path`` (a file).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .behaviour import (
    Chunk,
    CloseReason,
    CloseResult,
    InitResult,
    Pending,
    UploadWriter,
    WriteResult,
    WriterState,
    instantiate,
)
from .tmpfile import TmpFileWriter

__all__ = ["Journal", "JournaledState", "JournalingWriter", "journaling"]


class Journal:
    """Entries appended from any thread, each with the moment it arrived."""

    def __init__(self) -> None:
        self._timed: list[tuple[float, Any]] = []
        self._changed = threading.Condition(threading.Lock())

    def append(self, item: Any) -> None:
        with self._changed:
            self._timed.append((time.perf_counter(), item))
            self._changed.notify_all()

    def items(self) -> list[Any]:
        """The entries so far, oldest first."""
        with self._changed:
            return [item for _, item in self._timed]

    def timed(self) -> list[tuple[float, Any]]:
        """The entries so far as ``(perf_counter moment, entry)`` pairs."""
        with self._changed:
            return list(self._timed)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items())

    def __len__(self) -> int:
        with self._changed:
            return len(self._timed)

    def __contains__(self, item: Any) -> bool:
        return item in self.items()

    def first(self, item: Any) -> float | None:
        """When ``item`` was first appended, or ``None``."""
        return next((moment for moment, seen in self.timed() if seen == item), None)

    def count(self, kind: str) -> int:
        """How many entries are ``(kind, ...)``."""
        return sum(1 for item in self.items() if item[0] == kind)

    def closes(self, *tag: Any) -> list[Any]:
        """The reason of every ``("close", *tag, reason)``, oldest first."""
        n = len(tag)
        return [
            item[1 + n]
            for item in self.items()
            if item[0] == "close" and len(item) == n + 2 and tuple(item[1 : 1 + n]) == tag
        ]

    def path(self, *tag: Any) -> str | None:
        """The file of the first ``("path", *tag, path)``, or ``None``."""
        n = len(tag)
        return next((item[1 + n] for item in self.items() if item[0] == "path" and tuple(item[1 : 1 + n]) == tag), None)

    def wait(self, predicate: Callable[[list[Any]], bool], timeout: float) -> bool:
        """Wait until ``predicate(entries)`` holds (True) or ``timeout`` passes
        (False). It is checked on every append and every :meth:`poke`."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate([item for _, item in self._timed]), timeout)

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float) -> list[Any]:
        """The entries once ``predicate(entries)`` holds; ``TimeoutError``
        (naming what the journal holds) if it does not within ``timeout``."""
        if not self.wait(predicate, timeout):
            raise TimeoutError(f"journal never matched within {timeout} s; it holds {self.items()}")
        return self.items()

    def poke(self) -> None:
        """Wake the waiters so they check their predicate again (something
        outside the journal it also reads has changed)."""
        with self._changed:
            self._changed.notify_all()


@dataclass
class JournaledState:
    """The wrapped writer and its state, with where to journal."""

    writer: UploadWriter
    inner: WriterState
    journal: Journal
    tag: tuple[Any, ...]
    chunks: int = 0


class JournalingWriter(UploadWriter):
    """Runs another writer, journaling each callback before passing it on.

    Options: ``journal`` (anything with ``append``), ``writer`` (the wrapped
    writer, class or instance; default :class:`TmpFileWriter`), ``opts`` (its
    ``init`` options) and ``tag`` (a tuple put after each entry's kind).
    Results are the wrapped writer's, with its state wrapped.
    """

    def init(self, opts: Mapping[str, Any]) -> InitResult:
        journal, tag = opts["journal"], tuple(opts.get("tag", ()))
        writer, inner_opts = instantiate((opts.get("writer", TmpFileWriter), opts.get("opts")))
        journal.append(("init", *tag))
        result = writer.init(inner_opts)
        if result[0] != "ok":
            return result
        path = getattr(result[1], "path", None)
        if path is not None:
            journal.append(("path", *tag, path))
        return ("ok", JournaledState(writer, result[1], journal, tag))

    def meta(self, state: JournaledState) -> dict:
        return state.writer.meta(state.inner)

    def write_chunk(self, data: Chunk, state: JournaledState) -> WriteResult | Pending:
        state.chunks += 1
        state.journal.append(("chunk", *state.tag, state.chunks))
        return self._written(state.writer.write_chunk(data, state.inner), state)

    def _written(self, result: WriteResult | Pending, state: JournaledState) -> WriteResult | Pending:
        if isinstance(result, Pending):  # the wrapped writer's extension, passed through
            return Pending(result.wait_for, lambda: self._written(result.resume(), state))
        state.inner = result[-1]
        if result[0] != "ok":
            return ("error", result[1], state)
        return ("ok", state)

    def close(self, state: JournaledState, reason: CloseReason) -> CloseResult | Pending:
        state.journal.append(("close", *state.tag, reason))
        return self._closed(state.writer.close(state.inner, reason), state)

    def _closed(self, result: CloseResult | Pending, state: JournaledState) -> CloseResult | Pending:
        if isinstance(result, Pending):
            return Pending(result.wait_for, lambda: self._closed(result.resume(), state))
        if result[0] != "ok":
            return result
        state.inner = result[1]
        return ("ok", state)

    def release(self, state: JournaledState) -> None:
        state.journal.append(("release", *state.tag))
        state.writer.release(state.inner)


def journaling(
    journal: Any, *, writer: Any = TmpFileWriter, opts: Any = None, tag: tuple[Any, ...] = ()
) -> tuple[type[JournalingWriter], dict[str, Any]]:
    """The ``(writer, opts)`` of a :class:`JournalingWriter` around ``(writer, opts)``."""
    return (JournalingWriter, {"journal": journal, "writer": writer, "opts": opts, "tag": tag})

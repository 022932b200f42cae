"""Writers and journals made for measuring.

``NullWriter`` does nothing with the bytes, so what remains of a chunk's cost
is the runtime's. ``TimedJournal`` is a ``FaultyWriter`` journal whose
``append`` records ``time.perf_counter()``: FaultyWriter appends
``("chunk", n)`` just before a fault fires and ``("close", reason)`` as it
closes, so the journal gives the crash and close moments of one upload.
``WaitingWriter`` blocks in every ``write_chunk`` (a writer streaming to a
slow peer) without telling the runtime; ``DeclaredWaitingWriter`` is the same
writer declaring ``blocking = True``, which gets its channel a thread of its own.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from writers import CloseReason, CloseResult, InitResult, UploadWriter, WriteResult

__all__ = ["DeclaredWaitingWriter", "NullWriter", "TimedJournal", "WaitingWriter"]


class NullWriter(UploadWriter):
    """A writer that accepts every chunk and keeps nothing (state is ``None``)."""

    def init(self, opts: Any = None) -> InitResult:
        return ("ok", None)

    def meta(self, state: Any) -> dict:
        return {}

    def write_chunk(self, data: bytes, state: Any) -> WriteResult:
        return ("ok", state)

    def close(self, state: Any, reason: CloseReason) -> CloseResult:
        return ("ok", state)


class WaitingWriter(UploadWriter):
    """Blocks ``opts["wait"]`` seconds in every ``write_chunk``
    (``threading.Event().wait``), unmarked: it does not declare itself blocking
    nor use ``actors.blocking()``. State is the wait."""

    def init(self, opts: Any = None) -> InitResult:
        return ("ok", float((opts or {}).get("wait", 0.01)))

    def meta(self, state: Any) -> dict:
        return {}

    def write_chunk(self, data: bytes, state: Any) -> WriteResult:
        threading.Event().wait(state)
        return ("ok", state)

    def close(self, state: Any, reason: CloseReason) -> CloseResult:
        return ("ok", state)


class DeclaredWaitingWriter(WaitingWriter):
    """``WaitingWriter`` declaring ``blocking = True``: the session starts its
    channel on a dedicated thread (see ``UploadWriter.blocking``)."""

    blocking = True


class TimedJournal:
    """A list-like journal of ``(perf_counter, entry)`` pairs.

    ``append`` may be called from the upload's channel while the harness reads
    the journal after the upload ended; list appends are atomic in CPython.
    """

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[tuple[float, tuple]] = []

    def append(self, entry: tuple) -> None:
        self.entries.append((time.perf_counter(), entry))

    def first(self, entry: tuple) -> float | None:
        """When ``entry`` was first appended, or ``None``."""
        for moment, seen in self.entries:
            if seen == entry:
                return moment
        return None

    def closes(self) -> list[tuple[float, Any]]:
        """Every ``close`` as ``(moment, reason)``."""
        return [(moment, entry[1]) for moment, entry in self.entries if entry[0] == "close"]

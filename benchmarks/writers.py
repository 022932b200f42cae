"""Writers made for measuring (the journal of writer calls is ``writers.Journal``).

``NullWriter`` does nothing with the bytes, so what remains of a chunk's cost
is the runtime's.
``WaitingWriter`` blocks in every ``write_chunk`` (a writer streaming to a
slow peer) without telling the runtime; ``DeclaredWaitingWriter`` is the same
writer declaring ``blocking = True``, which gets its channel a thread of its own.
"""

from __future__ import annotations

import threading
from typing import Any

from writers import Chunk, CloseReason, CloseResult, InitResult, UploadWriter, WriteResult

__all__ = ["DeclaredWaitingWriter", "NullWriter", "WaitingWriter"]


class NullWriter(UploadWriter):
    """A writer that accepts every chunk and keeps nothing (state is ``None``)."""

    def init(self, opts: Any = None) -> InitResult:
        return ("ok", None)

    def meta(self, state: Any) -> dict:
        return {}

    def write_chunk(self, data: Chunk, state: Any) -> WriteResult:
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

    def write_chunk(self, data: Chunk, state: Any) -> WriteResult:
        threading.Event().wait(state)
        return ("ok", state)

    def close(self, state: Any, reason: CloseReason) -> CloseResult:
        return ("ok", state)


class DeclaredWaitingWriter(WaitingWriter):
    """``WaitingWriter`` declaring ``blocking = True``: the session starts its
    channel on a dedicated thread (see ``UploadWriter.blocking``)."""

    blocking = True

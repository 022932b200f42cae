"""A writer that keeps the upload in memory (tests, small payloads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .behaviour import Chunk, CloseReason, CloseResult, InitResult, UploadWriter, WriteResult

__all__ = ["MemoryState", "MemoryWriter"]


@dataclass
class MemoryState:
    """The bytes received so far and how many chunks carried them."""

    buffer: bytearray = field(default_factory=bytearray, repr=False)
    chunks: int = 0

    @property
    def size(self) -> int:
        return len(self.buffer)


#: The state a ``MemoryWriter`` subclass keeps: ``MemoryState`` or a subclass of it.
StateT = TypeVar("StateT", bound=MemoryState)


class MemoryWriter(UploadWriter, Generic[StateT]):
    """Collects chunks in a ``bytearray``; ``meta`` is ``{"data": bytes}``.

    No options. ``release`` drops the buffer.
    """

    loop_safe = True

    def init(self, opts: Any = None) -> InitResult:
        return ("ok", MemoryState())

    def meta(self, state: StateT) -> dict:
        return {"data": bytes(state.buffer)}

    def write_chunk(self, data: Chunk, state: StateT) -> WriteResult:
        state.buffer += data
        state.chunks += 1
        return ("ok", state)

    def close(self, state: StateT, reason: CloseReason) -> CloseResult:
        return ("ok", state)

    def release(self, state: StateT) -> None:
        state.buffer = bytearray()

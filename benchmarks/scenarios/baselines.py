"""What ours is measured against, run the same way in the same run.

* ``PeerChannel``: one plain ``pykka.ThreadingActor`` per upload doing the
  same chunk handling as ``UploadChannel`` (count, size check, write, close
  with ``"done"`` on the last byte), with none of our runtime: Pykka's own
  inbox, loop and registry, no links, monitors, exit signals or timers.

  The two sides do *not* use the same future. The peer's asks return a
  ``CallbackFuture``: Pykka's own ``ThreadingFuture`` (a ``threading.Condition``
  built per ask), plus the done-callback the client threads listen with, so
  the peer is stock Pykka as a user of it would run it. Ours return an
  ``actors.ProcessFuture`` (one pre-acquired lock per ask, callbacks built
  in). Created, given a callback, set and read on one thread, the peer's
  future costs about 5 µs and 1.3 KB more per ask (7.0 vs 1.5 µs, 1.5 KB vs
  0.2 KB, measured on the 2-core machine of the README's figures). So the
  ``ours/peer`` ratio is runtime against runtime *including* the future each
  ships with: the lighter future is part of ours' lead, and a peer given
  ``ProcessFuture`` would be about that much cheaper per chunk.
* ``DirectUpload``: the same writer calls made directly by the client thread.
* ``PlainFileUpload``: ``open(path, "wb")``, ``write`` per chunk, ``close`` after
  the last: plain Python file writes of the same bytes to as many files.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pykka

from writers import UploadWriter, settle

__all__ = ["CallbackFuture", "PeerChannel", "PeerFleet", "DirectUpload", "PlainFileUpload", "plain_files"]

OK = "ok"


class CallbackFuture(pykka.ThreadingFuture[Any]):
    """Pykka's ``ThreadingFuture`` plus ``add_done_callback``, which the client
    threads need to hear a reply the moment it is set (our ``ProcessFuture``
    has it built in)."""

    _callbacks: list[Callable[[CallbackFuture], None]] | None = None

    def add_done_callback(self, fn: Callable[[CallbackFuture], None]) -> None:
        with self._condition:
            if self._result is None:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        fn(self)

    def set(self, value: Any | None = None) -> None:
        super().set(value)
        self._run_callbacks()

    def set_exception(self, exc_info: Any = None) -> None:
        super().set_exception(exc_info)
        self._run_callbacks()

    def _run_callbacks(self) -> None:
        with self._condition:
            callbacks, self._callbacks = self._callbacks, None
        for fn in callbacks or ():
            fn(self)


class PeerChannel(pykka.ThreadingActor):
    """One upload on a plain Pykka actor (the peer of ``UploadChannel``)."""

    _create_future = staticmethod(CallbackFuture)

    def __init__(self, writer: UploadWriter, opts: Any, size: int) -> None:
        super().__init__()
        self.writer = writer
        self.opts = opts
        self.size = size
        self.state: Any = None
        self.uploaded = 0
        self.closed = False
        self.last_activity = time.monotonic()

    def on_start(self) -> None:
        result = self.writer.init(self.opts)
        if result[0] != "ok":
            raise RuntimeError(f"writer init failed: {result!r}")
        self.state = result[1]

    def on_receive(self, message: Any) -> Any:
        if type(message) is tuple and message[0] == "chunk":
            data = message[1]
            if self.closed:
                return ("error", {"reason": "file_size_limit_exceeded", "limit": self.size})
            self.last_activity = time.monotonic()
            if self.uploaded + len(data) > self.size:
                self.closed = True
                self.writer.close(self.state, "cancel")
                return ("error", {"reason": "file_size_limit_exceeded", "limit": self.size})
            result = settle(self.writer.write_chunk(data, self.state))
            if result[0] != "ok":
                self.state = result[2]
                self.closed = True
                self.writer.close(self.state, ("error", result[1]))
                return ("error", {"reason": "writer_error"})
            self.state = result[1]
            self.uploaded += len(data)
            if self.uploaded == self.size:
                self.closed = True
                self.writer.close(self.state, "done")
            return OK
        raise ValueError(f"unexpected message {message!r}")

    def on_stop(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close(self.state, "cancel")
        self.writer.release(self.state)


class PeerFleet:
    """``PeerChannel`` actors, started and stopped (with their writers released) together."""

    def __init__(self, writer: type[UploadWriter] | UploadWriter, opts: Any, *, size: int) -> None:
        self.writer = writer
        self.opts = opts
        self.size = size
        self.refs: list[pykka.ActorRef[Any]] = []

    def start(self, count: int) -> list[pykka.ActorRef[Any]]:
        started = []
        for _ in range(count):
            writer = self.writer() if isinstance(self.writer, type) else self.writer
            ref = PeerChannel.start(writer, self.opts, self.size)
            self.refs.append(ref)
            started.append(ref)
        return started

    def close(self) -> None:
        """Stop every actor (each closes and releases its writer) and wait for all."""
        stops = [ref.stop(block=False) for ref in self.refs]
        for stopped in stops:
            stopped.get()
        self.refs.clear()

    def __enter__(self) -> PeerFleet:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


class DirectUpload:
    """An upload whose writer is called by the client itself, no actor between."""

    __slots__ = ("closed", "size", "state", "uploaded", "writer")

    def __init__(self, writer: UploadWriter, opts: Any, size: int) -> None:
        self.writer = writer
        result = writer.init(opts)
        if result[0] != "ok":
            raise RuntimeError(f"writer init failed: {result!r}")
        self.state = result[1]
        self.size = size
        self.uploaded = 0
        self.closed = False

    def __call__(self, data: bytes) -> Any:
        result = settle(self.writer.write_chunk(data, self.state))
        if result[0] != "ok":
            return ("error", result[1])
        self.state = result[1]
        self.uploaded += len(data)
        if self.uploaded == self.size:
            self.closed = True
            self.writer.close(self.state, "done")
        return OK

    def finish(self) -> None:
        """Close (if not done) and release the writer."""
        if not self.closed:
            self.closed = True
            self.writer.close(self.state, "cancel")
        self.writer.release(self.state)


class PlainFileUpload:
    """Plain Python file writes: the disk's limit for ``TmpFileWriter``."""

    __slots__ = ("file", "path", "size", "written")

    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.file = open(path, "wb")  # noqa: SIM115 - closed by the last chunk or finish()
        self.size = size
        self.written = 0

    def __call__(self, data: bytes) -> Any:
        self.file.write(data)
        self.written += len(data)
        if self.written == self.size:
            self.file.close()
        return OK

    def finish(self) -> None:
        """Close the file if still open and delete it."""
        self.file.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def plain_files(directory: str, count: int, size: int) -> list[PlainFileUpload]:
    """``count`` plain-file uploads of ``size`` bytes in ``directory``."""
    return [PlainFileUpload(os.path.join(directory, f"plain-{k}.upload"), size) for k in range(count)]

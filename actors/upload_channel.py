"""``UploadChannel``: the process that owns one upload entry's writer.

The Python counterpart of Phoenix LiveView's ``UploadChannel``: one process per
entry, started by its session under the session's dynamic supervisor when the
client joins ``lvu:<entry ref>``. It initialises the writer, takes chunks one
at a time (the client waits for each reply), closes the writer exactly once on
every path, and stops. Every way an upload ends is a named method below; each
stops the process with a clean ``("shutdown", why)`` reason that tells the
session what happened, except a crash, whose reason is the exception.

Messages: ``("chunk", data)`` -> ``"ok"`` | ``("error", {"reason": ...})``;
``"cancel"`` -> ``"ok"`` | ``("error", reason)``; ``"init_writer"`` (sent by the
session at join); ``"consume_start"`` -> ``("ok", meta)`` | ``("error",
"in_progress")``; ``"consume_done"``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from pykka import ActorDeadError

from actors.process import Process, ProcessRef
from actors.reasons import KILLED, Down, Exit, ExitReason, is_clean_exit
from actors.timers import Timer, cancel_timer
from writers import CloseReason, UploadWriter

__all__ = ["UploadChannel"]

log = structlog.get_logger("liveupload.uploads")

OK = "ok"


class UploadChannel(Process):
    """One upload entry: its writer, its state, its chunk timer, its end.

    ``outcome`` is a dict the channel fills as it ends (``close_reason``), so its
    supervisor's report can say how the writer was closed after a crash.
    """

    trap_exit = True  # an exit signal (its supervisor's shutdown) still closes the writer

    def __init__(
        self,
        *,
        owner: ProcessRef,
        entry_ref: str,
        size: int,
        writer: UploadWriter,
        writer_opts: Any,
        chunk_timeout: float,
        outcome: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.outcome = outcome if outcome is not None else {}
        self.owner = owner
        self.entry_ref = entry_ref
        self.size = size
        self.writer = writer
        self.writer_opts = writer_opts
        self.chunk_timeout = chunk_timeout
        self.writer_state: Any = None
        self.initialised = False
        self.writer_closed = False
        self.close_reason: CloseReason | None = None
        self.uploaded = 0
        self.done = False
        self._last_activity = time.monotonic()
        self._chunk_timer: Timer | None = None
        self.released = False
        self._release_lock = threading.Lock()
        self._in_callback = False  # a handler (and so a writer callback) is running
        self._release_pending = False  # a kill asked for the release meanwhile

    # -- life ----------------------------------------------------------------

    def on_start(self) -> None:
        self.monitor(self.owner)

    def on_receive(self, message: Any) -> Any:
        with self.using_writer():
            return self.dispatch(message)

    @contextmanager
    def using_writer(self) -> Iterator[None]:
        """Mark a stretch that may call the writer, so a kill in the middle
        releases it only once the stretch is over (never under its feet)."""
        with self._release_lock:
            self._in_callback = True
        try:
            yield
        finally:
            with self._release_lock:
                self._in_callback = False
                # Killed meanwhile: the kill asked for the release, or came before
                # writer.init returned (nothing to release then), so do it now.
                pending = self._release_pending or self.actor_ref.exit_reason == KILLED
            if pending:
                self.release_writer()

    def dispatch(self, message: Any) -> Any:
        """Route one message to the step of the upload's life it belongs to."""
        if type(message) is tuple and message[0] == "chunk":
            return self.handle_chunk(message[1])
        if message == "init_writer":
            return self.init_writer()
        if message == "cancel":
            return self.cancel()
        if message == "consume_start":
            return ("ok", self.writer.meta(self.writer_state)) if self.done else ("error", "in_progress")
        if message == "consume_done":
            return self.stop_as(("shutdown", "consumed"))
        if message == "chunk_timeout":
            return self.check_chunk_timeout()
        if isinstance(message, Down) and message.target is self.owner:
            return self.owner_down(message.reason)
        if isinstance(message, Exit):
            return self.exit_signal(message.reason)
        raise ValueError(f"upload channel {self.entry_ref}: unexpected message {message!r}")

    def terminate(self, reason: ExitReason) -> None:
        """Whatever ended the process, the writer is closed once and released."""
        if self._chunk_timer is not None:
            cancel_timer(self._chunk_timer)
        if not self.initialised:
            return
        with self.using_writer():
            if not self.writer_closed:
                self.close_writer("cancel")
        self.release_writer()

    # -- join ------------------------------------------------------------------

    def init_writer(self) -> Any:
        """Run ``writer.init`` in this process; an error tuple ends the channel."""
        result = self.writer.init(self.writer_opts)
        if result[0] == "ok":
            self.writer_state = result[1]
            self.initialised = True
            self.arm_chunk_timer()
            return OK
        reason = result[1]
        self.stop_as(("shutdown", ("writer_error", reason)))
        return ("error", reason)

    # -- chunks -----------------------------------------------------------------

    def handle_chunk(self, data: bytes) -> Any:
        """Write one chunk; the last expected byte closes the writer with ``"done"``."""
        if not self.initialised:
            return self.reject_chunk_before_init()
        self._last_activity = time.monotonic()
        if self.uploaded + len(data) > self.size or self.writer_closed:
            return self.file_size_limit_exceeded()
        result = self.writer.write_chunk(data, self.writer_state)
        if result[0] != "ok":
            self.writer_state = result[2]
            return self.write_failed(result[1])
        self.writer_state = result[1]
        self.uploaded += len(data)
        if self.uploaded == self.size:
            return self.upload_done()
        return OK

    def upload_done(self) -> Any:
        """Every declared byte arrived: close with ``"done"`` and await consumption."""
        closed = self.close_writer("done")
        if closed[0] != "ok":
            return self.write_failed(closed[1], already_closed=True)
        self.done = True
        if self._chunk_timer is not None:
            cancel_timer(self._chunk_timer)
            self._chunk_timer = None
        try:
            self.owner.tell(("upload_done", self.entry_ref))
        except ActorDeadError:
            pass  # the session is gone: its Down, on our monitor, ends us with owner_down
        return OK

    def file_size_limit_exceeded(self) -> Any:
        """More bytes than the entry declared: refuse, cancel the writer (unless
        every byte had arrived and it closed with ``"done"``), stop. As in
        Phoenix, an upload that got a chunk too many is lost, not consumed."""
        if not self.writer_closed:
            self.close_writer("cancel")
        self.stop_as(("shutdown", "file_size_limit_exceeded"))
        return ("error", {"reason": "file_size_limit_exceeded", "limit": self.size})

    def write_failed(self, reason: Any, *, already_closed: bool = False) -> Any:
        """``write_chunk`` (or ``close("done")``) returned an error: close with
        ``("error", reason)`` unless closed already, tell the session, stop."""
        if not already_closed:
            self.close_writer(("error", reason))
        self.stop_as(("shutdown", ("writer_error", reason)))
        return ("error", {"reason": "writer_error"})

    def reject_chunk_before_init(self) -> Any:
        """A chunk before the writer exists (the join's init has not run): refuse it."""
        return ("error", {"reason": "file_size_limit_exceeded", "limit": self.size})

    # -- other ends -----------------------------------------------------------------

    def cancel(self) -> Any:
        """The client or the session cancelled: close with ``"cancel"`` and stop."""
        closed = ("ok", None)
        if self.initialised and not self.writer_closed:
            closed = self.close_writer("cancel")
        self.stop_as(("shutdown", "cancelled"))
        return OK if closed[0] == "ok" else ("error", closed[1])

    def owner_down(self, reason: ExitReason) -> None:
        """The session is gone: nobody will consume this upload."""
        self.stop_as(("shutdown", ("owner_down", reason if is_clean_exit(reason) else repr(reason))))

    def exit_signal(self, reason: ExitReason) -> None:
        """An exit signal from a link (its supervisor shutting it down): exit with it."""
        if reason != "normal":
            self.stop_as(reason)

    def check_chunk_timeout(self) -> None:
        """No chunk within ``chunk_timeout``: stop and cancel the writer.

        One timer serves the whole upload: when it fires early because chunks
        kept coming, it is set again for the time that remains.
        """
        self._chunk_timer = None
        if self.done or self.writer_closed:
            return
        idle = time.monotonic() - self._last_activity
        if idle < self.chunk_timeout:
            self._chunk_timer = self.send_after("chunk_timeout", self.chunk_timeout - idle)
            return
        log.info("upload_chunk_timeout", entry=self.entry_ref, uploaded=self.uploaded, size=self.size)
        self.stop_as(("shutdown", "timeout"))

    # -- helpers ---------------------------------------------------------------------

    def arm_chunk_timer(self) -> None:
        self._last_activity = time.monotonic()
        self._chunk_timer = self.send_after("chunk_timeout", self.chunk_timeout)

    def close_writer(self, reason: CloseReason) -> Any:
        """Close the writer, never twice; returns ``close``'s result."""
        self.writer_closed = True
        self.close_reason = reason
        self.outcome["close_reason"] = reason
        return self.writer.close(self.writer_state, reason)

    def release_writer(self) -> None:
        """Let the writer free what it kept (its temp file), once.

        Called by ``terminate``, or after a kill (which runs no ``terminate``)
        by ``on_kill``, as Phoenix deletes a temp file when its
        owner process dies, however it dies.
        """
        with self._release_lock:
            if not self.initialised or self.released:
                return
            self.released = True
        self.writer.release(self.writer_state)

    def on_kill(self) -> None:
        """From the killer's thread: release at once, or, if a handler is still
        running with the writer, as soon as it returns (never under its feet)."""
        with self._release_lock:
            if self._in_callback:
                self._release_pending = True
                return
        self.release_writer()

    def stop_as(self, reason: ExitReason) -> None:
        self.exit(reason)

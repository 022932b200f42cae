"""``UploadChannel``: the whole life of one upload entry, as Phoenix's ``upload_channel.ex``.

One process per entry, started by its session (its *owner*) under the
session's dynamic supervisor when the client joins ``lvu:<entry ref>``. It
runs the writer (``init``, one ``write_chunk`` per chunk, ``close`` exactly
once on every path, ``release`` once), and stops.

What it is asked, and answers:

- ``"join"``: ``writer.init`` -> ``"ok"`` | ``("error", reason)``
- ``("chunk", data)`` -> ``"ok"`` | ``("error", {"reason": ..., ...})``
- ``"cancel"`` -> ``"ok"`` | ``("error", close_error)``
- ``"consume_start"`` -> ``("ok", meta)`` | ``("error", "in_progress")``
- ``"consume_done"`` -> ``"ok"``

What it tells its owner, which must know (before the channel exits, if it does):

- ``("upload_done", ref, meta)``: every byte arrived and the writer closed
  ``"done"``; ``meta`` is the writer's ``meta`` then, which no longer changes,
  so the owner consumes without asking (``"consume_start"`` answers the same)
- ``("writer_error", ref, reason)``: ``init``, ``write_chunk`` or ``close("done")`` failed
- ``("upload_error", ref, "file_size_limit_exceeded" | "chunk_too_large" | "timeout")``
- ``("cancelled", ref)``: cancelled, or shut down, before it was consumed

Every exit is one ``stop_*`` function below, with a clean ``("shutdown", why)``
reason (or the reason of the exit signal it obeys); anything else is a crash,
which the owner sees in its ``Down``.

**Deferred replies.** A writer's ``write_chunk`` or ``close("done")`` may
return ``writers.Pending`` (an I/O pool's future and what to do once it is
done): the channel then takes over the chunk's reply (``defer_reply``), goes
on handling its mail without holding a thread, and when the future is done
(``("writer_ready", serial)``, told by the future's callback) runs the
writer's ``resume()`` and answers the chunk with what the synchronous path
would have answered. Meanwhile a pipelined chunk waits in ``queued_chunks``,
the chunk timeout does not run against the client, and every exit path works
as before (a pending write is followed by ``close("cancel")``; a pending close
by ``release``); an answer that never came is ``ActorDeadError`` to its asker.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import structlog
from pykka import ActorDeadError

from actors.process import DeferredReply, Process, ProcessRef
from actors.reasons import KILLED, Down, Exit, ExitReason, is_clean_exit
from actors.timers import Timer, cancel_timer
from writers import Chunk, CloseReason, Pending, UploadWriter

__all__ = ["DEFERRED", "ChunkReply", "OwnerNews", "Reply", "UploadChannel"]

log = structlog.get_logger("liveupload.uploads")

OK: Literal["ok"] = "ok"

Reply = Literal["ok"] | tuple[Literal["error"], Any]
"""``"ok"`` or ``("error", reason)``: what ``join``, ``cancel`` and a close answer."""

ChunkReply = Literal["ok"] | tuple[Literal["error"], dict[str, Any]]
"""A chunk's reply, sent as is to the client: ``{"reason": ...}`` on error."""

UploadError = Literal["file_size_limit_exceeded", "chunk_too_large", "timeout"]

OwnerNews = (
    tuple[Literal["upload_done"], str, dict]
    | tuple[Literal["writer_error"], str, Any]
    | tuple[Literal["upload_error"], str, UploadError]
    | tuple[Literal["cancelled"], str]
)
"""What a channel tells its owner."""


class _Deferred:
    def __repr__(self) -> str:
        return "DEFERRED"


DEFERRED: Final = _Deferred()
"""What a chunk's handler returns when the answer is sent later (deferred reply)."""

Answer = ChunkReply | _Deferred


@dataclass
class WriterWait:
    """A writer's ``Pending`` the channel waits for, and what it does with the result."""

    pending: Pending
    then: Callable[[Any], Answer]  # the writer's result -> the chunk's answer
    serial: int


CLIENT_LEFT: ExitReason = ("shutdown", "client_left")
"""The exit signal of a client leaving the topic: ends an unfinished upload
(its writer closed ``"cancel"``); a finished one stays for its owner."""


class UploadChannel(Process):
    """One upload entry: its writer, its progress, its chunk timer, its end."""

    trap_exit = True  # an exit signal (its supervisor's shutdown, the client leaving) still closes the writer

    def __init__(
        self,
        *,
        owner: ProcessRef,
        entry_ref: str,
        size: int,
        writer: UploadWriter,
        writer_opts: Any,
        chunk_timeout: float,
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        self.owner = owner
        self.entry_ref = entry_ref
        self.size = size
        self.writer = writer
        self.writer_opts = writer_opts
        self.chunk_timeout = chunk_timeout
        self.chunk_size = chunk_size  # None: no bound but the socket's
        self.writer_state: Any = None
        self.joined = False  # writer.init succeeded
        self.writer_closed = False
        self.uploaded = 0
        self.done = False
        self._last_activity = time.monotonic()
        self._chunk_timer: Timer | None = None
        # A kill runs on the killer's thread while a handler may still be using
        # the writer: the release waits for it (see ``on_kill``).
        self._writer_lock = threading.Lock()
        self._busy = False
        self._released = False
        # Deferred replies (see the module's docstring).
        self.waiting: WriterWait | None = None
        self.chunk_reply: DeferredReply | None = None  # the chunk answered once the writer is done
        self.queued_chunks: deque[tuple[Chunk, DeferredReply]] = deque()
        self._wait_serials = 0

    # -- dispatch: one handler per message --------------------------------------

    def on_start(self) -> None:
        self.monitor(self.owner)

    def on_receive(self, message: Any) -> Any:
        if not self._enter():
            return None  # killed before this handler began: it acts on nothing
        try:
            match message:
                case "join":
                    return self.handle_join()
                case ("chunk", data):
                    return self.handle_chunk(data)
                case "cancel":
                    return self.handle_cancel()
                case "consume_start":
                    return self.handle_consume_start()
                case "consume_done":
                    return self.handle_consume_done()
                case "chunk_timeout":
                    return self.handle_chunk_timeout()
                case ("writer_ready", serial):
                    return self.handle_writer_ready(serial)
                case Down(target=target) if target is self.owner:
                    return self.stop_owner_down()
                case Exit(reason=reason):
                    return self.handle_exit_signal(reason)
            raise ValueError(f"upload channel {self.entry_ref}: unexpected message {message!r}")
        finally:
            self._leave()

    def handle_join(self) -> Reply:
        """``writer.init`` runs here, in the channel; an error ends the channel."""
        match self.writer.init(self.writer_opts):
            case ("ok", state):
                self.writer_state = state
                self.joined = True
                self.arm_chunk_timer()
                return OK
            case ("error", reason):
                self.stop_writer_error(reason)
                return ("error", reason)
        raise ValueError(f"upload channel {self.entry_ref}: writer.init returned neither ok nor error")

    def handle_chunk(self, data: Chunk) -> Answer:
        """Write one chunk, or, while the writer is pending, queue it (its reply deferred)."""
        if self.waiting is not None:
            self.queued_chunks.append((data, self.defer_reply()))
            return DEFERRED
        return self.take_chunk(data)

    def take_chunk(self, data: Chunk) -> Answer:
        """Write one chunk; the last expected byte closes the writer ``"done"``.

        A chunk over ``chunk_size`` (LiveView's client never sends one) ends
        the upload. An empty chunk is not progress: it does not put off the
        chunk timeout (only an empty file's one chunk completes something).
        """
        if not self.joined:
            return self.file_size_limit_error()  # no writer yet: refused, nothing to stop
        if self.chunk_size is not None and len(data) > self.chunk_size:
            return self.stop_chunk_too_large(len(data))
        if data:
            self._last_activity = time.monotonic()
        if self.done or self.uploaded + len(data) > self.size:
            return self.stop_file_size_limit_exceeded()
        result = self.writer.write_chunk(data, self.writer_state)
        if isinstance(result, Pending):  # the callback made only for a writer that waits
            self.wait_for_writer(result, functools.partial(self.chunk_written, size=len(data)))
            return DEFERRED
        return self.chunk_written(result, len(data))

    def chunk_written(self, result: Any, size: int) -> Answer:
        """What ``write_chunk`` returned (at once, or from a pending's ``resume``)."""
        match result:
            case ("ok", state):
                self.writer_state = state
            case ("error", reason, state):
                self.writer_state = state
                self.close_writer(("error", reason))
                return self.stop_writer_error(reason)
        self.uploaded += size
        if self.uploaded == self.size:
            return self.upload_done()
        return OK

    def upload_done(self) -> Answer:
        """Every declared byte arrived: close ``"done"`` (maybe pending), then ``closed_done``."""
        self.writer_closed = True
        return self.after_writer(self.writer.close(self.writer_state, "done"), self.closed_done)

    def closed_done(self, result: Any) -> ChunkReply:
        """The writer closed ``"done"``: tell the owner, await consumption (or fail)."""
        match self.close_reply(result):
            case ("error", reason):
                return self.stop_writer_error(reason)
        meta = self.writer.meta(self.writer_state)  # final: raising, it crashes the channel as any writer call
        self.done = True
        self.disarm_chunk_timer()
        self.tell_owner(("upload_done", self.entry_ref, meta))
        return OK

    def handle_cancel(self) -> Reply:
        """The client or the session cancelled: close ``"cancel"`` and stop."""
        closed: Reply = OK
        if self.joined and not self.writer_closed:
            closed = self.close_writer("cancel")
        self.stop_cancelled(("shutdown", "cancelled"))
        return closed

    def handle_consume_start(self) -> tuple[Literal["ok"], dict] | tuple[Literal["error"], Literal["in_progress"]]:
        if not self.done:
            return ("error", "in_progress")
        return ("ok", self.writer.meta(self.writer_state))

    def handle_consume_done(self) -> Literal["ok"]:
        """Its owner consumed it (told, not asked: the owner does not wait)."""
        self.stop_consumed()
        return OK

    def handle_chunk_timeout(self) -> None:
        """No chunk within ``chunk_timeout``: stop (``terminate`` cancels the writer).

        One timer serves the whole upload: when it fires early because chunks
        kept coming, it is set again for the time that remains.
        """
        self._chunk_timer = None
        if self.waiting is not None:  # the client waits for our answer: it is not idle
            self._chunk_timer = self.send_after("chunk_timeout", self.chunk_timeout)
            return
        if self.done or self.writer_closed:
            return
        idle = time.monotonic() - self._last_activity
        if idle < self.chunk_timeout:
            self._chunk_timer = self.send_after("chunk_timeout", self.chunk_timeout - idle)
            return
        log.info("upload_chunk_timeout", entry=self.entry_ref, uploaded=self.uploaded, size=self.size)
        self.stop_timeout()

    def handle_writer_ready(self, serial: int) -> None:
        """The writer's pending future is done: ``resume()`` here, then answer the chunk."""
        wait = self.waiting
        if wait is None or wait.serial != serial:
            return  # no longer waited for: the writer was closed meanwhile
        self.waiting = None
        answer = self.after_writer(wait.pending.resume(), wait.then)
        if answer is not DEFERRED:
            self.answer_chunk(answer)

    def handle_exit_signal(self, reason: ExitReason) -> None:
        """An exit signal (trapped): obey it, except a client leaving a finished upload."""
        match reason:
            case "normal":
                return
            case ("shutdown", "client_left") if self.done:
                return  # finished: its owner consumes or cancels it
            case ("shutdown", "client_left"):
                log.info("upload_client_left", entry=self.entry_ref, uploaded=self.uploaded, size=self.size)
                self.stop_cancelled(reason)
            case _ if is_clean_exit(reason):
                self.stop_cancelled(reason)
            case _:
                self.stop_on_crash_signal(reason)

    def terminate(self, reason: ExitReason) -> None:
        """Whatever ended the process but a kill: the writer is closed once and released."""
        self.disarm_chunk_timer()
        if not self._enter():
            return  # killed meanwhile: the kill releases the writer
        try:
            if self.joined and not self.writer_closed:
                self.close_writer("cancel")
        finally:
            self._leave()
        self.release_writer()

    def on_kill(self) -> None:
        """From the killer's thread: release now, or, if a handler is using the
        writer, when it returns (``_leave``), never under its feet."""
        with self._writer_lock:
            if self._busy:
                return
        self.release_writer()

    # -- the exits --------------------------------------------------------------

    def stop_writer_error(self, reason: Any) -> tuple[Literal["error"], dict[str, str]]:
        """``init``, ``write_chunk`` or ``close("done")`` failed: the entry fails
        with ``("writer_failure", reason)``; the writer, if opened, is closed already."""
        self.tell_owner(("writer_error", self.entry_ref, reason))
        self.exit(("shutdown", "writer_error"))
        return ("error", {"reason": "writer_error"})

    def stop_file_size_limit_exceeded(self) -> ChunkReply:
        """More bytes than declared: refuse, cancel the writer (unless it closed
        ``"done"`` already), stop. As in Phoenix, such an upload is lost."""
        if not self.writer_closed:
            self.close_writer("cancel")
        self.tell_owner(("upload_error", self.entry_ref, "file_size_limit_exceeded"))
        self.exit(("shutdown", "file_size_limit_exceeded"))
        return self.file_size_limit_error()

    def stop_chunk_too_large(self, size: int) -> ChunkReply:
        """A chunk over ``chunk_size``: refuse it, cancel the writer (unless it
        closed ``"done"`` already), stop; the upload is lost."""
        log.warning("upload_chunk_too_large", entry=self.entry_ref, size=size, limit=self.chunk_size)
        if self.joined and not self.writer_closed:
            self.close_writer("cancel")
        self.tell_owner(("upload_error", self.entry_ref, "chunk_too_large"))
        self.exit(("shutdown", "chunk_too_large"))
        return ("error", {"reason": "chunk_too_large", "limit": self.chunk_size})

    def stop_timeout(self) -> None:
        self.tell_owner(("upload_error", self.entry_ref, "timeout"))
        self.exit(("shutdown", "timeout"))

    def stop_cancelled(self, reason: ExitReason) -> None:
        """Cancelled, or shut down by a clean exit signal, before consumption."""
        self.tell_owner(("cancelled", self.entry_ref))
        self.exit(reason)

    def stop_consumed(self) -> None:
        """Its owner consumed it (and so knows): ``terminate`` releases the writer."""
        self.exit(("shutdown", "consumed"))

    def stop_owner_down(self) -> None:
        """The owner is gone: nobody will consume this upload."""
        self.exit(("shutdown", "owner_down"))

    def stop_on_crash_signal(self, reason: ExitReason) -> None:
        """A linked process crashed: crash with it (the owner sees the ``Down``)."""
        self.exit(reason)

    # -- deferred replies --------------------------------------------------------------

    def after_writer(self, result: Any, then: Callable[[Any], Answer]) -> Answer:
        """``then(result)``, or, if the writer is pending, wait for it and answer later."""
        if isinstance(result, Pending):
            self.wait_for_writer(result, then)
            return DEFERRED
        return then(result)

    def wait_for_writer(self, pending: Pending, then: Callable[[Any], Answer]) -> None:
        """Take over the chunk's reply and have the future's callback tell us when it is done."""
        if self.chunk_reply is None:
            self.chunk_reply = self.defer_reply()
        self._wait_serials += 1
        self.waiting = WriterWait(pending, then, self._wait_serials)
        pending.wait_for.add_done_callback(_tell_ready(self.actor_ref, self._wait_serials))

    def answer_chunk(self, answer: Answer) -> None:
        """Send the deferred chunk reply, then take the chunks queued meanwhile, in order."""
        while answer is not DEFERRED:
            reply, self.chunk_reply = self.chunk_reply, None
            self._last_activity = time.monotonic()  # the client's idle time starts with its answer
            if reply is not None:
                reply.send(answer)
            if not self.queued_chunks or self.exit_requested:
                return  # if exiting, the queued asks get ActorDeadError, as unhandled mail does
            data, self.chunk_reply = self.queued_chunks.popleft()
            answer = self.take_chunk(data)

    # -- helpers ---------------------------------------------------------------------

    def file_size_limit_error(self) -> tuple[Literal["error"], dict[str, Any]]:
        return ("error", {"reason": "file_size_limit_exceeded", "limit": self.size})

    def arm_chunk_timer(self) -> None:
        self._last_activity = time.monotonic()
        self._chunk_timer = self.send_after("chunk_timeout", self.chunk_timeout)

    def disarm_chunk_timer(self) -> None:
        if self._chunk_timer is not None:
            cancel_timer(self._chunk_timer)
            self._chunk_timer = None

    def close_writer(self, reason: CloseReason) -> Reply:
        """Close the writer with ``"cancel"`` or an error (callers make sure it is
        never twice); a pending write is abandoned: its ``resume`` never runs."""
        self.writer_closed = True
        self.waiting = None
        return self.close_reply(self.writer.close(self.writer_state, reason))

    def close_reply(self, result: Any) -> Reply:
        match result:
            case ("ok", _):
                return OK
            case ("error", error):
                return ("error", error)
        raise ValueError(f"upload channel {self.entry_ref}: writer.close returned neither ok nor error: {result!r}")

    def release_writer(self) -> None:
        """Let the writer free what it kept (its temp file), once: from
        ``terminate``, or after a kill, which runs no ``terminate``."""
        with self._writer_lock:
            if not self.joined or self._released:
                return
            self._released = True
        self.writer.release(self.writer_state)

    def tell_owner(self, news: OwnerNews) -> None:
        try:
            self.owner.tell(news)
        except ActorDeadError:
            pass  # the owner is gone: its Down, on our monitor, ends us with stop_owner_down

    def _enter(self) -> bool:
        """Start a stretch that may use the writer; False if killed already."""
        with self._writer_lock:
            if self.actor_ref.exit_reason == KILLED:
                return False
            self._busy = True
            return True

    def _leave(self) -> None:
        """End the stretch; a kill that came meanwhile left the release to us."""
        with self._writer_lock:
            self._busy = False
            killed = self.actor_ref.exit_reason == KILLED
        if killed:
            self.release_writer()


def _tell_ready(ref: ProcessRef, serial: int) -> Any:
    """The done-callback of a writer's pending future (run on the thread that
    completes it): tell the channel, if it is still there."""

    def ready(_done: Any) -> None:
        try:
            ref.tell(("writer_ready", serial))
        except ActorDeadError:
            pass  # the channel ended meanwhile: nobody waits for this any more

    return ready

"""The ``lvu:<entry ref>`` topic: a thin adapter from the wire to one ``UploadChannel``.

* ``phx_join`` with ``{"token"}`` -> the session's ``join(token)`` (the token
  names its session; the session must be a live page of this app). Errors are
  Phoenix's: ``invalid_token``, ``already_registered``, ``disallowed``,
  ``writer_error``.
* ``chunk`` (a binary push) -> asked of the channel, whose answer is the reply.
  The chunk is the ``memoryview`` of the frame the codec made (never copied
  on the way to the writer).
  Chunks of one topic are answered one at a time in order (the socket's
  reader handles a chunk itself when nothing else of its topic is pending),
  so at most one chunk per upload is in flight.
* The channel's exit is the topic's end (:meth:`UploadTopicHandler._upload_ended`,
  the one place that maps it): clean -> ``phx_close``; a crash -> ``phx_error``.
* The topic ending first (``phx_leave``, a vanished socket, shutdown) -> the
  exit signal ``CLIENT_LEFT``: an unfinished upload stops and its writer is
  closed ``"cancel"``; a finished one stays for its session.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from pykka import ActorDeadError

import actors
from actors import ProcessRef
from actors.bridge import exit_future
from uploads import CLIENT_LEFT, session_for_token

from .budgets import Slot
from .liveview import LiveContext
from .transport import Channel, Reply, TopicHandler

__all__ = ["UploadTopicHandler"]

log = structlog.get_logger("liveupload.server")

_INVALID_TOKEN = {"reason": "invalid_token"}


class UploadTopicHandler(TopicHandler):
    """One joined ``lvu:`` topic: the client's side of one entry's upload."""

    #: Chunks come stop-and-wait from the client: the socket's reader asks the
    #: channel itself, no hop through the topic's task (a writer that stalls
    #: gets the reading handed to a fresh reader, see ``transport.INLINE_GRACE``).
    inline_events = frozenset({"chunk"})

    def __init__(self, channel: Channel, context: LiveContext) -> None:
        super().__init__(channel)
        self.context = context
        self.upload: ProcessRef | None = None
        self._leaving = False
        self._chunks = 0
        self._bytes = 0
        self._slot = Slot(context.budgets, channel.connection, page=False)
        self._log = log.bind(topic=channel.topic, join_ref=channel.join_ref)

    async def join(self, payload: dict) -> Reply:
        """Within the socket's topic budget (else ``too_many_topics``), join the upload."""
        return await self._slot.join_within(lambda: self._join(payload), self._log, "lvu.budget_exceeded")

    async def _join(self, payload: dict) -> Reply:
        session = session_for_token(payload.get("token"))
        live = self.context.sessions.get(session) if session is not None else None
        if session is None or live is None:
            return self._refused("invalid_token", why="no live page of this app issued it")
        try:
            result = await live.join_upload(payload.get("token"))
        except ActorDeadError:
            return self._refused("invalid_token", why="its page has ended")
        if not isinstance(result, ProcessRef):
            return self._refused(result[1].get("reason"), reply=result[1])
        if self.context.sessions.get(session) is not live:  # the page ended while we joined: so does its upload
            actors.exit(result, CLIENT_LEFT)
            return self._refused("invalid_token", why="its page has ended")
        self.upload = result
        exit_future(result).add_done_callback(self._upload_ended)
        self._log.info("lvu.joined", upload=str(result))
        return "ok", {}

    async def handle_in(self, event: str, payload: Any, ref: str | None) -> Reply | None:
        if event != "chunk":
            self._log.warning("lvu.unknown_event", event_name=event)
            return "error", {"reason": "unknown event"}
        if not isinstance(payload, (bytes, memoryview)):
            self._log.warning("lvu.bad_chunk", why="chunks must be binary pushes")
            return "error", {"reason": "invalid chunk"}
        assert self.upload is not None
        try:
            answer = await actors.ask_async(self.upload, ("chunk", payload))
        except Exception as exc:  # noqa: BLE001 - it ended meanwhile, or its writer raised and it crashed
            # Like a dead Phoenix channel it answers nothing: its exit closes the topic.
            self._log.info("lvu.chunk_unanswered", size=len(payload), error=repr(exc), chunks=self._chunks)
            return None
        if answer == "ok":
            self._chunks += 1
            self._bytes += len(payload)
            return "ok", {}
        error = answer[1]
        self._log.warning("lvu.chunk_refused", received=self._bytes, size=len(payload), **_fields(error))
        return "error", error

    def _upload_ended(self, future: asyncio.Future) -> None:
        """The channel exited: end the topic the way Phoenix would."""
        if future.cancelled() or self._leaving:
            return
        reason = future.result()
        if actors.is_clean_exit(reason) or reason == actors.NOPROC:
            self._log.info("lvu.upload_ended", reason=repr(reason))
            self.channel.close()
        else:
            self._log.error("lvu.upload_crashed", reason=repr(reason))
            self.channel.crash()

    async def leave(self, reason: str) -> None:
        self._slot.give_back()
        self._leaving = True
        if self.upload is not None:
            actors.exit(self.upload, CLIENT_LEFT)
        self._log.info("lvu.left", reason=reason, chunks=self._chunks, bytes=self._bytes)

    def _refused(self, reason: Any, *, why: str | None = None, reply: dict | None = None) -> Reply:
        self._log.warning("lvu.join_refused", reason=reason, **({"why": why} if why else {}))
        return "error", dict(reply if reply is not None else _INVALID_TOKEN)


def _fields(error: Any) -> dict[str, Any]:
    if isinstance(error, dict):
        return {k: v for k, v in error.items() if k in ("reason", "limit")}
    return {"reason": repr(error)}

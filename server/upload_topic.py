"""The ``lvu:<entry ref>`` topic: one upload entry's channel, backed by its
``UploadChannel`` actor.

* ``phx_join`` with ``{"token"}``: the token names its session
  (``session_for_token``); the session must be a live page of this app, and
  its ``join(token)`` verifies the signature and age and starts the channel
  actor. Errors are Phoenix's: ``invalid_token``, ``already_registered``,
  ``disallowed``, ``writer_error``.
* ``chunk`` (a binary push): handed to the actor, whose answer is the reply
  (``{}``, or ``file_size_limit_exceeded`` with ``limit``, or
  ``writer_error``). The topic's worker awaits each reply before it reads the
  topic's next message, so at most one chunk per upload is ever in flight.
* The actor's end is the topic's end: a clean exit (consumed, cancelled,
  refused chunk, chunk timeout) sends ``phx_close``; a crash ``phx_error``.
* The topic ending first (``phx_leave``, a vanished socket, shutdown) cancels
  an unfinished upload: its writer is closed with ``"cancel"``. A finished
  one is left to its session, which consumes it or cancels it when it ends.
  The page's ``lv:`` session is never touched.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from pykka import ActorDeadError

import actors
from actors import ProcessRef
from actors.upload_session import session_for_token

from .liveview import LiveContext
from .transport import Channel, Reply, TopicHandler

__all__ = ["UploadTopicHandler"]

log = structlog.get_logger("liveupload.server")

_INVALID_TOKEN = {"reason": "invalid_token"}


class UploadTopicHandler(TopicHandler):
    """One joined ``lvu:`` topic: the client's side of one entry's upload."""

    def __init__(self, channel: Channel, context: LiveContext) -> None:
        super().__init__(channel)
        self.context = context
        self.upload: ProcessRef | None = None
        self._leaving = False
        self._chunks = 0
        self._bytes = 0
        self._log = log.bind(topic=channel.topic, join_ref=channel.join_ref)

    async def join(self, payload: dict) -> Reply:
        token = payload.get("token")
        session = session_for_token(token)
        live = self.context.sessions.get(session) if session is not None else None
        if live is None:
            self._log.warning("lvu.join_refused", reason="invalid_token", why="no live page of this app issued it")
            return "error", dict(_INVALID_TOKEN)
        try:
            result = await live.join_upload(token)
        except ActorDeadError:
            self._log.warning("lvu.join_refused", reason="invalid_token", why="its page has ended")
            return "error", dict(_INVALID_TOKEN)
        if not isinstance(result, ProcessRef):
            reason = result[1] if isinstance(result, tuple) and len(result) == 2 else {"reason": "invalid_token"}
            self._log.warning("lvu.join_refused", reason=reason.get("reason"))
            return "error", dict(reason)
        assert live.watcher is not None
        try:
            ended = await live.watcher.watch(result)
        except ActorDeadError:  # the page ended while we joined: so does its upload
            self._log.warning("lvu.join_refused", reason="invalid_token", why="its page has ended")
            actors.exit(result, ("shutdown", "client_left"))
            return "error", dict(_INVALID_TOKEN)
        self.upload = result
        ended.add_done_callback(self._upload_ended)
        self._log.info("lvu.joined", upload=str(result))
        return "ok", {}

    async def handle_in(self, event: str, payload: Any, ref: str | None) -> Reply | None:
        if event != "chunk":
            self._log.warning("lvu.unknown_event", event_name=event)
            return "error", {"reason": "unknown event"}
        if not isinstance(payload, bytes):
            self._log.warning("lvu.bad_chunk", why="chunks must be binary pushes")
            return "error", {"reason": "invalid chunk"}
        assert self.upload is not None
        try:
            answer = await actors.ask_async(self.upload, ("chunk", payload))
        except ActorDeadError:
            # It ended meanwhile (cancelled, timed out); like a dead Phoenix
            # channel it answers nothing, and the client sees phx_close.
            self._log.info("lvu.chunk_after_end", size=len(payload))
            self.channel.close()
            return None
        except Exception as exc:  # noqa: BLE001 - its writer raised: the actor crashed
            self._log.error("lvu.upload_crashed", error=repr(exc), chunks=self._chunks)
            self.channel.crash()
            return None
        if answer == "ok":
            self._chunks += 1
            self._bytes += len(payload)
            return "ok", {}
        error = answer[1] if isinstance(answer, tuple) and len(answer) == 2 else {"reason": repr(answer)}
        self._log.warning("lvu.chunk_refused", received=self._bytes, size=len(payload), **_fields(error))
        return "error", error

    def _upload_ended(self, future: asyncio.Future) -> None:
        """The channel actor exited: end the topic the way Phoenix would."""
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
        self._leaving = True
        upload = self.upload
        if upload is not None and upload.is_alive():
            await self._cancel_unfinished(upload, reason)
        self._log.info("lvu.left", reason=reason, chunks=self._chunks, bytes=self._bytes)

    async def _cancel_unfinished(self, upload: ProcessRef, reason: str) -> None:
        """Cancel the upload unless every byte arrived (then its session owns it).

        Nothing else sends chunks to this actor, so whether it is finished
        cannot change while we ask.
        """
        timeout = self.context.stop_timeout
        try:
            state = await actors.ask_async(upload, "consume_start", timeout)
            if isinstance(state, tuple) and state[0] == "ok":
                return
            self._log.info("lvu.cancel_unfinished", reason=reason, received=self._bytes)
            await actors.ask_async(upload, "cancel", timeout)
        except ActorDeadError:
            pass
        except asyncio.TimeoutError:
            # Busy in its writer: an exit signal is handled after it, and the
            # actor then closes the writer with "cancel".
            self._log.error("lvu.cancel_timeout", seconds=timeout)
            actors.exit(upload, ("shutdown", "client_left"))


def _fields(error: Any) -> dict[str, Any]:
    if isinstance(error, dict):
        return {k: v for k, v in error.items() if k in ("reason", "limit")}
    return {"reason": repr(error)}

"""A Phoenix Channels client socket (serializer V2) on the ``websockets``
library: replies matched to pushes by ref, server pushes handed to per-topic
listeners, heartbeats in the background. Used by :mod:`client.live_page` and :mod:`client.upload`."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Union

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from server import protocol
from server.protocol import Message

__all__ = ["ChannelClosed", "HEARTBEAT_SECONDS", "ReplyCallback", "ServerError", "Socket"]

log = structlog.get_logger("liveupload.client")

#: Well inside the server's 60-second idle timeout.
HEARTBEAT_SECONDS = 30.0


ReplyCallback = Callable[[str, dict], None]
"""Called with ``(status, response)`` when a push made with :meth:`Socket.push` is answered."""

_Waiter = Union["asyncio.Future[tuple[str, dict]]", ReplyCallback]


class ServerError(Exception):
    """The server could not be used: page not found, join refused, socket closed."""


class ChannelClosed(ServerError):
    """The topic was closed (``phx_close``) or crashed (``phx_error``) by the server."""


class Socket:
    """One Phoenix Channels socket (serializer V2): replies matched by ref,
    server pushes handed to per-topic listeners, heartbeats in the background."""

    def __init__(self, ws: ClientConnection, timeout: float) -> None:
        self.ws = ws
        self.timeout = timeout
        self._refs = itertools.count(1)
        self._pending: dict[str, tuple[str, _Waiter]] = {}
        self.listeners: dict[str, Callable[[str, dict], None]] = {}
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._heartbeat())]
        self.closed: str | None = None

    @classmethod
    async def open(cls, url: str, timeout: float) -> Socket:
        ws = await connect(url, open_timeout=timeout, close_timeout=timeout, max_size=None, proxy=None)
        return cls(ws, timeout)

    def ref(self) -> str:
        return str(next(self._refs))

    async def call(
        self, topic: str, event: str, payload: dict | bytes, join_ref: str | None,
        ref: str | None = None, timeout: float | None = None,
    ) -> tuple[str, dict]:
        """Push and wait for the reply: ``(status, response)``."""
        if self.closed is not None:
            raise ServerError(f"socket closed: {self.closed}")
        ref = ref or self.ref()
        future = asyncio.get_running_loop().create_future()
        self._pending[ref] = (topic, future)
        try:
            await self._send(Message(join_ref, ref, topic, event, payload))
            return await asyncio.wait_for(future, timeout or self.timeout)
        except asyncio.TimeoutError:
            raise ServerError(f"no reply to {event} on {topic} within {timeout or self.timeout}s") from None
        except ConnectionClosed as exc:
            raise ServerError(f"socket closed: {exc}") from None
        finally:
            self._pending.pop(ref, None)

    async def _send(self, message: Message) -> None:
        """One frame: binary for a chunk, text for the rest."""
        if isinstance(message.payload, (bytes, bytearray)):
            await self.ws.send(protocol.encode_binary(message))
        else:
            await self.ws.send(protocol.encode_text(message))

    async def push(
        self, topic: str, event: str, payload: dict | bytes, join_ref: str | None,
        on_reply: ReplyCallback | None = None,
    ) -> None:
        """Push without waiting for the reply, as Phoenix's client pushes
        ``progress``: ``on_reply(status, response)`` runs when it comes (in
        order with every other reply on the socket); a push never answered is
        dropped when the socket closes."""
        if self.closed is not None:
            raise ServerError(f"socket closed: {self.closed}")
        ref = self.ref()
        self._pending[ref] = (topic, on_reply or _ignore)
        try:
            await self._send(Message(join_ref, ref, topic, event, payload))
        except ConnectionClosed as exc:
            self._pending.pop(ref, None)
            raise ServerError(f"socket closed: {exc}") from None

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                if isinstance(frame, bytes):
                    continue  # this server answers uploads in JSON
                try:
                    msg = protocol.decode_text(frame)
                except protocol.ProtocolError as exc:
                    log.warning("client.bad_frame", error=str(exc))
                    continue
                self._dispatch(msg)
        except ConnectionClosed as exc:
            self.closed = str(exc)
        finally:
            self.closed = self.closed or "closed"
            for _topic, waiter in self._pending.values():
                if isinstance(waiter, asyncio.Future) and not waiter.done():
                    waiter.set_exception(ServerError(f"socket closed: {self.closed}"))

    def _dispatch(self, msg: Message) -> None:
        assert isinstance(msg.payload, dict)
        if msg.event == "phx_reply" and msg.ref in self._pending:
            _topic, waiter = self._pending[msg.ref]
            reply: tuple[str, dict] = (str(msg.payload.get("status")), msg.payload.get("response") or {})
            if isinstance(waiter, asyncio.Future):
                if not waiter.done():
                    waiter.set_result(reply)
            else:
                del self._pending[msg.ref]
                try:
                    waiter(*reply)
                except Exception:  # a listener's bug must not stop the reader
                    log.exception("client.reply_callback_failed", topic=msg.topic, ref=msg.ref)
            return
        if msg.event in ("phx_close", "phx_error"):
            for ref, (topic, waiter) in list(self._pending.items()):
                if topic != msg.topic or ref == msg.ref:
                    continue
                if isinstance(waiter, asyncio.Future):
                    if not waiter.done():
                        waiter.set_exception(ChannelClosed(f"{msg.event}: {msg.payload.get('reason', 'closed')}"))
                else:
                    del self._pending[ref]
        listener = self.listeners.get(msg.topic)
        if listener is not None:
            listener(msg.event, msg.payload)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self.call("phoenix", "heartbeat", {}, None)
            except ServerError:
                return

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.ws.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _ignore(status: str, response: dict) -> None:
    """The reply callback of a push whose answer nobody reads."""

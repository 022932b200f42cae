"""The Phoenix Channels socket (``/live/websocket``) as an ASGI endpoint.

One :class:`Connection` per WebSocket.  It decodes frames (serializer V2),
answers heartbeats on topic ``phoenix``, keeps the table of joined topics
(one ``join_ref`` per topic) and routes ``phx_join`` / ``phx_leave`` / events
to one :class:`TopicHandler` per joined topic, made by the factory registered
for the topic's prefix in a :class:`TopicRegistry` (``lv:``, ``lvu:``).

Each joined topic gets its own worker task and bounded inbox, playing the
part of a Phoenix channel process: messages of one topic are handled in
order, a slow topic never holds up another one or the heartbeats, and a full
inbox stops the socket reader (real back-pressure).  Events a handler lists
in :attr:`TopicHandler.inline_events` (an upload's chunks) are handled by the
socket's reader itself when nothing of their topic is pending, saving the hop
to the worker; one that takes over :data:`INLINE_GRACE` hands the reading to
a fresh reader, so the guarantees above hold.  Bad input is answered
as Phoenix does and never ends the connection or another topic:

* unknown topic on join, or a push to a topic not joined (or with a stale
  ``join_ref``): error reply ``{"reason": "unmatched topic"}``;
* malformed JSON or binary frame: a structured log line, frame dropped;
* a frame over ``max_message_size``: logged, socket closed with 1009;
* a handler that raises: ``phx_error`` for that topic only;
* a duplicate join: the old channel gets ``phx_close`` and is left first.

A handler's ``leave(reason)`` runs exactly once for every successful join,
after its last ``handle_in`` returned, whatever ended it.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import protocol
from .protocol import Message, ProtocolError

__all__ = [
    "Reply",
    "TopicHandler",
    "HandlerFactory",
    "TopicRegistry",
    "Channel",
    "Connection",
    "Transport",
    "UNMATCHED_TOPIC",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_OUTBOUND_BYTES",
    "ForceClose",
    "max_message_size_for",
    "LEAVE_REASONS",
    "INLINE_GRACE",
]

log = structlog.get_logger("liveupload.server")

#: ``(status, response)``: status ``"ok"`` or ``"error"``; response a dict
#: (a JSON reply) or bytes (a binary reply, kind 1).
Reply = tuple[str, dict | bytes]

UNMATCHED_TOPIC = {"reason": "unmatched topic"}
#: Why a handler's ``leave`` was called.
LEAVE_REASONS = ("leave", "closed", "crash", "duplicate_join", "disconnect", "shutdown")

# Text frames (joins, form events listing many files) need some room beyond
# the binary push framing (5 + 4 * 255 bytes at most).
_TEXT_SLACK = 8_192


def max_message_size_for(chunk_size: int) -> int:
    """A socket message bound for uploads of ``chunk_size``-byte chunks:
    the chunk, the largest binary push framing, and room for text events."""
    return chunk_size + protocol.BINARY_PUSH_HEADER + 4 * protocol.MAX_FIELD_BYTES + _TEXT_SLACK


DEFAULT_MAX_MESSAGE_SIZE = max_message_size_for(64_000)

#: Bytes a socket may have queued for sending (handed to :meth:`Connection.send`
#: and not yet taken by the server) before it is closed with 1008.
DEFAULT_MAX_OUTBOUND_BYTES = 8 * 1024 * 1024
#: Seconds a polite close may wait for the peer before the socket is dropped.
CLOSE_SECONDS = 2.0
#: Seconds the socket's reader may spend on one event it handles itself
#: (:attr:`TopicHandler.inline_events`) before a fresh reader takes over the
#: socket, so a stalled writer never holds up the socket's other topics.
INLINE_GRACE = 0.05

#: ``force_close(scope) -> bool``: abort the socket of this ASGI scope at once
#: (the server's hook, e.g. :class:`server.graceful.GracefulServer`'s).
ForceClose = Callable[[Mapping[str, Any]], bool]


# ------------------------------------------------------------------ handlers


class TopicHandler(abc.ABC):
    """One joined topic of one socket: the role of a Phoenix channel process.

    Made by a :data:`HandlerFactory` with the topic's :class:`Channel` (kept
    as ``self.channel``), which is how the handler pushes, replies later and
    stops itself.  All three methods run in the topic's worker task (or, for
    :attr:`inline_events`, in a reader of the socket), never concurrently
    with each other and in the order of the messages; they must not block
    the event loop (await
    actors through the asyncio bridge instead).
    """

    #: Events the socket's reader may handle itself, without a hop to the
    #: topic's task, when nothing of this topic is waiting or being handled
    #: (order is kept either way). For quick events whose client waits for
    #: each reply, as an upload's chunks: a handling that outlasts
    #: :data:`INLINE_GRACE` hands the reading of the socket to a fresh reader.
    inline_events: frozenset[str] = frozenset()

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    @abc.abstractmethod
    async def join(self, payload: dict) -> Reply:
        """Answer ``phx_join``: ``("ok", response)`` joins the topic,
        ``("error", {"reason": ...})`` refuses it (``leave`` is then not called)."""

    @abc.abstractmethod
    async def handle_in(self, event: str, payload: dict | bytes | memoryview, ref: str | None) -> Reply | None:
        """Answer one pushed event (a binary push's payload is a ``memoryview``
        of its frame).  ``None`` sends no reply now: the handler
        may answer later with ``await self.channel.reply(ref, status, response)``.
        Raising crashes only this topic (``phx_error``, then ``leave("crash")``)."""

    async def leave(self, reason: str) -> None:  # noqa: B027 - optional hook
        """The topic ended; ``reason`` is one of :data:`LEAVE_REASONS`.  Called
        exactly once per successful join, after the last ``handle_in``."""


#: Makes the handler for a topic being joined; a TopicHandler subclass whose
#: ``__init__`` takes the channel is itself a factory.
HandlerFactory = Callable[["Channel"], TopicHandler]


class TopicRegistry:
    """Topic prefix -> handler factory; the longest matching prefix wins."""

    def __init__(self, handlers: Mapping[str, HandlerFactory] | None = None) -> None:
        self._factories: dict[str, HandlerFactory] = {}
        for prefix, factory in (handlers or {}).items():
            self.register(prefix, factory)

    def register(self, prefix: str, factory: HandlerFactory) -> None:
        """Route topics starting with ``prefix`` (e.g. ``"lvu:"``) to ``factory``."""
        if not prefix or prefix == "phoenix":
            raise ValueError(f"invalid topic prefix {prefix!r}")
        self._factories[prefix] = factory

    def unregister(self, prefix: str) -> None:
        self._factories.pop(prefix, None)

    def match(self, topic: str) -> HandlerFactory | None:
        best: str | None = None
        for prefix in self._factories:
            if topic.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        return self._factories[best] if best is not None else None

    def prefixes(self) -> list[str]:
        return sorted(self._factories)


# ------------------------------------------------------------------ channel


@dataclass
class _Reader:
    """One reader of the socket's frames (a task); :meth:`Connection._check_inline`
    starts the next one when this one stays too long in an event it handles."""

    inline_since: float | None = None  # loop time the event being handled arrived
    handed_off: bool = False  # a successor reads the socket now


@dataclass
class _Stop:
    reason: str
    notify: str | None  # "close" -> phx_close, "error" -> phx_error, None -> nothing
    error_reason: str = "channel_crash"


class Channel:
    """A handler's handle on its joined topic.

    ``push``/``reply`` are coroutines for the event loop; ``close``/``crash``
    request the topic's end (taking effect after the message being handled
    is answered, so a reply always precedes its ``phx_close``).
    :meth:`push_threadsafe` may be called from any thread (e.g. an actor)
    and returns a ``concurrent.futures.Future``.
    """

    def __init__(self, connection: Connection, topic: str, join_ref: str | None) -> None:
        self.connection = connection
        self.topic = topic
        self.join_ref = join_ref
        self.joined = False
        self.closed = False
        self._stop: _Stop | None = None
        self._state: _TopicState | None = None
        self._ok_reply: protocol.OkReply | None = None  # made on the first plain "ok" reply

    def reply_frame(self, ref: str | None, status: str, response: dict | bytes | bytearray | memoryview) -> str | bytes:
        """The frame answering push ``ref``; the common ``("ok", {})`` (every
        upload chunk's) is spliced from a reply encoded once per topic."""
        if status == "ok" and type(response) is dict and not response:
            if self._ok_reply is None:
                self._ok_reply = protocol.OkReply(self.join_ref, self.topic)
            return self._ok_reply.frame(ref)
        return _reply_frame(self.join_ref, ref, self.topic, status, response)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.connection.loop

    async def push(self, event: str, payload: dict | bytes) -> bool:
        """Push an event to the client (``ref`` null); False if it was not sent."""
        if self.closed:
            log.debug("channel.push_after_close", conn=self.connection.id, topic=self.topic, event_name=event)
            return False
        if isinstance(payload, (bytes, bytearray, memoryview)):
            frame: str | bytes = protocol.encode_binary_server_push(
                self.join_ref, self.topic, event, bytes(payload)
            )
        else:
            frame = protocol.encode_text(Message(self.join_ref, None, self.topic, event, payload))
        return await self.connection.send(frame)

    async def reply(self, ref: str | None, status: str, response: dict | bytes) -> bool:
        """Reply to the push ``ref`` (for a handler that returned ``None``)."""
        if self.closed:
            log.debug("channel.reply_after_close", conn=self.connection.id, topic=self.topic, ref=ref)
            return False
        return await self.connection.send(self.reply_frame(ref, status, response))

    def close(self) -> None:
        """Stop normally: ``phx_close`` to the client, then ``leave("closed")``."""
        self._request_stop(_Stop("closed", "close"))

    def crash(self, reason: str = "channel_crash") -> None:
        """Stop as crashed: ``phx_error`` to the client, then ``leave("crash")``."""
        self._request_stop(_Stop("crash", "error", reason))

    def push_threadsafe(self, event: str, payload: dict | bytes) -> concurrent.futures.Future:
        """:meth:`push` from another thread than the event loop's."""
        return asyncio.run_coroutine_threadsafe(self.push(event, payload), self.loop)

    def _request_stop(self, stop: _Stop) -> None:
        if self.closed or self._stop is not None:
            return
        self._stop = stop
        if self._state is not None:
            self._state.wake()

    def __repr__(self) -> str:
        return f"<Channel {self.topic!r} join_ref={self.join_ref!r} conn={self.connection.id}>"


_WAKE = object()


@dataclass
class _TopicState:
    channel: Channel
    handler: TopicHandler
    queue: asyncio.Queue
    task: asyncio.Task | None = None
    done: bool = False
    handled: int = field(default=0)
    # Held while one of the topic's messages (or its join) is handled, by its
    # task or by a reader: one at a time, in the order they came.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    log: Any = None

    def wake(self) -> None:
        # A worker blocked on get() has an empty queue; otherwise it will see
        # the stop request when it takes its next item.
        if self.queue.empty():
            self.queue.put_nowait(_WAKE)


def _reply_frame(join_ref: str | None, ref: str | None, topic: str, status: str, response: Any) -> str | bytes:
    if isinstance(response, (bytes, bytearray, memoryview)):
        return protocol.encode_binary_reply(join_ref, ref, topic, status, bytes(response))
    return protocol.encode_reply(join_ref, ref, topic, status, response)


#: What a send, receive or close raises once the peer is gone: Starlette's
#: disconnect, its state errors (``RuntimeError``), or the server's ``OSError``.
_SOCKET_GONE = (WebSocketDisconnect, RuntimeError, OSError)


def _frame_size(text: str | None, data: bytes | None, limit: int) -> int:
    """A received frame's size in bytes, as far as checking it against
    ``limit`` needs: a text frame is encoded only when its length in
    characters cannot settle it (UTF-8 takes 1 to 4 bytes a character), so
    the usual small frame is never encoded just to be measured."""
    if text is None:
        return len(data or b"")
    if len(text) * 4 <= limit or len(text) > limit:
        return len(text)  # within the limit either way, or over it either way
    return len(text.encode("utf-8", "surrogatepass"))


def _exact_size(text: str | None, size: int) -> int:
    """The size in bytes to log: a text frame's UTF-8 length, else ``size``."""
    return len(text.encode("utf-8", "surrogatepass")) if text is not None else size


def _check_reply(result: Any) -> tuple[str, dict | bytes | bytearray | memoryview]:
    if (
        isinstance(result, tuple)
        and len(result) == 2
        and isinstance(result[0], str)
        and isinstance(result[1], (dict, bytes, bytearray, memoryview))
    ):
        return result[0], result[1]
    raise TypeError(f"handler must return (status, dict | bytes), got {result!r}")


# --------------------------------------------------------------- connection


class Connection:
    """One WebSocket speaking Phoenix Channels; see the module docstring."""

    def __init__(self, transport: Transport, websocket: WebSocket) -> None:
        self.transport = transport
        self.websocket = websocket
        self.id = secrets.token_hex(4)
        self.params: dict[str, str] = dict(websocket.query_params)
        client = websocket.client
        self.peer = f"{client.host}:{client.port}" if client else None
        self.info: Any = None  # what the transport's connect hook returned
        self.loop = asyncio.get_running_loop()
        self.topics: dict[str, _TopicState] = {}
        self._tasks: set[asyncio.Task] = set()  # every topic worker still running
        self.open = False
        self._send_lock = asyncio.Lock()
        self.outbound_bytes = 0  # bytes handed to send() and not yet given to the server
        self._send_since: float | None = None  # when the send in progress started
        self._last_seen = self.loop.time()  # when the peer last sent a frame
        self._watchdog: asyncio.TimerHandle | None = None
        self._idle_close: asyncio.Task | None = None
        self._dropped: str | None = None  # why the socket was closed by force
        self._runner: asyncio.Task | None = None
        self._reader = _Reader()  # the one reading now
        self._readers: dict[asyncio.Task, _Reader] = {}  # every reader task still running
        self._read_end: asyncio.Future[str] = self.loop.create_future()  # why reading ended
        self._inline_timer: asyncio.TimerHandle | None = None
        self._log = log.bind(conn=self.id, peer=self.peer)

    # ---------------------------------------------------------------- I/O

    async def send(self, frame: str | bytes) -> bool:
        """Send one frame; False (and the connection marked closed) on failure.

        Never waits unboundedly: a frame waits behind at most the
        connection's outbound budget (past it the socket is closed with 1008),
        and a peer that stops reading for ``idle_timeout`` is dropped by the
        connection's watchdog, which ends every send still waiting."""
        if not self.open:
            return False
        size = len(frame)
        self.outbound_bytes += size
        try:
            if self.outbound_bytes > self.transport.max_outbound_bytes:
                self._overflow()
                return False
            async with self._send_lock:
                if not self.open:
                    return False
                self._send_since = self.loop.time()
                try:
                    if isinstance(frame, str):
                        await self.websocket.send_text(frame)
                    else:
                        await self.websocket.send_bytes(frame)
                    return True
                except _SOCKET_GONE as exc:  # the peer went away mid-send
                    self.open = False
                    self._log.debug("ws.send_failed", error=repr(exc))
                    return False
                finally:
                    self._send_since = None
        finally:
            self.outbound_bytes -= size

    def _overflow(self) -> None:
        """Over the outbound budget: logged once, the socket dropped."""
        if self._dropped is None:
            self._log.warning("ws.outbound_budget_exceeded", queued_bytes=self.outbound_bytes,
                              limit=self.transport.max_outbound_bytes)
        self.drop(1008, "outbound budget exceeded")

    def drop(self, code: int, reason: str) -> None:
        """Close by force, now, whatever the peer does: its bytes still queued
        are discarded and every send waiting on it ends (never blocks)."""
        self.open = False
        if self._dropped is not None:
            return
        self._dropped = reason
        self._stop_watchdog()
        aborted = False
        if self.transport.force_close is not None:
            try:
                aborted = bool(self.transport.force_close(self.websocket.scope))
            except Exception as exc:  # noqa: BLE001 - the server's abort hook: whatever it raises, the socket is dropped below
                self._log.debug("ws.force_close_failed", error=repr(exc))
        if not aborted and self._runner is not None and not self._runner.done():
            # No server hook to abort the socket: end the ASGI app instead.
            self._runner.cancel()
        self._log.info("ws.dropped", code=code, reason=reason, aborted=aborted)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close politely; a peer that does not take the close frame within
        :data:`CLOSE_SECONDS` is dropped (:meth:`drop`)."""
        if not self.open:
            return
        self.open = False
        try:
            await asyncio.wait_for(self.websocket.close(code=code, reason=reason), CLOSE_SECONDS)
        except asyncio.TimeoutError:
            self.drop(code, reason or "close timeout")
        except _SOCKET_GONE as exc:
            self._log.debug("ws.close_failed", error=repr(exc))

    # ----------------------------------------------------------- watchdog

    def _arm_watchdog(self) -> None:
        """One timer per connection, re-armed to the next deadline only when
        it fires: no timer per frame."""
        idle = self.transport.idle_timeout
        if idle is None or self._dropped is not None:
            return
        self._watchdog = self.loop.call_at(self._last_seen + idle, self._watch)

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _watch(self) -> None:
        self._watchdog = None
        idle = self.transport.idle_timeout
        if idle is None or self._dropped is not None:
            return
        now = self.loop.time()
        send_since = self._send_since
        if send_since is not None and now - send_since >= idle * 0.99:  # 0.99: the timer's own jitter
            self._log.info("ws.write_timeout", seconds=idle, queued_bytes=self.outbound_bytes)
            self.drop(1008, "peer not reading")
            return
        if now - self._last_seen >= idle:
            self._log.info("ws.idle_timeout", seconds=idle)
            if not self.open:
                self.drop(1000, "idle timeout")
            else:
                self._idle_close = self.loop.create_task(self.close(1000, "idle timeout"))
            return
        deadline = self._last_seen + idle
        if self._send_since is not None:
            deadline = min(deadline, self._send_since + idle)
        self._watchdog = self.loop.call_at(deadline, self._watch)

    # ------------------------------------------------------------- reading

    async def run(self) -> None:
        """Serve the socket until the peer leaves or the frame loop ends."""
        ws = self.websocket
        vsn = self.params.get("vsn", "1.0.0")
        if not vsn.startswith("2."):
            self._log.warning("ws.rejected", reason="unsupported serializer", vsn=vsn)
            await ws.close(code=1008)
            return
        if self.transport.connect is not None:
            try:
                self.info = await _maybe_await(self.transport.connect(self))
            except Exception:  # noqa: BLE001 - the application's hook: its bug refuses this socket only
                self._log.exception("ws.connect_hook_failed")
                self.info = None
            if self.info is None or self.info is False:
                self._log.warning("ws.rejected", reason="connect hook refused")
                await ws.close(code=1008)
                return
        await ws.accept()
        self.open = True
        self.transport.connections.add(self)
        self._log.info("ws.connected", path=ws.url.path)
        self._runner = asyncio.current_task()
        self._last_seen = self.loop.time()
        self._arm_watchdog()
        end_reason = "disconnect"
        self._start_reader(self._reader)
        try:
            end_reason = await self._read_end
        except asyncio.CancelledError:
            if self._dropped is None:
                raise
            # Dropped with no server hook to abort the socket: end as a disconnect.
            uncancel = getattr(asyncio.current_task(), "uncancel", None)  # Python >= 3.11
            if uncancel is not None:
                uncancel()
        finally:
            self._stop_watchdog()
            self._stop_reading()
            await self._teardown(end_reason)
            self.transport.connections.discard(self)

    # ------------------------------------------------------------ readers

    def _start_reader(self, reader: _Reader) -> None:
        task = self.loop.create_task(self._read(reader), name=f"reader {self.id}")
        self._readers[task] = reader
        task.add_done_callback(self._reader_done)

    def _reader_done(self, task: asyncio.Task) -> None:
        self._readers.pop(task, None)
        self._worker_done(task)

    async def _read(self, reader: _Reader) -> None:
        """One reader's life: read until the socket ends (then say why) or until
        a successor took over (then just finish the event in hand)."""
        try:
            reason = await self._read_loop(reader)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - handed to run(), which raises it as a reading loop in it would
            if not self._read_end.done():
                self._read_end.set_exception(exc)
            else:
                self._log.error("ws.reader_failed", exc_info=exc)
            return
        if reason is not None and not self._read_end.done():
            self._read_end.set_result(reason)

    def _stop_reading(self) -> None:
        """Reading is over: readers waiting for a frame are cancelled; one busy
        with an event is left to finish it (the teardown awaits it with the
        topics' tasks, and past the grace time cancels it)."""
        if self._inline_timer is not None:
            self._inline_timer.cancel()
            self._inline_timer = None
        for task, reader in list(self._readers.items()):
            if reader.inline_since is None:
                task.cancel()

    def _check_inline(self) -> None:
        """The inline timer: if the current reader has been handling one event
        for :data:`INLINE_GRACE`, a fresh reader takes over the socket."""
        self._inline_timer = None
        reader = self._reader
        since = reader.inline_since
        if since is None or self._read_end.done() or self._dropped is not None:
            return  # the next inline event arms the timer again
        if self.loop.time() - since < INLINE_GRACE * 0.99:  # 0.99: the timer's own jitter
            self._inline_timer = self.loop.call_at(since + INLINE_GRACE, self._check_inline)
            return
        self._log.debug("ws.reader_handed_off", seconds=INLINE_GRACE)
        reader.handed_off = True
        self._reader = _Reader()
        self._start_reader(self._reader)

    async def _read_loop(self, reader: _Reader) -> str | None:
        ws = self.websocket
        limit = self.transport.max_message_size
        while True:
            if reader.handed_off or self._read_end.done():
                return None
            try:
                message = await ws.receive()
            except _SOCKET_GONE as exc:
                self._log.debug("ws.receive_failed", error=repr(exc))
                self.open = False
                return "disconnect"
            if message["type"] == "websocket.disconnect":
                self.open = False
                self._log.info("ws.disconnected", code=message.get("code"))
                return "disconnect"
            self._last_seen = self.loop.time()
            text = message.get("text")
            data = message.get("bytes")
            size = _frame_size(text, data, limit)
            if size > limit:
                kind = "text" if text is not None else "binary"
                self._log.warning("frame.too_large", size=_exact_size(text, size), limit=limit, kind=kind)
                await self.close(1009, "message too big")
                return "disconnect"
            try:
                msg = protocol.decode_text(text) if text is not None else protocol.decode_binary(data or b"")
            except ProtocolError as exc:
                self._log.warning(
                    "frame.malformed",
                    kind="text" if text is not None else "binary",
                    size=_exact_size(text, size),
                    error=str(exc),
                )
                continue
            await self._dispatch(msg, reader)
            if not self.open:
                return "disconnect"

    async def _dispatch(self, msg: Message, reader: _Reader) -> None:
        if msg.topic == "phoenix":
            if msg.event == "heartbeat":
                await self.send(protocol.encode_reply(None, msg.ref, "phoenix", "ok", {}))
            else:
                await self._unmatched(msg, None)
            return
        if msg.event == "phx_join":
            await self._join(msg)
            return
        state = self.topics.get(msg.topic)
        if state is None or state.done or state.channel.join_ref != msg.join_ref:
            await self._unmatched(msg, None)
            return
        if (
            msg.event in state.handler.inline_events
            and state.channel.joined
            and state.channel._stop is None
            and not state.lock.locked()
            and state.queue.empty()
        ):
            await self._inline(state, msg, reader)
            return
        await state.queue.put(msg)
        if state.done:  # the worker ended while we waited for room
            await self._drain(state)

    async def _inline(self, state: _TopicState, msg: Message, reader: _Reader) -> None:
        """Handle ``msg`` in the reader, no hop to the topic's task: nothing of
        its topic is waiting or being handled, so the order is the same."""
        reader.inline_since = self._last_seen  # when this frame was read
        if self._inline_timer is None:
            self._inline_timer = self.loop.call_at(reader.inline_since + INLINE_GRACE, self._check_inline)
        try:
            async with state.lock:
                await self._handle(state, msg)
        finally:
            reader.inline_since = None

    async def _handle(self, state: _TopicState, msg: Message) -> None:
        """One event of a joined topic, answered (by its task or by a reader)."""
        channel = state.channel
        state.handled += 1
        try:
            result = await state.handler.handle_in(msg.event, msg.payload, msg.ref)
            if result is not None:
                status, response = _check_reply(result)
                await self.send(channel.reply_frame(msg.ref, status, response))
        except asyncio.CancelledError:
            raise
        except Exception:  # the application's handler: its bug ends this topic only
            state.log.exception("channel.crashed", event_name=msg.event, ref=msg.ref)
            channel._request_stop(_Stop("crash", "error"))

    async def _unmatched(self, msg: Message, join_ref: str | None) -> None:
        self._log.warning(
            "topic.unmatched",
            topic=msg.topic,
            event_name=msg.event,
            join_ref=msg.join_ref,
            ref=msg.ref,
        )
        if msg.ref is not None:
            await self.send(protocol.encode_reply(join_ref, msg.ref, msg.topic, "error", dict(UNMATCHED_TOPIC)))

    # --------------------------------------------------------------- joins

    async def _join(self, msg: Message) -> None:
        factory = self.transport.registry.match(msg.topic)
        if factory is None:
            await self._unmatched(msg, msg.join_ref)
            return
        if not isinstance(msg.payload, dict):
            self._log.warning("channel.join_refused", topic=msg.topic, reason="binary join payload")
            await self.send(
                protocol.encode_reply(msg.join_ref, msg.ref, msg.topic, "error", {"reason": "invalid payload"})
            )
            return
        old = self.topics.get(msg.topic)
        if old is not None and not old.done:
            self._log.info(
                "channel.duplicate_join",
                topic=msg.topic,
                old_join_ref=old.channel.join_ref,
                join_ref=msg.join_ref,
            )
            old.channel._request_stop(_Stop("duplicate_join", "close"))
            await self._finish([old])
        channel = Channel(self, msg.topic, msg.join_ref)
        try:
            handler = factory(channel)
        except Exception:  # noqa: BLE001 - the application's factory: its bug refuses this join only
            self._log.exception("channel.join_crashed", topic=msg.topic, join_ref=msg.join_ref)
            await self.send(
                protocol.encode_reply(msg.join_ref, msg.ref, msg.topic, "error", {"reason": "join crashed"})
            )
            return
        state = _TopicState(channel, handler, asyncio.Queue(self.transport.topic_queue_size))
        channel._state = state
        self.topics[msg.topic] = state
        task = asyncio.create_task(self._worker(state, msg), name=f"topic {msg.topic} {msg.join_ref}")
        state.task = task
        self._tasks.add(task)
        task.add_done_callback(self._worker_done)

    def _worker_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self._log.error("channel.worker_failed", task=task.get_name(), exc_info=exc)

    async def _worker(self, state: _TopicState, join: Message) -> None:
        channel = state.channel
        tlog = state.log = self._log.bind(topic=channel.topic, join_ref=channel.join_ref)
        try:
            async with state.lock:  # nothing of the topic is handled inline before its join is answered
                if not await self._answer_join(state, join, tlog):
                    return
            while channel._stop is None:
                item = await state.queue.get()
                if item is _WAKE:
                    continue
                msg: Message = item
                async with state.lock:  # taken at once unless a reader is handling one of ours
                    if channel._stop is not None:  # stopped while this one waited
                        await self._unmatched(msg, None)
                        continue
                    if msg.event == "phx_leave":
                        await self.send(protocol.encode_reply(channel.join_ref, msg.ref, channel.topic, "ok", {}))
                        channel._request_stop(_Stop("leave", "close"))
                        continue
                    await self._handle(state, msg)
        finally:
            cancelled = False
            if state.lock.locked():  # a reader is handling one of ours: leave() comes after it
                try:
                    async with state.lock:
                        pass
                except asyncio.CancelledError:
                    cancelled = True
            await self._end_topic(state, tlog)
            if cancelled:
                raise asyncio.CancelledError

    async def _answer_join(self, state: _TopicState, join: Message, tlog: Any) -> bool:
        """Ask the handler's join and send its reply; True if the topic joined."""
        channel, handler = state.channel, state.handler
        try:
            status, response = _check_reply(await handler.join(join.payload))  # type: ignore[arg-type]  # a join payload is a dict: checked by the codec
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the application's join: its bug refuses this join only
            tlog.exception("channel.join_crashed")
            status, response = "error", {"reason": "join crashed"}
        if status != "ok":
            tlog.info("channel.join_refused", response=response if isinstance(response, dict) else None)
            channel.closed = True
            await self.send(_reply_frame(join.join_ref, join.ref, channel.topic, status, response))
            return False
        channel.joined = True  # from here on, leave() will be called
        try:
            frame = _reply_frame(join.join_ref, join.ref, channel.topic, "ok", response)
        except (protocol.ProtocolError, ValueError, TypeError):
            tlog.exception("channel.join_crashed", why="join reply cannot be encoded")
            channel._request_stop(_Stop("crash", None))
            frame = protocol.encode_reply(
                join.join_ref, join.ref, channel.topic, "error", {"reason": "join crashed"}
            )
        else:
            tlog.info("channel.joined")
        await self.send(frame)
        return True

    async def _end_topic(self, state: _TopicState, tlog: Any) -> None:
        channel = state.channel
        state.done = True
        if self.topics.get(channel.topic) is state:
            del self.topics[channel.topic]
        if not channel.joined:
            channel.closed = True
            await self._drain(state)
            return
        stop = channel._stop or _Stop("disconnect", None)
        channel._stop = stop
        channel.closed = True
        if stop.notify == "close":
            await self.send(protocol.encode_close(channel.join_ref, channel.topic))
        elif stop.notify == "error":
            await self.send(protocol.encode_error(channel.join_ref, channel.topic, stop.error_reason))
        try:
            await state.handler.leave(stop.reason)
        except Exception:  # noqa: BLE001 - the application's leave: the topic ends anyway
            tlog.exception("channel.leave_failed", reason=stop.reason)
        tlog.info("channel.left", reason=stop.reason, handled=state.handled)
        await self._drain(state)

    async def _drain(self, state: _TopicState) -> None:
        """Answer what was queued for an ended topic as Phoenix would."""
        while not state.queue.empty():
            item = state.queue.get_nowait()
            if item is not _WAKE:
                await self._unmatched(item, None)

    async def _finish(self, states: list[_TopicState]) -> None:
        """Wait for topics asked to stop; cancel any stuck past the grace time."""
        tasks = [s.task for s in states if s.task is not None and not s.task.done()]
        await self._await_tasks(tasks)

    async def _await_tasks(self, tasks: list[asyncio.Task]) -> None:
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.transport.shutdown_timeout)
        for task in pending:
            self._log.warning("channel.stop_timeout", task=task.get_name(), seconds=self.transport.shutdown_timeout)
            task.cancel()
        if pending:
            _, stuck = await asyncio.wait(pending, timeout=self.transport.shutdown_timeout)
            for task in stuck:
                self._log.error("channel.unstoppable", task=task.get_name())

    async def stop_all(self, reason: str = "disconnect") -> None:
        """End every topic with ``leave(reason)`` and nothing sent to the peer."""
        for state in list(self.topics.values()):
            state.channel._request_stop(_Stop(reason, None))
        # Every worker, including ones already ending (e.g. inside leave()).
        await self._await_tasks([t for t in self._tasks if not t.done()])

    async def _teardown(self, reason: str) -> None:
        self.open = False
        for state in list(self.topics.values()):
            state.channel._request_stop(_Stop(reason, None))
        # Every topic's task and every reader still finishing an event.
        await self._await_tasks([t for t in (*self._tasks, *self._readers) if not t.done()])
        self._log.info("ws.closed", reason=reason)


async def _maybe_await(value: Any) -> Any:
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value
    return value


# ---------------------------------------------------------------- transport


class Transport:
    """The socket endpoint: configuration shared by all connections.

    ``endpoint`` is the Starlette WebSocket endpoint (use it in a
    ``WebSocketRoute``).  ``connect``, if given, is called with the
    :class:`Connection` before the socket is accepted (``connection.params``
    holds the query: ``_csrf_token``, ``vsn``...); a falsy result refuses the
    socket, anything else is kept as ``connection.info``.
    """

    def __init__(
        self,
        registry: TopicRegistry | None = None,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        idle_timeout: float | None = 60.0,
        topic_queue_size: int = 32,
        shutdown_timeout: float = 5.0,
        connect: Callable[[Connection], Any] | None = None,
        max_outbound_bytes: int = DEFAULT_MAX_OUTBOUND_BYTES,
    ) -> None:
        if max_message_size <= 0:
            raise ValueError("max_message_size must be positive")
        if max_outbound_bytes <= 0:
            raise ValueError("max_outbound_bytes must be positive")
        if topic_queue_size <= 0:
            raise ValueError("topic_queue_size must be positive")
        self.registry = registry if registry is not None else TopicRegistry()
        self.max_message_size = max_message_size
        self.idle_timeout = idle_timeout
        self.topic_queue_size = topic_queue_size
        self.shutdown_timeout = shutdown_timeout
        self.connect = connect
        self.max_outbound_bytes = max_outbound_bytes
        self.force_close: ForceClose | None = None
        self.connections: set[Connection] = set()

    async def endpoint(self, websocket: WebSocket) -> None:
        await Connection(self, websocket).run()

    async def shutdown(self, code: int = 1001) -> None:
        """End every topic with ``leave("shutdown")`` and close every socket
        (all at once; a peer that does not take its close frame is dropped)."""
        conns = list(self.connections)
        await asyncio.gather(*(conn.stop_all("shutdown") for conn in conns))
        await asyncio.gather(*(conn.close(code, "server shutdown") for conn in conns))

    def drop_all(self, code: int = 1001, reason: str = "server shutdown") -> int:
        """Close every socket by force now (:meth:`Connection.drop`); how many."""
        conns = list(self.connections)
        for conn in conns:
            conn.drop(code, reason)
        return len(conns)

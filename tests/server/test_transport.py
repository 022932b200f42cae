"""The Phoenix Channels socket: heartbeats, the topic table, routing to
handlers, and every bad input answered as Phoenix does without harming the
connection or other topics.  Runs the app under uvicorn on a loopback port
and speaks to it with a plain WebSocket client."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import pytest
import structlog
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from server.app import create_app, serve_in_thread
from server.protocol import Message, decode_binary, encode_binary
from server.transport import TopicHandler, TopicRegistry, Transport, max_message_size_for

pytestmark = [pytest.mark.timeout(30), pytest.mark.pure]  # fake handlers: no process

RECV_TIMEOUT = 5.0
QS = "?vsn=2.0.0&_csrf_token=x"


# ------------------------------------------------------------------ doubles


class Recorder:
    """Thread-safe record of what handlers saw, waited on without sleeps."""

    def __init__(self) -> None:
        self.events: "queue.Queue[tuple]" = queue.Queue()
        self.release = threading.Event()
        self.handlers: dict[str, "EchoHandler"] = {}
        self.threads: list[threading.Thread] = []

    def wait_for(self, predicate, timeout: float = RECV_TIMEOUT) -> tuple:
        seen = []
        while True:
            try:
                item = self.events.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no matching handler event; saw {seen}") from None
            seen.append(item)
            if predicate(item):
                return item


class EchoHandler(TopicHandler):
    """Test handler: joins unless told not to, echoes events, and has events
    that exercise every channel feature."""

    def __init__(self, channel, rec: Recorder) -> None:
        super().__init__(channel)
        self.rec = rec
        rec.handlers[channel.topic] = self

    async def join(self, payload: dict):
        self.rec.events.put(("join", self.channel.topic, self.channel.join_ref, payload))
        if payload.get("refuse"):
            return "error", {"reason": "nope"}
        if payload.get("raise"):
            raise RuntimeError("join blew up")
        if payload.get("unencodable"):
            return "ok", {"x": object()}
        return "ok", {"joined": self.channel.topic}

    async def handle_in(self, event: str, payload: Any, ref: str | None):
        self.rec.events.put(("in", self.channel.topic, event, payload))
        if event == "echo":
            return "ok", {"echo": payload}
        if event == "chunk":
            return "ok", {"size": len(payload)}
        if event == "raise":
            raise ValueError("handler bug")
        if event == "close":
            self.channel.close()
            return "ok", {"closing": True}
        if event == "crash":
            self.channel.crash("boom")
            return None
        if event == "later":
            asyncio.get_running_loop().call_later(
                0, lambda: asyncio.ensure_future(self.channel.reply(ref, "ok", {"later": True}))
            )
            return None
        if event == "push":
            await self.channel.push("news", {"n": 1})
            await self.channel.push("blob", b"\x00\x01")
            return "ok", {}
        if event == "binary_reply":
            return "ok", b"\xde\xad"
        if event == "thread_push":
            thread = threading.Thread(
                target=lambda: self.channel.push_threadsafe("from_thread", {"t": 1}).result(5)
            )
            self.rec.threads.append(thread)
            thread.start()
            return "ok", {}
        if event == "block":
            await asyncio.get_running_loop().run_in_executor(None, self.rec.release.wait, 10)
            return "ok", {"released": True}
        if event == "hang":
            await asyncio.Event().wait()  # never returns: only cancellation ends it
        if event == "bad_return":
            return "ok"
        return "error", {"reason": "unknown event"}

    async def leave(self, reason: str) -> None:
        self.rec.events.put(("leave", self.channel.topic, self.channel.join_ref, reason))


class InlineEchoHandler(EchoHandler):
    """EchoHandler whose every event the socket's reader may handle itself."""

    inline_events = frozenset({"echo", "chunk", "raise", "close", "crash", "later", "push", "binary_reply",
                               "thread_push", "block", "hang", "bad_return", "unknown"})


INLINE = {"on": False}


@pytest.fixture(autouse=True, params=["task", "inline"])
def handling(request):
    """Every test twice: events handled by the topic's task, and by the socket's reader."""
    INLINE["on"] = request.param == "inline"
    yield request.param
    INLINE["on"] = False


@contextmanager
def running(**app_kwargs: Any) -> Iterator[tuple[str, Recorder, Any]]:
    """The app with EchoHandler on lv: and lvu:, under uvicorn; yields the
    socket URL, the recorder and the app."""
    rec = Recorder()
    app = create_app(secret="t", **app_kwargs)
    handler = InlineEchoHandler if INLINE["on"] else EchoHandler
    app.state.registry.register("lv:", lambda ch: handler(ch, rec))
    app.state.registry.register("lvu:", lambda ch: handler(ch, rec))
    with serve_in_thread(app) as url:
        try:
            yield "ws" + url[len("http"):] + "/live/websocket", rec, app
        finally:
            rec.release.set()


class Client:
    def __init__(self, ws) -> None:
        self.ws = ws

    def send(self, *frame: Any) -> None:
        self.ws.send(json.dumps(list(frame)))

    def send_raw(self, data: str | bytes) -> None:
        self.ws.send(data)

    def recv(self) -> Any:
        data = self.ws.recv(timeout=RECV_TIMEOUT)
        return json.loads(data) if isinstance(data, str) else data

    def join(self, topic: str, join_ref: str, payload: dict | None = None) -> Any:
        self.send(join_ref, join_ref, topic, "phx_join", payload or {})
        return self.recv()

    def heartbeat(self, ref: str = "hb") -> None:
        """Round-trip a heartbeat: proves the socket is alive and that nothing
        else was sent before its reply."""
        self.send(None, ref, "phoenix", "heartbeat", {})
        assert self.recv() == [None, ref, "phoenix", "phx_reply", {"status": "ok", "response": {}}]


@contextmanager
def client(url: str, qs: str = QS, **kw: Any) -> Iterator[Client]:
    with connect(url + qs, proxy=None, open_timeout=5, close_timeout=5, **kw) as ws:
        yield Client(ws)


def ok(join_ref, ref, topic, response):
    return [join_ref, ref, topic, "phx_reply", {"status": "ok", "response": response}]


def err(join_ref, ref, topic, response):
    return [join_ref, ref, topic, "phx_reply", {"status": "error", "response": response}]


UNMATCHED = {"reason": "unmatched topic"}


# -------------------------------------------------------------------- tests


def test_heartbeat_and_join_and_echo():
    with running() as (url, rec, _), client(url) as c:
        c.heartbeat("1")
        assert c.join("lv:a", "4", {"x": 1}) == ok("4", "4", "lv:a", {"joined": "lv:a"})
        assert rec.wait_for(lambda e: e[0] == "join") == ("join", "lv:a", "4", {"x": 1})
        c.send("4", "5", "lv:a", "echo", {"hello": "wörld"})
        assert c.recv() == ok("4", "5", "lv:a", {"echo": {"hello": "wörld"}})


def test_binary_push_reaches_the_handler_as_bytes():
    with running() as (url, rec, _), client(url) as c:
        c.join("lvu:0", "12")
        c.send_raw(encode_binary(Message("12", "13", "lvu:0", "chunk", b"\x00" * 1000)))
        assert c.recv() == ok("12", "13", "lvu:0", {"size": 1000})
        event = rec.wait_for(lambda e: e[0] == "in")
        assert event == ("in", "lvu:0", "chunk", b"\x00" * 1000)


def test_join_unknown_topic_is_unmatched():
    with running() as (url, _, _), client(url) as c:
        assert c.join("room:1", "3") == err("3", "3", "room:1", UNMATCHED)
        c.heartbeat()


def test_push_before_join_is_unmatched():
    with running() as (url, rec, _), client(url) as c:
        c.send("4", "5", "lv:a", "echo", {})
        assert c.recv() == err(None, "5", "lv:a", UNMATCHED)
        c.send_raw(encode_binary(Message("12", "13", "lvu:0", "chunk", b"x")))
        assert c.recv() == err(None, "13", "lvu:0", UNMATCHED)
        assert rec.events.empty()


def test_push_with_stale_join_ref_is_unmatched():
    with running() as (url, rec, _), client(url) as c:
        c.join("lv:a", "4")
        c.send("3", "5", "lv:a", "echo", {})
        assert c.recv() == err(None, "5", "lv:a", UNMATCHED)


def test_events_on_the_phoenix_topic_other_than_heartbeat_are_unmatched():
    with running() as (url, _, _), client(url) as c:
        c.send(None, "9", "phoenix", "party", {})
        assert c.recv() == err(None, "9", "phoenix", UNMATCHED)


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1,2,3]",
        '{"topic": "lv:a"}',
        '["4","5","lv:a","echo","not an object"]',
        '["4",5,"lv:a","echo",{}]',
        b"",
        b"\x00\x01",
        b"\x07\x00\x00\x00\x00",
        b"\x01\x01\x01\x01\x01abcd",
        bytes([0, 1, 1, 200, 5]) + b"45lv:achunk",
        bytes([0, 1, 1, 4, 5]) + b"45lv:\xffchunk",
    ],
)
def test_malformed_frames_are_logged_and_dropped(frame):
    with running() as (url, rec, _), client(url) as c:
        c.join("lv:a", "4")
        with structlog.testing.capture_logs() as logs:
            c.send_raw(frame)
            c.heartbeat()  # nothing was sent for the bad frame, socket alive
        bad = [e for e in logs if e["event"] == "frame.malformed"]
        assert len(bad) == 1 and bad[0]["log_level"] == "warning"
        assert bad[0]["kind"] == ("text" if isinstance(frame, str) else "binary")
        assert bad[0]["error"]
        # the joined topic is untouched
        c.send("4", "6", "lv:a", "echo", {"still": "here"})
        assert c.recv() == ok("4", "6", "lv:a", {"echo": {"still": "here"}})


def test_unmatched_topic_is_logged():
    with running() as (url, _, _), client(url) as c:
        with structlog.testing.capture_logs() as logs:
            c.send("1", "2", "nope", "echo", {})
            c.recv()
        assert [e for e in logs if e["event"] == "topic.unmatched"][0]["topic"] == "nope"


def test_handler_reply_later_push_and_binary_reply():
    with running() as (url, rec, _), client(url) as c:
        c.join("lv:a", "4")
        c.send("4", "5", "lv:a", "later", {})
        assert c.recv() == ok("4", "5", "lv:a", {"later": True})
        c.send("4", "6", "lv:a", "push", {})
        assert c.recv() == ["4", None, "lv:a", "news", {"n": 1}]
        blob = c.recv()
        assert blob == bytes([0, 1, 4, 4]) + b"4lv:ablob\x00\x01"  # kind 0 server push
        assert c.recv() == ok("4", "6", "lv:a", {})
        c.send("4", "7", "lv:a", "binary_reply", {})
        assert c.recv() == bytes([1, 1, 1, 4, 2]) + b"47lv:aok\xde\xad"
        c.send("4", "8", "lv:a", "thread_push", {})
        frames = [c.recv(), c.recv()]
        assert ok("4", "8", "lv:a", {}) in frames
        assert ["4", None, "lv:a", "from_thread", {"t": 1}] in frames
    for thread in rec.threads:
        thread.join(5)
        assert not thread.is_alive()


def test_phx_leave_replies_ok_then_closes_only_that_topic():
    with running() as (url, rec, _), client(url) as c:
        c.join("lv:a", "4")
        c.join("lvu:0", "12")
        c.send("12", "13", "lvu:0", "phx_leave", {})
        assert c.recv() == ok("12", "13", "lvu:0", {})
        assert c.recv() == ["12", "12", "lvu:0", "phx_close", {}]
        assert rec.wait_for(lambda e: e[0] == "leave") == ("leave", "lvu:0", "12", "leave")
        c.send("12", "14", "lvu:0", "chunk", {})
        assert c.recv() == err(None, "14", "lvu:0", UNMATCHED)
        c.send("4", "5", "lv:a", "echo", {})
        assert c.recv() == ok("4", "5", "lv:a", {"echo": {}})


def test_duplicate_join_closes_the_old_channel_first():
    with running() as (url, rec, _), client(url) as c:
        c.join("lv:a", "4")
        c.send("9", "9", "lv:a", "phx_join", {"second": True})
        assert c.recv() == ["4", "4", "lv:a", "phx_close", {}]
        assert c.recv() == ok("9", "9", "lv:a", {"joined": "lv:a"})
        assert rec.wait_for(lambda e: e[0] == "leave") == ("leave", "lv:a", "4", "duplicate_join")
        c.send("4", "10", "lv:a", "echo", {})
        assert c.recv() == err(None, "10", "lv:a", UNMATCHED)
        c.send("9", "11", "lv:a", "echo", {})
        assert c.recv() == ok("9", "11", "lv:a", {"echo": {}})


def test_refused_join_leaves_no_topic_and_no_leave_call():
    with running() as (url, rec, _), client(url) as c:
        assert c.join("lv:a", "4", {"refuse": True}) == err("4", "4", "lv:a", {"reason": "nope"})
        c.send("4", "5", "lv:a", "echo", {})
        assert c.recv() == err(None, "5", "lv:a", UNMATCHED)
        assert c.join("lv:a", "6") == ok("6", "6", "lv:a", {"joined": "lv:a"})
    kinds = []
    while not rec.events.empty():
        kinds.append(rec.events.get_nowait())
    assert [k for k in kinds if k[0] == "leave"] == [("leave", "lv:a", "6", "disconnect")]


def test_join_that_raises_is_join_crashed():
    with running() as (url, _, _), client(url) as c:
        with structlog.testing.capture_logs() as logs:
            assert c.join("lv:a", "4", {"raise": True}) == err("4", "4", "lv:a", {"reason": "join crashed"})
        assert any(e["event"] == "channel.join_crashed" for e in logs)
        c.heartbeat()


def test_join_reply_that_cannot_be_encoded_is_join_crashed_and_left():
    with running() as (url, rec, _), client(url) as c:
        assert c.join("lv:a", "4", {"unencodable": True}) == err("4", "4", "lv:a", {"reason": "join crashed"})
        assert rec.wait_for(lambda e: e[0] == "leave") == ("leave", "lv:a", "4", "crash")
        c.send("4", "5", "lv:a", "echo", {})
        assert c.recv() == err(None, "5", "lv:a", UNMATCHED)


def test_handler_exception_crashes_only_its_topic():
    with running() as (url, rec, _), client(url) as c:
        c.join("lv:a", "4")
        c.join("lvu:0", "12")
        with structlog.testing.capture_logs() as logs:
            c.send("12", "13", "lvu:0", "raise", {})
            assert c.recv() == ["12", "12", "lvu:0", "phx_error", {"reason": "channel_crash"}]
        crash = [e for e in logs if e["event"] == "channel.crashed"]
        assert crash and crash[0]["log_level"] == "error" and crash[0]["topic"] == "lvu:0"
        assert rec.wait_for(lambda e: e[0] == "leave") == ("leave", "lvu:0", "12", "crash")
        c.send("4", "5", "lv:a", "echo", {"ok": 1})
        assert c.recv() == ok("4", "5", "lv:a", {"echo": {"ok": 1}})
        # a bad return value is a crash too
        c.send("4", "6", "lv:a", "bad_return", {})
        assert c.recv() == ["4", "4", "lv:a", "phx_error", {"reason": "channel_crash"}]


def test_close_from_the_handler_replies_before_phx_close():
    with running() as (url, rec, _), client(url) as c:
        c.join("lvu:0", "12")
        c.send("12", "13", "lvu:0", "close", {})
        assert c.recv() == ok("12", "13", "lvu:0", {"closing": True})
        assert c.recv() == ["12", "12", "lvu:0", "phx_close", {}]
        assert rec.wait_for(lambda e: e[0] == "leave") == ("leave", "lvu:0", "12", "closed")


def test_crash_from_the_handler_sends_phx_error_with_reason():
    with running() as (url, rec, _), client(url) as c:
        c.join("lvu:0", "12")
        c.send("12", "13", "lvu:0", "crash", {})
        assert c.recv() == ["12", "12", "lvu:0", "phx_error", {"reason": "boom"}]
        assert rec.wait_for(lambda e: e[0] == "leave") == ("leave", "lvu:0", "12", "crash")


def test_a_slow_topic_does_not_hold_up_others():
    with running() as (url, rec, _), client(url) as c:
        c.join("lvu:0", "12")
        c.join("lv:a", "4")
        c.send("12", "13", "lvu:0", "block", {})
        rec.wait_for(lambda e: e[:3] == ("in", "lvu:0", "block"))
        c.heartbeat()
        c.send("4", "5", "lv:a", "echo", {})
        assert c.recv() == ok("4", "5", "lv:a", {"echo": {}})
        rec.release.set()
        assert c.recv() == ok("12", "13", "lvu:0", {"released": True})


def test_messages_of_one_topic_are_handled_in_order():
    with running() as (url, _, _), client(url) as c:
        c.join("lv:a", "4")
        for i in range(20):
            c.send("4", str(100 + i), "lv:a", "echo", {"i": i})
        assert [c.recv()[1] for _ in range(20)] == [str(100 + i) for i in range(20)]


def test_a_topic_keeps_its_order_and_leaves_last_while_one_of_its_events_is_slow():
    """Inline, a slow event hands the socket's reading to a fresh reader: the
    heartbeat is answered at once, the topic's later events wait for the slow
    one and are answered in order, and its leave comes after all of them."""
    with running() as (url, rec, _), client(url) as c:
        c.join("lvu:0", "12")
        c.send("12", "13", "lvu:0", "block", {})
        rec.wait_for(lambda e: e[:3] == ("in", "lvu:0", "block"))
        c.heartbeat()
        for i in range(5):
            c.send("12", str(20 + i), "lvu:0", "echo", {"i": i})
        c.send("12", "30", "lvu:0", "phx_leave", {})
        c.heartbeat("hb2")  # still read and answered while the topic waits
        rec.release.set()
        assert [c.recv()[1] for _ in range(7)] == ["13", "20", "21", "22", "23", "24", "30"]
        assert c.recv()[3] == "phx_close"
        seen = [rec.wait_for(lambda e: e[0] in ("in", "leave")) for _ in range(6)]
        assert [e[2] if e[0] == "in" else "leave" for e in seen] == ["echo"] * 5 + ["leave"]
        c.heartbeat("hb3")


def test_disconnect_leaves_every_topic_even_a_stuck_one():
    with running() as (url, rec, app):
        app.state.transport.shutdown_timeout = 0.5
        with client(url) as c:
            c.join("lv:a", "4")
            c.join("lvu:0", "12")
            c.send("12", "13", "lvu:0", "hang", {})
            rec.wait_for(lambda e: e[:3] == ("in", "lvu:0", "hang"))
        leaves = {rec.wait_for(lambda e: e[0] == "leave")[1:] for _ in range(2)}
        assert leaves == {("lv:a", "4", "disconnect"), ("lvu:0", "12", "disconnect")}


def test_oversized_message_closes_the_socket_with_1009():
    limit = max_message_size_for(1_000)
    with running(max_message_size=limit) as (url, rec, _):
        with client(url) as c:
            c.join("lvu:0", "12")
            c.send_raw(encode_binary(Message("12", "13", "lvu:0", "chunk", b"x" * 1_000)))
            assert c.recv() == ok("12", "13", "lvu:0", {"size": 1_000})
            c.send_raw(encode_binary(Message("12", "14", "lvu:0", "chunk", b"x" * (limit + 1))))
            with pytest.raises(ConnectionClosed) as info:
                c.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        assert rec.wait_for(lambda e: e[0] == "leave") == ("leave", "lvu:0", "12", "disconnect")


def test_app_level_size_check_when_the_server_allows_more():
    """Mounted in a server with a looser limit, the app still enforces its own."""
    rec = Recorder()
    app = create_app(secret="t", max_message_size=2_000)
    app.state.registry.register("lvu:", lambda ch: EchoHandler(ch, rec))
    with serve_in_thread(app, ws_max_size=1 << 20) as base:
        url = "ws" + base[4:] + "/live/websocket"
        with structlog.testing.capture_logs() as logs, client(url) as c:
            c.join("lvu:0", "12")
            c.send_raw(encode_binary(Message("12", "13", "lvu:0", "chunk", b"x" * 5_000)))
            with pytest.raises(ConnectionClosed) as info:
                c.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009
            rec.wait_for(lambda e: e[0] == "leave")
        too_large = [e for e in logs if e["event"] == "frame.too_large"]
        assert too_large and too_large[0]["limit"] == 2_000 and too_large[0]["size"] > 5_000


def test_socket_without_v2_serializer_is_refused():
    with running() as (url, _, _):
        with pytest.raises(Exception) as info:
            with client(url, qs="?_csrf_token=x"):
                pass
        assert "403" in str(info.value)


def test_connect_hook_can_refuse_and_annotate():
    seen = []

    def hook(conn):
        seen.append(dict(conn.params))
        return {"user": "u"} if conn.params.get("_csrf_token") == "good" else None

    transport_app = create_app(secret="t")
    transport_app.state.transport.connect = hook
    with serve_in_thread(transport_app) as base:
        url = "ws" + base[4:] + "/live/websocket"
        with pytest.raises(Exception):
            with client(url, qs="?vsn=2.0.0&_csrf_token=bad"):
                pass
        with client(url, qs="?vsn=2.0.0&_csrf_token=good") as c:
            c.heartbeat()
            (conn,) = transport_app.state.transport.connections
            assert conn.info == {"user": "u"}
    assert [p["_csrf_token"] for p in seen] == ["bad", "good"]


def test_idle_socket_is_closed():
    with running(idle_timeout=0.3) as (url, rec, _), client(url) as c:
        c.join("lv:a", "4")
        with pytest.raises(ConnectionClosed):
            c.ws.recv(timeout=RECV_TIMEOUT)
        assert rec.wait_for(lambda e: e[0] == "leave") == ("leave", "lv:a", "4", "disconnect")


def test_transport_shutdown_leaves_topics_and_closes_sockets():
    with running() as (url, rec, app), client(url) as c:
        c.join("lv:a", "4")
        transport = app.state.transport
        (conn,) = transport.connections
        asyncio.run_coroutine_threadsafe(transport.shutdown(), conn.loop).result(5)
        assert rec.wait_for(lambda e: e[0] == "leave") == ("leave", "lv:a", "4", "shutdown")
        with pytest.raises(ConnectionClosed) as info:
            c.ws.recv(timeout=RECV_TIMEOUT)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001


def test_registry_longest_prefix_and_validation():
    reg = TopicRegistry()
    a, b = object(), object()
    reg.register("lv", a)
    reg.register("lvu:", b)
    assert reg.match("lvu:0") is b
    assert reg.match("lv:x") is a
    assert reg.match("other") is None
    reg.unregister("lvu:")
    assert reg.match("lvu:0") is a
    assert reg.prefixes() == ["lv"]
    for bad in ("", "phoenix"):
        with pytest.raises(ValueError):
            reg.register(bad, a)


def test_transport_validates_its_limits():
    with pytest.raises(ValueError):
        Transport(max_message_size=0)
    with pytest.raises(ValueError):
        Transport(topic_queue_size=0)
    assert max_message_size_for(64_000) > 64_000 + 5 + 4 * 255


def test_decoded_binary_frames_match_what_the_js_client_sends():
    # Layout as phoenix's serializer.binaryEncode builds it.
    frame = bytes([0, 2, 2, 5, 5]) + b"1213lvu:0chunk" + b"DATA"
    assert decode_binary(frame) == Message("12", "13", "lvu:0", "chunk", b"DATA")


@pytest.mark.pure
def test_a_text_frame_is_encoded_to_be_measured_only_when_its_length_cannot_settle_it():
    from server.transport import _frame_size

    assert _frame_size("a" * 250, None, 1_000) == 250  # 4 bytes a character at most: within the limit
    assert _frame_size("a" * 1_001, None, 1_000) > 1_000  # 1 byte a character at least: over it
    assert _frame_size("é" * 600, None, 1_000) == 1_200  # in between: measured exactly, and over it
    assert _frame_size("a" * 600, None, 1_000) == 600
    assert _frame_size("\ud800" * 300, None, 1_000) == 900  # a lone surrogate counts as its 3 bytes
    assert _frame_size(None, b"x" * 5, 1_000) == 5

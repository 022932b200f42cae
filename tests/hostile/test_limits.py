"""Time limits and connection limits: silent sockets, never-reading sockets,
unfinished requests and connection floods are closed; descriptors are raised
and their exhaustion is logged once per interval."""

from __future__ import annotations

import logging
import resource
import socket

import httpx
import pytest

from server.app import create_app, serve_in_thread
from server.descriptors import RateLimitFilter, raise_nofile_limit
from server.http_deadline import with_request_timeout

from .rawws import RawSocket, text

pytestmark = pytest.mark.timeout(60)

IDLE = 0.5


def closed_by_server(sock: socket.socket) -> bytes:
    """Read until the server closes; what it sent last (b"" for a bare close)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_a_silent_socket_is_closed_at_its_idle_timeout(tmp_path, logs):
    app = create_app(uploads_dir=tmp_path / "saved", idle_timeout=IDLE)
    with serve_in_thread(app) as url:
        raw = RawSocket(url, rcvbuf=None, timeout=10)
        assert raw.upgrade() == 101
        data = raw.sock.recv(2)  # blocks until the server speaks: its close frame
        data += raw.sock.recv(data[1])
        raw.close()
        assert data[:1] == b"\x88"  # a close frame: 1000 "idle timeout"
        assert data[2:4] == (1000).to_bytes(2, "big") and b"idle timeout" in data
    assert [e["seconds"] for e in logs if e["event"] == "ws.idle_timeout"] == [IDLE]


def test_a_socket_that_sends_but_never_reads_is_dropped(tmp_path, logs):
    app = create_app(uploads_dir=tmp_path / "saved", idle_timeout=IDLE)
    with serve_in_thread(app) as url:
        raw = RawSocket(url, rcvbuf=2048, timeout=10.0)  # a send fails when the server drops us
        assert raw.upgrade() == 101
        beats = b"".join(text(None, f"{i:016384d}", "phoenix", "heartbeat", {}) for i in range(64))
        for _ in range(8):  # 8 MB of replies: far more than the socket buffers hold
            if not raw.send(beats):
                break  # already dropped
        assert raw.wait_closed(10)  # reading nothing, not ever
        raw.close()
    # Stuck in a send ("peer not reading"), or idle (its close frame sent, or stuck and then dropped).
    events = [e["event"] for e in logs if e["event"] in ("ws.write_timeout", "ws.idle_timeout", "ws.dropped")]
    assert events in (["ws.write_timeout", "ws.dropped"], ["ws.idle_timeout", "ws.dropped"], ["ws.idle_timeout"]), \
        events


def test_the_watchdog_is_one_timer_per_connection_not_one_per_frame(tmp_path):
    app = create_app(uploads_dir=tmp_path / "saved", idle_timeout=30)
    with serve_in_thread(app) as url:
        raw = RawSocket(url, rcvbuf=None, timeout=5)
        assert raw.upgrade() == 101
        raw.send(b"".join(text(None, str(i), "phoenix", "heartbeat", {}) for i in range(500)))
        got = b""
        while got.count(b'"phx_reply"') < 500:
            chunk = raw.sock.recv(65536)
            assert chunk, got[-500:]  # the server closed the socket before answering them all
            got += chunk
        (conn,) = app.state.transport.connections
        loop = conn.loop
        timers = [h for h in loop._scheduled if not h.cancelled()]  # noqa: SLF001 - what the loop holds
        assert len(timers) <= 3, timers  # the watchdog, uvicorn's keepalive ping, at most one more
        raw.close()


def test_an_unfinished_request_is_dropped_at_its_deadline(tmp_path, logs):
    app = create_app(uploads_dir=tmp_path / "saved")
    with serve_in_thread(app, http=with_request_timeout(IDLE)) as url:
        host, port = url[7:].split(":")
        half = socket.create_connection((host, int(port)), timeout=10)
        half.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and nothing more
        assert closed_by_server(half) == b""
        half.close()
        upgrade = socket.create_connection((host, int(port)), timeout=10)
        upgrade.sendall(b"GET /live/websocket HTTP/1.1\r\nUpgrade: websocket\r\n")
        assert closed_by_server(upgrade) == b""
        upgrade.close()
        assert httpx.get(url + "/", trust_env=False, timeout=5).status_code == 200  # others served


def test_connections_past_the_limit_are_closed_at_once_and_logged_once(tmp_path, logs):
    app = create_app(uploads_dir=tmp_path / "saved")
    with serve_in_thread(app, http=with_request_timeout(30), limit_concurrency=4) as url:
        host, port = url[7:].split(":")
        held = [socket.create_connection((host, int(port)), timeout=10) for _ in range(4)]
        refused = [socket.create_connection((host, int(port)), timeout=10) for _ in range(20)]
        for sock in refused:
            assert closed_by_server(sock) == b""
            sock.close()
        for sock in held:
            sock.close()
        with httpx.Client(trust_env=False, timeout=5) as client:  # room again: served
            assert client.get(url + "/").status_code == 200
    lines = [e for e in logs if e["event"] == "http.connection_limit"]
    assert len(lines) == 1 and lines[0]["limit"] == 4, lines


def test_the_descriptor_limit_is_raised_to_the_hard_one():
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        if before[0] > 256:  # start from a low soft limit, so that raising it is seen
            resource.setrlimit(resource.RLIMIT_NOFILE, (256, before[1]))
        limits = raise_nofile_limit()
        assert limits is not None
        soft, hard = limits
        assert soft == hard or hard == resource.RLIM_INFINITY
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)  # what it says is what the process has
        assert soft > 256
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_descriptor_exhaustion_is_logged_once_per_interval():
    limiter = RateLimitFilter(interval=60)
    logger = logging.getLogger("asyncio")

    def record(message: str) -> logging.LogRecord:
        return logger.makeRecord("asyncio", logging.ERROR, __file__, 1, message, (), None)

    passed = [limiter.filter(record("socket.accept() out of system resource: [Errno 24] Too many open files"))
              for _ in range(1_000)]
    assert passed.count(True) == 1
    assert limiter.held == 999
    assert limiter.filter(record("something else entirely"))

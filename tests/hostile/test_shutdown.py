"""SIGTERM ends ``liveupload serve`` within its deadline whatever clients do."""

from __future__ import annotations

import signal
import time

import pytest

from tests.server.wire import fetch_page

from .rawws import RawSocket, text
from .serving import serve

DEADLINE = 2.0
MARGIN = 10.0  # the runtime's own stop (5 s at most) and the interpreter's exit


def never_reading_client(url: str) -> RawSocket:
    """A socket that joined a page and then made the server push far more
    than its tiny receive window takes, without ever reading."""
    boot = fetch_page(url)
    raw = RawSocket(url, rcvbuf=2048, sndbuf=4096, timeout=1.0)
    assert raw.upgrade() == 101
    payload = {"url": url + "/", "params": {"_csrf_token": boot["csrf"], "_mounts": 0},
               "session": boot["session"], "static": boot["static"], "sticky": False}
    assert raw.send(text("1", "1", f"lv:{boot['id']}", "phx_join", payload))
    # Heartbeats whose 16 KB refs come back in their replies: the server's
    # buffers (a few MB on loopback) fill after a few hundred.
    heartbeats = b"".join(text(None, f"{i:016384d}", "phoenix", "heartbeat", {}) for i in range(64))
    assert raw.flood(heartbeats, limit=50_000_000), "the server never stopped reading"
    return raw


@pytest.mark.timeout(60)
@pytest.mark.substrates("pool")  # the server runs in a child process
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_exits_within_its_deadline_with_a_never_reading_client(tmp_path, signum):
    with serve(tmp_path, "--shutdown-timeout", str(DEADLINE)) as served:
        raw = never_reading_client(served.url)
        try:
            started = time.monotonic()
            log = served.stop(signum, timeout=DEADLINE + MARGIN)
            took = time.monotonic() - started
        finally:
            raw.close()
    assert served.proc.returncode in (0, -signum), log
    assert took < DEADLINE + MARGIN
    assert "serve.stopped" in log and "runtime_shutdown" in log, log


@pytest.mark.timeout(60)
@pytest.mark.substrates("pool")  # the server runs in a child process
def test_a_second_signal_exits_at_once(tmp_path):
    with serve(tmp_path, "--shutdown-timeout", "30") as served:
        raw = never_reading_client(served.url)
        try:
            served.proc.send_signal(signal.SIGTERM)
            for line in served.proc.stderr:
                served.lines.append(line)
                if "serve.stopping" in line:
                    break
            log = served.stop(signal.SIGTERM, timeout=MARGIN)
        finally:
            raw.close()
    assert served.proc.returncode == 128 + signal.SIGTERM, log
    assert "serve.forced_exit" in log, log

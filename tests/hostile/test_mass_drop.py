"""Hundreds of sockets, each with a page, dropped at once: every page's
session ends, no process, timer or temp file is left, no thread is started
per page, and it is over in seconds (the 6,000-page figure is a stress run:
``python -m tests.hostile.test_mass_drop 6000``). The same for sessions with
an upload in flight, stopped at once: each writer is closed with ``"cancel"``
before its session is gone, and a channel that does not stop in time is killed."""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from typing import Callable

import psutil
import pytest
from pykka import ActorDeadError

import actors
from uploads import UploadSession
from uploads.inprocess import InProcessClient, entry_fields
from writers import FaultyWriter
from server.app import create_app, serve_in_thread
from server.descriptors import raise_nofile_limit
from tests.server.wire import fetch_page

from .rawws import RawSocket, text

PAGES = 120
SESSIONS = 100
THREADS_ADDED = 12
"""Threads a mass stop may add, whatever the number of pages: the pool's own
(its watchdog, a worker or two handed on while a page's socket task waits)."""
WAIT = 10.0


def until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Whether ``predicate`` became true within ``timeout`` s (checked every 20 ms)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.02)
    return True


class PeakThreads:
    """The largest thread count seen while running (sampled every 5 ms)."""

    def __init__(self) -> None:
        self.peak = threading.active_count()
        self.names: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-threads", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            count = threading.active_count()
            if count > self.peak:
                self.peak = count
                self.names = sorted({t.name.rstrip("0123456789") for t in threading.enumerate()})

    def __enter__(self) -> "PeakThreads":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def open_pages(url: str, count: int) -> list[RawSocket]:
    """``count`` sockets, each with a joined page."""
    sockets = []
    for _ in range(count):
        boot = fetch_page(url)
        raw = RawSocket(url, rcvbuf=None, timeout=10)
        assert raw.upgrade() == 101
        payload = {"url": url + "/", "params": {"_csrf_token": boot["csrf"], "_mounts": 0},
                   "session": boot["session"], "static": boot["static"], "sticky": False}
        raw.send(text("1", "1", f"lv:{boot['id']}", "phx_join", payload))
        sockets.append(raw)
    for raw in sockets:  # every join answered
        got = b""
        while b'"phx_reply"' not in got:
            chunk = raw.sock.recv(65536)
            assert chunk, got  # closed before the join was answered
            got += chunk
        assert b'"status":"ok"' in got
    return sockets


def drop(sockets: list[RawSocket]) -> None:
    """Close every socket at once, with a reset (no closing handshake)."""
    for raw in sockets:
        raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()


def rss() -> int:
    """This process's resident memory, in bytes."""
    return psutil.Process().memory_info().rss


def mass_drop(tmp_path, pages: int) -> dict[str, float]:
    """Open ``pages`` pages, drop them at once; the figures of the drop.

    No idle timeout: opening thousands of pages one by one takes longer than
    the default 60 s, which would close the first ones before the drop."""
    raise_nofile_limit()
    app = create_app(uploads_dir=tmp_path / "saved", idle_timeout=None)
    sessions = app.state.live.sessions
    with serve_in_thread(app, ws_ping_interval=None) as url:  # raw clients answer no pings
        rss_before = rss()
        opening = time.monotonic()
        sockets = open_pages(url, pages)
        opened = time.monotonic() - opening
        assert len(app.state.transport.connections) == pages
        assert len(sessions) == pages
        rss_open = rss()
        before = threading.active_count()
        with PeakThreads() as threads:
            started = time.monotonic()
            drop(sockets)
            ended = until(lambda: not sessions and not app.state.transport.connections, timeout=max(60, pages / 10))
            took = time.monotonic() - started
        assert ended, f"{len(sessions)} pages left"
        left = [ref for ref in actors.processes() if ref.is_alive()]
        rss_after = rss()
    return {"pages": pages, "seconds": took, "seconds_to_open": opened,
            "threads_before": before, "threads_peak": threads.peak, "thread_names": threads.names,
            "processes_left": len(left), "timers_left": actors.pending_timers(),
            "rss_mb_before": rss_before / 2**20, "rss_mb_open": rss_open / 2**20, "rss_mb_after": rss_after / 2**20}


@pytest.mark.timeout(120)
def test_dropping_hundreds_of_pages_at_once_leaves_nothing(tmp_path):
    figures = mass_drop(tmp_path, PAGES)
    assert figures["processes_left"] == 0 and figures["timers_left"] == 0, figures
    # No thread per page: a session's stop waits for its supervisor as mail, so
    # no pool worker waits (and is replaced) per stopping page.
    assert figures["threads_peak"] - figures["threads_before"] <= THREADS_ADDED, figures
    assert figures["seconds"] < 20, figures
    assert not list((tmp_path / "saved").glob("*")) if (tmp_path / "saved").exists() else True


def uploading_sessions(count: int, journals: list[list], **writer_opts) -> list[tuple]:
    """``count`` sessions, each with one upload joined and its first chunk written."""
    started = []
    for journal in journals[:count]:
        session = UploadSession.start(channel_shutdown=WAIT)
        client = InProcessClient(session, timeout=WAIT)
        client.allow_upload(accept="any", chunk_size=10,
                            writer=lambda *_, journal=journal: (FaultyWriter, {"journal": journal, **writer_opts}))
        token = client.preflight_entries([entry_fields("0", "a.bin", 100)])["entries"]["0"]
        channel = client.join(token)
        assert client.push(channel, b"x" * 10) == "ok"
        started.append((session, channel))
    return started


@pytest.mark.timeout(120)
def test_stopping_a_hundred_uploading_sessions_at_once_starts_no_thread_per_session():
    journals: list[list] = [[] for _ in range(SESSIONS)]
    sessions = uploading_sessions(SESSIONS, journals)
    before = threading.active_count()
    with PeakThreads() as threads:
        for session, _ in sessions:
            session.stop(block=False)
        closed_at_death = []
        for (session, channel), journal in zip(sessions, journals):
            assert actors.await_exit(session, WAIT) == "normal"
            closed_at_death.append([item[1] for item in journal if item[0] == "close"])
            assert not channel.is_alive()
    assert closed_at_death == [["cancel"]] * SESSIONS  # every writer closed before its session was gone
    assert threads.peak - before <= THREADS_ADDED, (threads.peak, before, threads.names)
    assert until(lambda: not actors.processes(), WAIT)


@pytest.mark.timeout(60)
def test_a_channel_that_does_not_stop_in_time_is_killed_and_the_session_still_ends(logs):
    journal: list = []
    stall = threading.Event()
    session = UploadSession.start(channel_shutdown=0.2)
    client = InProcessClient(session, timeout=WAIT)
    client.allow_upload(accept="any", chunk_size=10, writer=lambda *_: (
        FaultyWriter, {"journal": journal, "fault": "stall", "at_chunk": 2, "stall_seconds": 60, "stall_event": stall}))
    channel = client.join(client.preflight_entries([entry_fields("0", "a.bin", 100)])["entries"]["0"])
    assert client.push(channel, b"x" * 10) == "ok"
    stalled = channel.ask(("chunk", b"y" * 10), block=False)  # its writer blocks on this chunk
    assert until(lambda: ("chunk", 2) in journal, WAIT)
    try:
        actors.exit(session, "shutdown")
        assert actors.await_exit(session, WAIT) == "shutdown"  # did not wait for the stalled writer
        assert channel.exit_reason == "killed"
        assert any(entry["event"] == "upload_channel_stop_timeout" for entry in logs)
    finally:
        stall.set()
    with pytest.raises(Exception):  # noqa: B017 - the killed channel's reply is dropped
        stalled.get(timeout=WAIT)
    assert until(lambda: not actors.processes(), WAIT)


def test_a_call_during_a_stop_fails_only_once_the_session_is_gone():
    """A stopping session is still alive (its channels are closing): a call
    that arrives meanwhile is not handled, and its asker learns so (with
    ``ActorDeadError``) only when the session is dead, as from a terminating
    gen_server, never while ``is_alive()`` still says yes."""
    stall = threading.Event()
    session = UploadSession.start(channel_shutdown=WAIT)
    client = InProcessClient(session, timeout=WAIT)
    journal: list = []
    client.allow_upload(accept="any", chunk_size=10, writer=lambda *_: (
        FaultyWriter, {"journal": journal, "fault": "stall", "at_chunk": 2, "stall_seconds": 60, "stall_event": stall}))
    channel = client.join(client.preflight_entries([entry_fields("0", "a.bin", 100)])["entries"]["0"])
    assert client.push(channel, b"x" * 10) == "ok"
    channel.ask(("chunk", b"y" * 10), block=False)  # its writer blocks on this chunk
    assert until(lambda: ("chunk", 2) in journal, WAIT)
    try:
        actors.exit(session, "shutdown")
        during = session.proxy().uploads()  # arrives while the stalled channel holds the stop
        with pytest.raises(Exception):  # noqa: B017 - pykka's Timeout: no answer while the session lives
            during.get(timeout=0.3)
        assert session.is_alive()
    finally:
        stall.set()
    with pytest.raises(ActorDeadError):
        during.get(timeout=WAIT)
    assert not session.is_alive()
    assert actors.await_exit(session, WAIT) == "shutdown"
    assert until(lambda: not actors.processes(), WAIT)


if __name__ == "__main__":  # the stress run: python -m tests.hostile.test_mass_drop 6000
    import tempfile
    from pathlib import Path

    actors.configure_logging("warning")  # not a line per connection
    print(mass_drop(Path(tempfile.mkdtemp()), int(sys.argv[1]) if len(sys.argv) > 1 else 6_000))

"""Descriptors run out in a real ``liveupload serve`` (a child started with a
low ``RLIMIT_NOFILE`` and no connection cap): idle TCP connections fill the
table until ``accept()`` fails; the server logs "Too many open files" once per
interval (not once per failed accept: asyncio's own loop would fail about
9,000 times a second), keeps serving the connection it had, and accepts
again, with a real upload completing, once the idle clients are gone."""

from __future__ import annotations

import queue
import re
import resource
import socket
import threading
import time

import psutil
import pytest

from tests.hostile.wire_helpers import assert_real_upload_completes
from tests.server.server_helpers import serve_child
from tests.server.wire import Page, Wire

pytestmark = [pytest.mark.timeout(90), pytest.mark.substrates("pool")]  # the child has its own runtime

LIMIT = 64
"""The child's descriptor limit, soft and hard (so ``serve`` cannot raise it)."""
INTERVAL = 10.0
"""Seconds between two "Too many open files" lines (``quiet_descriptor_exhaustion``)."""
EXHAUSTED = "out of system resource"  # asyncio's message; "Too many open files" is in its traceback


def low_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


class Lines:
    """The child's log, read on a thread of its own, line by line."""

    def __init__(self, stream) -> None:
        self.all: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self._new.put(line)

    def wait_for(self, pattern: str, timeout: float) -> str | None:
        """The next line matching ``pattern`` within ``timeout`` s, else None."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._new.get(timeout=left)
            except queue.Empty:
                return None
            self.all.append(line)
            if re.search(pattern, line):
                return line
        return None

    def join(self) -> None:
        self._thread.join(timeout=10)


def test_at_the_descriptor_limit_the_server_logs_once_per_interval_keeps_serving_and_recovers(tmp_path):
    flags = ("--max-connections", "0", "--request-timeout", "600", "--idle-timeout", "0")
    with serve_child(tmp_path, *flags, preexec_fn=low_nofile) as (proc, url, _):
        lines = Lines(proc.stderr)
        child = psutil.Process(proc.pid)
        wire = Wire(url)  # a connection made before the limit
        try:
            page = Page(wire)
            host, port = url.split("//", 1)[1].rsplit(":", 1)
            idle: list[socket.socket] = []
            try:
                while len(idle) < 3 * LIMIT:  # idle connections, until accept() fails
                    idle.append(socket.create_connection((host, int(port)), timeout=5))
                    if len(idle) >= LIMIT and lines.wait_for(EXHAUSTED, 0.05):
                        break
                else:
                    assert lines.wait_for(EXHAUSTED, 10), "accept() never failed:\n" + "".join(lines.all[-20:])
                assert lines.wait_for(r"\[Errno 24\] Too many open files", 5)  # the line's traceback
                cpu_before = sum(child.cpu_times()[:2])
                waited = time.monotonic()

                # The connection it had is still served.
                assert page.track({"a.txt": 10})["status"] == "ok"

                # One line per interval, saying how many it held back: about one failed accept a second.
                second = lines.wait_for(EXHAUSTED, INTERVAL + 10)
                assert second, "no second line within the interval:\n" + "".join(lines.all[-20:])
                seconds = time.monotonic() - waited
                held = int(re.search(r"\((\d+) more like it", second).group(1))
                assert 1 <= held <= 2 * INTERVAL, second
                assert sum(1 for line in lines.all if EXHAUSTED in line) == 2
                cpu = sum(child.cpu_times()[:2]) - cpu_before
                assert cpu < 0.25 * seconds, (cpu, seconds)  # not spinning on accept()
            finally:
                for sock in idle:
                    sock.close()
            # The idle clients gone, new connections are accepted again.
            assert_real_upload_completes(url, tmp_path)
            wire.heartbeat()
        finally:  # also when an assertion failed: no socket, child or reader thread left
            wire.close()
            proc.kill()
            proc.wait()
            lines.join()

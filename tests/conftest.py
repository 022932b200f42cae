"""Shared fixtures. ``no_leaks`` runs around every test and fails it if the test
left a process, Pykka actor, thread, timer, temp file or socket behind."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time

import psutil
import pykka
import pytest
import structlog

import actors

# The suite's own temp folder: every temp file the tests, the runtime and the
# servers they start make goes here (TMPDIR is inherited by child processes), so
# the leak check looks only at what the tests made and never at, let alone
# deletes, what other programs keep in the system's temp folder.
TMP_DIR = tempfile.mkdtemp(prefix="liveupload-tests-")
os.environ["TMPDIR"] = TMP_DIR
tempfile.tempdir = TMP_DIR
OWN_TMP = ("pytest-of-",)  # pytest's own base temp (tmp_path lives there and is checked by the tests)
GRACE_SECONDS = 5.0


def _sockets() -> set[int]:
    return {c.fd for c in psutil.Process().net_connections(kind="all") if c.fd != -1}


def _temp_entries() -> set[str]:
    """Every file or folder in the temp dir, pytest's own excepted."""
    return {os.path.join(TMP_DIR, name) for name in os.listdir(TMP_DIR) if not name.startswith(OWN_TMP)}


def _snapshot() -> dict[str, set]:
    return {
        "threads": {t for t in threading.enumerate()},
        "processes": set(actors.processes()),
        "pykka actors": set(pykka.ActorRegistry.get_all()),
        "temp files": _temp_entries(),
        "open temp files": {(f.path, f.fd) for f in psutil.Process().open_files() if f.path.startswith(TMP_DIR)},
        "sockets": _sockets(),
    }


def _leaks(before: dict[str, set]) -> dict[str, set]:
    now = _snapshot()
    leaks = {kind: now[kind] - before[kind] for kind in now}
    leaks["threads"] = {t for t in leaks["threads"] if t.is_alive()}
    if actors.pending_timers():
        leaks["timers"] = {f"{actors.pending_timers()} pending"}
    return {kind: found for kind, found in leaks.items() if found}


SUBSTRATES = ("pool", "thread")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "substrates(*names): run this test on these substrates only (default: both)"
    )


def pytest_unconfigure(config):
    """Remove the suite's own temp folder: everything in it was made by the tests."""
    shutil.rmtree(TMP_DIR, ignore_errors=True)


def pytest_generate_tests(metafunc):
    """Every test runs on both substrates unless it names its own with
    ``@pytest.mark.substrates(...)``."""
    if "substrate" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("substrates")
        names = marker.args if marker else SUBSTRATES
        metafunc.parametrize("substrate", names, indirect=True)


@pytest.fixture(autouse=True)
def substrate(request):
    """The default substrate for processes this test starts: the shared scheduler
    ("pool") or a dedicated thread per process ("thread")."""
    old = actors.set_default_substrate(request.param)
    yield request.param
    actors.set_default_substrate(old)


@pytest.fixture(autouse=True)
def no_leaks(substrate):
    """Fail the test if anything it started is still alive once it ends.

    Threads get a short grace to finish exiting (a process's thread runs a few
    lines after its death is visible); the wait is on the resources themselves,
    with a deadline, never a fixed sleep.
    """
    before = _snapshot()
    yield
    deadline = time.monotonic() + GRACE_SECONDS
    while True:
        leaks = _leaks(before)
        threads, procs = leaks.get("threads", ()), leaks.get("processes", ())
        remaining = deadline - time.monotonic()
        if not (threads or procs) or remaining <= 0:
            break
        for ref in procs:
            ref.actor_stopped.wait(max(0.0, deadline - time.monotonic()))
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
    if leaks:
        _clean_up(leaks)
        pytest.fail(f"test left behind: {leaks}", pytrace=False)


def _clean_up(leaks: dict[str, set]) -> None:
    """Kill what leaked so the next test is not blamed for it."""
    for ref in leaks.get("processes", ()):
        actors.exit(ref, actors.KILL)
    for ref in leaks.get("pykka actors", ()):
        ref.stop(block=False)
    for path in leaks.get("temp files", ()):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass


@pytest.fixture
def logs():
    """Structured log entries emitted during the test (structlog's capture)."""
    with structlog.testing.capture_logs() as captured:
        yield captured

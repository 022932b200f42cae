"""Shared fixtures. ``no_leaks`` runs around every test and fails it if the test
left a process, Pykka actor, thread, timer, temp file or socket behind.

A test that starts processes runs once per substrate (``substrate``); a test
marked ``pure`` starts none and runs once, and is failed if it does start one.
The folders follow the layers: ``runtime``, ``supervision``, ``writers``,
``uploads``, ``server``, ``client``, ``e2e`` (a browser and the JS client),
``stress`` (crash drills, the benchmark harness), ``project`` (layering, docs),
``s3`` (against a real object store)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
import structlog

import actors
from actors import substrates
from benchmarks.leaks import Baseline, Leaks

# The suite's own temp folder: every temp file the tests, the runtime and the
# servers they start make goes here (TMPDIR is inherited by child processes), so
# the leak check looks only at what the tests made and never at, let alone
# deletes, what other programs keep in the system's temp folder.
TMP_DIR = tempfile.mkdtemp(prefix="liveupload-tests-")
os.environ["TMPDIR"] = TMP_DIR
tempfile.tempdir = TMP_DIR
OWN_TMP = ("pytest-of-",)  # pytest's own base temp (tmp_path lives there and is checked by the tests)
GRACE_SECONDS = 5.0


def _watched(target: str) -> bool:
    """The file descriptors a test must not leave open: sockets and files in our temp folder."""
    return target.startswith(("socket:", os.path.realpath(TMP_DIR)))


SUBSTRATES = ("pool", "thread", "loop")


def pytest_addoption(parser):
    parser.addoption("--drill-seed", dest="drill_seed", default=None,
                     help="the crash drill's random seed (default: $LIVEUPLOAD_DRILL_SEED, "
                          "else the seed it last failed with, else a fresh one)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "substrates(*names): run this test on these substrates only (default: all of SUBSTRATES)"
    )
    config.addinivalue_line(
        "markers", "pure: the test starts no process, so it runs once rather than per substrate (checked)"
    )


def pytest_unconfigure(config):
    """Remove the suite's own temp folder: everything in it was made by the tests."""
    shutil.rmtree(TMP_DIR, ignore_errors=True)


def pytest_generate_tests(metafunc):
    """Every test that starts processes runs on every substrate (pool, thread, loop) unless it names
    its own with ``@pytest.mark.substrates(...)``; a ``pure`` test runs once."""
    if "substrate" in metafunc.fixturenames and not metafunc.definition.get_closest_marker("pure"):
        marker = metafunc.definition.get_closest_marker("substrates")
        names = marker.args if marker else SUBSTRATES
        metafunc.parametrize("substrate", names, indirect=True)


@pytest.fixture(autouse=True)
def substrate(request, monkeypatch):
    """The default substrate for processes this test starts: the shared scheduler
    ("pool"), a dedicated thread per process ("thread"), or callbacks on an
    event loop ("loop": the runtime's own loop thread, or the bound loop of a
    server the test runs). A ``pure`` test has
    none, and fails if it starts a process after all."""
    if not hasattr(request, "param"):
        started = _count_spawns(monkeypatch)
        yield None
        if started:
            pytest.fail(f"a pure test started {len(started)} process(es) ({started[:3]}...): "
                        "drop its `pure` mark so it runs on every substrate", pytrace=False)
        return
    old = actors.set_default_substrate(request.param)
    yield request.param
    actors.set_default_substrate(old)


def _count_spawns(monkeypatch) -> list[str]:
    """Record every process any substrate starts from now until the test ends."""
    started: list[str] = []
    for runner in substrates.SUBSTRATES.values():
        def spawn(process, _spawn=runner.spawn):
            started.append(str(process.actor_ref))
            return _spawn(process)

        monkeypatch.setattr(runner, "spawn", spawn)
    return started


@pytest.fixture(autouse=True)
def no_leaks(substrate):
    """Fail the test if anything it started is still alive once it ends
    (``benchmarks.leaks``, the crash drill's check too).

    Threads get a short grace to finish exiting (a process's thread runs a few
    lines after its death is visible); the wait is on the resources themselves,
    with a deadline, never a fixed sleep.
    """
    before = Baseline(temp_dir=TMP_DIR, ignore=OWN_TMP, descriptors=_watched)
    yield
    before.settle(GRACE_SECONDS)
    leaks = {kind: found for kind, found in before.leaks().items() if found}
    if leaks:
        _clean_up(leaks)
        pytest.fail(f"test left behind: {leaks}", pytrace=False)


def _clean_up(leaks: Leaks) -> None:
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

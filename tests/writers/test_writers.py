"""Behaviour of the ``writers`` package: the contract, the factory helpers and
each writer, including every fault of ``FaultyWriter``."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import structlog
from structlog.testing import capture_logs

import writers
from writers import (
    EchoWriter,
    FaultInjected,
    FaultyWriter,
    MemoryWriter,
    TMPFILE_PREFIX,
    TmpFileWriter,
    UploadWriter,
    default_writer_factory,
    instantiate,
    oserror_reason,
)

pytestmark = pytest.mark.pure  # writers alone: no process


# --------------------------------------------------------------------------
# helpers


def ok_state(result):
    assert isinstance(result, tuple) and len(result) == 2 and result[0] == "ok", result
    return result[1]


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def feed(writer, state, chunks):
    for chunk in chunks:
        state = ok_state(writer.write_chunk(chunk, state))
    return state


@pytest.fixture
def tmp_writer(tmp_path):
    """A TmpFileWriter upload in tmp_path, always released afterwards."""
    writer = TmpFileWriter()
    state = ok_state(writer.init({"dir": tmp_path}))
    yield writer, state
    writer.release(state)


# --------------------------------------------------------------------------
# the package


def test_package_exports_and_does_not_import_the_runtime():
    for name in writers.__all__:
        assert hasattr(writers, name), name
    # A fresh interpreter: importing writers must not pull in the actor runtime.
    code = (
        "import sys, writers; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('actors', 'supervision', 'server', 'pykka')); "
        "sys.exit(str(bad) if bad else 0)"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(writers.__file__)))
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------
# the behaviour


def test_upload_writer_is_abstract():
    with pytest.raises(TypeError):
        UploadWriter()

    class Partial(UploadWriter):
        def init(self, opts):
            return ("ok", None)

    with pytest.raises(TypeError):
        Partial()


def test_release_defaults_to_a_no_op():
    class Minimal(UploadWriter):
        def init(self, opts):
            return ("ok", {"n": 0})

        def meta(self, state):
            return {}

        def write_chunk(self, data, state):
            return ("ok", state)

        def close(self, state, reason):
            return ("ok", state)

    writer = Minimal()
    state = ok_state(writer.init(None))
    assert writer.release(state) is None
    assert state == {"n": 0}


# --------------------------------------------------------------------------
# factories


def test_instantiate_accepts_a_class():
    writer, opts = instantiate((EchoWriter, {"level": "debug"}))
    assert isinstance(writer, EchoWriter)
    assert opts == {"level": "debug"}


def test_instantiate_accepts_an_instance_as_is():
    instance = MemoryWriter()
    writer, opts = instantiate((instance, None))
    assert writer is instance
    assert opts is None


def test_instantiate_accepts_a_list_pair():
    writer, opts = instantiate([MemoryWriter, {}])
    assert isinstance(writer, MemoryWriter) and opts == {}


def test_factory_in_the_phoenix_style():
    factory = lambda name, entry, session: (EchoWriter, {"level": "debug"})  # noqa: E731
    writer, opts = instantiate(factory("avatar", object(), object()))
    state = ok_state(writer.init(opts))
    assert writer.meta(state) == {"level": "debug"}


def test_default_writer_factory_gives_the_tmpfile_writer():
    spec = default_writer_factory("avatar", {"ref": "0"}, None)
    assert spec == (TmpFileWriter, {})
    writer, opts = instantiate(spec)
    assert isinstance(writer, TmpFileWriter)


class _NeedsArgs(MemoryWriter):
    def __init__(self, required):
        self.required = required


@pytest.mark.parametrize(
    "spec, message",
    [
        (EchoWriter, "2-tuple"),
        ((EchoWriter,), "2-tuple"),
        ((EchoWriter, {}, "extra"), "2-tuple"),
        (None, "2-tuple"),
        ("EchoWriter", "2-tuple"),
        ((dict, {}), "not an UploadWriter subclass"),
        ((object(), {}), "UploadWriter subclass or instance"),
        (("EchoWriter", {}), "UploadWriter subclass or instance"),
        ((lambda: None, {}), "UploadWriter subclass or instance"),
        ((UploadWriter, {}), "cannot instantiate writer class UploadWriter"),
        ((_NeedsArgs, {}), "cannot instantiate writer class _NeedsArgs"),
    ],
)
def test_instantiate_rejects_junk(spec, message):
    with pytest.raises(TypeError, match=message):
        instantiate(spec)


# --------------------------------------------------------------------------
# TmpFileWriter


def test_tmpfile_done_keeps_exact_bytes_until_release(tmp_path):
    writer = TmpFileWriter()
    state = ok_state(writer.init({"dir": tmp_path}))
    try:
        path = writer.meta(state)["path"]
        assert os.path.dirname(path) == str(tmp_path)
        name = os.path.basename(path)
        assert name.startswith(TMPFILE_PREFIX) and name.startswith("liveupload-")
        assert name.endswith(".upload")
        assert os.path.exists(path)

        chunks = [b"hello ", b"", b"\x00\xff" * 1000, bytearray(b"tail"), memoryview(b"!")]
        state = feed(writer, state, chunks)
        assert ok_state(writer.close(state, "done")) is state

        assert writer.meta(state) == {"path": path}
        with open(path, "rb") as f:
            assert f.read() == b"".join(bytes(c) for c in chunks)
    finally:
        writer.release(state)
    assert not os.path.exists(path)
    writer.release(state)  # twice is fine
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("reason", ["cancel", ("error", "enoent")])
def test_tmpfile_close_deletes_a_cancelled_or_failed_upload(tmp_writer, reason):
    writer, state = tmp_writer
    state = feed(writer, state, [b"partial"])
    path = writer.meta(state)["path"]
    assert writer.close(state, reason) == ("ok", state)
    assert not os.path.exists(path)  # never consumed: nothing is left even before release
    writer.release(state)  # and release still does no harm
    assert not os.path.exists(path)


def test_tmpfile_close_done_keeps_the_file_for_consumption(tmp_writer):
    writer, state = tmp_writer
    state = feed(writer, state, [b"whole"])
    assert writer.close(state, "done") == ("ok", state)
    assert _read(writer.meta(state)["path"]) == b"whole"


def test_tmpfile_make_dir_makes_its_folder_and_removes_it_once_empty(tmp_path):
    folder = tmp_path / "uploads" / ".partial"
    writer = TmpFileWriter()
    opts = {"dir": str(folder), "make_dir": True, "mode": 0o644}
    a, b = ok_state(writer.init(opts)), ok_state(writer.init(opts))
    assert folder.is_dir() and stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0  # private until saved
    assert stat.S_IMODE(os.stat(a.path).st_mode) == 0o644 & ~_umask()
    writer.close(a, "cancel")
    assert sorted(os.listdir(folder)) == [os.path.basename(b.path)]  # b still there: the folder stays
    writer.close(b, "done")
    writer.release(a)
    writer.release(b)
    assert not folder.exists()
    assert os.listdir(tmp_path / "uploads") == []
    c = ok_state(writer.init(opts))  # made again when needed
    writer.release(c)
    assert not folder.exists()


def test_tmpfile_default_mode_is_private(tmp_writer):
    writer, state = tmp_writer
    assert stat.S_IMODE(os.stat(state.path).st_mode) == 0o600


def test_tmpfile_takes_memoryviews_without_copying_them_first(tmp_writer):
    writer, state = tmp_writer
    frame = bytearray(b"header" + b"\x01" * 64_000)
    state = feed(writer, state, [memoryview(frame)[6:]])
    writer.close(state, "done")
    assert _read(state.path) == b"\x01" * 64_000 and state.size == 64_000


def _umask() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))


def test_tmpfile_uses_the_system_temp_dir_by_default():
    writer = TmpFileWriter()
    state = ok_state(writer.init({}))
    try:
        path = writer.meta(state)["path"]
        assert os.path.dirname(path) == tempfile.gettempdir()
        assert os.path.basename(path).startswith(TMPFILE_PREFIX)
        writer.close(state, "done")
    finally:
        writer.release(state)
    assert not os.path.exists(path)


def test_tmpfile_accepts_no_opts(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    writer = TmpFileWriter()
    state = ok_state(writer.init(None))
    try:
        assert os.path.dirname(writer.meta(state)["path"]) == str(tmp_path)
    finally:
        writer.release(state)


def test_tmpfile_each_upload_gets_a_fresh_file(tmp_path):
    writer = TmpFileWriter()
    a = ok_state(writer.init({"dir": tmp_path}))
    b = ok_state(writer.init({"dir": tmp_path}))
    try:
        assert writer.meta(a)["path"] != writer.meta(b)["path"]
        feed(writer, a, [b"a"])
        feed(writer, b, [b"b"])
        writer.close(a, "done")
        writer.close(b, "done")
        assert _read(writer.meta(a)["path"]) == b"a"
        assert _read(writer.meta(b)["path"]) == b"b"
    finally:
        writer.release(a)
        writer.release(b)
    assert os.listdir(tmp_path) == []


def test_tmpfile_init_error_shape(tmp_path):
    result = TmpFileWriter().init({"dir": tmp_path / "missing"})
    assert result == ("error", "enoent")
    assert os.listdir(tmp_path) == []


def test_tmpfile_write_error_shape_then_close_error(tmp_writer):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    writer, state = tmp_writer
    state.file.close()
    state.file = open("/dev/full", "wb")  # every flush fails with ENOSPC
    result = writer.write_chunk(b"x" * 10, state)
    assert result == ("error", "enospc", state)
    assert state.size == 0
    # The unflushed bytes fail the close too; the handle is closed anyway.
    handle = state.file
    assert writer.close(state, ("error", "enospc")) == ("error", "enospc")
    assert handle.closed


def test_tmpfile_release_without_close_closes_and_deletes(tmp_path):
    writer = TmpFileWriter()
    state = ok_state(writer.init({"dir": tmp_path}))
    feed(writer, state, [b"abc"])
    handle = state.file
    writer.release(state)  # e.g. the channel crashed before close
    assert handle.closed
    assert os.listdir(tmp_path) == []
    writer.release(state)


def test_tmpfile_release_after_file_already_gone(tmp_writer):
    writer, state = tmp_writer
    writer.close(state, "done")
    os.unlink(writer.meta(state)["path"])  # e.g. the consumer moved it away
    writer.release(state)


def test_tmpfile_write_after_close_is_a_bug(tmp_writer):
    writer, state = tmp_writer
    writer.close(state, "cancel")
    with pytest.raises(ValueError, match="after close"):
        writer.write_chunk(b"late", state)


def test_tmpfile_close_twice_is_harmless(tmp_writer):
    writer, state = tmp_writer
    assert writer.close(state, "done") == ("ok", state)
    assert writer.close(state, "cancel") == ("ok", state)


def test_oserror_reason():
    assert oserror_reason(FileNotFoundError(2, "nope")) == "enoent"
    assert oserror_reason(OSError("plain")) == "plain"
    assert oserror_reason(OSError(99999, "odd")) == "[Errno 99999] odd"


# --------------------------------------------------------------------------
# EchoWriter


def test_echo_logs_each_chunk_and_the_close():
    writer = EchoWriter()
    state = ok_state(writer.init({"level": "debug"}))
    assert state == {"total": 0, "level": "debug", "method": "debug"}
    assert writer.meta(state) == {"level": "debug"}
    with capture_logs() as logs:
        state = feed(writer, state, [b"abc", b"defgh"])
        assert writer.close(state, "done") == ("ok", state)
    assert state["total"] == 8
    assert logs == [
        {"event": "received chunk", "log_level": "debug", "size": 3, "total": 3},
        {"event": "received chunk", "log_level": "debug", "size": 5, "total": 8},
        {"event": "closing upload", "log_level": "debug", "total": 8, "reason": "done"},
    ]


@pytest.mark.parametrize(
    "level, logged",
    [("info", "info"), ("WARN", "warning"), ("warning", "warning"), ("error", "error"), ("critical", "critical")],
)
def test_echo_logs_at_the_requested_level(level, logged):
    writer = EchoWriter()
    state = ok_state(writer.init({"level": level}))
    assert writer.meta(state) == {"level": level}  # as configured, like the seed's meta
    with capture_logs() as logs:
        state = feed(writer, state, [b"x"])
        writer.close(state, ("error", "boom"))
    assert [e["log_level"] for e in logs] == [logged, logged]
    assert logs[1]["reason"] == ("error", "boom")


def test_echo_logs_through_the_liveupload_writers_logger(caplog):
    old = structlog.get_config()
    structlog.configure(
        processors=[structlog.processors.KeyValueRenderer(key_order=["event", "size", "total"])],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        cache_logger_on_first_use=False,
    )
    try:
        caplog.set_level(logging.DEBUG, logger="liveupload.writers")
        writer = EchoWriter()
        state = ok_state(writer.init({"level": "info"}))
        feed(writer, state, [b"abcd"])
    finally:
        structlog.configure(**old)
    [record] = [r for r in caplog.records if r.name == "liveupload.writers"]
    assert record.levelno == logging.INFO
    assert record.getMessage() == "event='received chunk' size=4 total=4"


@pytest.mark.parametrize(
    "opts, reason",
    [
        ({}, "missing_level"),
        (None, "missing_level"),
        ([("level", "debug")], "missing_level"),
        ({"level": "loud"}, ("unknown_level", "loud")),
        ({"level": 10}, ("unknown_level", 10)),
    ],
)
def test_echo_init_error_shape(opts, reason):
    assert EchoWriter().init(opts) == ("error", reason)


# --------------------------------------------------------------------------
# MemoryWriter


@pytest.mark.parametrize("reason", ["done", "cancel", ("error", "x")])
def test_memory_collects_chunks(reason):
    writer = MemoryWriter()
    state = ok_state(writer.init({}))
    assert writer.meta(state) == {"data": b""}
    state = feed(writer, state, [b"ab", bytearray(b"cd"), memoryview(b"e")])
    assert writer.meta(state) == {"data": b"abcde"}
    assert isinstance(writer.meta(state)["data"], bytes)
    assert state.chunks == 3 and state.size == 5
    assert writer.close(state, reason) == ("ok", state)
    assert writer.meta(state) == {"data": b"abcde"}
    writer.release(state)
    assert writer.meta(state) == {"data": b""}
    writer.release(state)


def test_shared_instance_keeps_uploads_apart():
    writer = MemoryWriter()
    a = ok_state(writer.init(None))
    b = ok_state(writer.init(None))
    feed(writer, a, [b"a"])
    feed(writer, b, [b"b"])
    assert writer.meta(a) == {"data": b"a"}
    assert writer.meta(b) == {"data": b"b"}


# --------------------------------------------------------------------------
# FaultyWriter


def test_faulty_without_fault_is_a_memory_writer_with_a_journal():
    journal = []
    writer = FaultyWriter()
    state = ok_state(writer.init({"journal": journal}))
    state = feed(writer, state, [b"a", b"bc"])
    assert writer.meta(state) == {"data": b"abc"}
    assert writer.close(state, "done") == ("ok", state)
    writer.release(state)
    assert journal == [("init",), ("chunk", 1), ("chunk", 2), ("close", "done")]
    assert (state.chunks, state.closes, state.close_reasons, state.releases) == (2, 1, ["done"], 1)


def test_faulty_accepts_no_opts():
    writer = FaultyWriter()
    state = ok_state(writer.init())
    assert ok_state(writer.init(None)).config == state.config
    assert state.config.fault is None


@pytest.mark.parametrize("at_chunk", [1, 3])
def test_faulty_raise_at_chunk(at_chunk):
    journal = []
    writer = FaultyWriter()
    state = ok_state(writer.init({"fault": "raise", "at_chunk": at_chunk, "journal": journal}))
    state = feed(writer, state, [b"x"] * (at_chunk - 1))
    with pytest.raises(FaultInjected, match=f"injected at chunk {at_chunk}"):
        writer.write_chunk(b"boom", state)
    # The last good state is untouched, so the channel can close with it.
    assert state.chunks == at_chunk - 1
    assert writer.meta(state) == {"data": b"x" * (at_chunk - 1)}
    assert writer.close(state, "cancel") == ("ok", state)
    assert journal == [("init",)] + [("chunk", n) for n in range(1, at_chunk + 1)] + [("close", "cancel")]


def test_faulty_raise_custom_exception_and_reason():
    writer = FaultyWriter()
    state = ok_state(writer.init({"fault": "raise", "exception": ZeroDivisionError, "reason": "kaput"}))
    with pytest.raises(ZeroDivisionError, match="kaput at chunk 1"):
        writer.write_chunk(b"x", state)


def test_fault_injected_is_a_runtime_error():
    assert issubclass(FaultInjected, RuntimeError)


def test_faulty_keyboard_interrupt_at_chunk():
    journal = []
    writer = FaultyWriter()
    state = ok_state(writer.init({"fault": "keyboard_interrupt", "at_chunk": 2, "journal": journal}))
    state = feed(writer, state, [b"ok"])
    with pytest.raises(KeyboardInterrupt):
        writer.write_chunk(b"x", state)
    assert journal == [("init",), ("chunk", 1), ("chunk", 2)]
    assert writer.meta(state) == {"data": b"ok"}


@pytest.mark.parametrize("at_chunk", [1, 2])
def test_faulty_error_at_chunk(at_chunk):
    journal = []
    writer = FaultyWriter()
    state = ok_state(writer.init({"fault": "error", "at_chunk": at_chunk, "reason": "enoent", "journal": journal}))
    state = feed(writer, state, [b"a"] * (at_chunk - 1))
    result = writer.write_chunk(b"bad", state)
    assert result == ("error", "enoent", state)
    assert writer.meta(state) == {"data": b"a" * (at_chunk - 1)}  # the failed chunk is not kept
    assert state.chunks == at_chunk
    assert writer.write_chunk(b"b", state) == ("ok", state)  # only that chunk faults
    assert writer.close(state, ("error", "enoent")) == ("ok", state)
    assert journal[-3:] == [("chunk", at_chunk), ("chunk", at_chunk + 1), ("close", ("error", "enoent"))]


def test_faulty_init_error():
    journal = []
    assert FaultyWriter().init({"fault": "init_error", "journal": journal}) == ("error", "injected")
    assert FaultyWriter().init({"fault": "init_error", "reason": "no_disk"}) == ("error", "no_disk")
    assert journal == [("init",)]


@pytest.mark.parametrize(
    "close_on, reason, fails",
    [
        ("done", "done", True),
        ("done", "cancel", False),
        ("done", ("error", "x"), False),
        ("cancel", "cancel", True),
        ("cancel", "done", False),
        ("error", ("error", "x"), True),
        ("error", "cancel", False),
        ("any", "done", True),
        ("any", "cancel", True),
        ("any", ("error", "x"), True),
    ],
)
def test_faulty_close_error(close_on, reason, fails):
    journal = []
    writer = FaultyWriter()
    state = ok_state(writer.init({"fault": "close_error", "close_on": close_on, "reason": "flush_failed", "journal": journal}))
    state = feed(writer, state, [b"data"])
    result = writer.close(state, reason)
    assert result == (("error", "flush_failed") if fails else ("ok", state))
    assert journal == [("init",), ("chunk", 1), ("close", reason)]
    assert state.closes == 1 and state.close_reasons == [reason]


def test_faulty_close_error_defaults_to_done():
    writer = FaultyWriter()
    state = ok_state(writer.init({"fault": "close_error"}))
    assert writer.close(state, "done") == ("error", "injected")


def test_faulty_journal_records_every_close():
    journal = []
    writer = FaultyWriter()
    state = ok_state(writer.init({"journal": journal}))
    writer.close(state, "done")
    writer.close(state, "cancel")
    assert [e for e in journal if e[0] == "close"] == [("close", "done"), ("close", "cancel")]
    assert state.closes == 2


def test_faulty_journal_release_opt_in():
    journal = []
    writer = FaultyWriter()
    state = ok_state(writer.init({"journal": journal, "journal_release": True}))
    writer.close(state, "done")
    writer.release(state)
    assert journal == [("init",), ("close", "done"), ("release",)]
    assert state.releases == 1


def test_faulty_stall_waits_for_the_timeout():
    writer = FaultyWriter()
    state = ok_state(writer.init({"fault": "stall", "at_chunk": 2, "stall_seconds": 0.05}))
    state = feed(writer, state, [b"a"])
    started = time.monotonic()
    assert writer.write_chunk(b"b", state) == ("ok", state)
    assert time.monotonic() - started >= 0.045
    assert writer.meta(state) == {"data": b"ab"}  # the chunk goes through after the stall
    assert state.stalls == 1
    started = time.monotonic()
    writer.write_chunk(b"c", state)
    assert time.monotonic() - started < 0.05
    assert state.stalls == 1


def test_faulty_stall_blocks_until_its_event_is_set():
    entered, release = threading.Event(), threading.Event()

    class Gate:
        def wait(self, timeout):
            entered.set()
            return release.wait(timeout)

    writer = FaultyWriter()
    state = ok_state(writer.init({"fault": "stall", "stall_seconds": 30, "stall_event": Gate()}))
    results = []
    worker = threading.Thread(target=lambda: results.append(writer.write_chunk(b"x", state)))
    worker.start()
    try:
        assert entered.wait(5)
        assert worker.is_alive() and results == []
    finally:
        release.set()
        worker.join(5)
    assert not worker.is_alive()
    assert results == [("ok", state)]
    assert writer.meta(state) == {"data": b"x"}


def test_faulty_stall_uses_an_event_not_sleep(monkeypatch):
    def no_sleep(_):
        raise AssertionError("time.sleep used")

    monkeypatch.setattr(time, "sleep", no_sleep)
    preset = threading.Event()
    preset.set()
    writer = FaultyWriter()
    state = ok_state(writer.init({"fault": "stall", "stall_seconds": 30, "stall_event": preset}))
    assert writer.write_chunk(b"x", state) == ("ok", state)
    state = ok_state(writer.init({"fault": "stall", "stall_seconds": 0}))
    assert writer.write_chunk(b"x", state) == ("ok", state)


@pytest.mark.parametrize(
    "opts, error",
    [
        ({"fault": "explode"}, ValueError),
        ({"at_chunk": 0}, ValueError),
        ({"at_chunk": True}, ValueError),
        ({"at_chunk": "1"}, ValueError),
        ({"close_on": "never"}, ValueError),
        ({"stall_seconds": -1}, ValueError),
        ({"stall_seconds": None}, ValueError),
        ({"stall_event": object()}, TypeError),
        ({"exception": "FaultInjected"}, TypeError),
        ({"exception": FaultInjected("x")}, TypeError),
        ({"journal": object()}, TypeError),
        ({"jurnal": []}, ValueError),
        ([("fault", "raise")], TypeError),
    ],
)
def test_faulty_rejects_bad_opts(opts, error):
    with pytest.raises(error):
        FaultyWriter().init(opts)


def test_faulty_through_a_factory():
    journal = []
    writer, opts = instantiate((FaultyWriter, {"fault": "error", "journal": journal}))
    state = ok_state(writer.init(opts))
    assert writer.write_chunk(b"x", state)[:2] == ("error", "injected")
    assert journal == [("init",), ("chunk", 1)]

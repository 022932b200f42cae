"""The upload channel and session (issue: Uploads), ported from the behaviours of
Phoenix LiveView's upload channel tests, plus a crash test per writer fault."""

from __future__ import annotations

import os
import queue
import threading

import pykka
import pytest

import actors
from uploads import CLIENT_LEFT, UploadChannel, UploadSession, session_for_token
from tests.helpers import WAIT, Probe, next_matching
from uploads.inprocess import InProcessClient, entry_fields, stop_session
from writers import EchoWriter, FaultInjected, FaultyWriter, MemoryWriter, TmpFileWriter

DATA = bytes(range(256)) * 600  # 153,600 bytes: three chunks of 64,000


def faulty(journal: list, **opts):
    return lambda name, entry, session: (FaultyWriter, {"journal": journal, **opts})


def closes(journal: list) -> list:
    return [item[1] for item in journal if item[0] == "close"]


def started(**allow):
    session = UploadSession.start()
    client = InProcessClient(session)
    allow.setdefault("accept", "any")
    client.call("allow_upload", "avatar", **allow)
    return session, client


def channel_of(client: InProcessClient, ref: str = "0"):
    return client.proxy.configs.get(timeout=WAIT)["avatar"].entry(ref).channel


# -- join ------------------------------------------------------------------------


def test_invalid_forged_and_foreign_tokens_are_refused():
    session, client = started()
    other, other_client = started()
    try:
        token = client.preflight({"a.bin": b"x"})["entries"]["0"]
        foreign = other_client.preflight({"a.bin": b"x"})["entries"]["0"]
        assert client.join("garbage") == ("error", {"reason": "invalid_token"})
        assert client.join(token[:-2] + ("AA" if not token.endswith("AA") else "BB")) == ("error", {"reason": "invalid_token"})
        assert client.join(foreign) == ("error", {"reason": "invalid_token"})
        assert client.join(12345) == ("error", {"reason": "invalid_token"})
        assert session_for_token(token) is session
        assert session_for_token(foreign) is other
        assert session_for_token("nobody.x") is None
    finally:
        stop_session(session)
        stop_session(other)


def test_expired_token_is_refused():
    session = UploadSession.start(token_max_age=-1)  # every token is already expired
    client = InProcessClient(session)
    try:
        client.call("allow_upload", "avatar", accept="any")
        token = client.preflight({"a.bin": b"x"})["entries"]["0"]
        assert client.join(token) == ("error", {"reason": "invalid_token"})
    finally:
        stop_session(session)


def test_second_join_with_the_same_token_is_already_registered():
    session, client = started(writer=lambda *_: (MemoryWriter, {}))
    try:
        token = client.preflight({"a.bin": b"abc"})["entries"]["0"]
        channel = client.join(token)
        assert isinstance(channel, actors.ProcessRef)
        assert client.join(token) == ("error", {"reason": "already_registered"})
        assert client.send(channel, b"abc", 10) == ["ok"]
        assert client.join(token) == ("error", {"reason": "already_registered"})
    finally:
        stop_session(session)


def test_token_of_a_cancelled_or_disallowed_entry_is_disallowed():
    session, client = started()
    try:
        token = client.preflight({"a.bin": b"abc"})["entries"]["0"]
        client.call("cancel_upload", "avatar", "0")
        assert client.join(token) == ("error", {"reason": "disallowed"})
        token = client.preflight({"b.bin": b"abc"}, first_ref=1)["entries"]["1"]
        client.call("disallow_upload", "avatar")
        assert client.join(token) == ("error", {"reason": "disallowed"})
    finally:
        stop_session(session)


# -- chunks, sizes, timeouts ---------------------------------------------------------


def test_upload_to_a_temp_file_is_byte_identical_and_the_file_goes_with_its_channel():
    session, client = started()
    try:
        replies = client.upload({"cat.bin": DATA})
        assert replies == {"cat.bin": ["ok", "ok", "ok"]}
        entry = client.entry("0")
        assert entry["done"] and entry["progress"] == 100 and entry["valid"]
        seen = []

        def copy(meta, entry):
            with open(meta["path"], "rb") as f:
                seen.append((f.read(), entry["client_name"]))
            return ("ok", meta["path"])

        channel = channel_of(client)
        [path] = client.call("consume_uploaded_entries", "avatar", copy)
        assert seen == [(DATA, "cat.bin")]
        assert actors.await_exit(channel, WAIT) == ("shutdown", "consumed")
        assert not os.path.exists(path)  # released with the channel
        assert client.call("uploads")["avatar"]["entries"] == []
    finally:
        stop_session(session)


def test_bytes_beyond_the_declared_size_are_refused_and_the_writer_cancelled():
    journal = []
    session, client = started(writer=faulty(journal))
    try:
        reply = client.preflight({"a.bin": b"12345"})
        channel = client.join(reply["entries"]["0"])
        assert channel.ask(("chunk", b"123"), timeout=WAIT) == "ok"
        assert channel.ask(("chunk", b"456"), timeout=WAIT) == (
            "error",
            {"reason": "file_size_limit_exceeded", "limit": 5},
        )
        assert actors.await_exit(channel, WAIT) == ("shutdown", "file_size_limit_exceeded")
        assert closes(journal) == ["cancel"]
        session.proxy().uploads().get(timeout=WAIT)  # the Down has been handled
        assert client.entry("0")["errors"] == ["file_size_limit_exceeded"]
    finally:
        stop_session(session)


def test_a_chunk_after_the_last_byte_stops_the_channel_and_loses_the_upload():
    # Phoenix: uploaded + chunk > size is refused and the channel stops, also
    # once every byte arrived; the writer, already closed "done", is not closed again.
    journal = []
    session, client = started(writer=faulty(journal))
    try:
        channel = client.join(client.preflight({"a.bin": b"12345"})["entries"]["0"])
        assert channel.ask(("chunk", b"12345"), timeout=WAIT) == "ok"
        assert channel.ask(("chunk", b"6"), timeout=WAIT) == (
            "error",
            {"reason": "file_size_limit_exceeded", "limit": 5},
        )
        assert actors.await_exit(channel, WAIT) == ("shutdown", "file_size_limit_exceeded")
        assert closes(journal) == ["done"]
        session.proxy().uploads().get(timeout=WAIT)  # the Down has been handled
        assert client.call("uploaded_entries", "avatar") == ([], [])
    finally:
        stop_session(session)


def test_no_chunk_within_the_timeout_stops_the_channel_and_cancels_the_writer():
    journal = []
    session, client = started(writer=faulty(journal), chunk_timeout=0.05)
    try:
        channel = client.join(client.preflight({"a.bin": b"12345"})["entries"]["0"])
        assert channel.ask(("chunk", b"12"), timeout=WAIT) == "ok"
        assert actors.await_exit(channel, WAIT) == ("shutdown", "timeout")
        assert closes(journal) == ["cancel"]
        session.proxy().uploads().get(timeout=WAIT)
        assert client.entry("0")["errors"] == ["timeout"]
        assert session.is_alive()
    finally:
        stop_session(session)


def test_chunks_keep_the_channel_alive_past_one_timeout_period():
    session, client = started(writer=lambda *_: (MemoryWriter, {}), chunk_timeout=0.2)
    try:
        data = b"x" * 50
        channel = client.join(client.preflight({"a.bin": data})["entries"]["0"])
        for i in range(0, 50, 5):  # stop-and-wait round trips, each well within the timeout
            assert channel.ask(("chunk", data[i : i + 5]), timeout=WAIT) == "ok"
        assert client.entry("0")["done"]
    finally:
        stop_session(session)


def test_empty_file_completes_with_one_empty_chunk():
    session, client = started(writer=lambda *_: (MemoryWriter, {}))
    try:
        assert client.upload({"empty.txt": b""}) == {"empty.txt": ["ok"]}
        assert client.call("consume_uploaded_entries", "avatar", lambda meta: ("ok", meta["data"])) == [b""]
    finally:
        stop_session(session)


# -- validation -------------------------------------------------------------------------


def test_entries_under_and_over_max_entries():
    session, client = started(max_entries=2)
    try:
        ok = client.preflight({"a": b"1", "b": b"2"})
        assert set(ok["entries"]) == {"0", "1"} and ok["errors"] == {}
        assert ok["config"] == {"max_file_size": 8_000_000, "max_entries": 2, "chunk_size": 64_000, "chunk_timeout": 10_000}
        over = client.preflight({"c": b"3"}, first_ref=2)
        assert over == {"ref": over["ref"], "error": [[over["ref"], "too_many_files"]]}
        assert client.call("upload_errors", "avatar") == ["too_many_files"]
        client.call("cancel_upload", "avatar", "2")
        assert client.call("upload_errors", "avatar") == []
    finally:
        stop_session(session)


def test_with_max_entries_1_a_new_file_replaces_the_one_selected_before():
    # Phoenix's maybe_replace_sole_entry: a single-file input sends only the new
    # file, which replaces the old entry (cancelled, its writer closed "cancel").
    journal = []
    session, client = started(writer=faulty(journal))  # max_entries defaults to 1
    try:
        first = client.preflight({"a.bin": b"12345"})
        channel = client.join(first["entries"]["0"])
        assert channel.ask(("chunk", b"12"), timeout=WAIT) == "ok"
        second = client.preflight({"b.bin": b"678"}, first_ref=1)
        assert second["errors"] == {} and list(second["entries"]) == ["1"]
        assert [e["ref"] for e in client.call("uploads")["avatar"]["entries"]] == ["1"]
        assert actors.await_exit(channel, WAIT) == ("shutdown", "cancelled")
        assert closes(journal) == ["cancel"]
        # Re-sending the same single file keeps it; two files at once are still too many.
        client.call("put_entries", "avatar", [entry_fields("1", "b.bin", 3)])
        assert [e["ref"] for e in client.call("uploads")["avatar"]["entries"]] == ["1"]
        over = client.preflight({"c": b"1", "d": b"2"}, first_ref=2)
        assert over["error"] == [[over["ref"], "too_many_files"]]
        # A malformed replacement is refused before it can cancel anything.
        client.call("cancel_upload", "avatar", "2")
        client.call("cancel_upload", "avatar", "3")
        assert client.call("put_entries", "avatar", [{"ref": "9", "size": 3}])[0] == "error"
        assert [e["ref"] for e in client.call("uploads")["avatar"]["entries"]] == ["1"]
    finally:
        stop_session(session)


def test_total_mode_counts_consumed_entries():
    session, client = started(max_entries=1, max_entries_mode="total", writer=lambda *_: (MemoryWriter, {}))
    try:
        client.upload({"a": b"1"})
        client.call("consume_uploaded_entries", "avatar", lambda meta: ("ok", None))
        over = client.preflight({"b": b"2"}, first_ref=1)
        assert over["error"] == [[over["ref"], "too_many_files"]]
    finally:
        stop_session(session)


def test_too_large_and_not_accepted_are_entry_errors():
    session = UploadSession.start()
    client = InProcessClient(session)
    try:
        client.call("allow_upload", "avatar", accept=[".jpg", "image/png", "text/*"], max_file_size=10, max_entries=5)
        entries = [
            entry_fields("0", "a.JPG", 5, "image/jpeg"),
            entry_fields("1", "b.png", 5, "image/png"),
            entry_fields("2", "c.md", 5, "text/markdown"),
            entry_fields("3", "d.exe", 5, "application/x-msdownload"),
            entry_fields("4", "e.jpg", 11, "image/jpeg"),
        ]
        reply = client.call("preflight", "avatar", entries)
        assert sorted(reply["error"]) == [["3", "not_accepted"], ["4", "too_large"]]
        assert client.call("upload_errors", "avatar", "3") == ["not_accepted"]
        assert client.entry("0")["valid"] and not client.entry("4")["valid"]
    finally:
        stop_session(session)


def test_allow_upload_rejects_bad_options():
    session = UploadSession.start()
    try:
        with pytest.raises(ValueError, match="accept"):
            session.proxy().allow_upload("x", accept="jpg").get(timeout=WAIT)
        assert actors.await_exit(session, WAIT).__class__ is ValueError  # a programming error crashes, as in Phoenix
    finally:
        stop_session(session)


def test_bad_client_input_is_answered_and_never_crashes_the_session():
    session, client = started()
    try:
        assert client.call("preflight", "avatar", [{"ref": "0"}])[0] == "error"
        assert client.call("preflight", "avatar", "not a list")[0] == "error"
        assert client.call("preflight", "avatar", [{"ref": "0", "name": "a", "size": -1}])[0] == "error"
        assert client.call("preflight", "nope", [])[0] == "error"
        for unhashable in (["avatar"], {"a": 1}):  # the session guards its own API, not only the server
            assert client.call("put_entries", unhashable, [])[0] == "error"
            assert client.call("update_progress", unhashable, "0", 10)[0] == "error"
        assert client.call("update_progress", "avatar", "404", 10)[0] == "error"
        assert client.call("cancel_upload", "avatar", "404")[0] == "error"
        client.preflight({"a": b"1"})
        assert client.call("update_progress", "avatar", "0", 101)[0] == "error"
        assert session.is_alive()
    finally:
        stop_session(session)


# -- writers -----------------------------------------------------------------------------


def test_writer_configured_by_factory_gets_name_entry_and_session(logs):
    calls = []

    def factory(name, entry, session_ref):
        calls.append((name, entry["client_name"], session_ref))
        return (EchoWriter, {"level": "info"})

    session, client = started(writer=factory)
    try:
        client.upload({"a.txt": b"hello"})
        assert calls == [("avatar", "a.txt", session)]
        metas = client.call("consume_uploaded_entries", "avatar", lambda meta: ("ok", meta))
        assert metas == [{"level": "info"}]
        chunk_logs = [e for e in logs if e["event"] == "received chunk"]
        assert chunk_logs and chunk_logs[0]["log_level"] == "info" and chunk_logs[0]["size"] == 5
    finally:
        stop_session(session)


def test_write_chunk_error_closes_the_channel_but_not_the_session():
    journal = []
    session, client = started(writer=faulty(journal, fault="error", at_chunk=2, reason="enospc"))
    try:
        channel = client.join(client.preflight({"a.bin": DATA})["entries"]["0"])
        assert client.send(channel, DATA, 64_000) == ["ok", ("error", {"reason": "writer_error"})]
        assert actors.await_exit(channel, WAIT) == ("shutdown", "writer_error")  # the reason goes to the entry
        assert closes(journal) == [("error", "enospc")]
        session.proxy().uploads().get(timeout=WAIT)
        assert client.entry("0")["errors"] == [("writer_failure", "enospc")]
        assert session.is_alive()
    finally:
        stop_session(session)


def test_init_error_fails_the_entry_but_not_the_session():
    journal = []
    session, client = started(writer=faulty(journal, fault="init_error", reason="no_space"))
    try:
        token = client.preflight({"a.bin": b"abc"})["entries"]["0"]
        assert client.join(token) == ("error", {"reason": "writer_error"})
        assert client.entry("0")["errors"] == [("writer_failure", "no_space")]
        assert closes(journal) == []  # a writer whose init failed is never closed
        assert session.is_alive()
    finally:
        stop_session(session)


def test_close_error_at_done_is_reported_like_a_write_error():
    journal = []
    session, client = started(writer=faulty(journal, fault="close_error", reason="flush_failed"))
    try:
        channel = client.join(client.preflight({"a.bin": b"abc"})["entries"]["0"])
        assert client.send(channel, b"abc", 10) == [("error", {"reason": "writer_error"})]
        assert actors.await_exit(channel, WAIT) == ("shutdown", "writer_error")  # the reason goes to the entry
        assert closes(journal) == ["done"]  # never closed twice
        session.proxy().uploads().get(timeout=WAIT)
        assert client.entry("0")["errors"] == [("writer_failure", "flush_failed")]
    finally:
        stop_session(session)


def test_successful_sibling_is_consumed_after_another_entrys_writer_failed():
    journals = {"bad.bin": [], "good.bin": []}

    def factory(name, entry, session):
        fault = "error" if entry["client_name"] == "bad.bin" else None
        return (FaultyWriter, {"journal": journals[entry["client_name"]], "fault": fault})

    session, client = started(writer=factory, max_entries=2)
    try:
        replies = client.upload({"bad.bin": b"bad", "good.bin": b"good"})
        assert replies == {"bad.bin": [("error", {"reason": "writer_error"})], "good.bin": ["ok"]}
        assert client.call("consume_uploaded_entries", "avatar", lambda meta: ("ok", meta["data"])) == [b"good"]
        assert closes(journals["bad.bin"]) == [("error", "injected")]
        assert closes(journals["good.bin"]) == ["done"]
    finally:
        stop_session(session)


# -- consuming ------------------------------------------------------------------------------


def test_consume_one_postpone_and_then_consume():
    session, client = started(writer=lambda *_: (MemoryWriter, {}), max_entries=2)
    try:
        client.upload({"a": b"A", "b": b"B"})
        assert client.call("consume_uploaded_entry", "avatar", "1", lambda meta: ("postpone", meta["data"])) == b"B"
        assert len(client.call("uploaded_entries", "avatar")[0]) == 2
        assert client.call("consume_uploaded_entry", "avatar", "1", lambda meta, entry: ("ok", entry["ref"])) == "1"
        done, running = client.call("uploaded_entries", "avatar")
        assert [e["ref"] for e in done] == ["0"] and running == []
        assert client.call("consume_uploaded_entries", "avatar", lambda meta: meta["data"]) == [b"A"]  # warned, consumed
        assert client.call("uploads")["avatar"]["entries"] == []
    finally:
        stop_session(session)


def test_consume_raising_consumes_the_entry_and_reraises(tmp_path):
    session, client = started(writer=lambda *_: (TmpFileWriter, {"dir": str(tmp_path)}))
    try:
        client.upload({"a": b"A"})
        channel = channel_of(client)
        seen = []

        def boom(meta):
            seen.append(os.path.exists(meta["path"]))
            raise LookupError("consumer failed")

        with pytest.raises(LookupError):
            client.call("consume_uploaded_entries", "avatar", boom)
        # As in Phoenix, an exception in the consumer is raised in the session: it crashes.
        assert isinstance(actors.await_exit(session, WAIT), LookupError)
        # The entry was consumed first: its channel ended as consumed and its file is gone.
        assert seen == [True]
        assert actors.await_exit(channel, WAIT) == ("shutdown", "consumed")
        assert list(tmp_path.iterdir()) == []
    finally:
        stop_session(session)


@pytest.mark.parametrize("method", ["consume_uploaded_entries", "consume_uploaded_entry"])
def test_consume_while_in_progress_raises(method):
    session, client = started(writer=lambda *_: (MemoryWriter, {}))
    try:
        channel = client.join(client.preflight({"a": b"AB"})["entries"]["0"])
        channel.ask(("chunk", b"A"), timeout=WAIT)
        args = ("avatar", "0") if method == "consume_uploaded_entry" else ("avatar",)
        with pytest.raises(RuntimeError, match="still in progress"):
            client.call(method, *args, lambda meta: ("ok", 1))
    finally:
        stop_session(session)


# -- cancelling ---------------------------------------------------------------------------------


def test_cancel_in_progress_closes_the_writer_and_removes_the_temp_file(tmp_path):
    session, client = started(writer=lambda *_: (TmpFileWriter, {"dir": str(tmp_path)}))
    try:
        channel = client.join(client.preflight({"a.bin": DATA})["entries"]["0"])
        assert channel.ask(("chunk", DATA[:64_000]), timeout=WAIT) == "ok"
        [tmp_file] = list(tmp_path.iterdir())
        assert tmp_file.stat().st_size == 64_000
        client.call("cancel_upload", "avatar", "0")
        assert actors.await_exit(channel, WAIT) == ("shutdown", "cancelled")
        assert client.call("uploads")["avatar"]["entries"] == []
        assert list(tmp_path.iterdir()) == []
    finally:
        stop_session(session)


def test_cancel_not_yet_started_just_drops_the_entry():
    session, client = started()
    try:
        client.preflight({"a.bin": b"abc"})
        client.call("cancel_upload", "avatar", "0")
        assert client.call("uploads")["avatar"]["entries"] == []
    finally:
        stop_session(session)


def test_channel_cancel_message_replies_ok_and_stops():
    journal = []
    session, client = started(writer=faulty(journal))
    try:
        channel = client.join(client.preflight({"a.bin": b"abc"})["entries"]["0"])
        assert channel.ask("cancel", timeout=WAIT) == "ok"
        assert actors.await_exit(channel, WAIT) == ("shutdown", "cancelled")
        assert closes(journal) == ["cancel"]
        session.proxy().uploads().get(timeout=WAIT)
        assert client.entry("0")["cancelled"]
    finally:
        stop_session(session)


# -- the owner ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["stop", "crash", "kill"])
def test_channel_closes_its_writer_with_cancel_when_the_owner_exits(how):
    journal = []
    session, client = started(writer=faulty(journal))
    supervisor = client.proxy.supervisor.get(timeout=WAIT)
    channel = client.join(client.preflight({"a.bin": DATA})["entries"]["0"])
    assert channel.ask(("chunk", DATA[:10]), timeout=WAIT) == "ok"
    if how == "stop":
        session.stop()
    elif how == "crash":
        session.tell("not a message it knows")
    else:
        actors.exit(session, "kill")
    actors.await_exit(session, WAIT)
    actors.await_exit(channel, WAIT)
    actors.await_exit(supervisor, WAIT)  # a supervisor outlives its children
    assert closes(journal) == ["cancel"]
    assert actors.processes() == []


# -- crashes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["raise", "keyboard_interrupt"])
def test_writer_exception_crashes_only_its_channel(fault, logs):
    journals = {"bad.bin": [], "good.bin": []}

    def factory(name, entry, session):
        return (FaultyWriter, {"journal": journals[entry["client_name"]], "fault": fault if entry["client_name"] == "bad.bin" else None, "at_chunk": 2})

    session, client = started(writer=factory, max_entries=2)
    try:
        reply = client.preflight({"bad.bin": DATA, "good.bin": DATA})
        bad = client.join(reply["entries"]["0"])
        good = client.join(reply["entries"]["1"])
        assert bad.ask(("chunk", DATA[:64_000]), timeout=WAIT) == "ok"
        expected = FaultInjected if fault == "raise" else pykka.ActorDeadError
        with pytest.raises(expected):
            bad.ask(("chunk", DATA[64_000:128_000]), timeout=WAIT)
        reason = actors.await_exit(bad, WAIT)
        assert isinstance(reason, FaultInjected if fault == "raise" else KeyboardInterrupt)
        assert closes(journals["bad.bin"]) == ["cancel"]  # exactly once, with the last good state
        assert client.send(good, DATA, 64_000) == ["ok", "ok", "ok"]
        entry = client.entry("0")
        assert entry["cancelled"] and entry["errors"] == [("channel_crash", reason)]
        reports = [e for e in logs if e["event"] == "supervisor_report"]
        assert len(reports) == 1 and reports[0]["context"] == "child_terminated"
        assert reports[0]["offender"]["id"][-1] == "0"  # its child id names the entry
        assert client.call("consume_uploaded_entries", "avatar", lambda meta: ("ok", len(meta["data"]))) == [len(DATA)]
    finally:
        stop_session(session)


def test_killed_channel_is_a_failed_entry_and_its_writer_is_never_closed_by_a_dead_process():
    journal = []
    session, client = started(writer=faulty(journal))
    try:
        channel = client.join(client.preflight({"a.bin": b"abc"})["entries"]["0"])
        actors.exit(channel, "kill")
        assert actors.await_exit(channel, WAIT) == "killed"
        session.proxy().uploads().get(timeout=WAIT)
        assert client.entry("0")["errors"] == [("channel_crash", "killed")]
        assert closes(journal) == []  # a kill runs no terminate: nothing more happens in it
    finally:
        stop_session(session)


def test_stalled_writer_past_the_chunk_timeout_is_stopped_after_the_stall():
    journal = []
    session, client = started(writer=faulty(journal, fault="stall", stall_seconds=0.2), chunk_timeout=0.05)
    try:
        channel = client.join(client.preflight({"a.bin": b"abcd"})["entries"]["0"])
        assert channel.ask(("chunk", b"ab"), timeout=WAIT) == "ok"  # stalls 0.2 s, then succeeds
        assert actors.await_exit(channel, WAIT) == ("shutdown", "timeout")
        assert closes(journal) == ["cancel"]
    finally:
        stop_session(session)


def test_session_changes_are_announced():
    changes = queue.Queue()
    session = UploadSession.start(on_change=lambda: changes.put("changed"))
    client = InProcessClient(session)
    try:
        client.call("allow_upload", "avatar", accept="any", writer=lambda *_: (MemoryWriter, {}))
        client.upload({"a": b"abc"})
        assert changes.get(timeout=WAIT) == "changed"
    finally:
        stop_session(session)


def test_a_blocking_writer_gets_its_channel_a_dedicated_thread():
    import threading

    seen = []

    class SlowNetworkWriter(MemoryWriter):
        blocking = True

        def write_chunk(self, data, state):
            seen.append(threading.current_thread().name)
            return super().write_chunk(data, state)

    session, client = started(writer=lambda *_: (SlowNetworkWriter, {}))
    try:
        client.upload({"a": b"abc"})
        assert seen and seen[0].startswith("UploadChannel-")
    finally:
        stop_session(session)


def test_a_killed_channels_temp_file_is_removed_by_its_session(tmp_path):
    session, client = started(writer=lambda *_: (TmpFileWriter, {"dir": str(tmp_path)}))
    try:
        channel = client.join(client.preflight({"a.bin": DATA})["entries"]["0"])
        assert channel.ask(("chunk", DATA[:64_000]), timeout=WAIT) == "ok"
        assert len(list(tmp_path.iterdir())) == 1
        actors.exit(channel, "kill")
        assert actors.await_exit(channel, WAIT) == "killed"
        session.proxy().uploads().get(timeout=WAIT)  # the Down has been handled
        assert list(tmp_path.iterdir()) == []
    finally:
        stop_session(session)


def test_a_channel_killed_while_its_writer_initialises_still_removes_the_temp_file(tmp_path):
    entered, release, released = threading.Event(), threading.Event(), threading.Event()

    class SlowInit(TmpFileWriter):
        def init(self, opts):
            result = super().init(opts)  # the temp file exists from here
            entered.set()
            release.wait(WAIT)
            return result

        def release(self, state):
            super().release(state)
            released.set()

    session, client = started(writer=lambda *_: (SlowInit, {"dir": str(tmp_path)}))
    try:
        token = client.preflight({"a.bin": DATA})["entries"]["0"]
        joining = session.proxy().join(token)
        assert entered.wait(WAIT)
        [channel] = [ref for ref in actors.processes() if ref.actor_class is UploadChannel]
        actors.exit(channel, "kill")
        release.set()  # init returns into a dead channel
        assert joining.get(timeout=WAIT) == ("error", {"reason": "writer_error"})
        assert released.wait(WAIT)
        assert list(tmp_path.iterdir()) == []
    finally:
        release.set()
        stop_session(session)


def test_a_done_entry_whose_channel_ended_unconsumed_is_failed_not_consumable():
    session, client = started(writer=lambda *_: (MemoryWriter, {}))
    try:
        client.upload({"a": b"abc"})
        channel = channel_of(client)
        actors.exit(channel, ("shutdown", "closed"))  # ends cleanly before anyone consumed it
        actors.await_exit(channel, WAIT)
        session.proxy().uploads().get(timeout=WAIT)  # its Down has been handled
        assert client.entry("0")["cancelled"]
        assert client.call("uploaded_entries", "avatar") == ([], [])
        assert client.call("consume_uploaded_entries", "avatar", lambda meta: ("ok", 1)) == []
        assert session.is_alive()
    finally:
        stop_session(session)


def test_a_client_leaving_cancels_an_unfinished_upload_and_leaves_a_finished_one_to_its_session():
    journals = {"half.bin": [], "whole.bin": []}

    def factory(name, entry, session):
        return (FaultyWriter, {"journal": journals[entry["client_name"]]})

    session, client = started(writer=factory, max_entries=2)
    try:
        reply = client.preflight({"half.bin": b"abcd", "whole.bin": b"wxyz"})
        half, whole = client.join(reply["entries"]["0"]), client.join(reply["entries"]["1"])
        assert client.send(half, b"ab", 2) == ["ok"]
        assert client.send(whole, b"wxyz", 2) == ["ok", "ok"]
        actors.exit(half, CLIENT_LEFT)
        actors.exit(whole, CLIENT_LEFT)
        assert actors.await_exit(half, WAIT) == CLIENT_LEFT
        assert closes(journals["half.bin"]) == ["cancel"]
        session.proxy().uploads().get(timeout=WAIT)  # the channel's ("cancelled", ref) has been handled
        assert client.entry("0")["cancelled"] and client.entry("0")["errors"] == []
        assert whole.is_alive() and closes(journals["whole.bin"]) == ["done"]
        assert client.call("consume_uploaded_entry", "avatar", "1", lambda meta: ("ok", meta["data"])) == b"wxyz"
        assert actors.await_exit(whole, WAIT) == ("shutdown", "consumed")
    finally:
        stop_session(session)

"""The server's real ``lv:`` and ``lvu:`` handlers against bad input, spoken
to on the wire: every bad input gets Phoenix's error reply or close and a
structured log line, and never takes the server, the page or another upload
down (a ref or entry field of the wrong type included). Also: a client
vanishing mid-upload, two concurrent pages, a writer stalled in
``write_chunk`` while other sockets are served, shutdown with uploads in
flight (in-process and through ``liveupload serve`` with SIGINT/SIGTERM), and
``liveupload serve``'s flags and ``--secret`` across a restart."""

from __future__ import annotations

import os
import re
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

import actors
from server.app import create_app, serve_in_thread
from server.protocol import Message, encode_binary
from tests.server.server_helpers import WAIT, journal_writer, serve_child, wait_released
from tests.server.wire import Page, Upload, Wire, error, fetch_page, ok
from writers import FaultyWriter, Journal

pytestmark = pytest.mark.timeout(30)

UNMATCHED = {"reason": "unmatched topic"}
INVALID_TOKEN = error({"reason": "invalid_token"})


@contextmanager
def server(tmp_path: Path, journal: Journal | None = None, consume: Any = None,
           **options: Any) -> Iterator[tuple[str, Any]]:
    """The real app (one upload ``files``) under uvicorn; writers journal into
    ``journal`` and keep their temp files in ``tmp_path/tmp``."""
    writer_dir = tmp_path / "tmp"
    writer_dir.mkdir(exist_ok=True)
    config = {"accept": "any", "max_entries": 3, "max_file_size": 10_000, "chunk_size": 1_000, **options.pop("config", {})}
    if journal is not None:
        config["writer"] = journal_writer(journal, writer_dir)
    app = create_app(secret="test", uploads_dir=tmp_path / "uploads", consume=consume,
                     upload_configs={"files": config}, **options)
    with serve_in_thread(app) as url:
        yield url, app


def saved(tmp_path: Path) -> dict[str, bytes]:
    folder = tmp_path / "uploads"
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}


def temp_files(tmp_path: Path) -> list[str]:
    return sorted(os.listdir(tmp_path / "tmp"))


def logged(logs: list[dict], event: str, **fields: Any) -> list[dict]:
    return [e for e in logs if e["event"] == event and all(e.get(k) == v for k, v in fields.items())]


# ------------------------------------------------------------ happy path


def test_an_upload_end_to_end_on_the_wire(tmp_path, logs):
    journal = Journal()
    with server(tmp_path, journal) as (url, app):
        wire = Wire(url)
        page = Page(wire)
        tokens = page.upload_tokens({"a.txt": 2_500})
        assert page.view.inputs[0].refs("preflighted") == ["0"]
        upload = Upload(page, "0", tokens["0"])
        assert upload.join_reply == ok()
        upload.send_all(b"a" * 2_500)
        assert page.view.inputs[0].refs("done") == ["0"]
        assert page.submit()["status"] == "ok"
        assert upload.closed() == [upload.join_ref, upload.join_ref, "lvu:0", "phx_close", {}]
        assert page.view.saved == ["a.txt (2500 bytes)"] and page.view.entries == {}
        wire.close()
        wait_released(journal, "a.txt")
    assert saved(tmp_path) == {"a.txt": b"a" * 2_500}
    assert journal.closes("a.txt") == ["done"] and temp_files(tmp_path) == []
    assert logged(logs, "upload.saved", client_name="a.txt")


# ------------------------------------------------------- frames and topics


@pytest.mark.parametrize("frame", ["not json", "[1,2,3]", '["1","2","lv:x","event","no object"]',
                                   b"", b"\x01\x01\x01\x01\x01abcd", bytes([0, 1, 1, 200, 5]) + b"45lvu:0chunk"])
def test_malformed_frames_are_logged_and_dropped_and_the_page_carries_on(tmp_path, logs, frame):
    with server(tmp_path) as (url, _app):
        wire = Wire(url)
        page = Page(wire)
        wire.send_raw(frame)
        wire.heartbeat()  # nothing was sent back for the bad frame
        assert page.track({"x.bin": 10})["status"] == "ok"
        assert list(page.view.entries) == ["0"]
        wire.close()
    bad = logged(logs, "frame.malformed")
    assert len(bad) == 1 and bad[0]["log_level"] == "warning" and bad[0]["error"]


@pytest.mark.pure
def test_unknown_topics_and_pushes_before_a_join_are_unmatched(tmp_path, logs):
    with server(tmp_path) as (url, _app):
        wire = Wire(url)
        assert wire.call("1", "room:lobby", "phx_join", {}) == error(UNMATCHED)
        assert wire.call("4", "lv:nobody", "event", {"type": "form", "event": "save"}) == error(UNMATCHED)
        ref = wire.ref()
        wire.send_raw(encode_binary(Message("12", ref, "lvu:0", "chunk", b"data")))
        assert wire.reply_to(ref) == error(UNMATCHED)
        wire.heartbeat()
        wire.close()
    assert {e["topic"] for e in logged(logs, "topic.unmatched")} == {"room:lobby", "lv:nobody", "lvu:0"}
    assert not actors.processes()  # no session was started for any of it


@pytest.mark.parametrize("change, reason", [
    ({"session": "forged.token.value"}, "unauthorized"),
    ({"params": {"_csrf_token": "not-the-pages"}}, "unauthorized"),
    ({"static": "forged"}, "unauthorized"),
    ({"session": None}, "unauthorized"),
])
@pytest.mark.pure
def test_a_forged_page_session_is_refused(tmp_path, logs, change, reason):
    with server(tmp_path) as (url, app):
        wire = Wire(url)
        page = Page(wire, join=False)
        assert page.join(**change) == error({"reason": reason})
        assert not app.state.live.sessions and not actors.processes()
        wire.close()
    assert logged(logs, "lv.join_refused", reason=reason)


@pytest.mark.pure
def test_a_session_signed_for_another_view_is_refused(tmp_path, logs):
    with server(tmp_path) as (url, _app):
        other = fetch_page(url)
        wire = Wire(url)
        page = Page(wire, tokens={**fetch_page(url), "session": other["session"], "csrf": other["csrf"]}, join=False)
        assert page.join() == error({"reason": "unauthorized"})
        wire.close()
    assert logged(logs, "lv.join_refused", detail="session belongs to another view")


# ---------------------------------------------------------- the lv: topic


def test_bad_lv_events_are_refused_and_the_session_survives(tmp_path, logs):
    with server(tmp_path) as (url, app):
        wire = Wire(url)
        page = Page(wire)
        cref = page.config_ref
        bad = [
            ("dance", {}),
            ("event", {"type": "form", "event": "validate", "uploads": "nope"}),
            ("event", {"type": "form", "event": "validate", "uploads": {cref: [{"ref": "0", "size": -1}]}}),
            ("event", {"type": "form", "event": "validate", "uploads": {"phx-unknown": []}}),
            ("event", {"type": "click", "event": "cancel-upload", "value": "0"}),
            ("event", {"type": "click", "event": "cancel-upload", "value": {"ref": "9", "upload": "files"}}),
            ("event", {"type": "click", "event": "no-such-event", "value": {}}),
            ("allow_upload", {"ref": "phx-unknown", "entries": []}),
            ("allow_upload", {"ref": cref, "entries": "all of them"}),
            ("progress", {"ref": cref, "entry_ref": "9", "progress": 50}),
        ]
        for event, payload in bad:
            reply = page.call(event, payload)
            assert reply["status"] == "error", (event, payload, reply)
        ref = wire.ref()
        wire.send_raw(encode_binary(Message(page.join_ref, ref, page.topic, "event", b"binary")))
        assert wire.reply_to(ref) == error({"reason": "invalid payload"})
        # The same session still works: one upload goes through.
        (session,) = app.state.live.sessions
        tokens = page.upload_tokens({"ok.bin": 5})
        assert page.progress("0", 150)["status"] == "error"
        assert page.progress("0", "half")["status"] == "error"
        upload = Upload(page, "0", tokens["0"])
        upload.send_all(b"12345")
        assert page.submit()["status"] == "ok"
        assert page.view.saved == ["ok.bin (5 bytes)"]
        assert session.is_alive()
        wire.close()
    for event in ("lv.unknown_event", "lv.bad_uploads", "lv.bad_cancel", "lv.cancel_refused",
                  "lv.bad_preflight", "lv.bad_progress", "lv.bad_payload"):
        assert logged(logs, event), event


#: Values of the wrong type for a ref or an entry field: unhashable ones (which
#: would raise inside the session's dict lookups) and merely wrong ones.
WRONG = [["x"], {"a": 1}, 7, None, True, ""]


def _entry(**changes: Any) -> dict:
    fields = {"path": "files", "ref": "5", "name": "e.bin", "size": 3, "type": "x/y",
              "relative_path": "", "last_modified": 1795417331733}
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not _DROP}


_DROP = object()


def _malformed_lv_events(cref: str) -> list[tuple[str, str, dict]]:
    """(event, expected log event, payload) for every lv: event that takes a ref
    or entries, with each field of the wrong type in turn."""
    bad: list[tuple[str, str, dict]] = []
    for value in WRONG:
        bad += [
            ("allow_upload", "lv.bad_preflight", {"ref": value, "entries": []}),
            ("progress", "lv.bad_progress", {"event": None, "ref": value, "entry_ref": "0", "progress": 10}),
            ("progress", "lv.bad_progress", {"event": None, "ref": cref, "entry_ref": value, "progress": 10}),
            ("progress", "lv.bad_progress", {"event": None, "ref": cref, "entry_ref": "0", "progress": {"error": value}}),
            ("event", "lv.bad_cancel", {"type": "click", "event": "cancel-upload", "value": {"ref": value, "upload": "files"}}),
            ("event", "lv.bad_cancel", {"type": "click", "event": "cancel-upload", "value": {"ref": "0", "upload": value}}),
            ("event", "lv.bad_uploads", {"type": "form", "event": "validate", "uploads": {cref: value}}),
            ("allow_upload", "lv.bad_preflight", {"ref": cref, "entries": value}),
            ("allow_upload", "lv.bad_preflight", {"ref": cref, "entries": [value]}),
        ]
        for key in ("ref", "name", "size", "type", "relative_path", "last_modified", "path"):
            if value is None and key not in ("ref", "name", "size"):
                continue  # an optional field may be null
            if value == "" and key not in ("ref", "size", "last_modified"):
                continue  # an empty name, type or path is a string
            if value == 7 and value is not True and key in ("size", "last_modified"):
                continue  # numbers there are right
            entries = [_entry(**{key: value})]
            bad += [
                ("event", "lv.bad_uploads", {"type": "form", "event": "validate", "uploads": {cref: entries}}),
                ("allow_upload", "lv.bad_preflight", {"ref": cref, "entries": entries}),
            ]
    for key in ("ref", "name", "size"):  # required fields missing
        entries = [_entry(**{key: _DROP})]
        bad += [("event", "lv.bad_uploads", {"type": "form", "event": "validate", "uploads": {cref: entries}}),
                ("allow_upload", "lv.bad_preflight", {"ref": cref, "entries": entries})]
    bad += [
        ("progress", "lv.bad_progress", {"ref": cref, "entry_ref": "0", "progress": {"nothing": 1}}),
        ("progress", "lv.bad_progress", {"ref": cref, "entry_ref": "0", "progress": -1}),
        ("progress", "lv.bad_progress", {"ref": cref, "entry_ref": "0", "progress": 5.5}),
        ("progress", "lv.bad_progress", {"ref": cref, "entry_ref": "0", "progress": {"error": {"reason": ["x"]}}}),
    ]
    return bad


def test_non_string_refs_and_entry_fields_are_refused_and_uploads_carry_on(tmp_path, logs):
    """A ref or entry field of the wrong type in any lv: event gets an error
    reply and a warning; the session is untouched: an upload in flight before
    the bad events (a sibling) completes and is saved, and a new one too."""
    journal = Journal()
    with server(tmp_path, journal) as (url, app):
        wire = Wire(url)
        page = Page(wire)
        cref = page.config_ref
        (session,) = app.state.live.sessions
        sibling = Upload(page, "0", page.upload_tokens({"sibling.bin": 2_000})["0"])
        assert sibling.chunk(b"s" * 1_000) == ok()
        bad = _malformed_lv_events(cref)
        assert len(bad) > 100
        for event, log_event, payload in bad:
            before = len(logged(logs, log_event))
            reply = page.call(event, payload)
            assert reply["status"] == "error", (event, payload, reply)
            assert reply["response"]["reason"].startswith("invalid "), reply
            assert len(logged(logs, log_event)) == before + 1, (event, payload)
            assert session.is_alive(), (event, payload)
        assert not logged(logs, "process_crashed") and not logged(logs, "lv.session_crashed")
        # The sibling uploading all along finishes; the page shows it untouched.
        assert list(page.view.entries) == ["0"] and page.view.entries["0"].errors == []
        assert sibling.chunk(b"s" * 1_000) == ok()
        assert page.progress("0", 100)["status"] == "ok"
        assert page.view.inputs[0].refs("done") == ["0"]
        # A client-reported error object with a string reason is taken as that reason.
        late = Upload(page, "1", page.upload_tokens({"sibling.bin": 2_000, "late.bin": 4})["1"])
        assert late.join_reply == ok()
        assert page.progress("1", {"error": {"reason": "channel_crash"}})["status"] == "ok"
        assert page.view.entries["1"].errors == ["channel_crash"]
        assert page.cancel("1")["status"] == "ok"
        assert page.submit()["status"] == "ok"
        assert page.view.saved == ["sibling.bin (2000 bytes)"]
        assert session.is_alive()
        wire.close()
        wait_released(journal, "sibling.bin", "late.bin")
    assert saved(tmp_path) == {"sibling.bin": b"s" * 2_000}
    assert journal.closes("sibling.bin") == ["done"] and journal.closes("late.bin") == ["cancel"]
    warning = logged(logs, "lv.bad_preflight")[0]
    assert warning["log_level"] == "warning" and "ref must be a non-empty string" in warning["why"]


def test_preflight_errors_are_phoenix_s(tmp_path):
    with server(tmp_path, config={"accept": [".txt"], "max_entries": 2, "max_file_size": 100}) as (url, _app):
        wire = Wire(url)
        page = Page(wire)
        page.track({"big.txt": 101, "cat.png": 5})
        entries = page.view.entries
        assert entries["0"].errors == ["too_large"] and entries["1"].errors == ["not_accepted"]
        assert page.view.inputs[0].refs("error") == ["0", "1"]
        response = page.allow()
        assert response["error"] == [["0", "too_large"], ["1", "not_accepted"]]
        assert "entries" not in response
        assert page.cancel("0")["status"] == page.cancel("1")["status"] == "ok"
        page.track({"a.txt": 1, "b.txt": 1, "c.txt": 1}, first_ref=2)
        assert page.view.upload_errors == ["too_many_files"]
        assert page.allow()["error"] == [[page.config_ref, "too_many_files"]]
        wire.close()


def test_a_consume_hook_that_raises_crashes_only_that_page(tmp_path, logs):
    def consume(name, meta, entry):
        raise RuntimeError("hook bug")

    journal = Journal()
    with server(tmp_path, journal, consume=consume) as (url, app):
        wire = Wire(url)
        page = Page(wire)
        upload = Upload(page, "0", page.upload_tokens({"x.bin": 3})["0"])
        upload.send_all(b"xyz")
        ref = wire.ref()
        wire.send(page.join_ref, ref, page.topic, "event", {"type": "form", "event": "save", "value": ""})
        crashed = wire.expect(lambda f: f[2] == page.topic and f[3] == "phx_error")
        assert crashed == [page.join_ref, page.join_ref, page.topic, "phx_error", {"reason": "channel_crash"}]
        wait_released(journal, "x.bin")
        # The socket and the server are fine: the page rejoins with a fresh session.
        wire.heartbeat()
        again = Page(wire)
        assert again.view.entries == {}
        wire.close()
    assert logged(logs, "process_crashed") and logged(logs, "channel.crashed")
    assert saved(tmp_path) == {} and temp_files(tmp_path) == []


# --------------------------------------------------------- upload tokens


def test_forged_and_unknown_tokens_are_invalid(tmp_path, logs):
    journal = Journal()
    with server(tmp_path, journal) as (url, _app):
        wire = Wire(url)
        page = Page(wire)
        token = page.upload_tokens({"a.bin": 10})["0"]
        session_id, _, signed = token.partition(".")
        for i, bad in enumerate([signed[:-2] + ("AA" if not signed.endswith("AA") else "BB"),
                                 "nosuchsession." + signed, "", 42, None, ["x"]]):
            forged = f"{session_id}.{bad}" if i == 0 else bad
            assert Upload(page, "0", forged, topic=f"lvu:f{i}").join_reply == INVALID_TOKEN
        assert Upload(page, "0", token).join_reply == ok()  # the real one still works
        wire.close()
    assert len(logged(logs, "lvu.join_refused", reason="invalid_token")) == 6


def test_a_token_of_another_page_cannot_be_passed_off_as_this_one_s(tmp_path):
    with server(tmp_path) as (url, _app):
        wire_a, wire_b = Wire(url), Wire(url)
        page_a, page_b = Page(wire_a), Page(wire_b)
        token_a = page_a.upload_tokens({"a.bin": 10})["0"]
        token_b = page_b.upload_tokens({"b.bin": 10})["0"]
        session_b = token_b.partition(".")[0]
        foreign = session_b + "." + token_a.partition(".")[2]  # routed to B, signed by A
        assert Upload(page_b, "0", foreign).join_reply == INVALID_TOKEN
        wire_a.close()
        wire_b.close()


def test_an_expired_token_is_invalid(tmp_path):
    with server(tmp_path, token_max_age=-1) as (url, _app):  # every token is already too old
        wire = Wire(url)
        page = Page(wire)
        token = page.upload_tokens({"a.bin": 10})["0"]
        assert Upload(page, "0", token).join_reply == INVALID_TOKEN
        wire.close()


def test_a_replayed_token_is_already_registered_then_disallowed(tmp_path, logs):
    journal = Journal()
    with server(tmp_path, journal) as (url, _app):
        wire, other = Wire(url), Wire(url)
        page = Page(wire)
        token = page.upload_tokens({"a.bin": 4})["0"]
        upload = Upload(page, "0", token)
        thief = Page(other)
        assert Upload(thief, "0", token).join_reply == error({"reason": "already_registered"})
        upload.send_all(b"abcd")
        assert Upload(thief, "0", token).join_reply == error({"reason": "already_registered"})
        assert page.submit()["status"] == "ok"
        upload.closed()
        assert Upload(thief, "0", token).join_reply == error({"reason": "disallowed"})
        wire.close()
        other.close()
    assert saved(tmp_path) == {"a.bin": b"abcd"}
    assert {e["reason"] for e in logged(logs, "lvu.join_refused")} == {"already_registered", "disallowed"}


def test_a_token_whose_page_has_gone_is_invalid(tmp_path):
    with server(tmp_path) as (url, app):
        wire, other = Wire(url), Wire(url)
        page = Page(wire)
        token = page.upload_tokens({"a.bin": 4})["0"]
        (session,) = app.state.live.sessions
        assert wire.call(page.join_ref, page.topic, "phx_leave", {}) == ok()
        actors.await_exit(session, 10)
        assert Upload(Page(other), "0", token).join_reply == INVALID_TOKEN
        wire.close()
        other.close()


# ------------------------------------------------------ the lvu: topic


def test_chunks_beyond_the_declared_size_are_refused_and_the_topic_closed(tmp_path, logs):
    journal = Journal()
    with server(tmp_path, journal) as (url, _app):
        wire = Wire(url)
        page = Page(wire)
        tokens = page.upload_tokens({"small.bin": 10, "tiny.bin": 3})
        small, tiny = Upload(page, "0", tokens["0"]), Upload(page, "1", tokens["1"])
        assert small.chunk(b"12345678") == ok()
        assert small.chunk(b"90abc") == error({"reason": "file_size_limit_exceeded", "limit": 10})
        assert small.closed()[3] == "phx_close"
        assert tiny.chunk(b"toolong") == error({"reason": "file_size_limit_exceeded", "limit": 3})
        tiny.closed()
        wait_released(journal, "small.bin", "tiny.bin")

        def both_errors_shown(_frame: Any = None) -> bool:
            entries = page.view.entries
            return entries["0"].errors == ["file_size_limit_exceeded"] == entries["1"].errors

        # The session records each error when it sees its channel end, and pushes a
        # diff then: wait for that diff, not for a heartbeat that can overtake it.
        if not both_errors_shown():
            wire.expect(both_errors_shown)
        wire.close()
    assert journal.closes("small.bin") == ["cancel"] == journal.closes("tiny.bin")
    assert temp_files(tmp_path) == [] and saved(tmp_path) == {}
    assert len(logged(logs, "lvu.chunk_refused", reason="file_size_limit_exceeded")) == 2


def test_bad_lvu_events_are_refused(tmp_path, logs):
    journal = Journal()
    with server(tmp_path, journal) as (url, _app):
        wire = Wire(url)
        page = Page(wire)
        upload = Upload(page, "0", page.upload_tokens({"a.bin": 3})["0"])
        assert wire.call(upload.join_ref, upload.topic, "chunk", {"data": "abc"}) == error({"reason": "invalid chunk"})
        assert wire.call(upload.join_ref, upload.topic, "rewind", {}) == error({"reason": "unknown event"})
        upload.send_all(b"abc")
        wire.close()
    assert logged(logs, "lvu.bad_chunk") and logged(logs, "lvu.unknown_event")


def test_phx_leave_on_one_upload_does_not_close_the_page_or_its_siblings(tmp_path, logs):
    journal = Journal()
    with server(tmp_path, journal) as (url, app):
        wire = Wire(url)
        page = Page(wire)
        tokens = page.upload_tokens({"left.bin": 3_000, "stays.bin": 2_000})
        left, stays = Upload(page, "0", tokens["0"]), Upload(page, "1", tokens["1"])
        assert left.chunk(b"l" * 1_000) == ok()
        assert stays.chunk(b"s" * 1_000) == ok()
        assert wire.call(left.join_ref, left.topic, "phx_leave", {}) == ok()
        assert left.closed()[3] == "phx_close"
        wait_released(journal, "left.bin")
        assert stays.chunk(b"s" * 1_000) == ok()
        assert page.progress("1", 100)["status"] == "ok"
        assert page.submit()["status"] == "ok"
        assert page.view.saved == ["stays.bin (2000 bytes)"]
        assert len(app.state.live.sessions) == 1
        wire.close()
    assert journal.closes("left.bin") == ["cancel"]
    assert saved(tmp_path) == {"stays.bin": b"s" * 2_000}
    assert logged(logs, "lvu.left", reason="leave") and logged(logs, "upload_client_left", size=3_000)


def test_a_client_vanishing_mid_upload_cancels_its_writers_and_leaves_nothing(tmp_path, logs):
    journal = Journal()
    with server(tmp_path, journal) as (url, app):
        wire = Wire(url)
        page = Page(wire)
        tokens = page.upload_tokens({"one.bin": 5_000, "two.bin": 5_000})
        for ref, name in (("0", "one.bin"), ("1", "two.bin")):
            assert Upload(page, ref, tokens[ref]).chunk(b"x" * 1_000) == ok()
        (session,) = app.state.live.sessions
        wire.ws.close_socket()  # gone without a close frame
        wait_released(journal, "one.bin", "two.bin")
        assert actors.await_exit(session, 10) == "normal"
        assert not app.state.live.sessions
    assert journal.closes("one.bin") == ["cancel"] == journal.closes("two.bin")
    assert temp_files(tmp_path) == [] and saved(tmp_path) == {}
    assert logged(logs, "lv.left", reason="disconnect")


# ------------------------------------------------------------ many pages


def test_two_concurrent_pages_upload_independently(tmp_path):
    journal = Journal()
    with server(tmp_path, journal) as (url, app):
        wire_a, wire_b = Wire(url), Wire(url)
        page_a, page_b = Page(wire_a), Page(wire_b)
        token_a = page_a.upload_tokens({"same.txt": 2_000})["0"]
        token_b = page_b.upload_tokens({"same.txt": 1_500})["0"]
        up_a, up_b = Upload(page_a, "0", token_a), Upload(page_b, "0", token_b)
        for i in range(2):  # interleaved, chunk by chunk
            assert up_a.chunk(b"A" * 1_000) == ok()
            assert up_b.chunk(b"B" * (1_000 if i == 0 else 500)) == ok()
        assert page_a.progress("0", 100)["status"] == page_b.progress("0", 100)["status"] == "ok"
        assert page_a.submit()["status"] == page_b.submit()["status"] == "ok"
        assert page_a.view.saved == ["same.txt (2000 bytes)"]
        assert page_b.view.saved == ["same (1).txt (1500 bytes)"]
        assert len(app.state.live.sessions) == 2
        wire_a.close()
        wire_b.close()
    assert saved(tmp_path) == {"same.txt": b"A" * 2_000, "same (1).txt": b"B" * 1_500}


# -------------------------------------------------------------- shutdown


def test_shutdown_with_uploads_in_flight_cancels_them(tmp_path, logs):
    journal = Journal()
    wires = []
    with server(tmp_path, journal) as (url, app):
        for name in ("p.bin", "q.bin"):
            wire = Wire(url)
            wires.append(wire)
            page = Page(wire)
            upload = Upload(page, "0", page.upload_tokens({name: 3_000})["0"])
            assert upload.chunk(b"z" * 1_000) == ok()
        sessions = list(app.state.live.sessions)
    # The server is stopped: every page and upload was left with "shutdown".
    for session in sessions:
        assert not session.is_alive()
    for wire in wires:
        with pytest.raises(ConnectionClosed):
            while True:
                wire.recv()
    assert journal.closes("p.bin") == ["cancel"] == journal.closes("q.bin")
    assert ("release", "p.bin") in journal and ("release", "q.bin") in journal
    assert temp_files(tmp_path) == [] and saved(tmp_path) == {}
    assert len(logged(logs, "lv.left", reason="shutdown")) == 2
    assert len(logged(logs, "lvu.left", reason="shutdown")) == 2


@contextmanager
def serve_process(tmp_path: Path, *flags: str, env: dict[str, str | None] | None = None,
                  stop_signal: int = signal.SIGTERM) -> Iterator[tuple[str, list[str]]]:
    """``liveupload serve`` in a child process on a free port; yields its URL and
    the log lines read so far (the rest are appended once it has stopped on
    ``stop_signal``)."""
    with serve_child(tmp_path, *flags, env=env) as (proc, url, lines):
        yield url, lines
        proc.send_signal(stop_signal)
        _, rest = proc.communicate(timeout=20)
        lines.append(rest)
        assert proc.returncode in (0, -stop_signal), "".join(lines)


@pytest.mark.pure  # the server runs in a child process
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_liveupload_serve_stops_gracefully_on_a_signal(tmp_path, signum):
    temp = tmp_path / "uploads" / ".partial"  # where the default writer writes: renamed into uploads when saved
    with serve_process(tmp_path, "--max-file-size", "100000", "--chunk-size", "1000", stop_signal=signum) as (
        url, lines,
    ):
        wire = Wire(url)
        page = Page(wire)
        upload = Upload(page, "0", page.upload_tokens({"big.bin": 50_000})["0"])
        assert upload.chunk(b"b" * 1_000) == ok()
        assert [p for p in temp.iterdir() if p.name.startswith("liveupload-")]  # the upload's temp file
    log_text = "".join(lines)
    assert "reason=shutdown" in log_text and "upload_client_left" in log_text, log_text
    assert "serve.stopped" in log_text
    # Then the runtime itself shut down in order: nothing was left to kill.
    assert "runtime_shutdown" in log_text and "killed=0" in log_text, log_text
    assert not temp.exists()  # the cancelled upload's file went, and its folder once empty
    assert not (tmp_path / "uploads").exists() or not list((tmp_path / "uploads").iterdir())
    assert not list((tmp_path / "tmp").iterdir())
    with pytest.raises(ConnectionClosed):
        while True:
            wire.recv()


# ------------------------------------------------- a stalled writer


class DeclaredStall(FaultyWriter):
    """A stalling writer that says it blocks: its channel gets a thread of its own."""

    blocking = True


@pytest.mark.substrates("pool", "thread")  # with "loop" as the default, every process runs on a loop
@pytest.mark.parametrize(
    ("channels_on_loop", "stalling_writer"),
    [(False, FaultyWriter), (True, FaultyWriter), (True, DeclaredStall)],
    ids=["loop-unbound", "loop-bound-undeclared", "loop-bound-declared-blocking"],
)
def test_the_event_loop_serves_other_sockets_while_a_writer_stalls(tmp_path, channels_on_loop, stalling_writer):
    """A writer stuck in ``write_chunk`` holds only its own upload: the same
    socket's other topics and a second connection (heartbeat, a whole upload)
    are served at once, long before the stall would end. Only writers that
    declare ``loop_safe`` run on the server's loop; a stalling writer that
    does not (``FaultyWriter``) runs on the default substrate even when the
    loop is bound, and one that declares ``blocking`` gets a thread of its own
    (docs/runtime.md)."""
    journal = Journal()
    stall_started = Journal()
    stall = threading.Event()
    good_writer = journal_writer(journal, tmp_path / "tmp")

    def writer(name: str, entry: dict, session: Any) -> Any:
        if entry["client_name"] == "stuck.bin":
            return (stalling_writer, {"fault": "stall", "stall_event": stall, "stall_seconds": 60,
                                      "journal": stall_started})
        return good_writer(name, entry, session)

    (tmp_path / "tmp").mkdir()
    try:
        with server(tmp_path, config={"writer": writer}, channels_on_loop=channels_on_loop) as (url, _app):
            wire_a = Wire(url)
            page_a = Page(wire_a)
            stuck = Upload(page_a, "0", page_a.upload_tokens({"stuck.bin": 10})["0"])
            assert stuck.join_reply == ok()
            chunk_ref = wire_a.ref()
            wire_a.send_raw(encode_binary(Message(stuck.join_ref, chunk_ref, stuck.topic, "chunk", b"x" * 10)))
            stall_started.wait_for(lambda items: ("chunk", 1) in items, WAIT)  # inside write_chunk now
            # The stalled upload's own socket: its heartbeat and its page's events.
            wire_a.heartbeat()
            assert page_a.progress("0", 0)["status"] == "ok"
            # Another connection: a whole upload, saved.
            wire_b = Wire(url)
            wire_b.heartbeat()
            page_b = Page(wire_b)
            Upload(page_b, "0", page_b.upload_tokens({"free.bin": 2_500})["0"]).send_all(b"f" * 2_500)
            assert page_b.submit()["status"] == "ok"
            assert page_b.view.saved == ["free.bin (2500 bytes)"]
            # All that while the stuck chunk had no reply (its stall outlasts the
            # test's timeout, so only the event ends it); ending the stall answers it.
            assert not stall.is_set()
            assert not [f for f in wire_a.seen if isinstance(f, list) and f[1] == chunk_ref]
            stall.set()
            assert wire_a.reply_to(chunk_ref) == ok()
            wire_a.close()
            wire_b.close()
            wait_released(journal, "free.bin")
    finally:
        stall.set()
    assert saved(tmp_path) == {"free.bin": b"f" * 2_500}


# ------------------------------------------------- liveupload serve


@pytest.mark.pure  # the server runs in a child process
def test_liveupload_serve_flags_reach_the_page(tmp_path):
    flags = ["--accept", ".txt, image/*", "--max-entries", "3", "--max-file-size", "1234",
             "--chunk-size", "500", "--chunk-timeout", "2.5", "--auto-upload"]
    with serve_process(tmp_path, *flags) as (url, _lines):
        html = httpx.get(url + "/", trust_env=False, timeout=10).text
        stated = {label: re.sub(r"<[^>]*>", "", value)
                  for label, value in re.findall(r"<dt>([^<]*)</dt><dd>(.*?)</dd>", html)}
        assert stated == {"Accepted": ".txt, image/*", "Files per upload": "up to 3", "Largest file": "1.2 KB",
                          "Chunk size": "500 bytes", "Starts": "as soon as files are chosen"}
        wire = Wire(url)
        page = Page(wire)
        (file_input,) = page.view.inputs
        assert file_input.attrs["accept"] == ".txt,image/*"
        assert file_input.multiple and "data-phx-auto-upload" in file_input.attrs
        assert file_input.limits == {"max_entries": 3, "max_file_size": 1234, "chunk_size": 500}
        page.track({"a.txt": 10})
        assert page.allow()["config"] == {"max_entries": 3, "max_file_size": 1234, "chunk_size": 500,
                                          "chunk_timeout": 2500}
        wire.close()


@pytest.mark.timeout(60)
@pytest.mark.pure  # the servers run in child processes
@pytest.mark.parametrize("source", ["flag", "env", "random"])
def test_a_page_open_across_a_serve_restart_rejoins_with_a_fixed_secret(tmp_path, source):
    """With ``--secret`` or ``$LIVEUPLOAD_SECRET``, the page of the old process
    joins the new one (LiveView's rejoin: ``_mounts`` > 0) as a fresh page (its
    script then says which of the files it listed were lost: the browser
    tests). With neither, each process has a random secret:
    the join is refused ``unauthorized``, which makes LiveView's client reload
    the page, and the startup log says so."""
    flags = ["--secret", "from-the-flag"] if source == "flag" else []
    env = {"LIVEUPLOAD_SECRET": "from-the-env" if source == "env" else None}
    with serve_process(tmp_path, *flags, env=env) as (url, first):
        old_page = fetch_page(url)
    with serve_process(tmp_path, *flags, env=env) as (url, second):
        wire = Wire(url)
        page = Page(wire, tokens=old_page, join=False)
        reply = page.join(params={"_csrf_token": old_page["csrf"], "_mounts": 1, "_mount_attempts": 0})
        if source == "random":
            assert reply == error({"reason": "unauthorized"})
        else:
            assert reply["status"] == "ok", reply
            assert page.view.notice == ""
            assert page.view.entries == {}
        wire.close()
    for lines in (first, second):
        log_text = "".join(lines)
        assert f"secret={source}" in log_text, log_text
        assert ("serve.random_secret" in log_text) == (source == "random"), log_text

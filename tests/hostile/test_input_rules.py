"""Hostile input against an upload session and its channels (issue 17): each
rule is tried as an attacker would, in process, with bounded counts, and a
real upload still completes afterwards."""

from __future__ import annotations

import json
import time

import pytest

import actors
from tests.helpers import WAIT
from uploads.inprocess import InProcessClient, entry_fields, stop_session
from uploads import UploadSession
from uploads.config import MAX_ENTRY_ERRORS, MAX_REFUSED_ENTRIES
from writers import FaultyWriter, MemoryWriter

pytestmark = pytest.mark.timeout(30)


def memory(*_):
    return (MemoryWriter, {})


def started(**allow):
    session = UploadSession.start()
    client = InProcessClient(session)
    allow.setdefault("accept", "any")
    client.call("allow_upload", "avatar", **allow)
    return session, client


def assert_upload_completes(client: InProcessClient, ref: str, data: bytes = b"hello world", chunk_size: int = 4) -> None:
    """A real upload, start to end, on the same session: announce, join, send, consume."""
    reply = client.call("preflight", client.config, [entry_fields(ref, f"{ref}.bin", len(data))])
    assert "entries" in reply, reply
    channel = client.join(reply["entries"][ref])
    assert isinstance(channel, actors.ProcessRef), channel
    assert client.send(channel, data, chunk_size) == ["ok"] * max(1, -(-len(data) // chunk_size))
    got = client.call("consume_uploaded_entry", client.config, ref, lambda meta: ("ok", meta["data"]))
    assert got == data


# -- chunks ------------------------------------------------------------------------


def test_a_chunk_larger_than_chunk_size_is_refused_and_stops_the_upload():
    journal: list = []
    session, client = started(max_entries=3, chunk_size=10,
                              writer=lambda *_: (FaultyWriter, {"journal": journal}))
    try:
        channel = client.join(client.preflight({"a.bin": b"x" * 100})["entries"]["0"])
        assert channel.ask(("chunk", b"x" * 10), timeout=WAIT) == "ok"  # exactly chunk_size is fine
        assert channel.ask(("chunk", b"x" * 11), timeout=WAIT) == ("error", {"reason": "chunk_too_large", "limit": 10})
        assert actors.await_exit(channel, WAIT) == ("shutdown", "chunk_too_large")
        assert [item[1] for item in journal if item[0] == "close"] == ["cancel"]
        session.proxy().uploads().get(timeout=WAIT)
        assert client.entry("0")["errors"] == ["chunk_too_large"]
        client.call("cancel_upload", "avatar", "0")
        client.call("allow_upload", "avatar", accept="any", max_entries=3, chunk_size=10, writer=memory)
        assert_upload_completes(client, "1")
        assert session.is_alive()
    finally:
        stop_session(session)


def test_empty_chunks_are_not_progress_and_do_not_outlive_the_chunk_timeout():
    session, client = started(max_entries=3, chunk_size=10, chunk_timeout=0.2, writer=memory)
    try:
        channel = client.join(client.preflight({"a.bin": b"x" * 10})["entries"]["0"])
        assert channel.ask(("chunk", b"x"), timeout=WAIT) == "ok"
        began, empties = time.monotonic(), 0
        while channel.is_alive() and time.monotonic() - began < 3.0:  # an empty chunk as fast as answered
            try:
                channel.ask(("chunk", b""), timeout=WAIT)
                empties += 1
            except Exception:  # noqa: BLE001 - it ended between the check and the ask
                break
        assert actors.await_exit(channel, WAIT) == ("shutdown", "timeout"), f"alive after {empties} empty chunks"
        assert time.monotonic() - began < 2.0
        assert_upload_completes(client, "1", chunk_size=10)
    finally:
        stop_session(session)


def test_an_empty_file_still_completes_with_its_one_empty_chunk():
    session, client = started(max_entries=3, writer=memory)
    try:
        assert_upload_completes(client, "0", data=b"", chunk_size=10)
    finally:
        stop_session(session)


# -- entries and errors ---------------------------------------------------------------


def many(count: int, first: int = 0) -> list[dict]:
    return [entry_fields(f"r{first + i}", f"f{first + i}.bin", 10) for i in range(count)]


def test_entries_beyond_what_the_config_allows_are_not_kept():
    session, client = started(max_entries=10, writer=memory)
    try:
        sizes = []
        for round_ in range(8):  # 8 change events of 2,000 entries each
            config = client.call("put_entries", "avatar", many(2_000, first=round_ * 2_000))
            sizes.append(len(json.dumps(config)))
            assert len(config["entries"]) <= 10 + MAX_REFUSED_ENTRIES
            assert client.call("upload_errors", "avatar") == ["too_many_files"]
        assert max(sizes) == min(sizes) < 20_000, sizes  # bounded, and not growing
        refused = client.call("preflight", "avatar", many(2_000, first=50_000))
        assert len(refused["error"]) <= 10 + MAX_REFUSED_ENTRIES + 1
        assert [error for ref, error in refused["error"] if ref == refused["ref"]] == ["too_many_files"]
        for entry in client.call("uploads")["avatar"]["entries"]:  # the user cancels what they selected
            client.call("cancel_upload", "avatar", entry["ref"])
        assert client.call("upload_errors", "avatar") == []
        assert_upload_completes(client, "ok")
    finally:
        stop_session(session)


def test_ordinary_over_selection_is_kept_to_be_cancelled():
    session, client = started(max_entries=2, writer=memory)
    try:
        config = client.call("put_entries", "avatar", many(3))
        assert [e["ref"] for e in config["entries"]] == ["r0", "r1", "r2"]  # shown, with too_many_files
        assert client.call("upload_errors", "avatar") == ["too_many_files"]
        client.call("cancel_upload", "avatar", "r2")
        assert client.call("upload_errors", "avatar") == []
    finally:
        stop_session(session)


def test_errors_per_entry_are_bounded():
    session, client = started(max_entries=3, writer=memory)
    try:
        client.call("put_entries", "avatar", [entry_fields("0", "a.bin", 10)])
        sizes = []
        for i in range(1_500):
            entry = client.call("update_progress", "avatar", "0", {"error": f"error number {i}"})
            sizes.append(len(json.dumps(entry)))
        assert len(entry["errors"]) == MAX_ENTRY_ERRORS
        assert entry["errors"][-1] == "error number 1499"  # the latest are kept
        assert max(sizes) < 1_000, max(sizes)
        assert_upload_completes(client, "1")
    finally:
        stop_session(session)


# -- the submit / late chunk race --------------------------------------------------------


def test_a_channel_that_ends_during_consume_does_not_crash_the_session():
    session, client = started(max_entries=3, writer=memory)
    try:
        reply = client.call("preflight", "avatar", [entry_fields("0", "a.bin", 3), entry_fields("1", "b.bin", 3)])
        channels = {}
        for ref in ("0", "1"):
            channels[ref] = client.join(reply["entries"][ref])
            assert client.send(channels[ref], b"abc", 3) == ["ok"]
        consumed = []

        def consume(meta, entry):
            if not consumed:  # while the first is consumed, a late chunk ends the other's channel
                other = channels["1" if entry["ref"] == "0" else "0"]
                other.ask(("chunk", b"late"), timeout=WAIT)
                actors.await_exit(other, WAIT)
            consumed.append(entry["ref"])
            return ("ok", meta["data"])

        assert client.call("consume_uploaded_entries", "avatar", consume) == [b"abc"]
        assert session.is_alive()
        assert len(consumed) == 1
        assert_upload_completes(client, "2")
    finally:
        stop_session(session)


# -- entry tokens -------------------------------------------------------------------------


def test_a_consumed_entrys_token_does_not_join_a_new_entry_with_the_same_ref():
    session, client = started(max_entries=3, writer=memory)
    try:
        old = client.call("preflight", "avatar", [entry_fields("0", "a.bin", 3)])["entries"]["0"]
        channel = client.join(old)
        assert client.send(channel, b"abc", 3) == ["ok"]
        assert client.call("consume_uploaded_entries", "avatar", lambda meta: ("ok", None)) == [None]
        new = client.call("preflight", "avatar", [entry_fields("0", "b.bin", 5)])["entries"]["0"]
        assert client.join(old)[0] == "error"
        assert client.join(old)[1]["reason"] in ("invalid_token", "disallowed")
        channel = client.join(new)
        assert isinstance(channel, actors.ProcessRef)
        assert client.send(channel, b"12345", 5) == ["ok"]
        assert client.call("consume_uploaded_entries", "avatar", lambda meta: ("ok", meta["data"])) == [b"12345"]
    finally:
        stop_session(session)

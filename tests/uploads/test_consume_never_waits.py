"""Consuming never waits on a channel.

The writer's final meta comes with the channel's ``("upload_done", ref, meta)``
news and is kept on the entry; ``consume_uploaded_entries`` hands it over and
tells the channel ``"consume_done"`` without asking it anything. On the event
loop each ask would hold every socket of the server (a hand-off of the loop's
processes to the pool). These tests check that no blocking ask is made, and
that every outcome of a consume is what it was when the session asked: a
channel that ended after it completed is not consumed and its news marks the
entry; results come in order; a postponed entry keeps its channel; a consumed
channel ends, its writer closed once and released once.
"""

from __future__ import annotations

import os
import queue
from typing import Any

import pytest

import actors
import actors.process
from actors.substrates.loop import LoopHome
from supervision import which_children
from tests.helpers import WAIT, Probe, next_matching
from uploads import UploadChannel, UploadSession
from uploads.inprocess import InProcessClient, stop_session
from writers import FaultyWriter, MemoryWriter, TmpFileWriter


def started(writer: Any = None, **allow: Any) -> tuple[Any, InProcessClient]:
    session = UploadSession.start()
    client = InProcessClient(session)
    client.call("allow_upload", "avatar", accept="any", writer=writer or (lambda *_: (MemoryWriter, {})), **allow)
    return session, client


def entry_of(client: InProcessClient, ref: str) -> Any:
    """The session's own entry (not its ``to_dict``)."""
    return client.proxy.configs.get(timeout=WAIT)["avatar"].entry(ref)


def _in_the_session() -> bool:
    current = actors.process.current_process()
    return isinstance(current, actors.process.ProcessRef) and current.actor_class is UploadSession


@pytest.fixture
def session_waits(monkeypatch):
    """Every wait of the session's own process: its blocking asks, as
    ``("ask", target, message)``, and each time it held the event loop and
    handed the loop's processes to the pool (``actors.blocking()`` on a loop's
    thread: any wait), as ``("loop_hand_off",)``. The watchdog's hand-offs of
    a slow handler are not waits and are not counted. A test clears it before
    the consume it checks (the session's start waits for its supervisor)."""
    waits: list[tuple[Any, ...]] = []
    ask = actors.process.ProcessRef.ask
    handing_off = LoopHome.handing_off

    def recording_ask(self, message, *, block=True, timeout=None):
        if block and _in_the_session():
            waits.append(("ask", self, message))
        return ask(self, message, block=block, timeout=timeout)

    def recording_hand_off(self):
        if _in_the_session():
            waits.append(("loop_hand_off",))
        return handing_off(self)

    monkeypatch.setattr(actors.process.ProcessRef, "ask", recording_ask)
    monkeypatch.setattr(LoopHome, "handing_off", recording_hand_off)
    return waits


def test_the_writers_meta_comes_with_upload_done_and_consume_start_answers_the_same():
    owner_inbox: queue.Queue = queue.Queue()
    owner = Probe.start(owner_inbox)
    channel = UploadChannel.start(owner=owner, entry_ref="0", size=3, writer=MemoryWriter(), writer_opts={},
                                  chunk_timeout=WAIT)
    try:
        assert channel.ask("join", timeout=WAIT) == "ok"
        assert channel.ask(("chunk", b"abc"), timeout=WAIT) == "ok"
        assert next_matching(owner_inbox, lambda m: isinstance(m, tuple) and m[0] == "upload_done") == (
            "upload_done", "0", {"data": b"abc"})
        assert channel.ask("consume_start", timeout=WAIT) == ("ok", {"data": b"abc"})
        channel.tell("consume_done")
        assert actors.await_exit(channel, WAIT) == ("shutdown", "consumed")
    finally:
        actors.exit(channel, actors.KILL)
        actors.exit(owner, actors.KILL)
        actors.await_exit(channel, WAIT)
        actors.await_exit(owner, WAIT)


def test_the_session_keeps_the_meta_on_the_entry(tmp_path):
    session, client = started(writer=lambda *_: (TmpFileWriter, {"dir": str(tmp_path)}))
    try:
        client.upload({"a.bin": b"abc"})
        meta = entry_of(client, "0").meta
        assert os.path.dirname(meta["path"]) == str(tmp_path)
        assert "meta" not in client.entry("0")  # not client data
    finally:
        stop_session(session)


def test_consuming_several_entries_makes_no_blocking_ask_and_answers_in_order(session_waits, tmp_path):
    session, client = started(writer=lambda *_: (TmpFileWriter, {"dir": str(tmp_path)}), max_entries=3)
    try:
        files = {"a.bin": b"A" * 10, "b.bin": b"B" * 20, "c.bin": b"C" * 30}
        assert client.upload(files) == {name: ["ok"] for name in files}
        channels = [entry_of(client, ref).channel for ref in ("0", "1", "2")]

        def read(meta, entry):
            with open(meta["path"], "rb") as f:
                return ("ok", (entry["client_name"], f.read()))

        session_waits.clear()
        assert client.call("consume_uploaded_entries", "avatar", read) == [
            (name, data) for name, data in files.items()]
        assert session_waits == []  # on the loop substrate: it never held the loop
        for channel in channels:
            assert actors.await_exit(channel, WAIT) == ("shutdown", "consumed")
        assert os.listdir(tmp_path) == []  # every file released with its channel
        assert client.call("uploads")["avatar"]["entries"] == []
    finally:
        stop_session(session)


def test_a_consumed_channel_ends_its_writer_closed_and_released_once_and_its_supervisor_forgets_it():
    journal: list = []
    session, client = started(writer=lambda *_: (FaultyWriter, {"journal": journal, "journal_release": True}))
    try:
        client.upload({"a.bin": b"abc"})
        channel = entry_of(client, "0").channel
        supervisor = client.proxy.supervisor.get(timeout=WAIT)
        assert client.call("consume_uploaded_entry", "avatar", "0", lambda meta: ("ok", meta["data"])) == b"abc"
        assert actors.await_exit(channel, WAIT) == ("shutdown", "consumed")
        assert [item for item in journal if item[0] in ("close", "release")] == [("close", "done"), ("release",)]
        # Its exit signal reached the supervisor before await_exit returned: asked now, it has forgotten it.
        assert which_children(supervisor, timeout=WAIT) == []
    finally:
        stop_session(session)


def test_a_postponed_entry_keeps_its_channel_and_its_meta(session_waits):
    session, client = started()
    try:
        client.upload({"a.bin": b"abc"})
        channel = entry_of(client, "0").channel
        seen = []

        def postpone(meta):
            seen.append(meta)
            meta["data"] = b"changed"  # the consumer's copy: the entry's meta stays as it came
            return ("postpone", 1)

        session_waits.clear()
        assert client.call("consume_uploaded_entries", "avatar", postpone) == [1]
        assert channel.is_alive()
        assert client.call("uploaded_entries", "avatar")[0][0]["ref"] == "0"
        assert client.call("consume_uploaded_entries", "avatar", lambda meta: ("ok", meta["data"])) == [b"abc"]
        assert seen == [{"data": b"changed"}]
        assert actors.await_exit(channel, WAIT) == ("shutdown", "consumed")
        assert session_waits == []
    finally:
        stop_session(session)


@pytest.mark.parametrize("how", ["kill", "late_chunk"])
def test_a_channel_that_ended_after_completing_is_not_consumed_and_its_news_marks_the_entry(how, tmp_path):
    """The first entry's consumer ends the second's channel (and waits till it is
    dead) inside the consume: the session finds it gone, skips it, and its news
    (the kill's ``Down``, the late chunk's ``upload_error``) marks the entry."""
    session, client = started(writer=lambda *_: (TmpFileWriter, {"dir": str(tmp_path)}), max_entries=2)
    try:
        client.upload({"a.bin": b"abc", "b.bin": b"def"})
        second = entry_of(client, "1").channel

        def consume(meta, entry):
            if how == "kill":
                actors.exit(second, actors.KILL)
            else:
                assert second.ask(("chunk", b"x"), timeout=WAIT)[1]["reason"] == "file_size_limit_exceeded"
            actors.await_exit(second, WAIT)
            return ("ok", entry["ref"])

        assert client.call("consume_uploaded_entries", "avatar", consume) == ["0"]
        entry = client.entry("1")  # its news, in the mailbox after the consume, has been handled
        assert entry["cancelled"] or entry["errors"]
        if how == "kill":
            assert entry["cancelled"] and entry["errors"] == [("channel_crash", "killed")]
        else:
            assert entry["errors"] == ["file_size_limit_exceeded"]
        assert client.call("uploaded_entries", "avatar") == ([], [])
        assert client.call("consume_uploaded_entries", "avatar", lambda meta: ("ok", 1)) == []
        assert session.is_alive()
    finally:
        stop_session(session)


def test_cancelling_a_completed_entry_closes_its_writer_once_and_releases_it_once():
    journal: list = []
    session, client = started(writer=lambda *_: (FaultyWriter, {"journal": journal, "journal_release": True}))
    try:
        client.upload({"a.bin": b"abc"})
        channel = entry_of(client, "0").channel
        client.call("cancel_upload", "avatar", "0")
        actors.await_exit(channel, WAIT)
        assert [item for item in journal if item[0] in ("close", "release")] == [("close", "done"), ("release",)]
    finally:
        stop_session(session)


def test_a_stopping_session_releases_a_completed_unconsumed_writer_once():
    journal: list = []
    session, client = started(writer=lambda *_: (FaultyWriter, {"journal": journal, "journal_release": True}))
    client.upload({"a.bin": b"abc"})
    channel = entry_of(client, "0").channel
    stop_session(session)
    actors.await_exit(channel, WAIT)
    assert [item for item in journal if item[0] in ("close", "release")] == [("close", "done"), ("release",)]

"""The session's join never waits: what it does with its other mail meanwhile.

``UploadSession.join`` takes over its reply, asks its supervisor to start the
channel and then the channel to open its writer, both without blocking, and
answers once both are done. These tests hold a join at each step (the
channel's ``on_start``, which the supervisor's ``start_child`` waits for; or
the writer's ``init``) with a gate the test opens, and do meanwhile what the
session must now cope with: a second join, a cancel, a replaced entry, a stop,
a kill, a crash; and the failures of each step.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import pytest
from pykka import ActorDeadError

import actors
import uploads.session
from actors.current import blocking
from tests.helpers import WAIT
from uploads import UploadChannel, UploadSession
from uploads.inprocess import InProcessClient, entry_fields, stop_session
from writers import FaultInjected, FaultyWriter, MemoryWriter, TmpFileWriter

DATA = b"abcdef"


class Gate:
    """Held shut until the test opens it; says when something reached it."""

    def __init__(self) -> None:
        self.reached: queue.Queue = queue.Queue()
        self.opened = threading.Event()
        self.fail_next = False  # for the start gate: the next start fails once through

    def wait_here(self, what: Any) -> None:
        self.reached.put(what)
        with blocking():  # a pooled worker (or the loop) hands its place over meanwhile
            self.opened.wait(WAIT)

    def next_reached(self) -> Any:
        return self.reached.get(timeout=WAIT)


@pytest.fixture
def start_gate(monkeypatch):
    """Every channel the session starts waits in ``on_start`` until the gate
    opens: the supervisor's ``start_child`` is not answered till then. The
    gate gets each channel's ref; ``fail_next`` makes the next start fail."""
    gate = Gate()

    class GatedChannel(UploadChannel):
        def on_start(self) -> None:
            gate.wait_here(self.actor_ref)
            if gate.fail_next:
                gate.fail_next = False
                raise FaultInjected("on_start")
            super().on_start()

    monkeypatch.setattr(uploads.session, "UploadChannel", GatedChannel)
    yield gate
    gate.opened.set()


def gated_init(gate: Gate, base: type = MemoryWriter) -> type:
    """A writer class whose ``init`` waits at ``gate`` (after ``base.init``:
    a temp file exists by then)."""

    class GatedInit(base):  # type: ignore[misc, valid-type]
        blocking = True  # its channel gets a thread of its own: the wait holds nobody else

        def init(self, opts: Any) -> Any:
            result = super().init(opts)
            gate.wait_here("init")
            return result

    return GatedInit


def gated_temp_file(gate: Gate) -> tuple[type, list]:
    """A ``TmpFileWriter`` whose ``init`` waits at ``gate``, and the list of the
    reasons its ``close`` was called with."""
    closes: list = []

    class Writer(gated_init(gate, TmpFileWriter)):  # type: ignore[misc]
        def close(self, state: Any, reason: Any) -> Any:
            closes.append(reason)
            return super().close(state, reason)

    return Writer, closes


def started(writer: Any = None, **allow: Any) -> tuple[Any, InProcessClient]:
    session = UploadSession.start()
    client = InProcessClient(session)
    client.call("allow_upload", "avatar", accept="any", writer=writer or (lambda *_: (MemoryWriter, {})), **allow)
    return session, client


def token_of(client: InProcessClient, ref: str = "0", data: bytes = DATA) -> str:
    return client.preflight_entries([entry_fields(ref, f"{ref}.bin", len(data))])["entries"][ref]


def joining(session: Any, token: str) -> Any:
    """The join's future: asked without waiting, as the server's topic does."""
    return session.proxy().join(token)


# -- a second join meanwhile ---------------------------------------------------------------


def test_a_second_join_while_the_channel_starts_is_already_registered(start_gate):
    session, client = started()
    try:
        token = token_of(client)
        first = joining(session, token)
        start_gate.next_reached()  # the supervisor is starting the channel
        assert client.join(token) == ("error", {"reason": "already_registered"})  # answered meanwhile
        assert client.entry("0")["valid"]  # the entry reads as before
        start_gate.opened.set()
        channel = first.get(timeout=WAIT)
        assert isinstance(channel, actors.ProcessRef)
        assert client.send(channel, DATA, 4) == ["ok", "ok"]
        assert client.entry("0")["done"]
        assert client.join(token) == ("error", {"reason": "already_registered"})
    finally:
        stop_session(session)


def test_a_second_join_while_the_writer_opens_is_already_registered():
    gate = Gate()
    session, client = started(writer=lambda *_: (gated_init(gate), {}))
    try:
        token = token_of(client)
        first = joining(session, token)
        assert gate.next_reached() == "init"
        assert client.join(token) == ("error", {"reason": "already_registered"})
        gate.opened.set()
        channel = first.get(timeout=WAIT)
        assert client.send(channel, DATA, 6) == ["ok"]
    finally:
        gate.opened.set()
        stop_session(session)


def test_many_joins_of_one_session_at_once_all_get_their_channels():
    session, client = started(max_entries=8)
    try:
        refs = [str(i) for i in range(8)]
        tokens = client.preflight_entries([entry_fields(ref, f"{ref}.bin", len(DATA)) for ref in refs])["entries"]
        futures = [joining(session, tokens[ref]) for ref in refs]
        channels = [future.get(timeout=WAIT) for future in futures]
        assert len(set(channels)) == 8 and all(isinstance(c, actors.ProcessRef) for c in channels)
        for channel in channels:
            assert client.send(channel, DATA, 6) == ["ok"]
        assert all(entry["done"] for entry in client.call("uploads")["avatar"]["entries"])
    finally:
        stop_session(session)


# -- the entry cancelled or replaced meanwhile --------------------------------------------------


def test_an_entry_cancelled_while_its_channel_starts_stops_the_channel_and_refuses_the_join(start_gate):
    journal: list = []
    session, client = started(writer=lambda *_: (FaultyWriter, {"journal": journal, "journal_release": True}))
    try:
        token = token_of(client)
        join = joining(session, token)
        channel = start_gate.next_reached()
        client.call("cancel_upload", "avatar", "0")  # answered while the join waits
        assert client.call("uploads")["avatar"]["entries"] == []
        start_gate.opened.set()
        assert join.get(timeout=WAIT) == ("error", {"reason": "disallowed"})  # as a join of a cancelled entry
        assert actors.await_exit(channel, WAIT) == ("shutdown", "cancelled")
        assert journal == []  # its writer was never opened
        assert client.join(token) == ("error", {"reason": "disallowed"})
    finally:
        stop_session(session)


def test_an_entry_cancelled_while_its_writer_opens_closes_it_with_cancel_and_leaves_no_temp_file(tmp_path):
    gate = Gate()
    Writer, closes = gated_temp_file(gate)

    session, client = started(writer=lambda *_: (Writer, {"dir": str(tmp_path)}))
    try:
        join = joining(session, token_of(client))
        assert gate.next_reached() == "init"
        assert len(list(tmp_path.iterdir())) == 1
        [channel] = [ref for ref in actors.processes() if ref.actor_class is UploadChannel]
        cancel = session.proxy().cancel_upload("avatar", "0")  # the channel cancels once init returns
        gate.opened.set()
        assert cancel.get(timeout=WAIT) is None
        assert join.get(timeout=WAIT) == ("error", {"reason": "disallowed"})
        assert actors.await_exit(channel, WAIT) == ("shutdown", "cancelled")
        assert closes == ["cancel"]
        assert list(tmp_path.iterdir()) == []
        assert client.call("uploads")["avatar"]["entries"] == []
    finally:
        gate.opened.set()
        stop_session(session)


def test_a_sole_entry_replaced_while_its_channel_starts_stops_that_channel(start_gate):
    session, client = started()
    try:
        join = joining(session, token_of(client, "0"))
        old_channel = start_gate.next_reached()
        # A file selected anew replaces the one joining (max_entries 1): the old entry is cancelled.
        client.call("put_entries", "avatar", [entry_fields("1", "new.bin", len(DATA))])
        assert [e["ref"] for e in client.call("uploads")["avatar"]["entries"]] == ["1"]
        start_gate.opened.set()
        assert join.get(timeout=WAIT) == ("error", {"reason": "disallowed"})
        assert actors.await_exit(old_channel, WAIT) == ("shutdown", "cancelled")
        new_channel = client.join(token_of(client, "1"))
        assert client.send(new_channel, DATA, 6) == ["ok"]
        assert client.entry("1")["done"] and not client.entry("1")["errors"]
    finally:
        stop_session(session)


def test_the_ref_of_a_given_up_channel_is_taken_until_it_is_down(start_gate):
    """A new entry with the ref of one whose join was given up cannot join
    while that channel lives: its last news (``cancelled``) names only the ref."""
    session, client = started()
    try:
        join = joining(session, token_of(client, "0"))
        given_up = start_gate.next_reached()
        client.call("cancel_upload", "avatar", "0")
        token = token_of(client, "0")  # a new entry, same ref, while the first join is in progress
        assert client.join(token) == ("error", {"reason": "already_registered"})
        start_gate.opened.set()
        assert join.get(timeout=WAIT) == ("error", {"reason": "disallowed"})
        assert actors.await_exit(given_up, WAIT) == ("shutdown", "cancelled")
        session.proxy().uploads().get(timeout=WAIT)  # its Down (sent before it was gone) is handled: the ref is free
        channel = client.join(token)
        assert isinstance(channel, actors.ProcessRef)
        assert client.send(channel, DATA, 6) == ["ok"]
        assert client.entry("0")["done"] and not client.entry("0")["cancelled"]
    finally:
        stop_session(session)


# -- the session ending meanwhile -----------------------------------------------------------------


def _end(session: Any, how: str) -> None:
    if how == "stop":
        session.stop(block=False)
    elif how == "kill":
        actors.exit(session, "kill")
    else:
        session.tell("not a message the session knows")  # its handler raises: it crashes


@pytest.mark.parametrize("how", ["stop", "kill", "crash"])
def test_a_session_ending_while_a_channel_starts_answers_actor_dead_and_leaves_no_channel(start_gate, how):
    journal: list = []
    session, client = started(writer=lambda *_: (FaultyWriter, {"journal": journal, "journal_release": True}))
    supervisor = session.proxy().supervisor.get(timeout=WAIT)
    join = joining(session, token_of(client))
    channel = start_gate.next_reached()
    _end(session, how)
    start_gate.opened.set()
    with pytest.raises(ActorDeadError):
        join.get(timeout=WAIT)
    actors.await_exit(session, WAIT)
    actors.await_exit(channel, WAIT)
    actors.await_exit(supervisor, WAIT)
    assert journal == []  # never opened
    assert actors.processes() == []


@pytest.mark.parametrize("how", ["stop", "kill", "crash"])
def test_a_session_ending_while_a_writer_opens_answers_actor_dead_and_cancels_the_writer(tmp_path, how):
    gate = Gate()
    Writer, closes = gated_temp_file(gate)

    session, client = started(writer=lambda *_: (Writer, {"dir": str(tmp_path)}))
    supervisor = session.proxy().supervisor.get(timeout=WAIT)
    try:
        join = joining(session, token_of(client))
        assert gate.next_reached() == "init"
        [channel] = [ref for ref in actors.processes() if ref.actor_class is UploadChannel]
        _end(session, how)
        if how == "kill":
            with pytest.raises(ActorDeadError):  # at once: a killed process answers nothing
                join.get(timeout=WAIT)
        gate.opened.set()
        with pytest.raises(ActorDeadError):
            join.get(timeout=WAIT)
        actors.await_exit(session, WAIT)
        actors.await_exit(channel, WAIT)
        actors.await_exit(supervisor, WAIT)
        assert closes == ["cancel"]
        assert list(tmp_path.iterdir()) == []
        assert actors.processes() == []
    finally:
        gate.opened.set()


# -- each step failing ---------------------------------------------------------------------------


def test_a_channel_that_fails_to_start_is_a_writer_error_and_the_entry_may_join_again(start_gate):
    session, client = started()
    try:
        token = token_of(client)
        start_gate.fail_next = True
        start_gate.opened.set()
        assert client.join(token) == ("error", {"reason": "writer_error"})
        assert client.entry("0")["valid"] and not client.entry("0")["cancelled"]  # as before: nothing recorded
        channel = client.join(token)
        assert isinstance(channel, actors.ProcessRef)
        assert client.send(channel, DATA, 6) == ["ok"]
    finally:
        stop_session(session)


def test_a_dead_supervisor_crashes_the_session_and_the_join_is_actor_dead():
    session, client = started()
    supervisor = session.proxy().supervisor.get(timeout=WAIT)
    token = token_of(client)
    actors.exit(supervisor, "kill")
    with pytest.raises(ActorDeadError):
        client.join(token)
    actors.await_exit(session, WAIT)
    assert actors.processes() == []


@pytest.mark.parametrize("fault", ["init_error", "init_raises"])
def test_a_writer_whose_init_fails_is_a_writer_error_recorded_on_its_entry(fault, monkeypatch):
    journal: list = []
    if fault == "init_raises":
        monkeypatch.setattr(FaultyWriter, "init", lambda self, opts: (_ for _ in ()).throw(FaultInjected("init")))
    session, client = started(writer=lambda *_: (FaultyWriter, {"journal": journal, "fault": "init_error", "reason": "enospc"}))
    try:
        assert client.join(token_of(client)) == ("error", {"reason": "writer_error"})
        session.proxy().uploads().get(timeout=WAIT)  # its news (and Down) handled
        errors = client.entry("0")["errors"]
        if fault == "init_error":
            assert errors == [("writer_failure", "enospc")]
        else:
            assert errors[0] == ("writer_failure", repr(FaultInjected("init")))
            [(kind, reason)] = errors[1:] or [(None, None)]
            assert kind in ("channel_crash", None)  # its Down may still be on its way
        assert session.is_alive()
    finally:
        stop_session(session)


def test_a_channel_that_dies_before_it_answers_join_is_a_writer_error(monkeypatch):
    """Killed between its start and the session's ``"join"``: the ask finds it
    dead (or its Down comes first); either way the join is a writer error and
    the entry a channel crash."""

    class DiesAtStart(UploadChannel):
        def on_start(self) -> None:
            super().on_start()
            actors.exit(self.actor_ref, "kill")

    monkeypatch.setattr(uploads.session, "UploadChannel", DiesAtStart)
    session, client = started()
    try:
        assert client.join(token_of(client)) == ("error", {"reason": "writer_error"})
        session.proxy().uploads().get(timeout=WAIT)
        entry = client.entry("0")
        # Dead before the session's monitor: "noproc" (dead in between: "killed").
        assert entry["cancelled"] and entry["errors"] in ([("channel_crash", "noproc")], [("channel_crash", "killed")])
        assert session.is_alive()
    finally:
        stop_session(session)

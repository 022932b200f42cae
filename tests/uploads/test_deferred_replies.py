"""The channel's deferred replies: a writer that answers ``writers.Pending``.

A fake writer hands each pending write (or ``close("done")``) to the test as a
``concurrent.futures.Future`` the test resolves when it likes: with ``"ok"``
or ``("error", reason)``, which ``resume()`` (run in the channel) turns into
the callback's result. No store, no thread of the writer's own.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import pykka
from pykka import ActorDeadError

import actors
from tests.helpers import WAIT
from uploads import UploadSession
from uploads.inprocess import InProcessClient, stop_session
from writers import Pending, UploadWriter


@dataclass
class Control:
    """What the test sees of the writer: every callback, and the futures it waits on."""

    pend_writes: bool = True
    pend_done: bool = False
    journal: list = field(default_factory=list)
    waits: queue.Queue = field(default_factory=queue.Queue)

    def next_wait(self) -> Future:
        """The future of the next pending callback (after the channel got it)."""
        return self.waits.get(timeout=WAIT)


@dataclass
class State:
    control: Control
    data: bytearray = field(default_factory=bytearray)


class PendingWriter(UploadWriter):
    """Every write (and, if asked, ``close("done")``) is pending until the test resolves it."""

    def init(self, opts: Control) -> Any:
        return ("ok", State(opts))

    def meta(self, state: State) -> dict:
        return {"data": bytes(state.data)}

    def write_chunk(self, data: bytes, state: State) -> Any:
        state.control.journal.append(("write", bytes(data)))
        if not state.control.pend_writes:
            state.data += data
            return ("ok", state)
        future: Future = Future()

        def resume() -> Any:
            state.control.journal.append(("resume", bytes(data)))
            outcome = future.result()
            if outcome == "ok":
                state.data += data
                return ("ok", state)
            return ("error", outcome[1], state)

        state.control.waits.put(future)
        return Pending(future, resume)

    def close(self, state: State, reason: Any) -> Any:
        state.control.journal.append(("close", reason))
        if reason != "done" or not state.control.pend_done:
            return ("ok", state)
        future: Future = Future()

        def resume() -> Any:
            state.control.journal.append(("resume", "close"))
            outcome = future.result()
            return ("ok", state) if outcome == "ok" else ("error", outcome[1])

        state.control.waits.put(future)
        return Pending(future, resume)

    def release(self, state: State) -> None:
        state.control.journal.append(("release",))


@contextmanager
def running(control: Control, **allow: Any) -> Iterator[tuple[Any, InProcessClient]]:
    """A session whose uploads write with a ``PendingWriter`` on ``control``; stopped after."""
    session = UploadSession.start()
    try:
        client = InProcessClient(session)
        client.call("allow_upload", "avatar", accept="any", writer=lambda *_: (PendingWriter, control), **allow)
        yield session, client
    finally:
        stop_session(session)


def joined(client: InProcessClient, data: bytes) -> Any:
    return client.join(client.preflight({"a.bin": data})["entries"]["0"])


def kinds(control: Control) -> list:
    return [item[0] if item[0] != "close" else item for item in control.journal]


def test_a_pending_write_is_answered_once_its_future_is_done_and_the_channel_is_free_meanwhile():
    control = Control()
    with running(control) as (session, client):
        channel = joined(client, b"abcdef")
        reply = channel.ask(("chunk", b"abc"), block=False)
        future = control.next_wait()
        # The channel is waiting without holding its handler: it answers other mail.
        assert channel.ask("consume_start", timeout=WAIT) == ("error", "in_progress")
        assert not reply.done()
        future.set_result("ok")
        assert reply.get(timeout=WAIT) == "ok"
        assert control.journal == [("write", b"abc"), ("resume", b"abc")]
        last = channel.ask(("chunk", b"def"), block=False)
        control.next_wait().set_result("ok")
        assert last.get(timeout=WAIT) == "ok"
        [meta] = client.call("consume_uploaded_entries", "avatar", lambda meta: ("ok", meta))
        assert meta == {"data": b"abcdef"}
        assert actors.await_exit(channel, WAIT) == ("shutdown", "consumed")
        assert control.journal[-2:] == [("close", "done"), ("release",)]


def test_a_pending_write_that_fails_is_the_writer_error_exit():
    control = Control()
    with running(control) as (session, client):
        channel = joined(client, b"abcdef")
        reply = channel.ask(("chunk", b"abc"), block=False)
        control.next_wait().set_result(("error", ("s3_error", "BadDigest")))
        assert reply.get(timeout=WAIT) == ("error", {"reason": "writer_error"})
        assert actors.await_exit(channel, WAIT) == ("shutdown", "writer_error")
        assert client.entry("0")["errors"] == [("writer_failure", ("s3_error", "BadDigest"))]
        closes = [item for item in control.journal if item[0] == "close"]
        assert closes == [("close", ("error", ("s3_error", "BadDigest")))]
        assert control.journal[-1] == ("release",)


def test_a_chunk_sent_while_one_is_pending_waits_its_turn():
    control = Control()
    with running(control) as (session, client):
        channel = joined(client, b"abcdef")
        first = channel.ask(("chunk", b"abc"), block=False)
        first_wait = control.next_wait()
        second = channel.ask(("chunk", b"def"), block=False)
        assert channel.ask("consume_start", timeout=WAIT) == ("error", "in_progress")  # the second is in hand
        assert control.journal == [("write", b"abc")]  # ...but not written: it waits for the first
        first_wait.set_result("ok")
        assert first.get(timeout=WAIT) == "ok"
        control.next_wait().set_result("ok")
        assert second.get(timeout=WAIT) == "ok"
        assert control.journal[:4] == [("write", b"abc"), ("resume", b"abc"), ("write", b"def"), ("resume", b"def")]
        assert client.entry("0")["done"]


def test_a_cancel_while_a_write_is_pending_closes_the_writer_once_and_never_resumes():
    control = Control()
    with running(control) as (session, client):
        channel = joined(client, b"abcdef")
        reply = channel.ask(("chunk", b"abc"), block=False)
        future = control.next_wait()
        assert channel.ask("cancel", timeout=WAIT) == "ok"
        assert actors.await_exit(channel, WAIT) == ("shutdown", "cancelled")
        with pytest.raises(ActorDeadError):
            reply.get(timeout=WAIT)  # never answered: as mail the channel never handled
        future.set_result("ok")  # too late: nobody resumes it
        assert control.journal == [("write", b"abc"), ("close", "cancel"), ("release",)]


@pytest.mark.parametrize("how", ["client_left", "owner_down"])
def test_an_exit_while_a_write_is_pending_cancels_the_writer(how):
    control = Control()
    with running(control) as (session, client):
        channel = joined(client, b"abcdef")
        reply = channel.ask(("chunk", b"abc"), block=False)
        future = control.next_wait()
        if how == "client_left":
            actors.exit(channel, ("shutdown", "client_left"))
        else:
            actors.exit(session, actors.KILL)
        assert actors.await_exit(channel, WAIT) in (("shutdown", "client_left"), ("shutdown", "owner_down"))
        with pytest.raises(ActorDeadError):
            reply.get(timeout=WAIT)
        future.set_result("ok")
        assert control.journal == [("write", b"abc"), ("close", "cancel"), ("release",)]


def test_a_kill_while_a_write_is_pending_releases_the_writer_and_never_resumes():
    control = Control()
    with running(control) as (session, client):
        channel = joined(client, b"abcdef")
        reply = channel.ask(("chunk", b"abc"), block=False)
        future = control.next_wait()
        actors.exit(channel, actors.KILL)
        assert actors.await_exit(channel, WAIT) == "killed"
        with pytest.raises(ActorDeadError):
            reply.get(timeout=WAIT)
        future.set_result("ok")
        session.proxy().uploads().get(timeout=WAIT)
        assert client.entry("0")["errors"] == [("channel_crash", "killed")]
        assert control.journal == [("write", b"abc"), ("release",)]  # a kill: release only, as always


def test_a_resume_that_raises_crashes_only_its_channel():
    control = Control()
    with running(control) as (session, client):
        channel = joined(client, b"abcdef")
        reply = channel.ask(("chunk", b"abc"), block=False)
        control.next_wait().set_exception(RuntimeError("the store's client broke"))
        reason = actors.await_exit(channel, WAIT)
        assert isinstance(reason, RuntimeError)
        with pytest.raises(ActorDeadError):
            reply.get(timeout=WAIT)
        assert control.journal[-2:] == [("close", "cancel"), ("release",)]
        assert session.is_alive()


def test_the_last_chunk_waits_for_a_pending_close_and_the_owner_hears_done_after_it():
    control = Control(pend_writes=False, pend_done=True)
    with running(control) as (session, client):
        channel = joined(client, b"abc")
        reply = channel.ask(("chunk", b"abc"), block=False)
        future = control.next_wait()
        assert not client.entry("0")["done"]
        future.set_result("ok")
        assert reply.get(timeout=WAIT) == "ok"
        assert client.entry("0")["done"]
        [meta] = client.call("consume_uploaded_entries", "avatar", lambda meta: ("ok", meta))
        assert meta == {"data": b"abc"}
        assert actors.await_exit(channel, WAIT) == ("shutdown", "consumed")  # told to stop: it releases as it goes
        assert control.journal == [("write", b"abc"), ("close", "done"), ("resume", "close"), ("release",)]


def test_a_pending_close_that_fails_is_the_writer_error_exit():
    control = Control(pend_writes=False, pend_done=True)
    with running(control) as (session, client):
        channel = joined(client, b"abc")
        reply = channel.ask(("chunk", b"abc"), block=False)
        control.next_wait().set_result(("error", ("s3_error", "ETagMismatch")))
        assert reply.get(timeout=WAIT) == ("error", {"reason": "writer_error"})
        assert actors.await_exit(channel, WAIT) == ("shutdown", "writer_error")
        assert client.entry("0")["errors"] == [("writer_failure", ("s3_error", "ETagMismatch"))]
        assert control.journal == [("write", b"abc"), ("close", "done"), ("resume", "close"), ("release",)]


def test_a_cancel_while_the_close_is_pending_releases_without_a_second_close():
    control = Control(pend_writes=False, pend_done=True)
    with running(control) as (session, client):
        channel = joined(client, b"abc")
        reply = channel.ask(("chunk", b"abc"), block=False)
        future = control.next_wait()
        assert channel.ask("cancel", timeout=WAIT) == "ok"
        assert actors.await_exit(channel, WAIT) == ("shutdown", "cancelled")
        with pytest.raises(ActorDeadError):
            reply.get(timeout=WAIT)
        future.set_result("ok")
        # close is called once; release (which must undo a pending close's effect) ends it
        assert control.journal == [("write", b"abc"), ("close", "done"), ("release",)]


def test_the_chunk_timeout_does_not_run_against_a_client_waiting_for_its_answer():
    control = Control()
    with running(control, chunk_timeout=0.05) as (session, client):
        channel = joined(client, b"abcdef")
        reply = channel.ask(("chunk", b"abc"), block=False)
        future = control.next_wait()
        with pytest.raises(pykka.Timeout):  # alive after eight timeouts' worth, waiting on the writer
            actors.await_exit(channel, 0.4)
        future.set_result("ok")
        assert reply.get(timeout=WAIT) == "ok"
        # Now the client is idle: the timeout does run.
        assert actors.await_exit(channel, WAIT) == ("shutdown", "timeout")
        assert [item for item in control.journal if item[0] == "close"] == [("close", "cancel")]

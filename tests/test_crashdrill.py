"""The crash drill (issue: crash drills), bounded for CI: one fixed seed and a few
random ones (drawn from ``os.urandom`` at collection and shown in the test id,
so a failure is reproduced with ``liveupload crashtest --uploads 48 --seed S``),
each on both substrates; a broken invariant must print its seed and entry; and
the runtime bugs the drill found, each as a test of its own."""

from __future__ import annotations

import argparse
import os
import threading

import pytest

import actors
from benchmarks.crashdrill import cli, invariants, make_plan, run_plan
from benchmarks.crashdrill.plan import GROUP_SCENARIOS, UPLOAD_FAULTS
from benchmarks.crashdrill.report import render_result
from benchmarks.crashdrill.run import Journal
from supervision import ChildSpec, Supervisor, which_children
from tests.helpers import WAIT
from tests.uploads_helpers import Client
from writers import FaultyWriter, MemoryWriter, TmpFileWriter

UPLOADS = 48  # 12 sessions in 3 groups: every fault and every group scenario, a few seconds a run
FIXED_SEED = 20261123
RANDOM_SEEDS = [int.from_bytes(os.urandom(4), "big") for _ in range(3)]


def drill(seed: int, uploads: int = UPLOADS) -> str:
    """Run the drill of ``seed``; fail the test with the whole report if an invariant broke."""
    result = run_plan(make_plan(seed, uploads))
    text, violations = render_result(result)
    if violations:
        pytest.fail(text, pytrace=False)
    return text


# -- the plan -------------------------------------------------------------------------------


@pytest.mark.substrates("pool")
def test_the_plan_is_a_function_of_the_seed_and_covers_every_fault():
    plan = make_plan(FIXED_SEED, UPLOADS)
    assert plan == make_plan(FIXED_SEED, UPLOADS)
    assert plan != make_plan(FIXED_SEED + 1, UPLOADS)
    assert [u.data() for u in plan.uploads[:3]] == [u.data() for u in make_plan(FIXED_SEED, UPLOADS).uploads[:3]]
    assert set(plan.fault_counts()) == {"none", *UPLOAD_FAULTS}
    assert sorted(plan.scenarios) == sorted(GROUP_SCENARIOS)
    burst = next(e for e in plan.events if e.kind == "burst")
    assert len(burst.targets) == plan.config.max_restarts + 1  # one past the intensity


# -- the bounded drill ------------------------------------------------------------------------


def test_drill_with_the_fixed_seed():
    text = drill(FIXED_SEED)
    assert f"seed {FIXED_SEED}" in text and "PASSED" in text


@pytest.mark.parametrize("seed", RANDOM_SEEDS, ids=[f"seed={s}" for s in RANDOM_SEEDS])
def test_drill_with_a_random_seed(seed):
    drill(seed)


# -- a broken invariant names its seed and entry ---------------------------------------------


@pytest.mark.substrates("pool")
def test_a_broken_invariant_prints_the_seed_the_entry_and_the_command(monkeypatch, capsys):
    seed = next(s for s in range(4242, 5000) if make_plan(s, 16).scenarios == ("calm",))
    plan = make_plan(seed, 16)
    victim = next(u for u in plan.uploads if u.fault is None)
    real = invariants.expected_digest

    def broken(spec):  # a deliberately wrong invariant: one upload's bytes "should" differ
        return "0" * 64 if spec.index == victim.index else real(spec)

    monkeypatch.setattr(invariants, "expected_digest", broken)
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(["--uploads", "16", "--seed", str(seed), "--no-progress", "--substrate", "pool"])
    assert args.run(args) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"crashtest: seed {seed}")
    assert f"FAILED: 1 violation (seed {seed})" in out
    assert f"[intact] {victim.label}: consumed sha256" in out
    assert f"entry: {victim.describe()}" in out
    assert f"reproduce: liveupload crashtest --uploads 16 --seed {seed}" in out


@pytest.mark.substrates("pool")
def test_a_writer_closed_twice_is_named_with_its_entry():
    seed = next(s for s in range(7, 1000) if make_plan(s, 16).scenarios == ("calm",))
    result = run_plan(make_plan(seed, 16))
    assert render_result(result)[1] == []
    record = next(u for u in result.uploads if u.spec.fault is None and not u.session_died)
    record.journal.append(("close", "cancel"))  # as if the channel had closed it again
    text, violations = render_result(result)
    assert [v.invariant for v in violations] == ["neighbours"]
    assert f"[neighbours] {record.spec.label}: closed 2 times ['done', 'cancel'], expected 1" in text
    assert f"seed {seed}; reproduce: liveupload crashtest --uploads 16 --seed {seed}" in text


# -- bugs the drill found ------------------------------------------------------------------------


def test_a_supervised_session_stops_when_its_supervisor_shuts_it_down(logs):
    """An UploadSession traps exits; it must still obey its parent's ``"shutdown"``
    (as an OTP gen_server obeys its parent's exit), not wait to be killed past its
    shutdown timeout (the drill's tree took 10 s per session to stop, each a
    ``shutdown_error`` report and a writer closed only because of the kill)."""
    journal = []
    root = Supervisor.start([ChildSpec("s", (actors.UploadSession, (), {}), restart="transient", shutdown=30.0)])
    try:
        [(_, session, _)] = which_children(root)
        client = Client(session)
        client.call("allow_upload", "avatar", accept="any",
                    writer=lambda *_: (FaultyWriter, {"journal": journal, "journal_release": True}))
        channel = client.join(client.preflight({"a.bin": b"abcdef"})["entries"]["0"])
        assert channel.ask(("chunk", b"abc"), timeout=WAIT) == "ok"
        actors.exit(root, "shutdown")
        assert actors.await_exit(root, WAIT) == "shutdown"
        assert actors.await_exit(session, 0) == "shutdown"
        assert [e for e in journal if e[0] in ("close", "release")] == [("close", "cancel"), ("release",)]
        assert [e for e in logs if e["event"] == "supervisor_report"] == []
    finally:
        if root.is_alive():
            actors.exit(root, "kill")
        for ref in actors.processes():
            actors.exit(ref, "kill")


def test_an_upload_completing_after_its_session_died_ends_cleanly(logs):
    """The last chunk is being written when the session dies: the channel closes its
    writer ``"done"`` and tells the session ``upload_done``; a ``tell`` to a dead
    process raises ``ActorDeadError``, which crashed the channel (a crash report and
    an ``ActorDeadError`` for the client) although nothing went wrong with the
    upload: the drill saw it on a session crash racing a completing upload."""
    journal, stall = Journal(), threading.Event()
    session = actors.UploadSession.start()
    client = Client(session)
    try:
        client.call("allow_upload", "avatar", accept="any", writer=lambda *_: (
            FaultyWriter, {"journal": journal, "journal_release": True, "fault": "stall",
                           "at_chunk": 1, "stall_seconds": WAIT, "stall_event": stall}))
        channel = client.join(client.preflight({"a.bin": b"abc"})["entries"]["0"])
        future = channel.ask(("chunk", b"abc"), block=False)
        assert journal.wait_for(("chunk", 1), WAIT)
        actors.exit(session, "kill")
        assert actors.await_exit(session, WAIT) == "killed"
        stall.set()
        assert future.get(timeout=WAIT) == "ok"
        reason = actors.await_exit(channel, WAIT)
        assert actors.is_clean_exit(reason), reason
        assert [e for e in journal.items if e[0] in ("close", "release")] == [("close", "done"), ("release",)]
        assert [e for e in logs if e["event"] == "process_crashed"] == []
    finally:
        stall.set()
        actors.exit(session, "kill")
        for ref in actors.processes():
            actors.await_exit(ref, WAIT)



def test_channel_killed_just_before_its_session_is_killed_is_released(tmp_path):
    """The session releases a killed channel's writer when it handles the channel's
    ``Down``. If the session is itself killed first, that ``Down`` is discarded with
    its mailbox and nobody releases the writer: the temp file stays. Made
    deterministic by holding the session busy (in a consume function) meanwhile."""
    inside, leave = threading.Event(), threading.Event()

    def factory(name, entry, session):
        if entry["client_name"] == "done.bin":
            return (MemoryWriter, {})
        return (TmpFileWriter, {"dir": str(tmp_path)})

    session = actors.UploadSession.start()
    client = Client(session)
    try:
        client.call("allow_upload", "avatar", accept="any", max_entries=2, writer=factory)
        reply = client.preflight({"done.bin": b"x", "big.bin": b"y" * 10})
        done, big = client.join(reply["entries"]["0"]), client.join(reply["entries"]["1"])
        assert done.ask(("chunk", b"x"), timeout=WAIT) == "ok"
        assert big.ask(("chunk", b"y" * 5), timeout=WAIT) == "ok"
        assert len(list(tmp_path.iterdir())) == 1

        def hold(meta):
            inside.set()
            leave.wait(WAIT)
            return ("ok", None)

        consuming = session.proxy().consume_uploaded_entry("avatar", "0", hold)
        assert inside.wait(WAIT)  # the session is busy: nothing it receives is handled yet
        actors.exit(big, "kill")  # its Down waits in the session's mailbox...
        actors.exit(session, "kill")  # ...which the kill discards
        leave.set()
        with pytest.raises(Exception):
            consuming.get(timeout=WAIT)
        assert actors.await_exit(big, WAIT) == "killed"
        assert list(tmp_path.iterdir()) == [], "the killed channel's temp file was never released"
    finally:
        leave.set()
        actors.exit(session, "kill")
        actors.await_exit(session, WAIT)
        for ref in actors.processes():
            actors.await_exit(ref, WAIT)



def test_a_channel_killed_mid_write_has_its_writer_released_after_its_last_callback():
    """A kill lands while ``write_chunk`` of the last chunk runs: the handler runs to
    its end (the README's kill semantics) and closes the writer with ``"done"``,
    while the session, on the ``Down``, releases it from its own thread: ``release``
    comes before ``close`` and runs concurrently with the writer's callbacks,
    against the writer contract (``close`` then ``release``, one at a time)."""
    journal, stall = Journal(), threading.Event()
    session = actors.UploadSession.start()
    client = Client(session)
    try:
        client.call("allow_upload", "avatar", accept="any", writer=lambda *_: (
            FaultyWriter, {"journal": journal, "journal_release": True, "fault": "stall",
                           "at_chunk": 1, "stall_seconds": WAIT, "stall_event": stall}))
        channel = client.join(client.preflight({"a.bin": b"abc"})["entries"]["0"])
        future = channel.ask(("chunk", b"abc"), block=False)
        assert journal.wait_for(("chunk", 1), WAIT)  # appended just before the stall
        actors.exit(channel, "kill")
        client.call("uploads")  # the session handled the Down, and released the writer
        stall.set()
        with pytest.raises(Exception):
            future.get(timeout=WAIT)  # answered at the kill: the handler may still be running
        assert journal.wait_for(("close", "done"), WAIT) and journal.wait_for(("release",), WAIT)
        ends = [e for e in journal.items if e[0] in ("close", "release")]
        assert ends == [("close", "done"), ("release",)], ends
    finally:
        stall.set()
        session.stop()
        actors.await_exit(session, WAIT)

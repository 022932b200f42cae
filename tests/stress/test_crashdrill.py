"""The crash drill (issue: crash drills), bounded for CI: a fixed list of seeds
and one random seed per run (test id ``seed=random``; its seed is printed, so a
failure is reproduced with ``liveupload crashtest --uploads 48 --seed S``, and
replayed by the next run, ``--lf`` included, while it keeps failing: see
``tests/stress/seeds.py``), each on both substrates; a broken invariant must
print its seed and entry; and the runtime bugs the drill found, each as a test
of its own."""

from __future__ import annotations

import argparse
import dataclasses
import os
import threading
from typing import Any

import pytest

import actors
from benchmarks.crashdrill import cli, invariants, make_plan, run_plan
from benchmarks.crashdrill.plan import GROUP_SCENARIOS, UPLOAD_FAULTS, UploadSpec, mid_upload_rounds
from benchmarks.crashdrill.report import render_result
from benchmarks.crashdrill.run import UploadRecord
from benchmarks.leaks import new_descriptors, open_descriptors
from supervision import ChildSpec, Supervisor, which_children
from tests.helpers import WAIT
from tests.stress import seeds
from uploads.inprocess import InProcessClient
from uploads import UploadSession
from writers import FaultyWriter, Journal, MemoryWriter, TmpFileWriter

UPLOADS = 48  # 12 sessions in 3 groups: every fault and every group scenario, a few seconds a run
FIXED_SEED = 20261123
FIXED_SEEDS = [FIXED_SEED, 1, 20261202]


def drill(seed: int, uploads: int = UPLOADS) -> str:
    """Run the drill of ``seed``; fail the test with the whole report if an invariant broke."""
    result = run_plan(make_plan(seed, uploads))
    text, violations = render_result(result)
    if violations:
        pytest.fail(text, pytrace=False)
    return text


# -- the plan -------------------------------------------------------------------------------


@pytest.mark.pure
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


@pytest.mark.parametrize("seed", FIXED_SEEDS, ids=[f"seed={s}" for s in FIXED_SEEDS])
def test_drill_with_a_fixed_seed(seed):
    text = drill(seed)
    assert f"seed {seed}" in text and "PASSED" in text


@pytest.mark.parametrize("seed", ["random"], ids=["seed=random"])
def test_drill_with_a_random_seed(request, seed):
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    nodeid = request.node.nodeid
    chosen, source = seeds.choose_seed(request.config.getoption("drill_seed"), os.environ.get(seeds.ENV), cache, nodeid)
    print(f"crash drill seed {chosen} ({source}); reproduce: liveupload crashtest --uploads {UPLOADS} --seed {chosen}")
    failed = True
    try:
        drill(chosen)
        failed = False
    finally:
        seeds.remember(cache, nodeid, chosen, failed)


class FakeCache:
    """``pytest.Cache``'s get and set over a dict."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


@pytest.mark.pure
def test_a_failed_random_seed_is_replayed_until_it_passes_and_an_option_or_env_overrides_it():
    cache, node = FakeCache(), "tests/stress/test_crashdrill.py::test_drill_with_a_random_seed[seed=random-pool]"
    draws = iter([11, 22, 33])
    fresh = lambda: next(draws)  # noqa: E731 - a stand-in for os.urandom
    assert seeds.choose_seed(None, None, cache, node, fresh) == (11, "drawn at random")
    seeds.remember(cache, node, 11, failed=True)
    for _ in range(2):  # replayed (so --lf reruns the same drill) as long as it fails
        seed, source = seeds.choose_seed(None, None, cache, node, fresh)
        assert seed == 11 and "last failed" in source
        seeds.remember(cache, node, seed, failed=True)
    assert seeds.choose_seed(None, None, cache, "another test", fresh) == (22, "drawn at random")
    assert seeds.choose_seed("5", None, cache, node, fresh) == (5, "--drill-seed")
    assert seeds.choose_seed(None, "6", cache, node, fresh) == (6, "LIVEUPLOAD_DRILL_SEED")
    assert seeds.choose_seed("5", "6", cache, node, fresh)[0] == 5
    seeds.remember(cache, node, 11, failed=False)  # passed: the next run draws again
    assert seeds.choose_seed(None, None, cache, node, fresh) == (33, "drawn at random")
    assert seeds.choose_seed(None, None, None, node, lambda: 44) == (44, "drawn at random")  # no cache plugin


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
    root = Supervisor.start([ChildSpec("s", (UploadSession, (), {}), restart="transient", shutdown=30.0)])
    try:
        [(_, session, _)] = which_children(root)
        client = InProcessClient(session)
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


def _stalled_in_the_last_chunk(journal: Journal, stall: threading.Event) -> tuple:
    """A session whose one upload (3 bytes, one chunk) stalls inside ``write_chunk``
    of its last chunk until ``stall`` is set: ``(session, client, channel, the
    chunk's future)``, returned once the chunk is in the writer."""
    session = UploadSession.start()
    client = InProcessClient(session)
    client.call("allow_upload", "avatar", accept="any", writer=lambda *_: (
        FaultyWriter, {"journal": journal, "journal_release": True, "fault": "stall",
                       "at_chunk": 1, "stall_seconds": WAIT, "stall_event": stall}))
    channel = client.join(client.preflight({"a.bin": b"abc"})["entries"]["0"])
    future = channel.ask(("chunk", b"abc"), block=False)
    assert journal.wait(lambda items: ("chunk", 1) in items, WAIT)  # appended just before the stall
    return session, client, channel, future


def test_an_upload_completing_after_its_session_died_ends_cleanly(logs):
    """The last chunk is being written when the session dies: the channel closes its
    writer ``"done"`` and tells the session ``upload_done``; a ``tell`` to a dead
    process raises ``ActorDeadError``, which crashed the channel (a crash report and
    an ``ActorDeadError`` for the client) although nothing went wrong with the
    upload: the drill saw it on a session crash racing a completing upload."""
    journal, stall = Journal(), threading.Event()
    session, client, channel, future = _stalled_in_the_last_chunk(journal, stall)
    try:
        actors.exit(session, "kill")
        assert actors.await_exit(session, WAIT) == "killed"
        stall.set()
        assert future.get(timeout=WAIT) == "ok"
        reason = actors.await_exit(channel, WAIT)
        assert actors.is_clean_exit(reason), reason
        assert [e for e in journal.items() if e[0] in ("close", "release")] == [("close", "done"), ("release",)]
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

    session = UploadSession.start()
    client = InProcessClient(session)
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
    its end (the runtime's kill semantics, docs/runtime.md) and closes the writer with ``"done"``,
    while the session, on the ``Down``, releases it from its own thread: ``release``
    comes before ``close`` and runs concurrently with the writer's callbacks,
    against the writer contract (``close`` then ``release``, one at a time)."""
    journal, stall = Journal(), threading.Event()
    session, client, channel, future = _stalled_in_the_last_chunk(journal, stall)
    try:
        actors.exit(channel, "kill")
        client.call("uploads")  # the session handled the Down, and released the writer
        stall.set()
        with pytest.raises(Exception):
            future.get(timeout=WAIT)  # answered at the kill: the handler may still be running
        assert journal.wait(lambda items: ("close", "done") in items and ("release",) in items, WAIT)
        ends = [e for e in journal.items() if e[0] in ("close", "release")]
        assert ends == [("close", "done"), ("release",)], ends
    finally:
        stall.set()
        session.stop()
        actors.await_exit(session, WAIT)


# -- the invariants' precision (audited gaps) ------------------------------------------------------


def _killed(fault: str, at: int, chunks: int, closes: list, *, session_died: bool) -> list[str]:
    """The ``closed_once`` violations of a killed channel whose writer's journal shows ``closes``."""
    spec = UploadSpec(index=0, group=0, session=0, size=chunks * 10, chunks=chunks, writer="memory", fault=fault,
                      at_chunk=at, via=None, content_seed=1)
    record = UploadRecord(spec, channel="c", join="ok", exit="killed", session_died=session_died)
    for item in [("init",), *(("chunk", n) for n in range(1, at + 1)), *(("close", c) for c in closes), ("release",)]:
        record.journal.append(item)
    return [v.detail for v in invariants._check_upload(record, invariants.Summary()) if v.invariant == "closed_once"]


@pytest.mark.pure
def test_a_killed_channel_may_close_cancel_once_only_when_the_kill_raced_its_sessions_death():
    """A session's death makes its channel close ``"cancel"`` (its supervisor's shutdown
    runs ``terminate``, or the channel handles the session's ``Down``); a kill landing
    meanwhile makes the exit ``"killed"`` with that one close. The drill saw it (seed
    2968163397, 200 uploads: 3 runs in 15). Nothing else is accepted."""
    kill = UploadSpec(index=0, group=0, session=0, size=40, chunks=4, writer="memory", fault="kill", at_chunk=2,
                      via=None, content_seed=1)
    assert invariants.killed_closes(kill, session_died=True) == ((), ("cancel",))
    assert invariants.killed_closes(kill, session_died=False) == ((),)
    assert _killed("kill", 2, 4, ["cancel"], session_died=True) == []
    assert _killed("kill", 2, 4, [], session_died=True) == []
    assert _killed("kill_busy", 2, 4, ["cancel"], session_died=True) == []  # the race, mid-write
    assert _killed("kill_busy", 4, 4, ["done"], session_died=True) == []  # the caught handler completed it
    for fault, at, closes, died in [
        ("kill", 2, ["cancel"], False),  # a live session: nothing could have closed it
        ("kill", 2, ["done"], True),  # never "done" for an incomplete upload
        ("kill", 2, ["cancel", "cancel"], True),  # never twice
        ("kill", 2, ["cancel", "done"], True),
        ("kill_busy", 4, ["done", "cancel"], True),
        ("kill_busy", 4, ["cancel"], True),  # the caught last-chunk handler closes "done", not "cancel"
        ("kill_busy", 4, [], False),
    ]:
        found = _killed(fault, at, 4, closes, session_died=died)
        assert len(found) == 1 and "a killed channel's writer" in found[0], (fault, at, closes, died, found)


@pytest.mark.substrates("pool")
def test_the_descriptor_check_compares_sets_so_a_leak_offset_by_a_close_is_seen(tmp_path):
    """The run closes a descriptor that was open before it and leaves a new one open:
    the count is unchanged, the leak is still reported (by number and target)."""
    assert new_descriptors({"3": "/a", "4": "pipe:[1]"}, {"3": "/a", "5": "/b"}) == ["5 -> /b"]
    assert new_descriptors({"3": "/a"}, {"3": "/b"}) == ["3 -> /b"]  # a number reused on something else
    assert new_descriptors({"3": "/a", "4": "/c"}, {"3": "/a"}) == []

    seed = next(s for s in range(7, 1000) if make_plan(s, 16).scenarios == ("calm",))
    kept = os.open(tmp_path / "open-before", os.O_CREAT | os.O_WRONLY)
    leaked: list[int] = []
    lock = threading.Lock()

    def progress(_n: int) -> None:  # runs in the drill's client threads, mid-run
        with lock:
            if not leaked:
                os.close(kept)
                leaked.append(os.open(tmp_path / "leaked", os.O_CREAT | os.O_WRONLY))

    try:
        result = run_plan(make_plan(seed, 16), progress=progress)
        assert len(leaked) == 1
        if not result.fds_measured:
            pytest.skip("file descriptors cannot be listed here")
        shown = result.leaks["file descriptors"]
        assert shown == [f"{leaked[0]} -> {tmp_path / 'leaked'}"], shown
        text, violations = render_result(result)
        assert [v.invariant for v in violations] == ["no_leaks"]
        assert "[no_leaks] file descriptors: 1 left behind" in text
    finally:
        for fd in leaked:
            os.close(fd)
    assert str(tmp_path / "open-before") not in open_descriptors()[1].values()


@pytest.mark.pure
def test_every_session_crash_is_planned_strictly_inside_its_sessions_uploads():
    events = 0
    for uploads in (1, 5, 16, 17, 48, 200):
        for seed in range(200):
            plan = make_plan(seed, uploads)
            for event in plan.events:
                events += 1
                assert event.targets[0] == event.session
                mine = plan.uploads_of(event.group, event.session)
                # some upload has sent after_round chunks and has more to send when it fires
                assert 1 <= event.after_round <= max(mid_upload_rounds(u) for u in mine), (seed, uploads, event)
    assert events > 500
    # a seed keeps its plan wherever its crash already fell mid-upload: the flake's seed still has its burst
    plan = make_plan(2968163397, 200)
    assert plan.event_of(6).describe() == "group 6: burst after round 1 of session 0 (s0 by kill, s1 by message, s2 by message)"
    assert plan.uploads[101].describe().startswith("u101 (group 6, session 1, entry ref 101, fault kill after 3 chunk(s)")


@pytest.mark.substrates("pool")
def test_a_session_crash_fired_after_its_uploads_ended_is_a_violation():
    """The drill checks its crashes did fire mid-upload: a plan forced to fire late
    (past every upload of the session) is reported, by group and round."""
    seed = next(s for s in range(1, 1000) if make_plan(s, 16).scenarios == ("session_crash",))
    plan = make_plan(seed, 16)
    late = dataclasses.replace(plan.events[0], after_round=plan.config.max_chunks + 1)
    result = run_plan(dataclasses.replace(plan, events=(late,)))
    text, violations = render_result(result)
    drill_violations = [v for v in violations if v.invariant == "drill"]
    assert len(drill_violations) == 1, text
    assert "not mid-upload" in drill_violations[0].detail
    assert drill_violations[0].subject == "group 0 (session_crash)"
    # ...and the same plan, as drawn, fires mid-upload
    result = run_plan(plan)
    firer = next(s for s in result.sessions if s.index == plan.events[0].session)
    assert firer.fired_in_progress and firer.fired_after_round == plan.events[0].after_round
    assert render_result(result)[1] == []


@pytest.mark.substrates("pool")
def test_a_crashed_channel_gets_one_report_of_each_kind_the_supervisors_from_its_own_supervisor():
    """OTP: a crash report from the process, a supervisor report from its supervisor.
    A crashed channel logs exactly one ``process_crashed`` and its session's
    ``DynamicSupervisor`` exactly one ``supervisor_report``; a report from any other
    supervisor, a second one, or a missing crash report is a violation."""
    seed = next(
        s for s in range(1, 2000)
        if make_plan(s, 16).scenarios == ("calm",) and any(u.fault == "raise" for u in make_plan(s, 16).uploads)
    )
    result = run_plan(make_plan(seed, 16))
    assert render_result(result)[1] == []
    crashed = next(u for u in result.uploads if u.spec.fault == "raise")
    about = [e for e in result.events if e.get("process") == crashed.channel
             or (e.get("offender") or {}).get("ref") == crashed.channel]
    assert [e["event"] for e in about] == ["process_crashed", "supervisor_report"]
    assert about[1]["supervisor"] == crashed.channel_supervisor
    assert result.labels[crashed.channel_supervisor] == f"channel supervisor of session g0/s{crashed.spec.session}"
    others = {u.channel_supervisor for u in result.uploads if u.spec.session != crashed.spec.session}
    assert crashed.channel_supervisor not in others  # each session has its own

    def violations_with(events):
        result.events = events
        return [v.detail for v in invariants.check(result) if v.invariant == "one_report"]

    original = list(result.events)
    stranger = next(iter(others))
    moved = [dict(e, supervisor=stranger) if e is about[1] else e for e in original]
    [detail] = violations_with(moved)
    assert f"report has supervisor={result.labels[stranger]!r}, expected {result.labels[crashed.channel_supervisor]!r}" in detail
    [detail] = violations_with([e for e in original if e is not about[0]])
    assert "1 process_crashed reports" not in detail and "0 process_crashed reports, expected 1" in detail
    [detail] = violations_with(original + [about[1]])
    assert "2 supervisor_reports, expected 1" in detail
    assert violations_with(original) == []

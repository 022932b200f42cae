"""The process runtime's BEAM semantics, point by point (issue: Foundation)."""

from __future__ import annotations

import asyncio
import io
import logging
import queue
import threading

import pykka
import pytest
import structlog

import actors
from actors.substrates import SUBSTRATES
from tests.helpers import WAIT, Probe, Worker, drain, next_matching


def stopped(*refs):
    for ref in refs:
        if ref.is_alive():
            ref.stop()
        actors.await_exit(ref, WAIT)


# 1. any exception crashes the process -------------------------------------------


def test_exception_in_tell_crashes_with_the_exception_as_reason():
    events = queue.Queue()
    ref = Worker.start(events)
    boom = ValueError("boom")
    ref.tell(("raise", boom))
    assert actors.await_exit(ref, WAIT) is boom
    assert events.get(timeout=WAIT)[:2] == ("terminate", boom)


def test_failed_ask_answers_the_asker_then_crashes_the_process():
    events = queue.Queue()
    ref = Worker.start(events)
    boom = KeyError("k")
    with pytest.raises(KeyError):
        ref.ask(("raise", boom), timeout=WAIT)
    assert actors.await_exit(ref, WAIT) is boom
    assert not ref.is_alive()


def test_failed_proxy_call_crashes_the_process():
    ref = Worker.start()
    boom = RuntimeError("via proxy")
    with pytest.raises(RuntimeError, match="via proxy"):
        ref.proxy().raise_now(boom).get(timeout=WAIT)
    assert actors.await_exit(ref, WAIT) is boom


def test_messages_queued_behind_a_crash_fail_with_actor_dead_error():
    ref = Worker.start()
    entered, release = threading.Event(), threading.Event()
    ref.tell(("block", entered, release))
    assert entered.wait(WAIT)
    ref.tell(("raise", ValueError("x")))
    later = ref.ask("after", block=False)
    release.set()
    with pytest.raises(pykka.ActorDeadError):
        later.get(timeout=WAIT)
    assert isinstance(actors.await_exit(ref, WAIT), ValueError)


# 2. exit reasons and exit signals ----------------------------------------------


def test_stop_exits_normal_and_runs_terminate_in_the_process_itself():
    events = queue.Queue()
    ref = Worker.start(events)
    assert ref.stop() is True
    assert actors.await_exit(ref, 0) == "normal"
    kind, reason, running = events.get(timeout=WAIT)
    assert (kind, reason, running) == ("terminate", "normal", ref)


@pytest.mark.parametrize("reason", ["shutdown", ("shutdown", "closed"), "custom"])
def test_exit_signal_ends_a_non_trapping_process_with_that_reason(reason):
    events = queue.Queue()
    ref = Worker.start(events)
    actors.exit(ref, reason)
    assert actors.await_exit(ref, WAIT) == reason
    assert events.get(timeout=WAIT)[:2] == ("terminate", reason)


def test_normal_exit_signal_is_ignored_by_a_non_trapping_process():
    ref = Worker.start()
    actors.exit(ref, "normal")
    assert ref.ask("still here", timeout=WAIT) == ("reply", "still here")
    stopped(ref)


def test_trapping_process_receives_exit_signals_as_messages():
    inbox = queue.Queue()
    ref = Probe.start(inbox, trap_exit=True)
    actors.exit(ref, "shutdown")
    actors.exit(ref, "normal")
    assert inbox.get(timeout=WAIT) == actors.Exit(None, "shutdown")
    assert inbox.get(timeout=WAIT) == actors.Exit(None, "normal")
    assert ref.is_alive()
    stopped(ref)


def test_kill_cannot_be_trapped_and_skips_terminate():
    events = queue.Queue()
    ref = Worker.start(events, trap_exit=True)
    actors.exit(ref, "kill")
    assert actors.await_exit(ref, WAIT) == "killed"
    assert ("terminate" not in [e[0] for e in drain(events)])


def test_kill_of_a_busy_process_is_immediate_and_discards_its_mail():
    events = queue.Queue()
    ref = Worker.start(events)
    entered, release = threading.Event(), threading.Event()
    busy = ref.ask(("block", entered, release), block=False)
    assert entered.wait(WAIT)
    queued = ref.ask("queued", block=False)
    actors.exit(ref, "kill")
    # Dead to everyone at once, while its handler is still running.
    assert actors.await_exit(ref, 0) == "killed"
    assert not ref.is_alive()
    with pytest.raises(pykka.ActorDeadError):
        busy.get(timeout=WAIT)
    with pytest.raises(pykka.ActorDeadError):
        queued.get(timeout=WAIT)
    with pytest.raises(pykka.ActorDeadError):
        ref.tell("after death")
    release.set()
    assert next_matching(events, lambda e: e[0] == "handler_finished")
    # The handler finished, but nothing after the kill took effect.
    assert [e for e in drain(events) if e[0] in ("got", "terminate")] == []


def test_what_a_killed_handler_does_after_the_kill_is_ignored():
    # Python cannot stop the thread, so the runtime ignores the zombie handler:
    # no message, signal, link, monitor, name or timer of it takes effect.
    inbox = queue.Queue()
    probe = Probe.start(inbox)
    bystander = Worker.start()
    entered, release, done = threading.Event(), threading.Event(), queue.Queue()

    class Doomed(actors.Process):
        def on_receive(self, message):
            entered.set()
            release.wait(WAIT)
            outcomes = []
            probe.tell("told after the kill")
            actors.link(self.actor_ref, bystander)  # would deliver "noproc" to the bystander
            actors.exit(bystander, "shutdown")
            actors.monitor(bystander, self.actor_ref)
            actors.register("zombie", bystander)
            outcomes.append(actors.send_after(probe, "timer after the kill", 0).state)
            try:
                probe.ask("asked after the kill", timeout=WAIT)
            except pykka.ActorDeadError:
                outcomes.append("ask refused")
            try:
                Worker.start()  # it would be an orphan nobody stops
            except pykka.ActorDeadError:
                outcomes.append("start refused")
            done.put(outcomes)

    doomed = Doomed.start()
    doomed.tell("go")
    assert entered.wait(WAIT)
    actors.exit(doomed, "kill")
    release.set()
    outcomes = done.get(timeout=WAIT)
    assert outcomes[1:] == ["ask refused", "start refused"] and actors.pending_timers() == 0
    assert probe.ask("marker", timeout=WAIT) == "marker"
    assert drain(inbox) == ["marker"]
    assert bystander.is_alive() and actors.whereis("zombie") is None
    for ref in (probe, bystander):
        stopped(ref)


def test_exit_signal_arriving_while_a_handler_runs_takes_effect_after_it():
    events = queue.Queue()
    ref = Worker.start(events)
    entered, release = threading.Event(), threading.Event()
    busy = ref.ask(("block", entered, release, "first"), block=False)
    assert entered.wait(WAIT)
    queued = ref.ask("queued", block=False)
    actors.exit(ref, "shutdown")
    assert ref.is_alive()  # still running its handler
    release.set()
    assert busy.get(timeout=WAIT) == "unblocked"
    with pytest.raises(pykka.ActorDeadError):
        queued.get(timeout=WAIT)
    assert actors.await_exit(ref, WAIT) == "shutdown"
    seen = drain(events)
    assert ("handler_finished", "first") in seen
    assert [e[:2] for e in seen if e[0] == "terminate"] == [("terminate", "shutdown")]
    assert not [e for e in seen if e[0] == "got"]


def test_self_exit_with_normal_stops_the_process():
    class Quitter(actors.Process):
        def on_receive(self, message):
            self.exit("normal")
            return "bye"

    ref = Quitter.start()
    assert ref.ask("go", timeout=WAIT) == "bye"
    assert actors.await_exit(ref, WAIT) == "normal"


# 3. terminate and on_start ---------------------------------------------------------


class FailsToStart(actors.Process):
    def __init__(self, events):
        super().__init__()
        self.events = events

    def on_start(self):
        raise OSError("cannot start")

    def terminate(self, reason):
        self.events.put(("terminate", reason))


def test_exception_in_on_start_ends_the_process_and_is_reported(logs):
    events = queue.Queue()
    ref = FailsToStart.start(events)
    reason = actors.await_exit(ref, WAIT)
    assert isinstance(reason, OSError)
    assert events.get(timeout=WAIT) == ("terminate", reason)
    crash = [e for e in logs if e["event"] == "process_crashed"]
    assert len(crash) == 1 and crash[0]["phase"] == "on_start"


def test_exception_in_terminate_becomes_the_exit_reason():
    class BadTerminate(actors.Process):
        def terminate(self, reason):
            raise ZeroDivisionError("in terminate")

    ref = BadTerminate.start()
    ref.stop()
    assert isinstance(actors.await_exit(ref, WAIT), ZeroDivisionError)


def test_start_link_links_to_the_caller_and_reports_start_failures():
    results = queue.Queue()

    class Parent(actors.Process):
        trap_exit = True

        def on_receive(self, message):
            if message == "spawn_good":
                child = Worker.start_link()
                results.put(("child", child))
                return child
            if message == "spawn_bad":
                try:
                    FailsToStart.start_link(queue.Queue())
                except actors.StartError as err:
                    results.put(("start_error", err.reason))
                return None
            results.put(message)
            return None

    parent = Parent.start()
    child = parent.ask("spawn_good", timeout=WAIT)
    actors.exit(child, "boom")
    assert next_matching(results, lambda m: isinstance(m, actors.Exit)) == actors.Exit(child, "boom")
    parent.ask("spawn_bad", timeout=WAIT)
    kind, reason = next_matching(results, lambda m: isinstance(m, tuple) and m[0] == "start_error")
    assert isinstance(reason, OSError)
    with pytest.raises(RuntimeError):
        Worker.start_link()  # not from inside a process
    stopped(parent)


# 4. links ---------------------------------------------------------------------------


def test_crash_propagates_through_a_link_both_ways():
    a, b = Worker.start(), Worker.start()
    actors.link(a, b)
    boom = ValueError("a crashed")
    a.tell(("raise", boom))
    assert actors.await_exit(b, WAIT) is boom
    c, d = Worker.start(), Worker.start()
    actors.link(c, d)
    d.tell(("raise", boom))
    assert actors.await_exit(c, WAIT) is boom


def test_trapping_linked_process_gets_an_exit_message():
    inbox = queue.Queue()
    trapper = Probe.start(inbox, trap_exit=True)
    worker = Worker.start()
    actors.link(trapper, worker)
    worker.stop()
    assert inbox.get(timeout=WAIT) == actors.Exit(worker, "normal")
    crasher = Worker.start()
    actors.link(crasher, trapper)
    boom = RuntimeError("x")
    crasher.tell(("raise", boom))
    assert inbox.get(timeout=WAIT) == actors.Exit(crasher, boom)
    assert trapper.is_alive()
    stopped(trapper)


def test_normal_exit_does_not_kill_a_linked_process():
    a, b = Worker.start(), Worker.start()
    actors.link(a, b)
    a.stop()
    assert actors.await_exit(a, WAIT) == "normal"
    assert b.ask("alive?", timeout=WAIT) == ("reply", "alive?")
    stopped(b)


def test_shutdown_exit_does_propagate_to_linked_processes():
    a, b = Worker.start(), Worker.start()
    actors.link(a, b)
    actors.exit(a, "shutdown")
    assert actors.await_exit(b, WAIT) == "shutdown"


def test_unlink_stops_propagation():
    a, b = Worker.start(), Worker.start()
    actors.link(a, b)
    actors.unlink(b, a)
    a.tell(("raise", ValueError()))
    actors.await_exit(a, WAIT)
    assert b.ask("alive?", timeout=WAIT) == ("reply", "alive?")
    stopped(b)


def test_linking_to_a_dead_process_delivers_noproc():
    dead = Worker.start()
    stopped(dead)
    inbox = queue.Queue()
    trapper = Probe.start(inbox, trap_exit=True)
    actors.link(trapper, dead)
    assert inbox.get(timeout=WAIT) == actors.Exit(dead, "noproc")
    plain = Worker.start()
    actors.link(dead, plain)
    assert actors.await_exit(plain, WAIT) == "noproc"
    stopped(trapper)


# 5. monitors -----------------------------------------------------------------------


def test_monitor_delivers_down_once_with_the_reason():
    inbox = queue.Queue()
    watcher = Probe.start(inbox)
    target = Worker.start()
    mref = actors.monitor(target, watcher)
    actors.exit(target, ("shutdown", "done"))
    assert inbox.get(timeout=WAIT) == actors.Down(mref, target, ("shutdown", "done"))
    watcher.ask("sync", timeout=WAIT)
    assert drain(inbox) == ["sync"]
    assert actors.demonitor(mref) is False
    stopped(watcher)


def test_monitor_of_a_dead_process_is_noproc_at_once():
    inbox = queue.Queue()
    watcher = Probe.start(inbox)
    target = Worker.start()
    stopped(target)
    mref = actors.monitor(target, watcher)
    assert inbox.get(timeout=WAIT) == actors.Down(mref, target, "noproc")
    stopped(watcher)


def test_demonitor_means_no_down():
    inbox = queue.Queue()
    watcher = Probe.start(inbox)
    target = Worker.start()
    mref = actors.monitor(target, watcher)
    assert actors.demonitor(mref) is True
    stopped(target)
    watcher.ask("sync", timeout=WAIT)
    assert drain(inbox) == ["sync"]
    stopped(watcher)


def test_monitor_set_up_while_the_target_is_dying_gets_exactly_one_down():
    inbox = queue.Queue()
    watcher = Probe.start(inbox)
    for _ in range(100):
        target = Worker.start()
        go = threading.Barrier(2)

        def killer():
            go.wait()
            actors.exit(target, "bye")

        thread = threading.Thread(target=killer)
        thread.start()
        go.wait()
        mref = actors.monitor(target, watcher)
        thread.join()
        down = inbox.get(timeout=WAIT)
        assert down.ref is mref and down.target is target
        assert down.reason in ("bye", "noproc")
        actors.await_exit(target, WAIT)
    watcher.ask("sync", timeout=WAIT)
    assert drain(inbox) == ["sync"]
    stopped(watcher)


def test_many_processes_exiting_at_once_each_deliver_their_signals():
    inbox = queue.Queue()
    watcher = Probe.start(inbox, trap_exit=True)
    workers = [Worker.start() for _ in range(200)]
    mrefs = {actors.monitor(w, watcher): w for w in workers}
    for w in workers:
        actors.link(w, watcher)
    for i, w in enumerate(workers):
        w.tell(("raise", ValueError(i)) if i % 2 else "noop")
        if not i % 2:
            actors.exit(w, "shutdown")
    seen_down, seen_exit = {}, {}
    while len(seen_down) < 200 or len(seen_exit) < 200:
        msg = inbox.get(timeout=WAIT)
        if isinstance(msg, actors.Down):
            assert msg.ref not in seen_down
            seen_down[msg.ref] = msg
        elif isinstance(msg, actors.Exit):
            assert msg.sender not in seen_exit
            seen_exit[msg.sender] = msg.reason
    for mref, w in mrefs.items():
        assert seen_down[mref].reason is actors.await_exit(w, WAIT)
        assert seen_exit[w] is seen_down[mref].reason
    assert watcher.is_alive()
    stopped(watcher)


# 6. await_exit ----------------------------------------------------------------------


def test_await_exit_returns_the_reason_also_after_the_fact_and_times_out():
    ref = Worker.start()
    with pytest.raises(pykka.Timeout):
        actors.await_exit(ref, 0.01)
    ref.stop()
    assert actors.await_exit(ref) == "normal"
    assert actors.await_exit(ref, 0) == "normal"
    assert ref.exit_reason == "normal"


@pytest.mark.pure
def test_runtime_functions_reject_refs_that_are_not_processes():
    class Plain(pykka.ThreadingActor):
        pass

    plain = Plain.start()
    try:
        with pytest.raises(TypeError):
            actors.await_exit(plain, 0)
    finally:
        plain.stop()


# 7. names ----------------------------------------------------------------------------


def test_names_register_lookup_unregister_and_free_on_exit():
    a, b = Worker.start(), Worker.start()
    actors.register("alpha", a)
    assert actors.whereis("alpha") is a
    with pytest.raises(actors.NameTakenError):
        actors.register("alpha", b)
    with pytest.raises(actors.NameTakenError):
        actors.register("other-name", a)
    actors.unregister("alpha")
    assert actors.whereis("alpha") is None
    with pytest.raises(KeyError):
        actors.unregister("alpha")
    actors.register("beta", b)
    stopped(b)
    assert actors.whereis("beta") is None
    actors.register("beta", a)  # the name is free again
    assert actors.whereis("beta") is a
    with pytest.raises(ValueError):
        actors.register("gamma", b)  # dead
    stopped(a)
    assert "beta" not in actors.registered()


def test_a_killer_killed_while_its_victim_dies_still_delivers_the_victims_signals(monkeypatch):
    # The victim's death runs on the killer's thread; the killer being killed
    # meanwhile must not silence the runtime's own Exit and Down messages.
    inbox = queue.Queue()
    trapping = Probe.start(inbox, trap_exit=True)
    watcher = Probe.start(inbox)
    victim = Worker.start()
    actors.link(trapping, victim)
    actors.monitor(victim, watcher)
    in_death, release = threading.Event(), threading.Event()

    def hold(ref, reason):
        if ref is victim:
            in_death.set()
            release.wait(WAIT)

    monkeypatch.setattr("actors.process._death_hooks", [hold, *actors.process._death_hooks])

    class Killer(actors.Process):
        def on_receive(self, message):
            actors.exit(victim, actors.KILL)

    killer = Killer.start()
    killer.tell("go")
    assert in_death.wait(WAIT)
    actors.exit(killer, actors.KILL)  # while its handler is inside the victim's death
    release.set()
    got = {type(inbox.get(timeout=WAIT)).__name__ for _ in range(2)}
    assert got == {"Exit", "Down"}
    for ref in (trapping, watcher):
        stopped(ref)


def test_a_name_is_free_the_instant_its_process_dies(monkeypatch):
    # Seen from inside the death itself (a hook that runs before the name's own
    # clean-up): the dead holder is no longer found, and the name can be taken.
    seen = []
    other = Worker.start()

    holder = Worker.start()

    def look(ref, reason):
        if ref is holder:
            seen.append(actors.whereis("held"))
            actors.register("held", other)

    monkeypatch.setattr("actors.process._death_hooks", [look, *actors.process._death_hooks])
    actors.register("held", holder)
    actors.exit(holder, "kill")
    assert seen == [None]
    assert actors.whereis("held") is other
    stopped(other)


# 8. timers ---------------------------------------------------------------------------


def test_send_after_delivers_and_cancel_prevents_delivery():
    inbox = queue.Queue()
    ref = Probe.start(inbox)
    cancelled = actors.send_after(ref, "cancelled", 0.05)
    marker = actors.send_after(ref, "marker", 0.1)
    assert actors.cancel_timer(cancelled) is True
    assert inbox.get(timeout=WAIT) == "marker"
    assert actors.cancel_timer(marker) is False  # already fired
    assert actors.cancel_timer(cancelled) is False
    assert drain(inbox) == []
    stopped(ref)


def test_all_timers_share_one_thread_that_ends_when_idle():
    inbox = queue.Queue()
    ref = Probe.start(inbox)
    before = {t.name for t in threading.enumerate()}
    timers = [actors.send_after(ref, i, 0.02 + i * 0.001) for i in range(50)]
    timer_threads = [t for t in threading.enumerate() if t.name == "actors-timers"]
    assert len(timer_threads) == 1
    assert sorted(inbox.get(timeout=WAIT) for _ in timers) == list(range(50))
    timer_threads[0].join(WAIT)
    assert not timer_threads[0].is_alive()  # no pending timer: the thread ended
    assert "actors-timers" not in {t.name for t in threading.enumerate()} - before
    stopped(ref)


def test_timers_to_a_process_are_cancelled_when_it_dies():
    ref = Worker.start()
    timer = actors.send_after(ref, "late", 30)
    assert actors.pending_timers() == 1
    stopped(ref)
    assert actors.pending_timers() == 0
    assert actors.cancel_timer(timer) is False


def test_process_send_after_convenience():
    inbox = queue.Queue()

    class Ticker(Probe):
        def on_start(self):
            self.send_after("tick", 0.01)

    ref = Ticker.start(inbox)
    assert inbox.get(timeout=WAIT) == "tick"
    stopped(ref)


# 9. asyncio bridge ---------------------------------------------------------------------


def test_ask_async_does_not_block_the_event_loop():
    ref = Worker.start()
    entered, release = threading.Event(), threading.Event()

    async def scenario():
        reply = asyncio.ensure_future(actors.ask_async(ref, ("block", entered, release), timeout=WAIT))
        ticks = 0
        while not entered.is_set():  # the loop keeps running while the process works
            ticks += 1
            await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, release.set)
        assert await reply == "unblocked"
        assert await actors.ask_async(ref, "x") == ("reply", "x")
        assert await ref.ask("awaited", block=False) == ("reply", "awaited")
        with pytest.raises(ValueError):
            await actors.ask_async(ref, ("raise", ValueError("async")))
        return ticks

    assert asyncio.run(scenario()) > 0
    assert isinstance(actors.await_exit(ref, WAIT), ValueError)


def test_awaiting_a_process_leaves_the_loop_free_to_run_what_the_process_waits_for():
    # The handler waits for an event that only a loop callback sets: if awaiting
    # the reply blocked the loop, the callback could not run and the handler
    # would time out and answer False.
    class Gatekeeper(actors.Process):
        def on_receive(self, gate):
            return gate.wait(WAIT)

    ref = Gatekeeper.start()

    async def scenario():
        loop = asyncio.get_running_loop()
        answers = []
        for how in ("ask_async", "await future"):
            gate = threading.Event()
            loop.call_soon(gate.set)
            if how == "ask_async":
                answers.append(await actors.ask_async(ref, gate, timeout=2 * WAIT))
            else:
                answers.append(await ref.ask(gate, block=False))
        return answers

    assert asyncio.run(scenario()) == [True, True]
    stopped(ref)


def test_ask_async_times_out_and_reports_dead_processes():
    ref = Worker.start()
    entered, release = threading.Event(), threading.Event()

    async def scenario():
        with pytest.raises(TimeoutError):
            await actors.ask_async(ref, ("block", entered, release), timeout=0.05)
        release.set()
        ref.stop(block=False)
        actors.await_exit(ref, WAIT)
        with pytest.raises(pykka.ActorDeadError):
            await actors.ask_async(ref, "dead")

    asyncio.run(scenario())


# 10. BaseException stays in its process -------------------------------------------------


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exception_ends_only_its_own_process(exc_type):
    bystander = Worker.start()
    victim = Worker.start()
    exc = exc_type()
    with pytest.raises(pykka.ActorDeadError):
        victim.ask(("raise", exc), timeout=WAIT)
    assert actors.await_exit(victim, WAIT) is exc
    assert bystander.ask("ok?", timeout=WAIT) == ("reply", "ok?")
    stopped(bystander)


# 11. crash reports through structlog ------------------------------------------------------


def test_crash_report_is_structured_and_clean_exits_are_not_errors(logs):
    quiet = [Worker.start() for _ in range(3)]
    quiet[0].stop()
    actors.exit(quiet[1], "shutdown")
    actors.exit(quiet[2], ("shutdown", "bye"))
    for ref in quiet:
        actors.await_exit(ref, WAIT)
    assert [e for e in logs if e["log_level"] in ("error", "critical")] == []
    crasher = Worker.start()
    crasher.tell(("raise", ValueError("reported")))
    actors.await_exit(crasher, WAIT)
    [report] = [e for e in logs if e["event"] == "process_crashed"]
    assert report["log_level"] == "error"
    assert report["process"] == str(crasher)
    assert report["reason"] == "ValueError('reported')"
    assert report["exc_info"][0] is ValueError


@pytest.mark.pure
def test_pykka_stdlib_logging_goes_through_the_structlog_formatter_off_the_callers_thread():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        actors.configure_logging("info", json=True, stream=stream)
        [output] = actors.log.output_handlers()
        writers_threads = []
        emit = output.emit
        output.emit = lambda record: (writers_threads.append(threading.current_thread()), emit(record))[1]
        logging.getLogger("pykka").warning("from pykka")
        structlog.get_logger("liveupload.test").warning("from structlog", field=1)
        try:
            raise ValueError("rendered later")
        except ValueError:
            structlog.get_logger("liveupload.test").exception("with traceback")
    finally:
        actors.log.stop_logging()  # renders what is queued, ends the listener thread
        for handler in list(root.handlers):
            if handler not in saved[1]:
                root.removeHandler(handler)
        root.setLevel(saved[0])
        structlog.reset_defaults()
    lines = stream.getvalue().splitlines()
    import json

    records = [json.loads(line) for line in lines]
    assert {"event": "from pykka", "logger": "pykka", "level": "warning"}.items() <= records[0].items()
    assert {"event": "from structlog", "field": 1, "level": "warning"}.items() <= records[1].items()
    assert "ValueError: rendered later" in records[2]["exception"]  # the traceback survives the hand-over
    assert len(writers_threads) == 3 and threading.current_thread() not in writers_threads


def test_a_dead_targets_monitor_records_leave_its_watcher():
    inbox = queue.Queue()
    watcher = Probe.start(inbox)
    for _ in range(20):
        target = Worker.start()
        actors.monitor(target, watcher)
        stopped(target)
    assert not watcher._watching  # noqa: SLF001 - the bookkeeping itself is what is tested
    stopped(watcher)


def test_await_exit_returns_after_the_name_is_freed_and_signals_are_out():
    inbox = queue.Queue()
    watcher = Probe.start(inbox)
    for i in range(50):
        target = Worker.start()
        actors.register(f"short-lived-{i}", target)
        mref = actors.monitor(target, watcher)
        target.tell(("raise", ValueError(i)))
        actors.await_exit(target, WAIT)
        assert actors.whereis(f"short-lived-{i}") is None
        assert not target.is_alive()
        assert inbox.get(timeout=WAIT).ref is mref
    stopped(watcher)


def test_a_process_whose_thread_cannot_start_is_not_left_half_alive(monkeypatch):
    def no_threads(process):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(SUBSTRATES["thread"], "spawn", no_threads)
    inbox = queue.Queue()
    parent = Probe.start(inbox, trap_exit=True, substrate="pool")
    before = set(actors.processes())
    with pytest.raises(RuntimeError, match="can't start new thread"):
        Worker.start(substrate="thread")
    assert set(actors.processes()) == before

    class Spawner(actors.Process):
        trap_exit = True  # like a supervisor: the failed child's exit signal arrives as a message

        def on_receive(self, message):
            if isinstance(message, actors.Exit):
                return None
            try:
                Worker.start_link(substrate="thread")
            except actors.StartError as err:
                return repr(err.reason)

    spawner = Spawner.start(substrate="pool")
    assert "can't start new thread" in spawner.ask("go", timeout=WAIT)
    assert set(actors.processes()) == before | {spawner}
    stopped(spawner, parent)


def test_a_process_killed_before_it_started_runs_no_on_start():
    started = queue.Queue()

    class Slow(actors.Process):
        def on_start(self):
            started.put(self.actor_ref)

    process = Slow()  # made but not yet run: as if still queued on the scheduler
    assert repr(process.actor_ref).startswith("<ProcessRef Slow #")
    actors.process._die(process.actor_ref, actors.KILLED)  # noqa: SLF001 - what a kill does
    assert process.run_start() == actors.KILLED  # what the substrate runs next
    assert started.empty()

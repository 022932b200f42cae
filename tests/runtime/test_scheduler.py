"""The M:N scheduler (issue: Lightweight processes): fairness, exclusivity,
ordering, blocking and the choice of substrate."""

from __future__ import annotations

import queue
import threading

import pytest

import actors
from actors.substrates.pool import BATCH, scheduler
from tests.helpers import WAIT, Probe, drain

pytestmark = pytest.mark.substrates("pool")


class Recorder(actors.Process):
    """Records (name, message) into a shared list, and which thread ran it."""

    def __init__(self, name, log, running=None):
        super().__init__()
        self.name = name
        self.log = log
        self.running = running

    def on_receive(self, message):
        if self.running is not None:
            with self.running["lock"]:
                assert self.actor_ref not in self.running["now"], "ran on two workers at once"
                self.running["now"].add(self.actor_ref)
            try:
                self.log.append((self.name, message))
            finally:
                with self.running["lock"]:
                    self.running["now"].discard(self.actor_ref)
        else:
            self.log.append((self.name, message))
        return message


@pytest.mark.substrates("pool", "loop")  # the loop hands its processes to the pool the same way
def test_a_flooded_process_does_not_starve_another():
    log: list = []
    gate = threading.Event()

    class Holder(actors.Process):
        def on_receive(self, message):
            if message == "hold":
                gate.wait(WAIT)  # keeps the flood queued up behind it
            log.append(("flood", message))

    flood = Holder.start()
    other = Recorder.start("other", log)
    flood.tell("hold")
    for i in range(BATCH * 20):
        flood.tell(i)
    other.tell("hello")
    gate.set()
    other.ask("sync", timeout=WAIT)
    flood.ask("sync", timeout=WAIT)
    position = log.index(("other", "hello"))
    assert position < BATCH * 20, "the other process waited for the whole flood"
    for ref in (flood, other):
        ref.stop()


@pytest.mark.substrates("pool", "loop")  # the loop hands its processes to the pool the same way
def test_a_process_never_runs_on_two_workers_at_once_and_keeps_pair_order():
    log: list = []
    running = {"lock": threading.Lock(), "now": set()}
    targets = [Recorder.start(f"t{i}", log, running) for i in range(8)]

    def sender(k):
        for n in range(300):
            targets[n % 8].tell((k, n))

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for ref in targets:
        ref.ask("sync", timeout=WAIT)
    for name in (f"t{i}" for i in range(8)):
        for k in range(4):
            seen = [m[1] for n, m in log if n == name and isinstance(m, tuple) and m[0] == k]
            assert seen == sorted(seen)  # each sender's messages arrive in the order sent
    for ref in targets:
        ref.stop()


@pytest.mark.substrates("pool", "loop")  # the loop hands its processes to the pool the same way
def test_nested_asks_deeper_than_the_pool_do_not_deadlock():
    depth = scheduler().size * 3

    class Link(actors.Process):
        def __init__(self, next_ref):
            super().__init__()
            self.next_ref = next_ref

        def on_receive(self, message):
            if self.next_ref is None:
                return message + 1
            return self.next_ref.ask(message + 1, timeout=WAIT)  # waits on its worker

    chain = None
    refs = []
    for _ in range(depth):
        chain = Link.start(chain)
        refs.append(chain)
    assert chain.ask(0, timeout=WAIT) == depth
    for ref in refs:
        ref.stop()


@pytest.mark.substrates("pool", "loop")  # the loop hands its processes to the pool the same way
def test_blocked_handlers_do_not_starve_a_bystander():
    release = threading.Event()
    entered = queue.Queue()
    n = scheduler().size * 3

    class Blocker(actors.Process):
        def on_receive(self, message):
            entered.put(message)
            release.wait(WAIT)  # not marked: the watchdog finds it stuck

    blockers = [Blocker.start() for _ in range(n)]
    for i, ref in enumerate(blockers):
        ref.tell(i)
    assert sorted(entered.get(timeout=WAIT) for _ in range(n)) == list(range(n))  # all blocked at once
    bystander = Probe.start(queue.Queue())
    assert bystander.ask("still served", timeout=WAIT) == "still served"
    assert not release.is_set()  # it was answered while every blocker still blocked
    release.set()
    for ref in [*blockers, bystander]:
        ref.stop()


def test_marked_blocking_section_hands_the_worker_on():
    handoffs = scheduler().handoffs
    release = threading.Event()

    class Waiter(actors.Process):
        def on_receive(self, message):
            with actors.blocking():
                release.wait(WAIT)
            return "done"

    waiters = [Waiter.start() for _ in range(scheduler().size)]
    futures = [w.ask("go", block=False) for w in waiters]
    bystander = Probe.start(queue.Queue())
    assert bystander.ask("ping", timeout=WAIT) == "ping"
    release.set()
    assert [f.get(timeout=WAIT) for f in futures] == ["done"] * len(waiters)
    assert scheduler().handoffs > handoffs
    for ref in [*waiters, bystander]:
        ref.stop()


def test_an_idle_runtime_holds_no_scheduler_thread():
    ref = Probe.start(queue.Queue())
    assert ref.ask("x", timeout=WAIT) == "x"
    threads = scheduler().threads()
    assert threads
    ref.stop()
    actors.await_exit(ref, WAIT)
    for thread in threads:
        thread.join(WAIT)
    assert not any(t.is_alive() for t in threads)


def test_substrate_is_chosen_per_class_and_per_start():
    inbox = queue.Queue()

    class OwnThread(Probe):
        substrate = "thread"

        def on_receive(self, message):
            inbox.put(threading.current_thread().name)

    class Pooled(Probe):
        def on_receive(self, message):
            inbox.put(threading.current_thread().name)

    own = OwnThread.start(inbox)
    pooled = Pooled.start(inbox)
    chosen = Pooled.start(inbox, substrate="thread")
    for ref in (own, pooled, chosen):
        ref.tell("where")
        name = inbox.get(timeout=WAIT)
        if ref is pooled:
            assert name.startswith("actors-worker-")
        else:
            assert name.startswith(("OwnThread-", "Pooled-"))
    with pytest.raises(ValueError):
        Pooled.start(inbox, substrate="fibers")
    for ref in (own, pooled, chosen):
        ref.stop()
    assert drain(inbox) == []


def test_many_messages_keep_their_order_between_two_processes():
    got = []

    class Sink(actors.Process):
        def on_receive(self, message):
            got.append(message)

    class Source(actors.Process):
        def __init__(self, sink):
            super().__init__()
            self.sink = sink

        def on_receive(self, n):
            for i in range(n):
                self.sink.tell(i)

    sink = Sink.start()
    source = Source.start(sink)
    source.tell(20_000)
    source.stop()  # queued behind the burst: the source has sent all when it stops
    actors.await_exit(source, WAIT * 4)
    sink.stop()  # queued behind the 20,000
    actors.await_exit(sink, WAIT * 4)
    assert got == list(range(20_000))


def test_idle_processes_cost_no_cpu_the_watchdog_sleeps_until_work_comes():
    # An idle process costs only its objects: with processes alive but no mail,
    # the watchdog stops looking every millisecond and sleeps.
    idle = [Probe.start(queue.Queue()) for _ in range(50)]
    assert idle[0].ask("up", timeout=WAIT) == "up"
    assert scheduler().watchdog_sleeping.wait(WAIT)
    # Work wakes it: an unmarked handler stuck in one message is still handed
    # off, so a bystander is served while every worker is stuck.
    release = threading.Event()
    entered = queue.Queue()

    class Blocker(actors.Process):
        def on_receive(self, message):
            entered.put(message)
            release.wait(WAIT)

    blockers = [Blocker.start() for _ in range(scheduler().size)]
    for ref in blockers:
        ref.tell("block")
    for _ in blockers:
        entered.get(timeout=WAIT)
    assert idle[1].ask("served", timeout=WAIT) == "served"
    release.set()
    for ref in [*blockers, *idle]:
        ref.stop()

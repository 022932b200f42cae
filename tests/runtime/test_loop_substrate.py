"""The ``"loop"`` substrate (issue 16): processes as callbacks on an asyncio
event loop, so a coroutine's ask to a process on its own loop crosses no
thread; waits and stuck handlers hand the loop's processes to the pool."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator

import pytest
from pykka import ActorDeadError

import actors
from actors import substrates
from tests.helpers import WAIT, Probe

pytestmark = pytest.mark.substrates("loop")


class Where(actors.Process):
    """Answers with the name of the thread that handled the message."""

    def on_receive(self, message):
        if message == "crash":
            raise RuntimeError("boom")
        return threading.current_thread().name


class Bench(actors.Process):
    """Waits, unmarked, on the event it is sent (the watchdog finds it stuck)."""

    def __init__(self, entered: queue.Queue | None = None) -> None:
        super().__init__()
        self.entered = entered

    def on_receive(self, message):
        if isinstance(message, tuple) and message[0] == "hold":
            if self.entered is not None:
                self.entered.put(message[1])
            message[2].wait(WAIT)
            return "held"
        if isinstance(message, tuple) and message[0] == "set":
            message[1].set()
        return message


class LoopThread:
    """An asyncio loop on a thread of its own (as uvicorn's), bound as the
    ``"loop"`` substrate's home; counts its ``call_soon_threadsafe`` calls."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.threadsafe_calls = 0
        original = self.loop.call_soon_threadsafe

        def counting(*args, **kwargs):
            self.threadsafe_calls += 1
            return original(*args, **kwargs)

        self.loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-loop")
        self.thread.start()
        assert self.run(self._bind())

    async def _bind(self) -> bool:
        return substrates.bind_loop()

    async def _unbind(self) -> None:
        substrates.unbind_loop()

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT)

    def close(self) -> None:
        self.run(self._unbind())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


@pytest.fixture
def bound() -> Iterator[LoopThread]:
    loop = LoopThread()
    try:
        yield loop
    finally:
        loop.close()


def test_an_ask_from_a_coroutine_to_a_process_on_its_loop_crosses_no_thread(bound):
    ref = Where.start(substrate="loop")

    async def ask_many():
        before = bound.threadsafe_calls
        names = [await actors.ask_async(ref, "where") for _ in range(50)]
        return names, bound.threadsafe_calls - before

    names, hops = bound.run(ask_many())
    assert names == ["test-loop"] * 50  # handled on the loop's own thread
    assert hops == 0  # neither the ask nor the reply went through call_soon_threadsafe
    ref.stop()


def test_mail_from_another_thread_wakes_a_loop_process_with_one_threadsafe_call(bound):
    inbox: queue.Queue = queue.Queue()
    gate = threading.Event()
    ref = Probe.start(inbox, substrate="loop")
    assert ref.ask("started", timeout=WAIT) == "started"
    inbox.get(timeout=WAIT)
    holder = Bench.start(substrate="loop")
    holder.tell(("hold", None, gate))  # holds the loop, so the mail below queues up meanwhile
    before = bound.threadsafe_calls
    for i in range(10):
        ref.tell(i)
    assert bound.threadsafe_calls - before <= 1  # the first tell wakes it; the rest ride along
    gate.set()
    assert [inbox.get(timeout=WAIT) for _ in range(10)] == list(range(10))
    for r in (ref, holder):
        r.stop()


def test_a_process_on_the_loop_substrate_runs_on_the_bound_loop_unless_told_otherwise(bound):
    on_loop = Where.start(substrate="loop")
    on_thread = Where.start(substrate="thread")
    assert on_loop.ask("where", timeout=WAIT) == "test-loop"
    assert on_thread.ask("where", timeout=WAIT).startswith("Where-")
    for ref in (on_loop, on_thread):
        ref.stop()


def test_a_blocking_ask_on_the_loop_thread_does_not_deadlock(bound):
    ref = Where.start(substrate="loop")

    async def ask_blocking():
        return ref.ask("where", timeout=WAIT)  # blocks the loop: its processes run on the pool meanwhile

    assert bound.run(ask_blocking()).startswith("actors-worker-")
    assert bound.run(actors.ask_async(ref, "where")) == "test-loop"  # back on the loop afterwards
    ref.stop()


def test_a_stuck_handler_on_the_loop_does_not_starve_its_neighbours(bound):
    entered: queue.Queue = queue.Queue()
    gate = threading.Event()
    stuck = Bench.start(entered, substrate="loop")
    neighbour = Bench.start(substrate="loop")
    held = stuck.ask(("hold", "in", gate), block=False)
    assert entered.get(timeout=WAIT) == "in"
    neighbour.ask(("set", gate), timeout=WAIT)  # runs on the pool while the loop is stuck
    assert held.get(timeout=WAIT) == "held"
    for ref in (stuck, neighbour):
        ref.stop()


def test_a_killed_loop_process_with_a_handler_running_is_dead_at_once(bound, logs):
    entered: queue.Queue = queue.Queue()
    gate = threading.Event()
    victim = Bench.start(entered, substrate="loop")
    watcher_inbox: queue.Queue = queue.Queue()
    watcher = Probe.start(watcher_inbox, substrate="loop")
    mref = actors.monitor(victim, watcher)
    pending = victim.ask(("hold", "in", gate), block=False)
    assert entered.get(timeout=WAIT) == "in"
    actors.exit(victim, actors.KILL)
    assert actors.await_exit(victim, timeout=WAIT) == actors.KILLED
    with pytest.raises(ActorDeadError):
        pending.get(timeout=WAIT)  # its reply is dropped: the asker is answered at once
    assert watcher_inbox.get(timeout=WAIT) == actors.Down(mref, victim, actors.KILLED)
    gate.set()  # the handler runs to its end; nothing it does counts
    assert watcher.ask("alive", timeout=WAIT) == "alive"
    watcher.stop()


def test_a_crash_on_the_loop_ends_that_process_only(bound, logs):
    crasher = Where.start(substrate="loop")
    bystander = Where.start(substrate="loop")
    with pytest.raises(RuntimeError):
        bound.run(actors.ask_async(crasher, "crash"))
    assert isinstance(actors.await_exit(crasher, timeout=WAIT), RuntimeError)
    assert bound.run(actors.ask_async(bystander, "where")) == "test-loop"
    bystander.stop()


def test_processes_still_alive_when_the_loop_is_unbound_go_on_on_the_pool():
    inbox: queue.Queue = queue.Queue()
    loop = LoopThread()
    try:
        ref = Where.start(substrate="loop")
        probe = Probe.start(inbox, substrate="loop")
        assert ref.ask("where", timeout=WAIT) == "test-loop"
    finally:
        loop.close()
    assert ref.ask("where", timeout=WAIT).startswith("actors-worker-")
    actors.send_after(probe, "tick", 0.001)  # timers reach them too
    assert inbox.get(timeout=WAIT) == "tick"
    for r in (ref, probe):
        r.stop()
    assert substrates.bound_loop() is None


def test_only_one_loop_is_bound_at_a_time(bound):
    async def bind_again():
        return substrates.bind_loop()

    other = asyncio.new_event_loop()
    try:
        assert other.run_until_complete(bind_again()) is False
    finally:
        other.close()
    assert substrates.bound_loop() is bound.loop


def test_the_own_loop_thread_ends_with_its_last_process():
    ref = Where.start(substrate="loop")
    name = ref.ask("where", timeout=WAIT)
    assert name.startswith("actors-loop-")
    threads = [t for t in substrates.threads() if t.name == name]
    assert threads
    ref.stop()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()

"""``actors.shutdown``: the whole runtime stops in order and leaves no thread."""

from __future__ import annotations

import queue
import threading

import pytest
from pykka import ActorDeadError

import actors
from actors import substrates
from actors.timers import timer_thread
from supervision import ChildSpec, DynamicSupervisor, Supervisor, start_child
from tests.helpers import WAIT, Worker, drain

pytestmark = pytest.mark.timeout(30)


class Stubborn(actors.Process):
    """Traps exits and ignores them: only a kill ends it."""

    trap_exit = True

    def on_receive(self, message):
        return None


def test_shutdown_stops_trees_top_down_without_restarts_and_joins_every_thread():
    events: queue.Queue = queue.Queue()
    starts: list[str] = []

    def child(cid):
        def start():
            starts.append(cid)
            return Worker.start_link(events)
        return ChildSpec(cid, start)

    tree = Supervisor.start([child("a"), child("b"), child("c")], strategy="one_for_one")
    dynamic = DynamicSupervisor.start()
    for n in range(20):
        assert start_child(dynamic, child(f"d{n}"))[0] == "ok"
    loner = Worker.start(events)
    timed = Worker.start(events)
    actors.send_after(timed, "later", 60)
    stubborn = Stubborn.start()
    assert stubborn.ask("up", timeout=WAIT) is None
    killed = actors.shutdown(timeout=1.0)

    assert killed == [stubborn] and stubborn.exit_reason == actors.KILLED
    assert actors.processes() == []
    for ref in (tree, dynamic, loner, timed):
        assert ref.exit_reason == actors.SHUTDOWN
    terminated = [e for e in drain(events) if e[0] == "terminate"]
    assert len(terminated) == 3 + 20 + 2  # every worker once: nothing was restarted
    assert {reason for _, reason, _ in terminated} == {actors.SHUTDOWN}
    assert len(starts) == 23
    # The static tree stopped its children in reverse start order.
    serials = [int(ref.actor_urn.rsplit(":", 1)[1]) for _, _, ref in terminated if ref.parent is tree]
    assert len(serials) == 3 and serials == sorted(serials, reverse=True)
    assert substrates.threads() == []
    assert timer_thread() is None


def test_children_a_supervisor_adopted_from_a_start_callable_are_not_roots():
    # A start callable may return an unlinked process that the supervisor links;
    # shutdown must stop it through its supervisor, not as a root (a restart).
    events: queue.Queue = queue.Queue()
    starts: list[int] = []

    def start():
        starts.append(1)
        return Worker.start(events)

    dynamic = DynamicSupervisor.start()
    status, child = start_child(dynamic, ChildSpec("adopted", start))
    assert status == "ok" and child.parent is dynamic
    later = Worker.start()  # newer than the child: roots stop newest first
    assert actors.shutdown(timeout=WAIT) == []
    assert len(starts) == 1
    assert [e[1] for e in drain(events) if e[0] == "terminate"] == [actors.SHUTDOWN]
    assert later.exit_reason == actors.SHUTDOWN


def test_mail_still_queued_at_shutdown_is_answered_not_lost():
    entered, release = threading.Event(), threading.Event()
    blocked = Worker.start()
    blocked.tell(("block", entered, release))
    assert entered.wait(WAIT)
    queued = blocked.ask("queued", block=False)
    try:
        killed = actors.shutdown(timeout=0.3)  # it never gets past its handler in time
        assert killed == [blocked]
        with pytest.raises(ActorDeadError):
            queued.get(timeout=WAIT)
    finally:
        release.set()


def test_shutdown_refuses_to_run_inside_a_process():
    class Caller(actors.Process):
        def on_receive(self, message):
            actors.shutdown()

    ref = Caller.start()
    with pytest.raises(RuntimeError, match="outside"):
        ref.ask("go", timeout=WAIT)
    assert actors.await_exit(ref, WAIT).__class__ is RuntimeError


@pytest.mark.pure
def test_a_runtime_with_nothing_alive_shuts_down_at_once():
    assert actors.shutdown(timeout=WAIT) == []
    assert substrates.threads() == []

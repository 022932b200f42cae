"""Orderly shutdown of the whole runtime, as ``init:stop()`` stops a BEAM node.

Roots first, newest first: a top-level supervisor stops its children in its
own order (reverse start order, each within its shutdown time), and a process
linked to a parent dies with it, so no supervisor restarts a child that the
shutdown is stopping. What is still alive after that gets the signal itself;
what is still alive at the deadline is killed. Then every thread the runtime
holds is joined.
"""

from __future__ import annotations

import time

import structlog

from actors import substrates
from actors.process import ProcessRef, current_process, exit, processes
from actors.reasons import KILL, SHUTDOWN
from actors.timers import cancel_all_timers, timer_thread

__all__ = ["shutdown"]

log = structlog.get_logger("liveupload.actors")

THREAD_GRACE = 2.0
"""Seconds the threads get to end once every process has exited, even past ``timeout``
(they end within microseconds; a killed handler still running keeps its thread longer)."""


def shutdown(timeout: float = 5.0) -> list[ProcessRef]:
    """Stop every process and join the runtime's threads; returns those killed.

    1. Each root process (not started by a live parent with ``start_link``)
       gets the exit signal ``"shutdown"``, newest first.
    2. Processes still alive (unlinked from their parent, say) get it too.
    3. At ``timeout`` seconds, whatever is left is killed.
    4. Pending timers are cancelled, and the scheduler's workers and watchdog,
       every dedicated process thread and the timer thread are joined.

    Mail still queued when a process exits is answered, never dropped silently:
    each pending ``ask`` fails with ``ActorDeadError``. Must be called from
    outside any process (it waits for them all).
    """
    if current_process() is not None:
        raise RuntimeError("actors.shutdown() waits for every process: call it from outside one")
    deadline = time.monotonic() + timeout
    started = processes()
    roots = [ref for ref in started if ref.parent is None or not ref.parent.is_alive()]
    _signal(sorted(roots, key=_serial, reverse=True))
    _await_all(roots, deadline)
    _signal(sorted(processes(), key=_serial, reverse=True))
    _await_all(processes(), deadline)
    killed = processes()
    for ref in killed:
        exit(ref, KILL)
    _await_all(killed, time.monotonic() + 1.0)  # a kill is instant: this only lets the signals out
    cancel_all_timers()
    left = _join_threads(max(deadline, time.monotonic() + THREAD_GRACE))
    log.info("runtime_shutdown", processes=len(started), killed=len(killed), threads_left=len(left))
    if killed:
        log.warning("runtime_shutdown_killed", processes=[str(ref) for ref in killed])
    return killed


def _join_threads(deadline: float) -> list[str]:
    """Join the runtime's threads (new ones may appear as the scheduler retires
    workers); the names of those still alive at ``deadline``."""
    while True:
        held = [t for t in [*substrates.threads(), timer_thread()] if t is not None and t.is_alive()]
        if not held or time.monotonic() >= deadline:
            return [t.name for t in held]
        for thread in held:
            thread.join(max(0.0, deadline - time.monotonic()))


def _signal(refs: list[ProcessRef]) -> None:
    for ref in refs:
        exit(ref, SHUTDOWN)


def _await_all(refs: list[ProcessRef], deadline: float) -> None:
    for ref in refs:
        ref.actor_stopped.wait(max(0.0, deadline - time.monotonic()))


def _serial(ref: ProcessRef) -> int:
    return int(ref.actor_urn.rsplit(":", 1)[1])

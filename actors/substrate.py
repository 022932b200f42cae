"""The substrate: how a process runs, waits for mail and is woken.

This module is the runtime's one seam between BEAM semantics and threads.
Everything above it (exit signals, links, monitors, names, timers,
supervision, uploads) reaches a process only through:

- ``Mailbox``: put / take / close, with the process's run state;
- ``spawn(process, substrate)``: start running a process;
- ``create_future()``: what an asker waits on;
- ``blocking()``: mark code that waits, so a pooled worker hands its place on;
- ``current_process()``: which process is running here;
- ``threads()``: every thread the substrates hold (joined by ``actors.shutdown``).

Two substrates implement it. ``"pool"`` (the default, as on BEAM) runs every
process on a small shared pool of worker threads (``actors.scheduler``);
``"thread"`` gives a process a dedicated OS thread, as a plain Pykka
``ThreadingActor`` has.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import count
from typing import TYPE_CHECKING, Any, Literal

from pykka import ActorDeadError

from actors.futures import ProcessFuture

if TYPE_CHECKING:
    from pykka._envelope import Envelope

    from actors.process import Process

__all__ = [
    "EMPTY",
    "Mailbox",
    "Substrate",
    "blocking",
    "create_future",
    "current_process",
    "default_substrate",
    "reject",
    "set_default_substrate",
    "spawn",
    "threads",
]

Substrate = Literal["pool", "thread"]
SUBSTRATES: tuple[Substrate, ...] = ("pool", "thread")

IDLE, SCHEDULED, RUNNING = 0, 1, 2

EMPTY: Any = object()
"""``Mailbox.take``'s answer when there is no mail: the process is now idle."""

class _ThreadState(threading.local):
    """What runs on this thread. Class defaults, so a thread that never ran a
    process reads ``None`` without the failed lookup (an exception inside
    ``getattr``) that cost ~0.5 µs on every ask from outside a process."""

    process: Any = None
    worker: Any = None


_local = _ThreadState()
_thread_numbers = count(1)
_default: Substrate = "pool"
_dedicated: set[threading.Thread] = set()  # threads of "thread" processes still running


class Mailbox:
    """A process's inbox and run state: first in, first out, closed for good at death.

    ``put`` queues an envelope and, if the process was idle, marks it scheduled
    and calls the substrate's ``wake`` once: a dedicated thread is released, or
    the process is queued on the scheduler. The process then ``take``s its
    mail until none is left (it goes idle atomically with finding the mailbox
    empty, so no wake-up is ever lost). A closed mailbox rejects new mail, so an
    ask sent at the instant a process dies fails instead of waiting forever.
    """

    __slots__ = ("_closed", "_items", "_lock", "_state", "owner", "wake")

    def __init__(self) -> None:
        self._items: deque[Envelope[Any]] | None = None
        self._lock = threading.Lock()
        self._state = SCHEDULED  # until the substrate runs the process's start-up
        self._closed = False
        self.wake: Callable[[Mailbox], None] | None = None
        self.owner: Process | None = None  # set by the pool, which runs mailboxes

    def put(self, envelope: Envelope[Any], /) -> None:
        """Queue ``envelope``; wake the process if idle; reject it if closed."""
        with self._lock:
            if self._closed:
                wake = None
                rejected = True
            else:
                rejected = False
                items = self._items
                if items is None:
                    items = self._items = deque()
                items.append(envelope)
                if self._state == IDLE:
                    self._state = SCHEDULED
                    wake = self.wake
                else:
                    wake = None
        if rejected:
            reject(envelope)
        elif wake is not None:
            wake(self)

    def take(self) -> Any:
        """The next envelope; ``EMPTY`` (and now idle) if none; ``None`` once closed."""
        with self._lock:
            items = self._items
            if items:
                return items.popleft()
            if self._closed:
                return None
            self._state = IDLE
            self._items = None
            return EMPTY

    def running(self) -> None:
        """The substrate has picked this process up to run it."""
        self._state = RUNNING

    def yield_back(self) -> bool:
        """After a bounded batch: stay scheduled (True) if mail remains, else go idle."""
        with self._lock:
            if self._items or self._closed:
                self._state = SCHEDULED
                return True
            self._state = IDLE
            self._items = None
            return False

    def empty(self) -> bool:
        return not self._items

    def close(self) -> list[Envelope[Any]]:
        """Close for good, wake an idle process one last time, return what was queued."""
        with self._lock:
            self._closed = True
            pending = list(self._items or ())
            self._items = None
            wake = None
            if self._state == IDLE:
                self._state = SCHEDULED
                wake = self.wake
        if wake is not None:
            wake(self)
        return pending


def reject(envelope: Envelope[Any]) -> None:
    """Answer an envelope that will never be handled: its asker gets
    ``ActorDeadError``; a plain tell is dropped, as BEAM drops mail to the dead."""
    if envelope.reply_to is not None:
        try:
            envelope.reply_to.set_exception(
                (ActorDeadError, ActorDeadError("process exited before handling the message"), None)
            )
        except Exception:  # noqa: BLE001 - already answered (queue.Full)
            pass


def create_future() -> ProcessFuture[Any]:
    """The future an asker of a process waits on."""
    return ProcessFuture()


def default_substrate() -> Substrate:
    return _default


def set_default_substrate(substrate: Substrate) -> Substrate:
    """Choose where processes started without an explicit choice run; returns the old one."""
    global _default
    if substrate not in SUBSTRATES:
        raise ValueError(f"substrate must be one of {SUBSTRATES}, got {substrate!r}")
    old, _default = _default, substrate
    return old


def check(substrate: Any) -> None:
    """Refuse an unknown substrate name before anything is started."""
    if substrate is not None and substrate not in SUBSTRATES:
        raise ValueError(f"substrate must be one of {SUBSTRATES}, got {substrate!r}")


def spawn(process: Process, substrate: Substrate | None = None) -> None:
    """Start running ``process`` on ``substrate`` (the default when ``None``)."""
    substrate = substrate or process.substrate or _default
    if substrate == "pool":
        from actors.scheduler import scheduler

        scheduler().spawn(process)
    elif substrate == "thread":
        _spawn_thread(process)
    else:
        raise ValueError(f"substrate must be one of {SUBSTRATES}, got {substrate!r}")


def current_process() -> Any:
    """The ref of the process running in this context, or ``None`` outside one."""
    return _local.process


@contextmanager
def blocking() -> Iterator[None]:
    """Mark code that waits (I/O, a lock, another process's reply).

    On a pooled worker the worker's place is handed to a spare thread for the
    duration, so a waiting process never starves the others, and an ``ask``
    from inside a process cannot deadlock a small pool. On a dedicated thread,
    and outside any process, it costs nothing.
    """
    worker = _local.worker
    if worker is None:
        yield
        return
    with worker.handing_off():
        yield


# -- the thread substrate ---------------------------------------------------------


def _spawn_thread(process: Process) -> None:
    thread = threading.Thread(
        target=_run_on_thread,
        args=(process,),
        name=f"{type(process).__name__}-{next(_thread_numbers)}",
        daemon=process.use_daemon_thread,
    )
    wake_up = threading.Lock()
    wake_up.acquire()
    process.actor_inbox.wake = lambda _mailbox: wake_up.release()
    process._wake_up = wake_up  # noqa: SLF001 - the thread waits on it
    _dedicated.add(thread)
    try:
        thread.start()
    except BaseException:
        _dedicated.discard(thread)
        raise


def _run_on_thread(process: Process) -> None:
    """A dedicated thread: start up, then take mail, sleeping while there is none."""
    _local.process = process.actor_ref
    mailbox: Mailbox = process.actor_inbox
    wake_up: threading.Lock = process._wake_up  # noqa: SLF001
    try:
        reason = process._start_up()  # noqa: SLF001
        while reason is None:
            envelope = mailbox.take()
            if envelope is EMPTY:
                wake_up.acquire()
                continue
            reason = process._step(envelope)  # noqa: SLF001
        process._shut_down(reason)  # noqa: SLF001
    finally:
        _local.process = None
        _dedicated.discard(threading.current_thread())


def threads() -> list[threading.Thread]:
    """Every thread the substrates hold now: the scheduler's workers and
    watchdog, and the dedicated thread of each ``"thread"`` process."""
    from actors import scheduler as pool

    held = list(_dedicated)
    if pool._scheduler is not None:  # noqa: SLF001 - never create one just to ask
        held += pool._scheduler.threads()  # noqa: SLF001
    return held


def _set_current(ref: Any) -> None:
    _local.process = ref


def _set_worker(worker: Any) -> None:
    _local.worker = worker


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

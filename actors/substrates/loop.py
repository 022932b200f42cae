"""The ``"loop"`` substrate: processes run as callbacks on an asyncio event loop.

A coroutine on the loop that asks a process on the same loop crosses no
thread: the ask queues the process's run with ``loop.call_soon``, the process
handles the message in a later callback of the same loop, and the reply
resolves the awaiting task's future directly (``actors.futures.to_asyncio``).
A tell or ask from another thread wakes an idle process with one
``loop.call_soon_threadsafe``; mail that arrives while the process is queued
or running rides along. Each callback runs every process queued at its start
(at most ``BATCH`` messages each) and then yields to the loop's I/O.

Which loop. ``bind_loop()``, called on a running loop (``liveupload serve``
does it at start-up), makes that loop the home of every ``"loop"`` process
started afterwards; ``unbind_loop()`` ends it. Without a bound loop, the
substrate runs a loop of its own on one thread (``actors-loop``), started
with its first process and ended with its last, so the runtime works, and
the test suite runs, without any asyncio program around it.

Blocking. A handler that waits (``actors.blocking()``: an ``ask`` from
inside a process, ``await_exit``, a supervisor waiting for a child) would
hold the whole loop, and a process it waits for on the same loop could
never run. So a loop's thread hands its processes to the shared pool
(``actors.substrates.pool``) for as long as it waits: the processes queued
on the loop, and every one woken meanwhile, run on pool workers, one batch
at a time, and come back to the loop when their batch ends after the wait.
The pool's watchdog does the same for a handler stuck in one message past
``STUCK_AFTER`` without saying it waits. A process still runs on one thread
at a time, its messages in order. While a loop has processes it holds the
pool (its workers idle on a queue) so that the hand-off always finds one.
The event loop itself stays held meanwhile: code that blocks for long
belongs on its own thread (an upload writer with ``blocking = True``).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count

import structlog

from actors.current import set_worker
from actors.mailbox import Mailbox
from actors.substrates.pool import Scheduler, run_batch, scheduler
from actors.substrates.protocol import Runnable

__all__ = ["LoopHome", "LoopSubstrate", "bind_loop", "bound_loop", "unbind_loop"]

log = structlog.get_logger("liveupload.actors")

_loop_numbers = count(1)


class LoopHome:
    """One event loop running processes: its queue of processes with mail,
    and whether its thread is held (its processes then run on the pool)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: Scheduler, *, owned: bool) -> None:
        self.loop = loop
        self.pool = pool
        self.owned = owned  # the substrate's own loop, ended with its last process
        self.thread_id: int | None = None  # the loop's thread, once known
        self.busy_since = 0.0  # monotonic start of the current message; 0 between messages
        self.blocked = False  # the loop's thread waits or is stuck: the pool runs its processes
        self.detached = False  # the loop is gone: the pool runs its processes for good
        self.retired = False  # an own loop whose last process exited: it takes no more
        self.handoffs = 0  # how often the loop handed its processes to the pool (for the benchmarks)
        self._ready: deque[Mailbox] = deque()
        self._lock = threading.Lock()
        self._scheduled = False  # a drain is queued on the loop, or running
        self._live = 0

    # -- processes ------------------------------------------------------------------

    def add(self, process: Runnable) -> bool:
        """Run ``process`` here; False if this (own) loop has just retired."""
        mailbox = process.actor_inbox
        with self._lock:
            if self.retired:
                return False
            self._live += 1
            if self._live == 1:  # the pool runs while a loop has processes: hand-offs find a worker
                self.pool.acquire()
                self.pool.watch(self)
        mailbox.owner = process
        mailbox.on_exit = self._exited
        mailbox.wake = self.wake
        self.wake(mailbox)  # its start-up
        return True

    def wake(self, mailbox: Mailbox) -> None:
        """Queue ``mailbox`` to run: on the loop, or on the pool while the loop is held."""
        with self._lock:
            if self.blocked:
                self.pool.run_elsewhere(mailbox)  # under the lock: never after the pool let its workers go
                return
            self._ready.append(mailbox)
            if self._scheduled:
                return
            self._scheduled = True
        if threading.get_ident() == self.thread_id:
            self.loop.call_soon(self._drain)
            return
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop was closed without unbind_loop: run on the pool from now on
            log.warning("loop_substrate_loop_closed")
            self.detach()

    def _drain(self) -> None:
        """Run every process queued now, a batch each, then give the loop back."""
        ready = self._ready
        for _ in range(len(ready)):
            try:
                mailbox = ready.popleft()
            except IndexError:  # handed to the pool meanwhile
                break
            run_batch(self, mailbox)
        with self._lock:
            again = bool(ready) and not self.blocked
            if not again:
                self._scheduled = False
        if again:
            self.loop.call_soon(self._drain)

    def _exited(self) -> None:
        """A process of this loop exited; the last one lets the pool go (and ends an own loop)."""
        with self._lock:
            self._live -= 1
            if self._live:
                return
            self.pool.unwatch(self)
            self.pool.release()
            if not self.owned:
                return
            self.retired = True
        _SUBSTRATE.retired(self)
        self.loop.call_soon_threadsafe(self.loop.stop)

    # -- waits: the loop hands its processes to the pool ------------------------------

    def hand_off(self) -> None:
        """The loop's thread waits or is stuck: the pool runs its processes until ``take_back``."""
        with self._lock:
            if self.blocked:
                return
            self.blocked = True
            self.handoffs += 1
            while self._ready:
                self.pool.run_elsewhere(self._ready.popleft())

    def take_back(self) -> None:
        """The wait is over: processes woken from now on run on the loop again
        (those on the pool come back when their batch ends)."""
        with self._lock:
            if not self.detached:
                self.blocked = False

    def detach(self) -> None:
        """The loop is going away: its processes run on the pool from now on."""
        with self._lock:
            self.detached = True
        self.hand_off()  # blocked from now on: take_back no longer unblocks a detached loop

    @contextmanager
    def handing_off(self) -> Iterator[None]:
        """``actors.blocking()`` on the loop's thread: the pool runs this loop's
        processes while it waits, so a wait for one of them cannot deadlock."""
        if self.blocked:
            yield
            return
        self.hand_off()
        try:
            yield
        finally:
            self.take_back()


class LoopSubstrate:
    """Runs processes on the bound event loop (``bind_loop``), else on a loop of its own."""

    name = "loop"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bound: LoopHome | None = None
        self._own: LoopHome | None = None
        self._threads: set[threading.Thread] = set()

    def spawn(self, process: Runnable) -> None:
        while not self.home().add(process):
            pass  # the own loop retired at this instant: the next call makes a new one

    def home(self) -> LoopHome:
        """The loop new processes go to: the bound one, else the own one (started if need be)."""
        with self._lock:
            home = self._bound or self._own
            if home is not None and not home.retired:
                return home
            self._own = home = LoopHome(asyncio.new_event_loop(), scheduler(), owned=True)
            thread = threading.Thread(target=self._run_own, args=(home,), name=f"actors-loop-{next(_loop_numbers)}",
                                      daemon=True)
            self._threads.add(thread)
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._threads.discard(thread)
                if self._own is home:
                    self._own = None
            home.loop.close()
            raise
        return home

    def _run_own(self, home: LoopHome) -> None:
        home.thread_id = threading.get_ident()
        set_worker(home)
        try:
            home.loop.run_forever()
        finally:
            set_worker(None)
            home.loop.close()
            with self._lock:
                self._threads.discard(threading.current_thread())

    def retired(self, home: LoopHome) -> None:
        with self._lock:
            if self._own is home:
                self._own = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> bool:
        with self._lock:
            if self._bound is not None:
                return False
            home = self._bound = LoopHome(loop, scheduler(), owned=False)
            home.thread_id = threading.get_ident()
        set_worker(home)
        return True

    def unbind(self) -> None:
        with self._lock:
            home, self._bound = self._bound, None
        if home is None:
            return
        home.detach()
        if threading.get_ident() == home.thread_id:
            set_worker(None)

    def bound(self) -> LoopHome | None:
        return self._bound

    def threads(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._threads)


_SUBSTRATE = LoopSubstrate()


def bind_loop() -> bool:
    """Make the running event loop the home of ``"loop"`` processes started from
    now on (call it from a coroutine on that loop). False, and nothing changes,
    if another loop is bound already."""
    return _SUBSTRATE.bind(asyncio.get_running_loop())


def unbind_loop() -> None:
    """Before the bound loop stops: its processes still alive move to the pool
    for good, and new ``"loop"`` processes get the substrate's own loop."""
    _SUBSTRATE.unbind()


def bound_loop() -> asyncio.AbstractEventLoop | None:
    """The loop ``bind_loop`` bound, if any."""
    home = _SUBSTRATE.bound()
    return home.loop if home is not None else None

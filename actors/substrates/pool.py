"""The ``"pool"`` substrate, the M:N scheduler: many processes on a small shared pool of worker threads.

A process with mail is queued to run (``Mailbox.wake`` puts its mailbox on the
run queue); a worker takes it, handles at most ``BATCH`` messages, and puts it
back at the end of the queue if mail remains, so a busy process cannot starve
the others. An idle process costs only its Python objects: no thread, no lock
held, no timer.

Blocking. A handler that blocks holds its worker. Two mechanisms give the
place back, so the pool keeps ``size`` workers running Python at all times.
A watchdog looks every ``WATCH_EVERY`` seconds and hands the place of a worker
to a spare thread when the worker is in a ``blocking()`` section
(every wait inside the runtime is one: a future's ``get``, ``await_exit``, a
supervisor waiting for a child) or has spent more than ``STUCK_AFTER`` seconds
(10 ms) in one message (a writer doing slow I/O, a ``time.sleep``). Short waits thus
cost a timestamp, and no wait can deadlock a small pool. A worker whose wait ends while the pool is full parks
as a spare, and leaves after ``PARK_SECONDS`` unused.

Idle processes cost no CPU: once no worker has run a message for
``QUIET_TICKS`` looks, the watchdog sleeps until a worker picks up the next
one. An idle runtime holds no thread: the workers and the watchdog end when
the last pooled process has exited, and start again with the next spawn.

Event loops (the ``"loop"`` substrate, ``loop.py``) lean on the pool: while a
loop's thread waits or is stuck, its processes run here (``run_elsewhere``),
batch by batch through the same ``run_batch``; the watchdog watches the loops
too (``watch``), and a loop with processes holds the pool (``acquire``) so
that a worker is always there to take them.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from typing import Any, Protocol

import structlog

from actors.current import set_current_process, set_worker
from actors.mailbox import EMPTY, Mailbox
from actors.substrates.protocol import Runnable

__all__ = ["BATCH", "Home", "PoolSubstrate", "Scheduler", "run_batch", "scheduler"]

log = structlog.get_logger("liveupload.actors")

BATCH = 32
"""Messages a worker handles for one process before it goes to the back of the queue."""

STUCK_AFTER = max(0.010, 2 * sys.getswitchinterval())
"""Seconds in one message after which the watchdog hands a worker's place on.

Longer than two GIL switch intervals: a worker that merely waits its turn for
the GIL under load is not stuck, and handing its place on would only add
threads to the contention."""

WAIT_AFTER = 0.0005
"""Seconds in a ``blocking()`` section after which the watchdog hands the place on."""

WATCH_EVERY = 0.001
QUIET_TICKS = 10
"""Looks in a row with no worker running a message, after which the watchdog sleeps."""
PARK_SECONDS = 2.0
BURST = 64
"""Extra workers a tick may add when every worker is stuck and mail is queued."""

_STOP: Any = object()
_worker_numbers = count(1)


class Worker:
    """One pool thread, and what the watchdog needs to see of it."""

    __slots__ = ("blocked", "busy_since", "pool", "thread", "waiting_since")

    def __init__(self, pool: Scheduler) -> None:
        self.pool = pool
        self.blocked = False  # its place has been handed to another thread
        self.busy_since = 0.0  # monotonic start of the current message; 0 between messages
        self.waiting_since = 0.0  # monotonic start of a blocking() section; 0 outside
        self.thread: threading.Thread | None = None

    def take_back(self) -> None:
        """The wait or the long message is over: count this worker again."""
        self.pool._take_back(self)

    @contextmanager
    def handing_off(self) -> Iterator[None]:
        """Mark a wait: if it is still going on at the watchdog's next look, this
        worker's place goes to another thread. Short waits cost a timestamp."""
        if self.waiting_since:
            yield
            return
        self.waiting_since = time.monotonic()
        try:
            yield
        finally:
            self.waiting_since = 0.0
            if self.blocked:
                self.pool._take_back(self)


class Home(Protocol):
    """A thread that runs processes and is not a pool worker (an event loop,
    ``actors.substrates.loop``), as ``run_batch`` and the watchdog see it."""

    pool: Scheduler
    busy_since: float  # monotonic start of the current message; 0 between messages
    blocked: bool  # its processes run on the pool meanwhile

    def take_back(self) -> None: ...

    def hand_off(self) -> None: ...


def run_batch(worker: Worker | Home, mailbox: Mailbox) -> None:
    """Start up or run one process for at most ``BATCH`` messages, on a pool
    worker or a home; a process with mail left goes back by its ``wake``."""
    pool = worker.pool
    process: Runnable = mailbox.owner
    mailbox.running()
    set_current_process(process.actor_ref)
    try:
        if not mailbox.started:
            mailbox.started = True
            worker.busy_since = time.monotonic()
            if pool._sleeping_bell is not None:
                pool._wake_watchdog()
            reason = process.run_start()
            if reason is not None:
                _finish(mailbox, process, reason)
                return
        for _ in range(BATCH):
            envelope = mailbox.take()
            if envelope is EMPTY:
                return
            worker.busy_since = time.monotonic()
            if pool._sleeping_bell is not None:
                pool._wake_watchdog()
            reason = process.run_envelope(envelope)
            if reason is not None:
                _finish(mailbox, process, reason)
                return
            worker.busy_since = 0.0
            if worker.blocked:
                worker.take_back()
        if mailbox.yield_back():
            wake = mailbox.wake
            assert wake is not None
            wake(mailbox)
    finally:
        worker.busy_since = 0.0
        if worker.blocked:
            worker.take_back()
        set_current_process(None)


def _finish(mailbox: Mailbox, process: Runnable, reason: Any) -> None:
    """Shut a process down (``terminate`` runs here, watched like a message),
    then tell its substrate (``Mailbox.on_exit``)."""
    process.run_finish(reason)
    on_exit = mailbox.on_exit
    if on_exit is not None:
        on_exit()


class Scheduler:
    """The shared pool that runs every ``substrate="pool"`` process.

    ``size`` workers run processes at any time; workers that wait or are stuck
    in one message are not counted (their place has been handed on), and
    surplus workers park as spares.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a scheduler needs at least one worker, got {size}")
        self.size = size
        self._run_queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._spare_tokens: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._workers: set[Worker] = set()  # every live worker thread
        self._running: set[Worker] = set()  # those counted towards ``size``
        self._parked = 0  # spares waiting for a token
        self._live = 0  # pooled processes spawned and not yet shut down
        self._epoch = 0  # bumped when the runtime wakes from idle: older stop marks are stale
        self._watchdog: tuple[threading.Thread, threading.Event] | None = None
        self._sleeping_bell: threading.Event | None = None  # the sleeping watchdog's bell; read per message
        self.watchdog_sleeping = threading.Event()  # set while it sleeps (for tests and benchmarks)
        self.handoffs = 0  # how often a worker's place was handed on (for the benchmarks)
        self._homes: set[Home] = set()  # event loops running processes, watched too (``watch``)

    # -- processes --------------------------------------------------------------

    def spawn(self, process: Runnable) -> None:
        """Queue a new process; its start-up runs on a worker."""
        mailbox = process.actor_inbox
        mailbox.owner = process
        mailbox.wake = self._run_queue.put
        mailbox.on_exit = self.release
        self.acquire()
        self._run_queue.put(mailbox)

    def threads(self) -> list[threading.Thread]:
        """Every thread the scheduler holds now."""
        with self._lock:
            threads = [w.thread for w in self._workers if w.thread is not None]
            if self._watchdog is not None:
                threads.append(self._watchdog[0])
        return threads

    def acquire(self) -> None:
        """One more user of the pool (a pooled process, or an event loop's home
        while it has processes): the workers run while there is any."""
        with self._lock:
            if self._live == 0:
                self._epoch += 1  # the stop marks of the last idle moment no longer count
            self._live += 1
            missing = self.size - len(self._running)
        for _ in range(missing):
            self._add_worker()

    def release(self) -> None:
        """One user fewer; with the last one gone, let every worker go."""
        with self._lock:
            self._live -= 1
            if self._live:
                return
            epoch = self._epoch
            stops = len(self._workers)  # one per worker, blocked ones too; extras go stale
            parked, self._parked = self._parked, 0
        for _ in range(stops):
            self._run_queue.put((_STOP, epoch))
        for _ in range(parked):
            self._spare_tokens.put(False)

    def run_elsewhere(self, mailbox: Mailbox) -> None:
        """Queue a mailbox another substrate runs (an event loop's, while its
        loop is held): a worker runs a batch of it; it goes back by its ``wake``."""
        self._run_queue.put(mailbox)

    def watch(self, home: Home) -> None:
        """Have the watchdog also look at ``home`` (a thread that is not a worker
        but runs processes, an event loop): hand it off when stuck."""
        with self._lock:
            self._homes.add(home)

    def unwatch(self, home: Home) -> None:
        with self._lock:
            self._homes.discard(home)

    # -- workers -------------------------------------------------------------------

    def _add_worker(self) -> None:
        """Put one more worker to work: a parked spare if any, else a new thread."""
        with self._lock:
            if self._live == 0:
                return  # the runtime went idle meanwhile: the stop marks are out
            new_thread: threading.Thread | None = None
            if self._parked > 0:
                self._parked -= 1
            else:
                worker = Worker(self)
                worker.thread = new_thread = threading.Thread(
                    target=self._work, args=(worker,), name=f"actors-worker-{next(_worker_numbers)}", daemon=True
                )
                self._workers.add(worker)
                self._running.add(worker)
                if self._watchdog is None:
                    stop = threading.Event()
                    watchdog = threading.Thread(target=self._watch, args=(stop,), name="actors-watchdog", daemon=True)
                    self._watchdog = (watchdog, stop)
                    watchdog.start()
        if new_thread is None:  # wake a parked spare
            self._spare_tokens.put(True)
        else:
            new_thread.start()

    def _work(self, worker: Worker) -> None:
        set_worker(worker)
        run_queue = self._run_queue
        try:
            while True:
                if len(self._running) > self.size and not self._park(worker):
                    return
                mailbox = run_queue.get()
                if type(mailbox) is tuple:  # a stop mark: (_STOP, epoch)
                    with self._lock:
                        if mailbox[1] == self._epoch and self._live == 0:
                            self._running.discard(worker)
                            return
                    continue
                try:
                    run_batch(worker, mailbox)
                except BaseException:  # a runtime bug: keep the worker alive (logged)
                    log.exception("scheduler_worker_error")
        finally:
            self._retire(worker)

    def _park(self, worker: Worker) -> bool:
        """Too many workers run: wait as a spare. False when this worker should end."""
        with self._lock:
            if len(self._running) <= self.size or worker not in self._running:
                return True
            self._running.discard(worker)
            if self._live == 0:
                return False  # idle runtime: leave now rather than park
            self._parked += 1
        while True:
            try:
                token = self._spare_tokens.get(timeout=PARK_SECONDS)
            except queue.Empty:
                token = None
            with self._lock:
                if token is None and self._parked > 0:
                    self._parked -= 1  # unused for a while: leave
                    return False
                if token is False:
                    return False  # the runtime went idle
                if token:
                    self._running.add(worker)  # _add_worker took us off the parked count
                    return True
            # Timed out while a token is on its way to some spare: take it.

    def _retire(self, worker: Worker) -> None:
        with self._lock:
            self._workers.discard(worker)
            self._running.discard(worker)
            watchdog = self._watchdog if not self._workers else None
            if watchdog is not None:
                self._watchdog = None
        if watchdog is not None:
            watchdog[1].set()

    # -- handing a worker's place on -------------------------------------------------

    def _hand_off(self, worker: Worker) -> None:
        """``worker`` waits or is stuck: stop counting it, and fill its place."""
        with self._lock:
            if worker.blocked or worker not in self._running:
                return
            worker.blocked = True
            self._running.discard(worker)
            self.handoffs += 1
            short = self._live > 0 and len(self._running) < self.size
        if short:
            self._add_worker()

    def _take_back(self, worker: Worker) -> None:
        """``worker``'s wait is over: it counts again (surplus workers park later)."""
        with self._lock:
            if worker.blocked:
                worker.blocked = False
                self._running.add(worker)

    def _any_running_busy(self) -> bool:
        """Whether a counted worker or a home is in a message or a wait (under ``_lock``)."""
        return any(w.busy_since or w.waiting_since for w in self._running) or any(
            h.busy_since and not h.blocked for h in self._homes
        )

    def _wake_watchdog(self) -> None:
        """A worker starts a message while the watchdog sleeps: wake it."""
        with self._lock:  # every write of the bell is under the lock (rare: once per sleep)
            bell, self._sleeping_bell = self._sleeping_bell, None
        if bell is not None:
            bell.set()

    def _sleep_while_quiet(self, bell: threading.Event) -> None:
        """No worker has run a message for a while: sleep until one does.

        The bell is hung out before looking at the workers once more, and a
        worker stamps ``busy_since`` before looking for the bell, so either the
        watchdog sees that worker busy or the worker sees the bell and rings.
        Only this watchdog's own bell is ever taken down here: a retired
        watchdog running late cannot silence the one that replaced it.
        """
        bell.clear()
        with self._lock:
            self._sleeping_bell = bell
            retired = self._watchdog is None or self._watchdog[1] is not bell
            busy = self._any_running_busy()
        if not (retired or busy):  # a retirement after this look rings the bell, not lost
            self.watchdog_sleeping.set()
            bell.wait()
            self.watchdog_sleeping.clear()
        with self._lock:
            if self._sleeping_bell is bell:
                self._sleeping_bell = None

    def _watch(self, bell: threading.Event) -> None:
        """Every ``WATCH_EVERY``: hand on the place of every running worker that is
        waiting (``blocking()``) or stuck in one message past ``STUCK_AFTER``.

        ``bell`` both wakes a sleeping watchdog and, once the runtime has no
        worker left (``_retire``), stops it."""
        quiet = 0
        while True:
            if quiet >= QUIET_TICKS:
                quiet = 0
                self._sleep_while_quiet(bell)
            elif bell.wait(WATCH_EVERY):
                bell.clear()
            now = time.monotonic()
            with self._lock:
                if self._watchdog is None or self._watchdog[1] is not bell:
                    return  # retired with the last worker
                if not self._any_running_busy():
                    quiet += 1
                    continue
                quiet = 0
                stuck = [
                    w
                    for w in self._running
                    if (w.waiting_since and now - w.waiting_since > WAIT_AFTER)
                    or (w.busy_since and now - w.busy_since > STUCK_AFTER)
                ]
                stuck_homes = [
                    h for h in self._homes if not h.blocked and h.busy_since and now - h.busy_since > STUCK_AFTER
                ]
            for home in stuck_homes:
                home.hand_off()
            for worker in stuck:
                self._hand_off(worker)
            if stuck and len(stuck) >= self.size:
                # Every worker waits and mail is queued: the load blocks. Grow by
                # more than the places handed on, so a thousand blocking handlers
                # do not wait a thousand ticks; surplus workers park afterwards.
                for _ in range(min(self._run_queue.qsize(), BURST, self._live)):
                    self._add_worker()


_scheduler: Scheduler | None = None
_scheduler_lock = threading.Lock()


def default_size() -> int:
    configured = os.environ.get("LIVEUPLOAD_WORKERS")
    if configured:
        return int(configured)
    return max(4, 2 * cpu_count())


def cpu_count() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def scheduler() -> Scheduler:
    """The process-wide scheduler, made on first use."""
    global _scheduler
    if _scheduler is None:
        with _scheduler_lock:
            if _scheduler is None:
                _scheduler = Scheduler(default_size())
    return _scheduler



class PoolSubstrate:
    """Runs processes on the process-wide ``scheduler()``, made on first use."""

    name = "pool"

    def spawn(self, process: Runnable) -> None:
        scheduler().spawn(process)

    def threads(self) -> list[threading.Thread]:
        return _scheduler.threads() if _scheduler is not None else []  # never make one just to ask

"""The M:N scheduler: many processes on a small shared pool of worker threads.

A process with mail is queued to run (``Mailbox.wake`` puts its mailbox on the
run queue); a worker takes it, handles at most ``BATCH`` messages, and puts it
back at the end of the queue if mail remains, so a busy process cannot starve
the others. An idle process costs only its Python objects: no thread, no lock
held, no timer.

Blocking. A handler that blocks holds its worker. Two mechanisms give the
place back, so the pool keeps ``size`` workers running Python at all times:
``substrate.blocking()`` (used by every wait inside the runtime: a future's
``get``, ``await_exit``, a supervisor waiting for a child) hands the worker's
place to a spare thread at once; and a watchdog hands off any worker that has
spent more than ``STUCK_AFTER`` seconds in one message (a writer doing slow
I/O, a ``time.sleep``). A worker whose wait ends while the pool is full parks
as a spare, and leaves after ``PARK_SECONDS`` unused.

An idle runtime holds no thread: the workers and the watchdog end when the
last pooled process has exited, and start again with the next spawn.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from typing import TYPE_CHECKING, Any

import structlog

from actors import substrate
from actors.substrate import EMPTY, Mailbox

if TYPE_CHECKING:
    from actors.process import Process

__all__ = ["BATCH", "Scheduler", "scheduler"]

log = structlog.get_logger("liveupload.actors")

BATCH = 32
"""Messages a worker handles for one process before it goes to the back of the queue."""

STUCK_AFTER = 0.002
"""Seconds in one message after which the watchdog hands a worker's place on."""

WATCH_EVERY = 0.001
PARK_SECONDS = 2.0

_STOP: Any = object()
_worker_numbers = count(1)


class Worker:
    """One pool thread, and what the watchdog needs to see of it."""

    __slots__ = ("blocked", "busy_since", "pool", "thread")

    def __init__(self, pool: Scheduler) -> None:
        self.pool = pool
        self.blocked = False  # its place has been handed to another thread
        self.busy_since = 0.0  # monotonic start of the current message, 0 when between messages
        self.thread: threading.Thread | None = None

    @contextmanager
    def handing_off(self) -> Iterator[None]:
        """While this worker waits, another thread runs processes in its place."""
        if self.blocked:
            yield
            return
        self.pool._hand_off(self)
        try:
            yield
        finally:
            self.pool._take_back(self)


class Scheduler:
    """The shared pool that runs every ``substrate="pool"`` process."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a scheduler needs at least one worker, got {size}")
        self.size = size
        self._run_queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._spare_tokens: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._workers: set[Worker] = set()
        self._active = 0  # workers counted as running processes (not blocked, not parked)
        self._parked = 0  # spare workers waiting for a place
        self._stopping = 0  # stop tokens on the run queue not yet taken
        self._live = 0  # pooled processes spawned and not yet shut down
        self._watchdog: tuple[threading.Thread, threading.Event] | None = None
        self.handoffs = 0  # how often a worker's place was handed on (for the benchmarks)

    # -- processes --------------------------------------------------------------

    def spawn(self, process: Process) -> None:
        """Queue a new process; its start-up runs on a worker."""
        mailbox: Mailbox = process.actor_inbox
        mailbox.owner = process
        mailbox.wake = self._run_queue.put
        with self._lock:
            self._live += 1
            missing = self.size - (self._active + self._parked - self._stopping)
            if missing > 0:
                self._active += missing
        for _ in range(max(0, missing)):
            self._start_worker()
        self._run_queue.put(mailbox)

    def live_processes(self) -> int:
        return self._live

    def threads(self) -> list[threading.Thread]:
        with self._lock:
            threads = [w.thread for w in self._workers if w.thread is not None]
        if self._watchdog is not None:
            threads.append(self._watchdog[0])
        return threads

    def _run(self, worker: Worker, mailbox: Mailbox) -> None:
        process = mailbox.owner
        assert process is not None
        mailbox.running()
        substrate._set_current(process.actor_ref)
        try:
            if not process._started:
                process._started = True
                reason = process._start_up()
                if reason is not None:
                    self._finish(process, reason)
                    return
            for _ in range(BATCH):
                envelope = mailbox.take()
                if envelope is EMPTY:
                    return
                worker.busy_since = time.monotonic()
                reason = process._step(envelope)
                worker.busy_since = 0.0
                if worker.blocked:
                    self._take_back(worker)
                if reason is not None:
                    self._finish(process, reason)
                    return
            if mailbox.yield_back():
                self._run_queue.put(mailbox)
        finally:
            substrate._set_current(None)

    def _finish(self, process: Process, reason: Any) -> None:
        process._shut_down(reason)
        with self._lock:
            self._live -= 1
            idle = self._live == 0
            if idle:
                stops = self._active - self._stopping
                self._stopping += stops
                parked, self._parked = self._parked, 0
        if idle:
            for _ in range(stops):
                self._run_queue.put(_STOP)
            for _ in range(parked):
                self._spare_tokens.put(0)

    # -- workers -------------------------------------------------------------------

    def _start_worker(self) -> None:
        worker = Worker(self)
        worker.thread = threading.Thread(
            target=self._work, args=(worker,), name=f"actors-worker-{next(_worker_numbers)}", daemon=True
        )
        with self._lock:
            self._workers.add(worker)
            if self._watchdog is None:
                stop = threading.Event()
                thread = threading.Thread(target=self._watch, args=(stop,), name="actors-watchdog", daemon=True)
                self._watchdog = (thread, stop)
                thread.start()
        worker.thread.start()

    def _work(self, worker: Worker) -> None:
        substrate._set_worker(worker)
        run_queue = self._run_queue
        try:
            while True:
                if self._active > self.size and not self._park(worker):
                    return
                mailbox = run_queue.get()
                if mailbox is _STOP:
                    with self._lock:
                        self._stopping -= 1
                        self._active -= 1
                    return
                try:
                    self._run(worker, mailbox)
                except BaseException:  # noqa: BLE001 - the runtime itself failed; never lose the worker silently
                    log.exception("scheduler_worker_error")
        finally:
            self._retire(worker)

    def _park(self, worker: Worker) -> bool:
        """Too many workers are running: wait as a spare. False when it should end."""
        with self._lock:
            if self._active <= self.size or worker.blocked:
                return True
            self._active -= 1
            self._parked += 1
        while True:
            try:
                token = self._spare_tokens.get(timeout=PARK_SECONDS)
            except queue.Empty:
                token = None
            with self._lock:
                if token is None and self._parked > 0:
                    self._parked -= 1
                    return False  # unused for a while: leave
                if token == 0:
                    return False  # the runtime went idle
                if token is not None:
                    return True  # a place was handed to us; _hand_off counted it
            # timed out, but a token is on its way to some parked worker: wait for it

    def _retire(self, worker: Worker) -> None:
        with self._lock:
            self._workers.discard(worker)
            watchdog = self._watchdog if not self._workers else None
            if watchdog is not None:
                self._watchdog = None
        if watchdog is not None:
            watchdog[1].set()

    # -- handing a worker's place on -------------------------------------------------

    def _hand_off(self, worker: Worker) -> None:
        with self._lock:
            if worker.blocked:
                return
            worker.blocked = True
            self.handoffs += 1
            self._active -= 1
            if self._active >= self.size:
                return
            self._active += 1
            if self._parked > 0:
                self._parked -= 1
                wake_spare = True
            else:
                wake_spare = False
        if wake_spare:
            self._spare_tokens.put(1)
        else:
            self._start_worker()

    def _take_back(self, worker: Worker) -> None:
        with self._lock:
            if worker.blocked:
                worker.blocked = False
                self._active += 1

    def _watch(self, stop: threading.Event) -> None:
        """Hand off workers stuck in one message for longer than ``STUCK_AFTER``."""
        while not stop.wait(WATCH_EVERY):
            now = time.monotonic()
            with self._lock:
                stuck = [w for w in self._workers if not w.blocked and w.busy_since and now - w.busy_since > STUCK_AFTER]
            for worker in stuck:
                self._hand_off(worker)


_scheduler: Scheduler | None = None
_scheduler_lock = threading.Lock()


def default_size() -> int:
    configured = os.environ.get("LIVEUPLOAD_WORKERS")
    if configured:
        return int(configured)
    return max(4, 2 * substrate.cpu_count())


def scheduler() -> Scheduler:
    """The process-wide scheduler, made on first use."""
    global _scheduler
    if _scheduler is None:
        with _scheduler_lock:
            if _scheduler is None:
                _scheduler = Scheduler(default_size())
    return _scheduler

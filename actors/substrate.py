"""The substrate: how a process runs, waits for mail and is woken.

This is the runtime's one seam between BEAM semantics and threads. Everything
above it (exit signals, links, monitors, names, timers, supervision, uploads)
talks to a process only through ``Mailbox`` (put, get, close), ``spawn`` (start
running a process's loop), ``create_future`` (what an asker waits on) and
``current_process`` (which process is running here). Today each process runs
on a thread of its own; an M:N scheduler replaces this module's internals
without touching anything above it.
"""

from __future__ import annotations

import threading
from collections import deque
from itertools import count
from typing import TYPE_CHECKING, Any

from pykka import ActorDeadError

from actors.futures import ProcessFuture

if TYPE_CHECKING:
    from pykka._envelope import Envelope

    from actors.process import Process

__all__ = ["Mailbox", "create_future", "current_process", "reject", "spawn"]

_local = threading.local()
_thread_numbers = count(1)


class Mailbox:
    """A process's inbox: first in, first out, and closed for good at death.

    A closed mailbox rejects whatever is put into it afterwards, so an ask sent
    to a process at the instant it dies fails with ``ActorDeadError`` instead of
    waiting forever. ``get`` returns ``None`` once the mailbox is closed.
    """

    __slots__ = ("_closed", "_items", "_nonempty")

    def __init__(self) -> None:
        self._items: deque[Envelope[Any]] = deque()
        self._nonempty = threading.Condition(threading.Lock())
        self._closed = False

    def put(self, envelope: Envelope[Any], /) -> None:
        """Queue ``envelope`` and wake the process; reject it if closed."""
        with self._nonempty:
            if not self._closed:
                self._items.append(envelope)
                self._nonempty.notify()
                return
        reject(envelope)

    def get(self) -> Envelope[Any] | None:
        """Wait for the next envelope; ``None`` once the mailbox is closed."""
        with self._nonempty:
            while not self._items:
                if self._closed:
                    return None
                self._nonempty.wait()
            return self._items.popleft()

    def empty(self) -> bool:
        return not self._items

    def close(self) -> list[Envelope[Any]]:
        """Close for good, wake the waiting process, return what was queued."""
        with self._nonempty:
            self._closed = True
            pending = list(self._items)
            self._items.clear()
            self._nonempty.notify_all()
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


def spawn(process: Process) -> None:
    """Start running ``process``'s loop; it runs on a thread of its own."""
    thread = threading.Thread(
        target=_run_on_thread,
        args=(process,),
        name=f"{type(process).__name__}-{next(_thread_numbers)}",
        daemon=process.use_daemon_thread,
    )
    thread.start()


def _run_on_thread(process: Process) -> None:
    _local.process = process.actor_ref
    try:
        process._run()  # noqa: SLF001 - the substrate drives the process loop
    finally:
        _local.process = None


def current_process() -> Any:
    """The ref of the process running in this context, or ``None`` outside one."""
    return getattr(_local, "process", None)

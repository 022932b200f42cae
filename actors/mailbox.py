"""A process's mailbox: its inbox and its run state, as a substrate drives them."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from pykka import ActorDeadError

from actors._pykka import Envelope

__all__ = ["EMPTY", "Mailbox", "reject"]

IDLE, SCHEDULED, RUNNING = 0, 1, 2

EMPTY: Any = object()
"""``Mailbox.take``'s answer when there is no mail: the process is now idle."""


class Mailbox:
    """A process's inbox and run state: first in, first out, closed for good at death.

    ``put`` queues an envelope and, if the process was idle, marks it scheduled
    and calls the substrate's ``wake`` once: a dedicated thread is released, or
    the process is queued on the scheduler. The process then ``take``s its
    mail until none is left (it goes idle atomically with finding the mailbox
    empty, so no wake-up is ever lost). A closed mailbox rejects new mail, so an
    ask sent at the instant a process dies fails instead of waiting forever.
    """

    __slots__ = ("_closed", "_items", "_lock", "_state", "on_exit", "owner", "started", "wake")

    def __init__(self) -> None:
        self._items: deque[Envelope[Any]] | None = None
        self._lock = threading.Lock()
        self._state = SCHEDULED  # until the substrate runs the process's start-up
        self._closed = False
        self.wake: Callable[[Mailbox], None] | None = None
        self.owner: Any = None  # the process, set by the substrates that run mailboxes (pool, loop)
        self.on_exit: Callable[[], None] | None = None  # called by whoever ran the owner's exit
        self.started = False  # the pool has run the owner's start-up

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
        except queue.Full:  # already answered
            pass

"""Small processes the tests use to observe the runtime."""

from __future__ import annotations

import queue
import threading
from typing import Any

import actors

WAIT = 5.0


class Probe(actors.Process):
    """Forwards every message it receives to ``inbox`` (a thread-safe queue)."""

    def __init__(self, inbox: queue.Queue, trap_exit: bool = False) -> None:
        super().__init__()
        self.inbox = inbox
        self.trap_exit = trap_exit

    def on_receive(self, message: Any) -> Any:
        self.inbox.put(message)
        return message


class Worker(actors.Process):
    """Does what its messages say: crash, block on an event, reply, exit."""

    def __init__(self, events: queue.Queue | None = None, trap_exit: bool = False) -> None:
        super().__init__()
        self.events = events
        self.trap_exit = trap_exit
        self.terminated_with: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "raise":
            raise message[1]
        if isinstance(message, tuple) and message[0] == "block":
            entered, release = message[1], message[2]
            entered.set()
            release.wait(WAIT)
            if self.events is not None:
                self.events.put(("handler_finished", message[3] if len(message) > 3 else None))
            return "unblocked"
        if self.events is not None:
            self.events.put(("got", message))
        return ("reply", message)

    def raise_now(self, exc: BaseException) -> None:
        raise exc

    def terminate(self, reason: Any) -> None:
        if self.events is not None:
            self.events.put(("terminate", reason, actors.current_process()))


def drain(q: queue.Queue) -> list[Any]:
    items = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items


def next_matching(q: queue.Queue, predicate, timeout: float = WAIT) -> Any:
    """The first item of ``q`` for which ``predicate`` holds, within ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        item = q.get(timeout=max(0.0, deadline - time.monotonic()))
        if predicate(item):
            return item

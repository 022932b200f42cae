"""Timestamped structlog events: when did the runtime say it?

``EventClock`` is a structlog processor put in front of the configured chain
for the length of a ``with`` block. It stamps ``time.perf_counter()`` on the
events it watches (e.g. ``supervisor_report``) and passes every event on
unchanged, so the runtime's logging, traceback rendering included, costs what
it costs in production (unless told to drop them, to measure the runtime
alone). ``quiet_handlers`` points the command line's log
handler at ``os.devnull`` meanwhile, so a crash drill's hundred tracebacks are
still rendered but do not flood the terminal.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import structlog

import actors.log

__all__ = ["EventClock", "quiet_handlers"]



class EventClock:
    """Records ``(perf_counter, fields)`` for every event whose name is watched.

    With ``drop=True`` a watched event goes no further once stamped: nothing
    renders it (to measure the runtime without the cost of its crash logs).
    """

    def __init__(
        self,
        events: Iterable[str],
        keep: Iterable[str] = ("entry", "process", "context", "supervisor"),
        *,
        drop: bool = False,
    ) -> None:
        self.events = frozenset(events)
        self.drop = drop
        self.keep = tuple(keep)
        self.seen: list[tuple[float, dict[str, Any]]] = []
        self._changed = threading.Condition()

    def __call__(self, _logger: Any, _method: str, event_dict: Any) -> Any:
        event = event_dict.get("event")
        if event in self.events:
            moment = time.perf_counter()
            fields = {"event": event, **{k: event_dict[k] for k in self.keep if k in event_dict}}
            with self._changed:
                self.seen.append((moment, fields))
                self._changed.notify_all()
            if self.drop:
                raise structlog.DropEvent
        return event_dict

    def of(self, event: str) -> list[tuple[float, dict[str, Any]]]:
        with self._changed:
            return [(moment, fields) for moment, fields in self.seen if fields["event"] == event]

    def wait_for(self, event: str, count: int, timeout: float) -> bool:
        """Wait until ``count`` ``event``s were seen; False if ``timeout`` ran out first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(1 for _, fields in self.seen if fields["event"] == event) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    @contextlib.contextmanager
    def installed(self) -> Iterator[EventClock]:
        """Put this processor first in structlog's chain for the block."""
        previous = structlog.get_config()["processors"]
        structlog.configure(processors=[self, *previous])
        try:
            yield self
        finally:
            structlog.configure(processors=previous)


@contextlib.contextmanager
def quiet_handlers() -> Iterator[None]:
    """Send the command line's log handler to ``os.devnull`` for the block."""
    handlers = actors.log.output_handlers()
    if not handlers:
        yield
        return
    with open(os.devnull, "w", encoding="utf-8") as sink:
        previous = [h.setStream(sink) for h in handlers]
        try:
            yield
        finally:
            for handler, stream in zip(handlers, previous, strict=True):
                if stream is not None:
                    handler.setStream(stream)

"""uvicorn's HTTP/1.1 protocol (h11) with a deadline on unfinished requests
and a hard cap on connections.

uvicorn times out idle keep-alive connections only after a first response,
and any byte received re-arms nothing: a client that opens a connection and
never finishes its request headers (or its WebSocket upgrade) is held for as
long as it likes. :class:`DeadlineH11Protocol` gives each connection one
timer: the request's headers must be complete within ``request_timeout``
seconds of the connection (or of the last response), else the connection is
aborted. Past ``limit_concurrency`` open connections a new one is closed at
once, and counted in one log line per interval rather than one per refusal.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["DeadlineH11Protocol", "DEFAULT_REQUEST_TIMEOUT", "with_request_timeout"]

log = structlog.get_logger("liveupload.server")

#: Seconds a connection may take to send complete request headers.
DEFAULT_REQUEST_TIMEOUT = 10.0
_LOG_INTERVAL = 10.0


class _Refusals:
    """Connections refused past the limit: one log line per interval."""

    def __init__(self) -> None:
        self.count = 0
        self.logged_at = float("-inf")

    def note(self, limit: int) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.logged_at >= _LOG_INTERVAL:
            log.warning("http.connection_limit", limit=limit, refused=self.count, interval_seconds=_LOG_INTERVAL)
            self.logged_at, self.count = now, 0


class DeadlineH11Protocol(H11Protocol):
    """:class:`H11Protocol` with a request-header deadline and a connection cap."""

    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    refusals = _Refusals()  # one per server: see with_request_timeout

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._request_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn narrows it too
        super().connection_made(transport)
        limit = self.limit_concurrency
        if limit is not None and len(self.connections) > limit:
            self.refusals.note(limit)
            transport.abort()
            return
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle or self.transport.get_protocol() is not self:
            self._cancel_deadline()  # headers complete: a request runs, or the socket was upgraded

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_deadline()  # the next request on this connection gets its own deadline

    def _arm_deadline(self) -> None:
        self._cancel_deadline()
        self._request_deadline = self.loop.call_later(self.request_timeout, self._deadline_passed)

    def _cancel_deadline(self) -> None:
        if self._request_deadline is not None:
            self._request_deadline.cancel()
            self._request_deadline = None

    def _deadline_passed(self) -> None:
        self._request_deadline = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered
        if self.transport.get_protocol() is not self or self.transport.is_closing():
            return
        log.debug("http.request_timeout", seconds=self.request_timeout,
                 peer=f"{self.client[0]}:{self.client[1]}" if self.client else None)
        self.transport.abort()


def with_request_timeout(seconds: float) -> type[DeadlineH11Protocol]:
    """A :class:`DeadlineH11Protocol` class whose deadline is ``seconds``
    (pass it as uvicorn's ``http``)."""
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"request_timeout": seconds, "refusals": _Refusals()})

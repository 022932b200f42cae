"""File descriptors: as many as the system allows, and quiet at the limit.

:func:`raise_nofile_limit` lifts the soft ``RLIMIT_NOFILE`` to the hard one
(each connection costs a descriptor). At the limit asyncio's accept loop
backs off and retries, logging each time through the ``asyncio`` logger;
:class:`RateLimitFilter` lets one such line through per interval, with the
count of those held back, so existing connections keep being served and the
log does not drown.

asyncio (3.10 to 3.13) backs off badly: after a failed ``accept()`` it goes
on calling ``accept()`` up to the socket's backlog (2,048 under uvicorn)
times in the same wake-up, each failure logged and each scheduling a retry,
about 9,000 failures a second. :func:`pace_accept` makes the first failure
end that wake-up, so the listening socket is tried once per second.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from typing import Any

import structlog

try:
    import resource
except ImportError:  # not on POSIX
    resource = None  # type: ignore[assignment]  # not on this platform: the limit stays as it is

__all__ = ["raise_nofile_limit", "RateLimitFilter", "quiet_descriptor_exhaustion", "pace_accept"]

log = structlog.get_logger("liveupload.server")

#: What the loggers say when descriptors (or buffers) run out.
EXHAUSTION_MARKS = ("Too many open files", "out of system resource", "No buffer space available")


def raise_nofile_limit() -> tuple[int, int] | None:
    """Raise the soft descriptor limit to the hard one; ``(soft, hard)`` now
    (logged with the soft limit before), ``None`` where there are no rlimits."""
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("serve.nofile_unchanged", soft=soft, hard=hard, error=str(exc))
            return soft, hard
    log.info("serve.nofile", soft_before=soft, soft=target, hard=hard)
    return target, hard


class RateLimitFilter(logging.Filter):
    """Lets one record about descriptor exhaustion through per ``interval``
    seconds (telling how many were held back); others pass untouched."""

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self.held = 0
        self.last = float("-inf")

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + str(record.exc_info[1])
        if not any(mark in text for mark in EXHAUSTION_MARKS):
            return True
        now = time.monotonic()
        if now - self.last < self.interval:
            self.held += 1
            return False
        if self.held:
            record.msg = f"{record.msg} ({self.held} more like it in the last {self.interval:g} s held back)"
        self.last, self.held = now, 0
        return True


def quiet_descriptor_exhaustion(interval: float = 10.0,
                                loggers: tuple[str, ...] = ("asyncio", "uvicorn.error")) -> RateLimitFilter:
    """Install one :class:`RateLimitFilter` on ``loggers``; returns it."""
    limiter = RateLimitFilter(interval)
    for name in loggers:
        logging.getLogger(name).addFilter(limiter)
    return limiter


#: The ``accept()`` errors after which asyncio pauses the listening socket.
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def pace_accept(loop: asyncio.AbstractEventLoop) -> bool:
    """Have ``loop`` stop accepting for this wake-up at the first resource
    error (asyncio then retries in a second), instead of failing up to the
    backlog's length in a row. Must be called before the server starts
    listening; returns False for a loop without a selector accept loop."""
    original = getattr(loop, "_accept_connection", None)  # asyncio's private method, where the bug is
    if original is None or getattr(original, "paced", False):
        return False

    def accept_connection(protocol_factory: Any, sock: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(sock, _StopAtResourceError):
            sock = sock.sock  # handed back by asyncio's retry
        return original(protocol_factory, _StopAtResourceError(sock), *args, **kwargs)

    accept_connection.paced = True  # type: ignore[attr-defined]  # marks a loop paced once
    loop._accept_connection = accept_connection  # type: ignore[attr-defined]  # the instance's, not the class's
    return True


class _StopAtResourceError:
    """The listening socket as one wake-up of asyncio's accept loop sees it:
    after a resource error, ``accept()`` says "nothing more" (what ends the
    loop) until asyncio's retry."""

    __slots__ = ("failed", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.failed = False

    def accept(self) -> tuple[socket.socket, Any]:
        if self.failed:
            raise BlockingIOError(errno.EAGAIN, "accepting paused until asyncio retries")
        try:
            return self.sock.accept()
        except OSError as exc:
            if exc.errno in RESOURCE_ERRNOS:
                self.failed = True
            raise

    def fileno(self) -> int:
        return self.sock.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)

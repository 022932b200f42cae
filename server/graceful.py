"""uvicorn's server, stopped the way an upload server should be, and always.

On SIGINT/SIGTERM :class:`GracefulServer` stops accepting at once, then ends
every channel (``leave("shutdown")``: each page's session stops, each upload
in flight is cancelled through its channel, which closes its writer with
``"cancel"`` and deletes its temp file) and closes the sockets, all within
``shutdown_timeout`` seconds. At the deadline every connection still open is
aborted (a peer that never reads cannot hold the server), then the runtime is
shut down. A second signal aborts everything at once and exits. Used by
``liveupload serve`` and :func:`server.app.serve_in_thread`.

It is also the transport's ``force_close`` hook: it finds the socket behind an
ASGI scope and aborts it, so a connection over a budget is dropped whatever
its peer does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Mapping
from types import FrameType
from typing import Any

import structlog
import uvicorn

import actors
import actors.log

from .descriptors import pace_accept
from .transport import Transport

__all__ = ["GracefulServer", "STOP_SECONDS", "DEFAULT_SHUTDOWN_TIMEOUT"]

log = structlog.get_logger("liveupload.server")

#: Seconds ``actors.shutdown`` gives the processes still alive once the sockets are closed.
STOP_SECONDS = 5.0
#: Seconds connections get on shutdown before they are aborted.
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
# Seconds the ASGI tasks get, once their sockets are aborted, to end before uvicorn cancels them.
_TASK_GRACE = 1.0


class GracefulServer(uvicorn.Server):
    """uvicorn's server that leaves every channel before closing sockets, and
    aborts whatever is left at ``shutdown_timeout``."""

    def __init__(self, config: uvicorn.Config, *, transport: Transport | None = None,
                 owns_runtime: bool = False, shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT) -> None:
        super().__init__(config)
        self.transport = transport
        self.owns_runtime = owns_runtime  # the command line: stop every process on the way out
        self.shutdown_timeout = shutdown_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        if transport is not None:
            transport.force_close = self.force_close

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        pace_accept(self._loop)  # one failed accept per second at the descriptor limit, not thousands
        await super().startup(sockets=sockets)
        if self.started and self.servers:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            log.info("serve.listening", url=f"http://{_url_host(host)}:{port}/")

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:  # the second signal: abort everything, exit now
            log.warning("serve.forced_exit", signal=signal.Signals(sig).name)
            actors.log.flush_logging()
            os._exit(128 + sig)
        super().handle_exit(sig, frame)

    def force_close(self, scope: Mapping[str, Any]) -> bool:
        """Abort the socket serving ``scope`` (the transport's hook); False if not found."""
        for conn in list(self.server_state.connections):
            if getattr(conn, "scope", None) is scope:
                transport = getattr(conn, "transport", None)
                if transport is not None:
                    transport.abort()
                    return True
        return False

    def abort_all(self) -> int:
        """Abort every connection still open (HTTP and WebSocket); how many."""
        conns = list(self.server_state.connections)
        for conn in conns:
            transport = getattr(conn, "transport", None)
            if transport is not None:
                transport.abort()
        return len(conns)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_timeout
        for server in self.servers:  # stop accepting at once
            server.close()
        for sock in sockets or []:
            sock.close()
        if self.transport is not None:
            log.info("serve.stopping", connections=len(self.transport.connections), deadline=self.shutdown_timeout)
            try:
                await asyncio.wait_for(self.transport.shutdown(), max(deadline - loop.time(), 0.0))
            except asyncio.TimeoutError:
                pass
        # uvicorn's own shutdown, with a timer that aborts what is still open at the deadline.
        force = loop.call_at(deadline, self._force_at_deadline)
        self.config.timeout_graceful_shutdown = max(deadline - loop.time(), 0.0) + _TASK_GRACE  # type: ignore[assignment]  # uvicorn types it int | None; asyncio takes a float
        try:
            await super().shutdown(sockets=None)
        finally:
            force.cancel()
        if self.owns_runtime:
            # Whatever is left ends in order too, off the loop (shutdown waits for
            # it), before uvicorn re-raises SIGTERM and ends the interpreter.
            await asyncio.to_thread(actors.shutdown, STOP_SECONDS)
        log.info("serve.stopped")
        actors.log.flush_logging()  # uvicorn may re-raise SIGTERM next, ending us before atexit

    def _force_at_deadline(self) -> None:
        dropped = self.transport.drop_all() if self.transport is not None else 0
        aborted = self.abort_all()
        if dropped or aborted:
            log.warning("serve.shutdown_deadline", seconds=self.shutdown_timeout, dropped=dropped, aborted=aborted)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host

"""uvicorn's server, stopped the way an upload server should be.

:class:`GracefulServer` first ends every channel (``leave("shutdown")``:
each page's session stops, each upload in flight is cancelled through its
channel, which closes its writer with ``"cancel"`` and deletes its temp
file), then lets uvicorn close the sockets. Used by ``liveupload serve`` and
:func:`server.app.serve_in_thread`.
"""

from __future__ import annotations

import asyncio
import socket

import structlog
import uvicorn

import actors
import actors.log

from .transport import Transport

__all__ = ["GracefulServer", "STOP_SECONDS"]

log = structlog.get_logger("liveupload.server")

#: Seconds ``actors.shutdown`` gives the processes still alive once the sockets are closed.
STOP_SECONDS = 5.0


class GracefulServer(uvicorn.Server):
    """uvicorn's server that leaves every channel before closing sockets."""

    def __init__(self, config: uvicorn.Config, *, transport: Transport | None = None,
                 owns_runtime: bool = False) -> None:
        super().__init__(config)
        self.transport = transport
        self.owns_runtime = owns_runtime  # the command line: stop every process on the way out

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.servers:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            log.info("serve.listening", url=f"http://{_url_host(host)}:{port}/")

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.transport is not None:
            pages = len(self.transport.connections)
            log.info("serve.stopping", connections=pages)
            await self.transport.shutdown()
        await super().shutdown(sockets=sockets)
        if self.owns_runtime:
            # Whatever is left ends in order too, off the loop (shutdown waits for
            # it), before uvicorn re-raises SIGTERM and ends the interpreter.
            await asyncio.to_thread(actors.shutdown, STOP_SECONDS)
        log.info("serve.stopped")
        actors.log.flush_logging()  # uvicorn may re-raise SIGTERM next, ending us before atexit


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host

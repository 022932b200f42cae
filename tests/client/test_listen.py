"""The socket ``liveupload serve`` listens on (``cli.startup.listen``): the
connections asyncio accepts on it get ``TCP_NODELAY``, so two small frames
written back to back (a progress reply, then a chunk reply: the client pushes
progress without waiting, as Phoenix's does) are not held by Nagle's algorithm
until the client's delayed ACK."""

from __future__ import annotations

import asyncio
import socket

import pytest

from cli import startup

pytestmark = pytest.mark.timeout(10)


def test_accepted_connections_have_tcp_nodelay():
    async def check() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        sock = startup.listen("127.0.0.1", 0)
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        try:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            try:
                return await asyncio.wait_for(accepted, 5)
            finally:
                writer.close()
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(check()) != 0

"""The ``wire`` scenario's ceiling: a bare Starlette WebSocket endpoint under
uvicorn with ``liveupload serve``'s WebSocket options, that writes every binary
frame it gets to a file and answers each with a short text frame; a text frame
(the harness's stand-in for a LiveView event) is answered with
:data:`EVENT_REPLY`, a text frame as long as liveupload's reply to a progress
event, and nothing else is done with it.

Every connection is one upload: a file of its own under ``--dir``, opened at
connect, written chunk by chunk, closed at disconnect. Nothing else happens
per chunk, so what it costs is what the stack (uvicorn, ``websockets``,
Starlette, one ``write``) costs: the bound the upload server is measured
against. ``GET /`` answers ``ok`` (the harness polls it to know the server is
up).

Run as a child process of the harness::

    python -m benchmarks.wire_baseline --dir DIR [--port 0] [--chunk-size 64000]

It prints ``wire_baseline: listening url=http://HOST:PORT/`` on stderr once
its socket listens, and runs until SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from server.http_deadline import DEFAULT_REQUEST_TIMEOUT, with_request_timeout
from server.transport import max_message_size_for

__all__ = ["ACK", "EVENT_REPLY", "create_app", "main"]

ACK = "ok"
"""The short text frame every chunk is answered with."""
EVENT_REPLY = "e" * 146
"""What a text frame is answered with: as many bytes as liveupload's reply to a
``progress`` event with 100 entries on the page (146, the ``events`` scenario's
figure), so the bare endpoint writes what the upload server writes per event."""


def create_app(directory: str) -> Starlette:
    """The endpoint: ``/upload`` (WebSocket) writes each connection's binary
    frames to ``directory/upload-N.bin``, answering each with ``ok``, and
    answers each text frame with :data:`EVENT_REPLY`."""
    numbers = itertools.count()

    async def upload(ws: WebSocket) -> None:
        await ws.accept()
        path = os.path.join(directory, f"upload-{next(numbers)}.bin")
        with open(path, "wb") as out:
            try:
                while True:
                    message = await ws.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    data = message.get("bytes")
                    if data is not None:
                        out.write(data)
                        await ws.send_text(ACK)
                    elif message.get("text") is not None:
                        await ws.send_text(EVENT_REPLY)
            except WebSocketDisconnect:
                return

    async def index(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/", index), WebSocketRoute("/upload", upload)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.wire_baseline", description=__doc__)
    parser.add_argument("--dir", required=True, help="where the uploaded files go")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunk-size", type=int, default=64_000, help="the largest chunk (sets ws_max_size)")
    args = parser.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # as cli.startup.listen
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    host, port = sock.getsockname()[:2]
    # liveupload serve's options (cli/serve.py), so the stack is the same one
    config = uvicorn.Config(
        create_app(args.dir),
        http=with_request_timeout(DEFAULT_REQUEST_TIMEOUT),
        timeout_keep_alive=5,
        ws_max_size=max_message_size_for(args.chunk_size),
        ws_per_message_deflate=False,
        log_config=None,
        log_level="warning",
        lifespan="on",
    )
    print(f"wire_baseline: listening url=http://{host}:{port}/", file=sys.stderr, flush=True)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

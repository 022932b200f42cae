"""A raw WebSocket client that can misbehave: it completes the upgrade by
hand (any ``Host``/``Origin``), sends masked frames, and reads only when told
to, through a receive buffer made small so a server's pushes back up fast."""

from __future__ import annotations

import itertools
import json
import os
import select
import socket
import struct
from typing import Any, Callable
from urllib.parse import urlsplit

UPGRADE_PATH = "/live/websocket?vsn=2.0.0&_csrf_token=x"


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One masked client frame (FIN set)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def text(*message: Any) -> bytes:
    return frame(json.dumps(list(message)).encode())


class RawSocket:
    """One TCP connection to ``base`` (``http://host:port``)."""

    def __init__(self, base: str, *, rcvbuf: int | None = 4096, sndbuf: int | None = None,
                 timeout: float = 5.0) -> None:
        url = urlsplit(base)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((self.host, self.port))

    def upgrade(self, *, host: str | None = None, origin: str | None = None, path: str = UPGRADE_PATH) -> int:
        """Send the upgrade request; the response's status code (101 when accepted)."""
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host if host is not None else f'{self.host}:{self.port}'}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        ]
        if origin is not None:
            lines.append(f"Origin: {origin}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            head += chunk
        status = head.split(b"\r\n", 1)[0].split()
        return int(status[1]) if len(status) > 1 else 0

    def send(self, data: bytes) -> bool:
        """Send all of ``data``; False if the server stopped taking it (its
        buffers full, or the socket closed) within the timeout."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def flood(self, frames: bytes | Callable[[int], bytes], limit: int) -> int:
        """Send ``frames`` (or ``frames(round)``) over and over until the
        server stops taking them (it stopped reading, or closed the socket)
        or ``limit`` bytes went out; the bytes sent before it stopped, 0 if
        it never did."""
        sent = 0
        rounds = itertools.count()
        while sent < limit:
            batch = frames(next(rounds)) if callable(frames) else frames
            if not self.send(batch):
                return sent or 1
            sent += len(batch)
        return 0

    def wait_closed(self, timeout: float) -> bool:
        """Wait, reading nothing, until the server closes or resets the socket."""
        poller = select.poll()
        poller.register(self.sock, select.POLLRDHUP)  # POLLHUP and POLLERR are always reported
        return bool(poller.poll(int(timeout * 1000)))

    def read_all(self) -> bytes:
        """Everything until the server closes the socket (or the timeout)."""
        data = b""
        try:
            while chunk := self.sock.recv(65536):
                data += chunk
        except OSError:
            pass
        return data

    def close(self) -> None:
        self.sock.close()

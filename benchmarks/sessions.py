"""Our side of a measurement: upload sessions and their channels, set up the
way the server sets them up, and torn down so nothing is left behind.

Each ``UploadSession`` serves up to ``per_session`` uploads (one
``allow_upload`` config with that many entries, preflighted at once). A
channel is made by the session's ``join(token)``, exactly as a client's join
does: the session starts an ``UploadChannel`` under its ``DynamicSupervisor``
and has it initialise its writer. Each session is driven by an
``uploads.inprocess.InProcessClient``; the harness then talks to the
channel's ref directly, as the transport does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

import actors
from actors import ProcessRef
from uploads import UploadSession
from uploads.inprocess import InProcessClient, entry_fields
from writers import WriterFactory

__all__ = ["SessionFleet", "JoinFailed"]

log = structlog.get_logger("liveupload.bench")

CONFIG = "bench"


class JoinFailed(RuntimeError):
    """A session refused or failed a join (``reply`` is what it answered)."""

    def __init__(self, reply: Any) -> None:
        super().__init__(f"join failed: {reply!r}")
        self.reply = reply


class SessionFleet:
    """Sessions and channels for ``join``-ed uploads of ``size`` bytes each.

    Use as a context manager, or call ``close()``: it stops every session (each
    stops its supervisor, which shuts its channels down; a channel closes and
    releases its writer) and waits until all of them have exited.
    """

    def __init__(
        self,
        writer: WriterFactory,
        *,
        size: int,
        chunk_size: int,
        per_session: int = 100,
        chunk_timeout: float = 600.0,
    ) -> None:
        self.writer = writer
        self.size = size
        self.chunk_size = chunk_size
        self.per_session = per_session
        self.chunk_timeout = chunk_timeout
        self.sessions: list[ProcessRef] = []
        self.channels: list[ProcessRef] = []
        self._tokens: list[str] = []
        self._client: InProcessClient | None = None
        self._next_ref = 0

    def __enter__(self) -> SessionFleet:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    def _new_session(self) -> None:
        session = UploadSession.start(channel_shutdown=self.chunk_timeout)
        self.sessions.append(session)
        client = InProcessClient(session, CONFIG, timeout=None)
        client.allow_upload(
            accept="any",
            max_entries=self.per_session,
            max_file_size=max(self.size, 1),
            chunk_size=self.chunk_size,
            chunk_timeout=self.chunk_timeout,
            writer=self.writer,
        )
        first = self._next_ref
        self._next_ref += self.per_session
        entries = [
            entry_fields(str(first + k), f"upload-{first + k}.bin", self.size) for k in range(self.per_session)
        ]
        reply = client.preflight_entries(entries)
        if "entries" not in reply:
            raise JoinFailed(reply)
        self._tokens = [reply["entries"][entry["ref"]] for entry in reversed(entries)]
        self._client = client

    def join(
        self, count: int = 1, on_join: Callable[[], None] | None = None, timeout: float | None = None
    ) -> list[ProcessRef]:
        """Join ``count`` more uploads (starting sessions as needed); their channels'
        refs. ``timeout``: how long one join may take (``pykka.Timeout`` past it)."""
        joined = []
        for _ in range(count):
            if not self._tokens:
                self._new_session()
            assert self._client is not None
            channel = self._client.join(self._tokens.pop(), timeout=timeout)
            if not isinstance(channel, ProcessRef):
                raise JoinFailed(channel)
            self.channels.append(channel)
            joined.append(channel)
            if on_join is not None:
                on_join()
        return joined

    def close(self, timeout: float = 120.0) -> None:
        """Stop every session and wait for all of them and their channels to exit."""
        deadline = time.monotonic() + timeout
        for session in self.sessions:
            if session.is_alive():
                session.stop(block=False)
        for ref in [*self.sessions, *self.channels]:
            actors.await_exit(ref, max(0.0, deadline - time.monotonic()))
        self.sessions.clear()
        self.channels.clear()
        self._tokens.clear()
        self._client = None


def fixed_writer(writer: Any, opts: Any = None) -> WriterFactory:
    """A writer factory that gives every entry ``(writer, opts)``."""

    def factory(_name: str, _entry: Any, _session: Any) -> tuple[Any, Any]:
        return (writer, opts)

    return factory

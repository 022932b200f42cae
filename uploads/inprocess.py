"""An in-process stand-in for LiveView's JS upload client.

It drives an :class:`~uploads.session.UploadSession` the way Phoenix's client
drives the LiveView, without a socket: preflight the entries (``allow_upload``'s
reply of tokens), join each entry's channel with its token, then push chunks
stop-and-wait (the next chunk only after an ``"ok"``). The tests, the
benchmark harness and the crash drill all drive sessions through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import actors
from actors import ProcessRef

__all__ = ["WAIT", "InProcessClient", "entry_fields", "stop_session"]

WAIT = 5.0
"""Default deadline of one call, in seconds."""


def entry_fields(
    ref: str, name: str, size: int, type_: str = "application/octet-stream", last_modified: int = 1_700_000_000_000
) -> dict[str, Any]:
    """One entry as the JS client sends it in ``allow_upload``."""
    return {"ref": ref, "name": name, "size": size, "type": type_, "last_modified": last_modified}


class InProcessClient:
    """The client of one session and one of its upload configs (``config``).

    ``timeout`` bounds every call (``None``: wait as long as it takes);
    a session's refusal comes back as its reply, a dead session as
    ``pykka.ActorDeadError``.
    """

    def __init__(self, session: ProcessRef, config: str = "avatar", *, timeout: float | None = WAIT) -> None:
        self.session = session
        self.proxy = session.proxy()
        self.config = config
        self.timeout = timeout

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """The session's reply to ``method(*args, **kwargs)``."""
        return getattr(self.proxy, method)(*args, **kwargs).get(timeout=self.timeout)

    def allow_upload(self, **options: Any) -> Any:
        """Declare this client's config on the session (as the LiveView's mount does)."""
        return self.call("allow_upload", self.config, **options)

    def preflight_entries(self, entries: list[dict[str, Any]], config: str | None = None) -> dict[str, Any]:
        """``allow_upload`` for these entries: ``{"entries": {ref: token}, ...}`` or the errors."""
        return self.call("preflight", config or self.config, entries)

    def preflight(self, files: Mapping[str, bytes], first_ref: int = 0) -> dict[str, Any]:
        """Preflight ``files`` (name -> bytes) as entries ``first_ref``, ``first_ref + 1``, ..."""
        entries = [entry_fields(str(first_ref + i), name, len(data)) for i, (name, data) in enumerate(files.items())]
        return self.preflight_entries(entries)

    def join(self, token: str, timeout: float | None = None) -> Any:
        """Join an entry's channel: its ``ProcessRef``, or the session's error reply."""
        return self.proxy.join(token).get(timeout=timeout if timeout is not None else self.timeout)

    def push(self, channel: ProcessRef, chunk: bytes) -> Any:
        """One chunk to ``channel``; its reply."""
        return channel.ask(("chunk", chunk), timeout=self.timeout)

    def send(self, channel: ProcessRef, data: bytes, chunk_size: int) -> list[Any]:
        """Stop-and-wait, as the JS client: the next chunk only after an ok reply."""
        replies = []
        for start in range(0, max(len(data), 1), chunk_size):
            reply = self.push(channel, data[start : start + chunk_size])
            replies.append(reply)
            if reply != "ok":
                break
        return replies

    def upload(self, files: Mapping[str, bytes], chunk_size: int = 64_000) -> dict[str, list[Any]]:
        """Preflight, join and send every file; the replies per file."""
        reply = self.preflight(files)
        if "entries" not in reply:
            raise RuntimeError(f"preflight refused: {reply!r}")
        results = {}
        for i, (name, data) in enumerate(files.items()):
            channel = self.join(reply["entries"][str(i)])
            if not isinstance(channel, ProcessRef):
                raise RuntimeError(f"join of {name} refused: {channel!r}")
            results[name] = self.send(channel, data, chunk_size)
        return results

    def entry(self, ref: str, config: str | None = None) -> dict[str, Any]:
        """The session's view of entry ``ref``."""
        [entry] = [e for e in self.call("uploads")[config or self.config]["entries"] if e["ref"] == ref]
        return entry


def stop_session(session: ProcessRef, timeout: float = WAIT) -> Any:
    """Stop ``session`` if it still runs; its exit reason."""
    if session.is_alive():
        session.stop()
    return actors.await_exit(session, timeout)

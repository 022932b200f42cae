"""A Python stand-in for LiveView's upload client, driving a session directly."""

from __future__ import annotations

from typing import Any

import actors
from tests.helpers import WAIT


def entry_fields(ref: str, name: str, size: int, type_: str = "application/octet-stream") -> dict[str, Any]:
    return {"ref": ref, "name": name, "size": size, "type": type_, "last_modified": 1_700_000_000_000}


class Client:
    """Does what the JS client does: track, preflight, join, push chunks."""

    def __init__(self, session: actors.ProcessRef, name: str = "avatar") -> None:
        self.session = session
        self.proxy = session.proxy()
        self.name = name

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.proxy, method)(*args, **kwargs).get(timeout=WAIT)

    def preflight(self, files: dict[str, bytes], first_ref: int = 0) -> dict[str, Any]:
        entries = [entry_fields(str(first_ref + i), name, len(data)) for i, (name, data) in enumerate(files.items())]
        return self.call("preflight", self.name, entries)

    def join(self, token: str) -> Any:
        return self.call("join", token)

    def send(self, channel: actors.ProcessRef, data: bytes, chunk_size: int) -> list[Any]:
        """Stop-and-wait, as the client: the next chunk only after an ok reply."""
        replies = []
        for start in range(0, max(len(data), 1), chunk_size):
            reply = channel.ask(("chunk", data[start : start + chunk_size]), timeout=WAIT)
            replies.append(reply)
            if reply != "ok":
                break
        return replies

    def upload(self, files: dict[str, bytes], chunk_size: int = 64_000) -> dict[str, list[Any]]:
        """Preflight, join and send every file; the replies per file."""
        reply = self.preflight(files)
        assert "entries" in reply, reply
        results = {}
        for i, (name, data) in enumerate(files.items()):
            channel = self.join(reply["entries"][str(i)])
            assert isinstance(channel, actors.ProcessRef), channel
            results[name] = self.send(channel, data, chunk_size)
        return results

    def entry(self, ref: str) -> dict[str, Any]:
        [entry] = [e for e in self.call("uploads")[self.name]["entries"] if e["ref"] == ref]
        return entry


def stop_session(session: actors.ProcessRef) -> Any:
    if session.is_alive():
        session.stop()
    return actors.await_exit(session, WAIT)

"""A wire-level Phoenix Channels client for the server tests: raw frames in
and out over a synchronous WebSocket, plus just enough of LiveView's upload
client (page join, track, allow_upload, lvu: joins, chunks) to build bad
inputs around good ones."""

from __future__ import annotations

import itertools
import json
from typing import Any, Callable

import httpx
from websockets.sync.client import connect

from client.page_view import PageView, RenderedState, read_page
from server.protocol import Message, encode_binary

RECV_TIMEOUT = 10.0


def fetch_page(base: str) -> dict[str, str]:
    """The dead render's view id, signed tokens and CSRF token."""
    page = read_page(httpx.get(base + "/", trust_env=False, timeout=RECV_TIMEOUT).text)
    root = page.root
    assert root.get("id") and root.get("data-phx-session") and root.get("data-phx-static"), "page has no LiveView root"
    assert page.csrf, "page has no CSRF token"
    return {"id": root["id"], "session": root["data-phx-session"], "static": root["data-phx-static"], "csrf": page.csrf}


class Wire:
    """One socket. ``call`` sends and returns the matching reply; everything
    else that arrives meanwhile is kept in ``seen`` (and fed to ``on_frame``)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.ws = connect("ws" + base[4:] + "/live/websocket?vsn=2.0.0&_csrf_token=x",
                          proxy=None, open_timeout=5, close_timeout=5).__enter__()
        self.refs = itertools.count(100)
        self.seen: list[Any] = []
        self.on_frame: Callable[[Any], None] | None = None

    def ref(self) -> str:
        return str(next(self.refs))

    def send(self, *frame: Any) -> None:
        self.ws.send(json.dumps(list(frame)))

    def send_raw(self, data: str | bytes) -> None:
        self.ws.send(data)

    def recv(self) -> Any:
        data = self.ws.recv(timeout=RECV_TIMEOUT)
        frame = json.loads(data) if isinstance(data, str) else data
        if self.on_frame is not None:
            self.on_frame(frame)
        return frame

    def expect(self, predicate: Callable[[Any], bool]) -> Any:
        """The first frame (already seen, or arriving) that matches."""
        for i, frame in enumerate(self.seen):
            if predicate(frame):
                return self.seen.pop(i)
        while True:
            frame = self.recv()
            if predicate(frame):
                return frame
            self.seen.append(frame)

    def reply_to(self, ref: str) -> dict:
        frame = self.expect(lambda f: isinstance(f, list) and f[1] == ref and f[3] == "phx_reply")
        return frame[4]

    def call(self, join_ref: str | None, topic: str, event: str, payload: dict) -> dict:
        ref = self.ref()
        self.send(join_ref, ref, topic, event, payload)
        return self.reply_to(ref)

    def chunk(self, join_ref: str, topic: str, data: bytes) -> dict:
        ref = self.ref()
        self.send_raw(encode_binary(Message(join_ref, ref, topic, "chunk", data)))
        return self.reply_to(ref)

    def heartbeat(self) -> None:
        assert self.call(None, "phoenix", "heartbeat", {}) == {"status": "ok", "response": {}}

    def close(self) -> None:
        self.ws.close()


def ok(response: dict | None = None) -> dict:
    return {"status": "ok", "response": response if response is not None else {}}


def error(response: dict) -> dict:
    return {"status": "error", "response": response}


class Page:
    """One joined ``lv:`` topic on a :class:`Wire`, with the page it shows."""

    def __init__(self, wire: Wire, tokens: dict[str, str] | None = None, join: bool = True) -> None:
        self.wire = wire
        self.boot = tokens or fetch_page(wire.base)
        self.topic = f"lv:{self.boot['id']}"
        self.join_ref = wire.ref()
        self.state: RenderedState | None = None
        wire.on_frame = self._track_pushes
        if join:
            reply = self.join()
            assert reply["status"] == "ok", reply

    def join_payload(self, **changes: Any) -> dict:
        payload = {
            "url": self.wire.base + "/",
            "params": {"_csrf_token": self.boot["csrf"], "_mounts": 0, "_mount_attempts": 0},
            "session": self.boot["session"],
            "static": self.boot["static"],
            "sticky": False,
        }
        payload.update(changes)
        return payload

    def join(self, **changes: Any) -> dict:
        self.wire.send(self.join_ref, self.join_ref, self.topic, "phx_join", self.join_payload(**changes))
        reply = self.wire.reply_to(self.join_ref)
        if reply["status"] == "ok":
            self.state = RenderedState(reply["response"]["rendered"])
        return reply

    def _track_pushes(self, frame: Any) -> None:
        if not isinstance(frame, list) or frame[2] != self.topic or self.state is None:
            return
        if frame[3] == "diff":
            self.state.apply(frame[4])
        elif frame[3] == "phx_reply" and isinstance(frame[4].get("response"), dict):
            diff = frame[4]["response"].get("diff")
            if diff:
                self.state.apply(diff)

    @property
    def view(self) -> PageView:
        assert self.state is not None
        return read_page(self.state.html())

    @property
    def config_ref(self) -> str:
        return self.view.inputs[0].ref

    def call(self, event: str, payload: dict) -> dict:
        return self.wire.call(self.join_ref, self.topic, event, payload)

    def track(self, files: dict[str, int], first_ref: int = 0) -> dict:
        entries = [{"path": "files", "ref": str(first_ref + i), "name": name, "size": size,
                    "type": "application/octet-stream", "last_modified": 1795417331733}
                   for i, (name, size) in enumerate(files.items())]
        self._entries = entries
        return self.call("event", {"type": "form", "event": "validate", "value": "",
                                   "meta": {"_target": "files"}, "uploads": {self.config_ref: entries}})

    def allow(self) -> dict:
        reply = self.call("allow_upload", {"ref": self.config_ref, "entries": self._entries})
        assert reply["status"] == "ok", reply
        return reply["response"]

    def upload_tokens(self, files: dict[str, int]) -> dict[str, str]:
        assert self.track(files)["status"] == "ok"
        response = self.allow()
        assert "entries" in response, response
        return response["entries"]

    def progress(self, entry_ref: str, progress: Any) -> dict:
        return self.call("progress", {"event": None, "ref": self.config_ref, "entry_ref": entry_ref,
                                      "progress": progress})

    def submit(self) -> dict:
        return self.call("event", {"type": "form", "event": "save", "value": "", "meta": {}})

    def cancel(self, entry_ref: str) -> dict:
        return self.call("event", {"type": "click", "event": "cancel-upload",
                                   "value": {"ref": entry_ref, "upload": "files"}})


class Upload:
    """One ``lvu:`` topic joined with a token."""

    def __init__(self, page: Page, entry_ref: str, token: Any, topic: str | None = None) -> None:
        self.page = page
        self.wire = page.wire
        self.topic = topic or f"lvu:{entry_ref}"
        self.entry_ref = entry_ref
        self.join_ref = self.wire.ref()
        self.wire.send(self.join_ref, self.join_ref, self.topic, "phx_join", {"token": token})
        self.join_reply = self.wire.reply_to(self.join_ref)

    def chunk(self, data: bytes) -> dict:
        return self.wire.chunk(self.join_ref, self.topic, data)

    def send_all(self, data: bytes, chunk_size: int = 1_000) -> None:
        """Stop-and-wait with progress, as the JS client does."""
        for start in range(0, len(data), chunk_size):
            assert self.chunk(data[start:start + chunk_size]) == ok()
            percent = min(start + chunk_size, len(data)) * 100 // len(data)
            assert self.page.progress(self.entry_ref, percent)["status"] == "ok"

    def closed(self) -> list:
        """Wait for this topic's phx_close (or phx_error) and return it."""
        return self.wire.expect(lambda f: isinstance(f, list) and f[2] == self.topic
                                and f[3] in ("phx_close", "phx_error") and f[0] == self.join_ref)

"""The upload page as a client sees it: fetch it, join its ``lv:`` topic,
push events and keep what the page shows up to date (replies' diffs and
``diff`` pushes). Used by :mod:`client.upload`."""

from __future__ import annotations

import asyncio
import urllib.parse
import urllib.request
from typing import Any

import structlog
from websockets.exceptions import WebSocketException

from client.channels import ServerError, Socket
from client.page_view import PageView, RenderedState, read_page

__all__ = ["LivePage", "page_url"]

log = structlog.get_logger("liveupload.client")


#: The socket URL's scheme -> the page's.
_PAGE_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def page_url(url: str) -> str:
    """The page's address for ``url``: the page itself (``http(s)://...``), or
    its socket as LiveView's docs write it (``ws(s)://HOST[/prefix]/live/websocket``,
    with or without ``/websocket``), which maps to ``http(s)://HOST[/prefix]/``."""
    parts = urllib.parse.urlsplit(url)
    scheme = _PAGE_SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ServerError(f"{url} is neither a page (http://, https://) nor a socket (ws://, wss://) address")
    path = parts.path
    if parts.scheme.lower() in ("ws", "wss"):
        path = path.rstrip("/")
        path = path.removesuffix("/websocket").removesuffix("/live") + "/"
        return urllib.parse.urlunsplit((scheme, parts.netloc, path, "", ""))
    return url


def _fetch(url: str, timeout: float) -> str:
    request = urllib.request.Request(url, headers={"accept": "text/html"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=timeout) as response:
        return response.read().decode("utf-8")


class LivePage:
    """The page's ``lv:`` topic: events, and what the page shows after each."""

    def __init__(self, socket: Socket, topic: str, join_ref: str, rendered: dict) -> None:
        self.socket = socket
        self.topic = topic
        self.join_ref = join_ref
        self.state = RenderedState(rendered)
        self._view: PageView | None = None
        self._view_version = -1
        self.closed: str | None = None
        socket.listeners[topic] = self._on_push

    @classmethod
    async def open(cls, url: str, *, timeout: float = 30.0) -> LivePage:
        """Fetch the page at ``url`` (or the page of the socket at ``url``,
        see :func:`page_url`) and join its LiveView."""
        url = page_url(url)
        try:
            html = await asyncio.to_thread(_fetch, url, timeout)
        except OSError as exc:
            raise ServerError(f"cannot fetch {url}: {exc}") from None
        boot = read_page(html)
        root = boot.root
        if not root.get("id") or "data-phx-session" not in root:
            raise ServerError(f"{url} is not a LiveView page (no data-phx-main root)")
        parts = urllib.parse.urlsplit(url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        query = urllib.parse.urlencode({"_csrf_token": boot.csrf, "_mounts": 0, "vsn": "2.0.0"})
        try:
            socket = await Socket.open(f"{scheme}://{parts.netloc}{boot.socket_path}/websocket?{query}", timeout)
        except (OSError, asyncio.TimeoutError, WebSocketException) as exc:  # a refusal, a timeout, a bad handshake
            raise ServerError(f"cannot open the socket of {url}: {exc}") from None
        topic, join_ref = f"lv:{root['id']}", socket.ref()
        payload = {
            "url": url,
            "params": {"_csrf_token": boot.csrf, "_mounts": 0, "_mount_attempts": 0},
            "session": root["data-phx-session"],
            "static": root.get("data-phx-static"),
            "sticky": False,
        }
        try:
            status, response = await socket.call(topic, "phx_join", payload, join_ref, ref=join_ref)
            if status != "ok" or "rendered" not in response:
                raise ServerError(f"the page refused to join: {response}")
            return cls(socket, topic, join_ref, response["rendered"])
        except BaseException:
            await socket.close()
            raise

    @property
    def view(self) -> PageView:
        """What the page shows now. The HTML is rendered and parsed only when
        this is read after a change, never on every diff: a client uploading
        reads the page before and after, not while chunks and progress flow."""
        if self._view is None or self._view_version != self.state.version:
            self._view = read_page(self.state.html())
            self._view_version = self.state.version
        return self._view

    def _on_push(self, event: str, payload: dict) -> None:
        if event == "diff":
            self._apply(payload)
        elif event in ("phx_close", "phx_error"):
            self.closed = event

    def _apply(self, diff: dict | None) -> None:
        if diff:
            self.state.apply(diff)

    async def push(self, event: str, payload: dict) -> dict:
        """Push an event on the ``lv:`` topic; the ok response (its diff applied)."""
        if self.closed:
            raise ServerError(f"the page's topic ended ({self.closed})")
        status, response = await self.socket.call(self.topic, event, payload, self.join_ref)
        if status != "ok":
            raise ServerError(f"{event} refused: {response}")
        self._apply(response.get("diff"))
        return response

    async def push_nowait(self, event: str, payload: dict) -> None:
        """Push an event on the ``lv:`` topic without waiting for its reply,
        as Phoenix's client pushes ``progress``; the reply's diff is applied
        when it comes (before any later reply's), a refusal is logged."""
        if self.closed:
            raise ServerError(f"the page's topic ended ({self.closed})")

        def on_reply(status: str, response: dict) -> None:
            if status != "ok":
                log.debug("client.push_refused", push_event=event, response=response)
                return
            self._apply(response.get("diff"))

        await self.socket.push(self.topic, event, payload, self.join_ref, on_reply)

    async def form_event(self, name: str, **extra: Any) -> dict:
        return await self.push("event", {"type": "form", "event": name, "value": "", "meta": {}, **extra})

    async def cancel(self, ref: str) -> None:
        """Cancel an entry with the page's cancel button event, if it shows one."""
        entry = self.view.entries.get(ref)
        if entry is None or not entry.cancel.get("phx-click"):
            return
        value = {"ref": entry.cancel.get("phx-value-ref", ref), "upload": entry.cancel.get("phx-value-upload", "")}
        try:
            await self.push("event", {"type": "click", "event": entry.cancel["phx-click"], "value": value})
        except ServerError as exc:
            log.debug("client.cancel_failed", ref=ref, error=str(exc))

    async def close(self) -> None:
        await self.socket.close()

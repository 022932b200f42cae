"""Which pages may open the socket, and under which names the server answers.

:class:`UpgradeGuard` is an ASGI middleware playing Phoenix's
``check_origin``: a WebSocket upgrade whose ``Origin`` is neither the page's
own (the scheme, host and port the request was sent to) nor one of
``allowed_origins`` is refused with 403 before it is accepted, so a page on
another site cannot drive a visitor's browser into uploading here. An upgrade
with no ``Origin`` (not a browser) is let through, as Phoenix does.

With ``allowed_hosts``, any request (page, assets or socket) whose ``Host``
is not one of those names is refused (400, or 403 for an upgrade): a DNS
rebinding attack reaches the server under the attacker's name, and is
refused. ``None`` checks no host (a server bound to every interface cannot
know its public names; say them, or put a reverse proxy in front).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import structlog

__all__ = ["UpgradeGuard", "default_allowed_hosts", "normalise_origin", "LOOPBACK_NAMES"]

log = structlog.get_logger("liveupload.server")

#: The names a loopback-bound server also answers to.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_LOGGED_CHARS = 200

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def normalise_origin(origin: str) -> str | None:
    """``scheme://host:port`` (port made explicit, names lowercased), or
    ``None`` if ``origin`` is not an http(s) origin."""
    try:
        url = urlsplit(origin.strip())
        port = url.port
    except ValueError:
        return None
    scheme = url.scheme.lower()
    if scheme not in ("http", "https") or not url.hostname:
        return None
    return f"{scheme}://{_bracket(url.hostname.lower())}:{port or _DEFAULT_PORTS[scheme]}"


def default_allowed_hosts(bind: str, extra: Iterable[str] = ()) -> list[str] | None:
    """The names a server bound to ``bind`` answers to: the bind address, and
    the loopback names when bound to loopback, plus ``extra``. ``None`` (no
    host check) for a wildcard bind with no ``extra``."""
    names = [name.lower() for name in extra]
    if _is_wildcard(bind):
        return names or None
    names.append(bind.lower())
    if _is_loopback(bind):
        names.extend(LOOPBACK_NAMES)
    return sorted(set(names))


class UpgradeGuard:
    """ASGI middleware: the ``Host`` check on every request, the ``Origin``
    check on WebSocket upgrades (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, allowed_origins: Iterable[str] = (),
                 allowed_hosts: Iterable[str] | None = None) -> None:
        self.app = app
        self.allowed_origins = set()
        for origin in allowed_origins:
            normal = normalise_origin(origin)
            if normal is None:
                raise ValueError(f"not an http(s) origin: {origin!r}")
            self.allowed_origins.add(normal)
        self.allowed_hosts = None if allowed_hosts is None else {h.lower().strip("[]") for h in allowed_hosts}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        refusal = None
        if self.allowed_hosts is not None and _hostname(host) not in self.allowed_hosts:
            refusal = "host not allowed"
        elif kind == "websocket":
            origin = _header(scope, b"origin")
            if origin is not None and not self.origin_allowed(origin, host, scope.get("scheme", "ws")):
                refusal = "origin not allowed"
        if refusal is None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        log.warning("request.refused", kind=kind, reason=refusal, host=_clip(host),
                    origin=_clip(_header(scope, b"origin")), path=_clip(scope.get("path")),
                    peer=f"{client[0]}:{client[1]}" if client else None)
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": refusal})  # 403 before accept
            return
        body = refusal.encode()
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def origin_allowed(self, origin: str, host: str | None, scheme: str) -> bool:
        """``origin`` is the page's own (the request's scheme and ``Host``) or allowed."""
        normal = normalise_origin(origin)
        if normal is None:
            return False
        if normal in self.allowed_origins:
            return True
        if host is None:
            return False
        page_scheme = "https" if scheme in ("https", "wss") else "http"
        return normal == normalise_origin(f"{page_scheme}://{host}")


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _hostname(host: str | None) -> str | None:
    if not host:
        return None
    try:
        name = urlsplit("//" + host).hostname
    except ValueError:
        return None
    return name.lower() if name else None


def _is_wildcard(bind: str) -> bool:
    return bind in ("", "0.0.0.0", "::", "[::]")


def _is_loopback(bind: str) -> bool:
    if bind.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind.strip("[]")).is_loopback
    except ValueError:
        return False


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _clip(value: str | None) -> str | None:
    """A client string safe for a log line: escaped, and cut short."""
    if value is None:
        return None
    shown = value.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= _LOGGED_CHARS else shown[:_LOGGED_CHARS] + "..."

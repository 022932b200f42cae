"""The ASGI application: the upload page at ``/``, Phoenix's own client
scripts at ``/assets/*`` (served from ``node_modules``, never copied into the
repo) and the Phoenix Channels socket at ``/live/websocket``.

Topic handlers (``lv:``, ``lvu:``) are plugged into ``app.state.registry``;
without them every join is answered ``unmatched topic``.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from .page import PageSession, Rendered, SessionSigner, page_html, render_upload_page
from .transport import DEFAULT_MAX_MESSAGE_SIZE, TopicRegistry, Transport

__all__ = [
    "create_app",
    "find_node_modules",
    "liveview_version",
    "serve_in_thread",
    "ASSETS",
    "DEFAULT_UPLOAD_CONFIGS",
]

log = structlog.get_logger("liveupload.server")

#: The files served under ``/assets/``: name -> path inside node_modules.
ASSETS: dict[str, str] = {
    "phoenix.min.js": "phoenix/priv/static/phoenix.min.js",
    "phoenix.js": "phoenix/priv/static/phoenix.js",
    "phoenix_live_view.min.js": "phoenix_live_view/priv/static/phoenix_live_view.min.js",
    "phoenix_live_view.js": "phoenix_live_view/priv/static/phoenix_live_view.js",
}

DEFAULT_UPLOAD_CONFIGS: tuple[dict[str, Any], ...] = (
    {"name": "files", "accept": "any", "max_entries": 10, "auto_upload": False},
)

PageRenderer = Callable[[PageSession], Rendered]


def find_node_modules(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where Phoenix's npm packages are: ``explicit``, else
    ``$LIVEUPLOAD_NODE_MODULES``, else the repo's ``node_modules`` (next to
    this package), else ``./node_modules``.  The path may not exist yet."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("LIVEUPLOAD_NODE_MODULES")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parent.parent / "node_modules"
    if repo.is_dir():
        return repo
    return Path.cwd() / "node_modules"


def liveview_version(node_modules: Path) -> str | None:
    """The installed ``phoenix_live_view`` version: the ``lv:`` join reply's
    ``liveview_version`` (the client warns when it differs from its own)."""
    try:
        meta = json.loads((node_modules / "phoenix_live_view" / "package.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    version = meta.get("version")
    return version if isinstance(version, str) else None


def create_app(
    *,
    secret: str | bytes | None = None,
    registry: TopicRegistry | None = None,
    handlers: Mapping[str, Any] | None = None,
    node_modules: str | os.PathLike[str] | None = None,
    upload_configs: Sequence[Mapping[str, Any]] = DEFAULT_UPLOAD_CONFIGS,
    page_renderer: PageRenderer | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    idle_timeout: float | None = 60.0,
    title: str = "liveupload",
    debug: bool = False,
) -> Starlette:
    """Build the Starlette app.

    * ``secret``: signs page session tokens (default ``$LIVEUPLOAD_SECRET`` or
      a random per-app secret, so tokens do not outlive the process).
    * ``registry`` / ``handlers``: topic prefix -> handler factory
      (see :mod:`server.transport`); also reachable as ``app.state.registry``.
    * ``upload_configs``: what the page at ``/`` renders before the socket
      joins (each a mapping with ``name``, ``accept``, ``max_entries``,
      ``auto_upload``); ``page_renderer`` replaces that dead render entirely.
    * ``max_message_size``: the socket's message bound; run uvicorn with
      ``ws_max_size`` set to the same value so oversized frames are refused
      before they are buffered.

    ``app.state`` carries ``signer``, ``registry``, ``transport``,
    ``node_modules``, ``liveview_version`` and ``upload_configs`` for handlers.
    """
    if secret is None:
        secret = os.environ.get("LIVEUPLOAD_SECRET") or secrets.token_bytes(32)
    signer = SessionSigner(secret)
    registry = registry if registry is not None else TopicRegistry()
    for prefix, factory in (handlers or {}).items():
        registry.register(prefix, factory)
    transport = Transport(registry, max_message_size=max_message_size, idle_timeout=idle_timeout)
    modules = find_node_modules(node_modules)
    configs = [dict(c) for c in upload_configs]

    def default_renderer(page: PageSession) -> Rendered:
        return render_upload_page(
            [{**c, "ref": c.get("ref") or f"{page.view_id}-{i}", "entries": []} for i, c in enumerate(configs)]
        )

    renderer = page_renderer or default_renderer

    async def index(request: Request) -> Response:
        page = signer.new_page()
        body = page_html(page, renderer(page), title=title)
        return HTMLResponse(body, headers={"cache-control": "no-store"})

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        rel = ASSETS.get(name)
        if rel is None:
            return PlainTextResponse("not found", status_code=404)
        path = modules / rel
        if not path.is_file():
            log.error("asset.missing", asset=name, path=str(path), hint="run `npm ci` in the repo")
            return PlainTextResponse(
                f"{name} is not installed (looked in {modules}); run `npm ci`", status_code=404
            )
        return FileResponse(path, media_type="text/javascript; charset=utf-8")

    app = Starlette(
        debug=debug,
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/assets/{name}", asset, methods=["GET"]),
            WebSocketRoute("/live/websocket", transport.endpoint),
        ],
    )
    app.state.signer = signer
    app.state.registry = registry
    app.state.transport = transport
    app.state.node_modules = modules
    app.state.liveview_version = liveview_version(modules)
    app.state.upload_configs = configs
    app.state.max_message_size = max_message_size
    return app


@contextmanager
def serve_in_thread(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    start_timeout: float = 10.0,
    stop_timeout: float = 10.0,
    **config: Any,
) -> Iterator[str]:
    """Run ``app`` under uvicorn in a background thread; yields its base URL.

    ``port=0`` picks a free port.  Startup is awaited on an event (set once
    uvicorn is listening, or as soon as its thread ends), and on exit the
    server is asked to stop and its thread joined, so nothing outlives the
    block.  ``ws_max_size`` defaults to the app's ``max_message_size``.
    """
    import uvicorn

    state = getattr(app, "state", None)
    config.setdefault("ws_max_size", getattr(state, "max_message_size", DEFAULT_MAX_MESSAGE_SIZE))
    config.setdefault("log_level", "warning")
    config.setdefault("lifespan", "on")
    started = threading.Event()

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            try:
                await super().startup(sockets=sockets)
            finally:
                started.set()

    server = _Server(uvicorn.Config(app, host=host, port=port, **config))

    def run() -> None:
        try:
            server.run()
        finally:
            started.set()

    thread = threading.Thread(target=run, name=f"uvicorn {host}:{port}", daemon=True)
    thread.start()
    try:
        if not started.wait(start_timeout) or not server.started:
            raise RuntimeError(f"uvicorn did not start within {start_timeout}s")
        bound = server.servers[0].sockets[0].getsockname()
        yield f"http://{host}:{bound[1]}"
    finally:
        server.should_exit = True
        thread.join(stop_timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(stop_timeout)
        if thread.is_alive():
            raise RuntimeError("uvicorn thread did not stop")

"""The ASGI application: the upload page at ``/`` (its icon also at
``/favicon.ico``), Phoenix's own client scripts at ``/assets/*`` (served
from ``node_modules``, never copied into the repo) and the Phoenix Channels
socket at ``/live/websocket``, with the ``lv:`` (:mod:`server.liveview`)
and ``lvu:`` (:mod:`server.upload_topic`) topics wired to the upload actors.

Embedding: ``create_app(upload_configs={name: allow_upload options},
consume=hook)`` returns a Starlette app that can be mounted in any Starlette
or FastAPI app (see the README); run it under uvicorn with ``ws_max_size``
set to ``app.state.max_message_size``.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from actors import substrates

from .budgets import DEFAULT_MAX_PAGES_PER_SOCKET, SocketBudgets
from .graceful import GracefulServer
from .liveview import ConsumeHook, LiveContext, LiveViewHandler, normalise_upload_configs
from .origin import UpgradeGuard
from .page import FAVICON_SVG, Rendered, page_html, render_upload_page
from .session_token import SECRET_ENV, PageSession, SessionSigner
from .storage import SaveToDirectory
from .transport import (
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_OUTBOUND_BYTES,
    TopicRegistry,
    Transport,
    max_message_size_for,
)
from .upload_topic import UploadTopicHandler
from .uvicorn_log import quiet_client_errors

__all__ = [
    "create_app",
    "find_node_modules",
    "liveview_version",
    "missing_assets",
    "serve_in_thread",
    "INSTALL_COMMAND",
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

#: One upload named ``files``: any type, up to 10 files, Phoenix's defaults otherwise.
DEFAULT_UPLOAD_CONFIGS: Mapping[str, Mapping[str, Any]] = {"files": {"accept": "any", "max_entries": 10}}

#: What installs Phoenix's scripts into ``node_modules``, run from the repository root.
INSTALL_COMMAND = "npm ci --omit=dev"

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


def missing_assets(node_modules: Path) -> list[Path]:
    """The files of :data:`ASSETS` not installed under ``node_modules``; without
    them the page cannot connect (its form would fall back to a plain GET)."""
    return [node_modules / rel for rel in ASSETS.values() if not (node_modules / rel).is_file()]


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
    upload_configs: Mapping[str, Mapping[str, Any]] | Sequence[Mapping[str, Any]] = DEFAULT_UPLOAD_CONFIGS,
    consume: ConsumeHook | None = None,
    uploads_dir: str | os.PathLike[str] = "saved",
    secret: str | bytes | None = None,
    registry: TopicRegistry | None = None,
    handlers: Mapping[str, Any] | None = None,
    node_modules: str | os.PathLike[str] | None = None,
    page_renderer: PageRenderer | None = None,
    max_message_size: int | None = None,
    idle_timeout: float | None = 60.0,
    max_outbound_bytes: int = DEFAULT_MAX_OUTBOUND_BYTES,
    allowed_origins: Sequence[str] = (),
    allowed_hosts: Sequence[str] | None = None,
    token_max_age: float = 3600.0,
    stop_timeout: float = 10.0,
    max_pages_per_socket: int = DEFAULT_MAX_PAGES_PER_SOCKET,
    max_topics_per_socket: int | None = None,
    title: str = "liveupload",
    debug: bool = False,
    channels_on_loop: bool = True,
) -> Starlette:
    """Build the Starlette app.

    * ``upload_configs``: ``{name: allow_upload options}`` (``accept``,
      ``max_entries``, ``max_file_size``, ``chunk_size``, ``chunk_timeout``
      in seconds, ``auto_upload``, ``writer`` factory, ``progress``...); every
      page session allows each of them. Checked here: a bad option raises.
    * ``consume``: ``hook(name, meta, entry) -> value``, called in the session's
      process for each completed entry when the form is submitted (see
      :data:`server.liveview.ConsumeHook`). Default: save into
      ``uploads_dir`` under a sanitised, de-duplicated name; uploads naming no
      ``writer`` are then written in ``uploads_dir/.partial`` and saved by a
      rename, not a copy (see :mod:`server.storage`).
    * ``secret``: signs page session tokens (default ``$LIVEUPLOAD_SECRET`` or
      a random per-app secret, so tokens do not outlive the process: a page
      left open across a restart is then refused on rejoin and LiveView's
      client reloads it, empty; with a fixed secret it rejoins; either way the
      page's script says which of its files were lost).
    * ``registry`` / ``handlers``: topic prefix -> handler factory; ``lv:`` and
      ``lvu:`` are registered unless ``handlers`` replaces them.
    * ``max_message_size``: the socket's message bound; default: the largest
      ``chunk_size`` plus framing (a smaller bound is logged as a warning:
      full chunks would close the socket). Run uvicorn with ``ws_max_size`` set to
      ``app.state.max_message_size`` so oversized frames are refused before
      they are buffered.
    * ``idle_timeout``: seconds a socket may stay silent, or leave a frame
      unsent, before it is closed (``None``: never); ``max_outbound_bytes``:
      bytes queued per socket before it is closed with 1008.
    * ``allowed_origins``: origins (``https://example.com``) whose pages may
      open the socket besides the page's own; ``allowed_hosts``: the names the
      server answers to (``None``: any). See :mod:`server.origin`.
    * ``token_max_age``: seconds an entry token stays valid; ``stop_timeout``:
      how long a leaving page waits for its session to stop.
    * ``max_pages_per_socket`` / ``max_topics_per_socket``: pages, and topics
      of both kinds, one socket may have joined at once (default 10 pages, and
      room for each to upload all its configs allow); past them a join gets
      ``too_many_pages`` / ``too_many_topics`` (see :mod:`server.budgets`).
    * ``channels_on_loop``: while the app runs, its event loop is the ``"loop"``
      substrate's bound loop (:func:`actors.substrates.bind_loop`), so the upload
      channels of writers that declare ``loop_safe`` run on it and a chunk's ask and reply cross
      no thread (writers with ``blocking = True`` keep their own thread). Only
      one loop is bound per process: a second app running at the same time
      sends its channels to the first one's loop. ``False``: channels run on
      the runtime's default substrate, as every other process does.

    ``app.state`` carries ``signer``, ``registry``, ``transport``, ``live``
    (the :class:`~server.liveview.LiveContext`), ``node_modules``,
    ``liveview_version``, ``upload_configs`` and ``max_message_size``.
    """
    configs = normalise_upload_configs(upload_configs)
    needed = max_message_size_for(max(int(c.get("chunk_size", 64_000)) for c in configs.values()))
    if max_message_size is None:
        max_message_size = needed
    elif max_message_size < needed:
        log.warning("app.max_message_size_below_chunk", max_message_size=max_message_size, needed=needed,
                    hint="full chunks will close the socket with 1009")
    if secret is None:
        secret = os.environ.get(SECRET_ENV) or secrets.token_bytes(32)
    signer = SessionSigner(secret)
    modules = find_node_modules(node_modules)
    version = liveview_version(modules)
    if consume is None:  # the default hook; uploads naming no writer are written where it saves them
        consume = saver = SaveToDirectory(uploads_dir)
        configs = {name: {"writer": saver.writer, **options} for name, options in configs.items()}
    live = LiveContext(
        signer=signer,
        upload_configs=configs,
        consume=consume,
        liveview_version=version,
        token_max_age=token_max_age,
        stop_timeout=stop_timeout,
        budgets=SocketBudgets.for_configs(configs, max_pages=max_pages_per_socket, max_topics=max_topics_per_socket),
    )
    registry = registry if registry is not None else TopicRegistry()
    registry.register("lv:", lambda channel: LiveViewHandler(channel, live))
    registry.register("lvu:", lambda channel: UploadTopicHandler(channel, live))
    for prefix, factory in (handlers or {}).items():
        registry.register(prefix, factory)
    quiet_client_errors()  # a non-UTF-8 text frame: one warning, not uvicorn's traceback
    transport = Transport(registry, max_message_size=max_message_size, idle_timeout=idle_timeout,
                          max_outbound_bytes=max_outbound_bytes)

    def default_renderer(page: PageSession) -> Rendered:
        return render_upload_page(
            [
                {**options, "name": name, "ref": f"{page.view_id}-{i}", "entries": []}
                for i, (name, options) in enumerate(configs.items())
            ],
            events=live.events,
        )

    renderer = page_renderer or default_renderer

    async def index(request: Request) -> Response:
        page = signer.new_page()
        prefix = request.scope.get("root_path", "").rstrip("/")  # where the app is mounted
        body = page_html(page, renderer(page), title=title,
                         assets_path=prefix + "/assets", socket_path=prefix + "/live")
        return HTMLResponse(body, headers={"cache-control": "no-store"})

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        rel = ASSETS.get(name)
        if rel is None:
            return PlainTextResponse("not found", status_code=404)
        path = modules / rel
        if not path.is_file():
            log.error("asset.missing", asset=name, path=str(path),
                      hint=f"run `{INSTALL_COMMAND}` in the repository root")
            return PlainTextResponse(
                f"{name} is not installed (looked in {modules}); run `{INSTALL_COMMAND}`", status_code=404
            )
        return FileResponse(path, media_type="text/javascript; charset=utf-8")

    async def favicon(_request: Request) -> Response:
        return Response(FAVICON_SVG, media_type="image/svg+xml", headers={"cache-control": "max-age=86400"})

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        bound = channels_on_loop and substrates.bind_loop()
        try:
            yield
            await transport.shutdown()  # every page and upload left with "shutdown"
        finally:
            if bound:  # channels still alive (finished, not yet consumed) go on on the pool
                substrates.unbind_loop()

    app = Starlette(
        debug=debug,
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/assets/{name}", asset, methods=["GET"]),
            Route("/favicon.ico", favicon, methods=["GET"]),
            WebSocketRoute("/live/websocket", transport.endpoint),
        ],
        lifespan=lifespan,
        middleware=[Middleware(UpgradeGuard, allowed_origins=allowed_origins, allowed_hosts=allowed_hosts)],
    )
    app.state.signer = signer
    app.state.registry = registry
    app.state.transport = transport
    app.state.live = live
    app.state.node_modules = modules
    app.state.liveview_version = version
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
    shutdown_timeout: float = 5.0,
    **config: Any,
) -> Iterator[str]:
    """Run ``app`` under uvicorn in a background thread; yields its base URL.

    ``port=0`` picks a free port.  Startup is awaited on an event (set once
    uvicorn is listening, or as soon as its thread ends), and on exit the
    server is asked to stop and its thread joined, so nothing outlives the
    block (connections still open ``shutdown_timeout`` seconds after the
    stop is asked are aborted).  ``ws_max_size`` defaults to the app's ``max_message_size``.  On
    exit every channel is left with ``"shutdown"`` before sockets close, as
    ``liveupload serve`` does on SIGINT/SIGTERM.
    """
    state = getattr(app, "state", None)
    config.setdefault("ws_max_size", getattr(state, "max_message_size", DEFAULT_MAX_MESSAGE_SIZE))
    config.setdefault("ws_per_message_deflate", False)  # binary chunks do not compress; zlib only costs
    config.setdefault("log_level", "warning")
    config.setdefault("lifespan", "on")
    started = threading.Event()

    class _Server(GracefulServer):
        async def startup(self, sockets: Any = None) -> None:
            try:
                await super().startup(sockets=sockets)
            finally:
                started.set()

    server = _Server(uvicorn.Config(app, host=host, port=port, **config), transport=getattr(state, "transport", None),
                     shutdown_timeout=shutdown_timeout)

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

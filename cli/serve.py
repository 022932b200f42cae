"""``liveupload serve``: the upload page under uvicorn, saving into a folder
or streaming into an S3 bucket.

Runs :func:`server.app.create_app` with one upload named ``files`` whose
options come from the flags, and the default consume hook: uploads are
written in ``--uploads-dir/.partial`` and, once complete and submitted,
renamed into ``--uploads-dir`` under sanitised, de-duplicated names (no copy).

With ``--store s3://bucket/prefix`` every upload streams into the bucket
through ``writers.s3.S3Writer`` (endpoint and credentials from the standard
AWS variables, see :mod:`cli.store`), consuming leaves the object where it is
(:class:`server.storage.KeepInStore`) and the page lists it by key and size.
The bucket is checked before the server starts: if it cannot be reached the
command prints one line saying why and exits with status 2. On the way out
``writers.s3.shutdown`` stops the S3 I/O pool and the abort-retry process.

Pages are signed with ``--secret`` (default: ``$LIVEUPLOAD_SECRET``). With
a fixed secret, a page left open while the server restarts rejoins the new
process and says that its unsaved uploads were lost. Without one, a random
secret is made per process (nothing is written to disk): the new process
cannot verify the old pages, so LiveView's client reloads them and they start
empty (saying which files were lost); ``serve`` says so in its first lines (and logs ``serve.random_secret``).

Before serving it checks that Phoenix's scripts are installed and that the
port is free (:mod:`cli.startup`); if not, it says what to do and exits 1.
It then prints the address to open, and runs until Ctrl-C.

Shutdown is graceful on SIGINT and SIGTERM
(:class:`server.graceful.GracefulServer`): it stops accepting at once, every
channel is left, then the sockets close; connections still open at
``--shutdown-timeout`` are closed by force, and every process still alive is
stopped. A second signal exits at once.

Upload channels run on the server's own event loop (``--channels loop``, the
default: the ``"loop"`` substrate, see docs/runtime.md), so a chunk costs no
thread hop; ``--channels pool`` puts them on the shared pool of workers.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import structlog
import uvicorn

from cli import startup
from server.app import create_app
from server.budgets import DEFAULT_MAX_PAGES_PER_SOCKET
from server.descriptors import quiet_descriptor_exhaustion, raise_nofile_limit
from server.graceful import DEFAULT_SHUTDOWN_TIMEOUT, GracefulServer
from server.http_deadline import DEFAULT_REQUEST_TIMEOUT, with_request_timeout
from server.origin import default_allowed_hosts
from server.session_token import SECRET_ENV
from server.storage import KeepInStore
from server.transport import DEFAULT_MAX_OUTBOUND_BYTES

try:  # --store needs boto3 (the ``s3`` extra); serving into a folder does not
    from cli import store as s3_store
    from writers import s3 as s3_writer
except ModuleNotFoundError as exc:
    if exc.name not in ("boto3", "botocore"):
        raise
    s3_store = s3_writer = None  # type: ignore[assignment]  # --store then says to install the s3 extra

__all__ = ["configure", "run", "secret_source", "upload_options"]

log = structlog.get_logger("liveupload.server")

#: Descriptors kept for files (uploads' temp files, saved files, assets) when
#: the connection limit is derived from the descriptor limit.
DESCRIPTOR_HEADROOM = 256


def upload_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``allow_upload`` options the flags ask for."""
    accept: Any = "any"
    if args.accept.strip().lower() not in ("", "any"):
        accept = [item.strip() for item in args.accept.split(",") if item.strip()]
    return {
        "accept": accept,
        "max_entries": args.max_entries,
        "max_file_size": args.max_file_size,
        "chunk_size": args.chunk_size,
        "chunk_timeout": args.chunk_timeout,
        "auto_upload": args.auto_upload,
    }


def secret_source(args: argparse.Namespace) -> str:
    """Where the secret that signs the pages comes from: ``"flag"``
    (``--secret``), ``"env"`` (``$LIVEUPLOAD_SECRET``) or ``"random"`` (made
    by ``create_app`` for this process only)."""
    if args.secret:
        return "flag"
    return "env" if os.environ.get(SECRET_ENV) else "random"


def _fail(message: str) -> int:
    print(f"liveupload serve: {message}", file=sys.stderr, flush=True)
    return 2


def run(args: argparse.Namespace) -> int:
    if args.store is None:
        return _serve(args, {}, None)
    if s3_store is None:
        return _fail("--store needs boto3: pip install 'liveupload[s3]'")
    s3_store.quiet_client_logs()
    try:
        store = s3_store.parse_store(args.store)
    except ValueError as exc:
        return _fail(str(exc))
    try:
        problem = s3_store.check_store(store)
        if problem:
            return _fail(problem)
        return _serve(args, s3_store.upload_options(store), store)
    finally:
        s3_writer.shutdown()  # the I/O pool, the abort-retry process, the clients' connections


def _serve(args: argparse.Namespace, extra: dict[str, Any], store: Any) -> int:
    source = secret_source(args)
    try:
        hosts = default_allowed_hosts(args.host, args.allowed_host)
        if hosts is None:
            log.warning("serve.host_check_off", host=args.host,
                        hint="bound to every interface: pass --allowed-host NAME for each public name")
        app = create_app(upload_configs={"files": {**upload_options(args), **extra}}, uploads_dir=args.uploads_dir,
                         consume=KeepInStore() if store is not None else None,
                         secret=args.secret or None,  # None: create_app takes $LIVEUPLOAD_SECRET, else a random one
                         allowed_origins=args.allowed_origin, allowed_hosts=hosts,
                         idle_timeout=args.idle_timeout or None, max_outbound_bytes=args.max_outbound_bytes,
                         max_pages_per_socket=args.max_pages_per_socket,
                         max_topics_per_socket=args.max_topics_per_socket,
                         channels_on_loop=args.channels == "loop")
    except (TypeError, ValueError) as exc:
        log.error("serve.bad_options", error=str(exc))
        return 2
    nofile = raise_nofile_limit()
    quiet_descriptor_exhaustion()
    max_connections = args.max_connections
    if max_connections is None:  # auto: refuse new connections before the descriptors run out
        max_connections = max(nofile[0] - DESCRIPTOR_HEADROOM, 64) if nofile else 0
    try:
        startup.check_scripts(app.state.node_modules)
        sock = startup.listen(args.host, args.port)
    except startup.Refusal as exc:
        print(exc, file=sys.stderr)
        return startup.CANNOT_START
    for line in startup.first_lines(startup.url_for(sock), secret_source=source):
        print(line, file=sys.stderr, flush=True)
    if source == "random":
        log.warning("serve.random_secret",
                    hint=f"pages open across a restart will reload and start empty (saying which files were lost); "
                         f"set --secret or {SECRET_ENV} to keep them joined")
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        http=with_request_timeout(args.request_timeout),  # h11 with a deadline on unfinished requests
        limit_concurrency=max_connections or None,
        timeout_keep_alive=5,
        ws_max_size=app.state.max_message_size,
        ws_per_message_deflate=False,  # upload chunks are binary: zlib costs ~1.7 ms per 64 KB and halves throughput
        log_config=None,  # uvicorn's records go through our structlog handler
        lifespan="on",
    )
    server = GracefulServer(config, transport=app.state.transport, owns_runtime=True,
                            shutdown_timeout=args.shutdown_timeout)
    where = {"store": str(store)} if store is not None else {"uploads_dir": str(args.uploads_dir)}
    log.info("serve.starting", host=args.host, port=args.port, max_connections=max_connections, **where, secret=source,
             **{k: v for k, v in upload_options(args).items() if k != "accept"}, accept=args.accept)
    try:
        server.run(sockets=[sock])  # already listening: a taken port was said in words above
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it handled, after the graceful stop
        pass
    finally:
        sock.close()
    return 0 if server.started else 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4000, help="port (default 4000; 0 picks a free one)")
    parser.add_argument("--uploads-dir", default="saved", help="where completed uploads are saved (default ./saved)")
    parser.add_argument("--store", default=None, metavar="s3://BUCKET/PREFIX",
                        help="stream uploads into this S3 bucket instead of --uploads-dir (endpoint and credentials "
                             "from AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY...)")
    parser.add_argument("--accept", default="any",
                        help='"any" or a comma-separated list of extensions and MIME types, e.g. ".jpg,image/*"')
    parser.add_argument("--max-entries", type=int, default=10, help="files per upload (default 10)")
    parser.add_argument("--max-file-size", type=int, default=8_000_000, help="bytes per file (default 8000000)")
    parser.add_argument("--chunk-size", type=int, default=64_000, help="bytes per chunk (default 64000)")
    parser.add_argument("--chunk-timeout", type=float, default=10.0,
                        help="seconds an upload may wait for its next chunk (default 10)")
    parser.add_argument("--auto-upload", action="store_true", help="upload files as soon as they are selected")
    parser.add_argument("--secret", default=None,
                        help=f"signs the pages, so pages open across a restart rejoin (default ${SECRET_ENV}; "
                             "without either, a random secret per process: those pages reload and start empty). "
                             f"Prefer {SECRET_ENV}: a flag shows in the process list")
    parser.add_argument("--allowed-origin", action="append", default=[], metavar="ORIGIN",
                        help="an origin (https://example.com) whose pages may open the socket besides the "
                             "page's own; repeatable")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="a name the server answers to besides --host (and localhost when on loopback); "
                             "repeatable; other Host headers are refused (DNS rebinding)")
    parser.add_argument("--idle-timeout", type=float, default=60.0,
                        help="seconds a socket may stay silent or leave a frame unsent before it is closed "
                             "(default 60; Phoenix's client sends a heartbeat every 30; 0: never)")
    parser.add_argument("--max-pages-per-socket", type=int, default=DEFAULT_MAX_PAGES_PER_SOCKET,
                        help="pages (lv: topics) one socket may have joined at once; past it a join gets "
                             f"too_many_pages (default {DEFAULT_MAX_PAGES_PER_SOCKET})")
    parser.add_argument("--max-topics-per-socket", type=int, default=None,
                        help="topics (lv: and lvu:) one socket may have joined at once; past it a join gets "
                             "too_many_topics (default: every page uploading all it may)")
    parser.add_argument("--max-outbound-bytes", type=int, default=DEFAULT_MAX_OUTBOUND_BYTES,
                        help=f"bytes queued for one socket before it is closed with 1008 "
                             f"(default {DEFAULT_MAX_OUTBOUND_BYTES})")
    parser.add_argument("--request-timeout", type=float, default=DEFAULT_REQUEST_TIMEOUT,
                        help="seconds a connection may take to send complete request headers or its WebSocket "
                             f"upgrade (default {DEFAULT_REQUEST_TIMEOUT:g})")
    parser.add_argument("--max-connections", type=int, default=None,
                        help="open connections (pages, sockets, requests) before new ones are closed at once "
                             f"(default: the descriptor limit less {DESCRIPTOR_HEADROOM}; 0: no limit)")
    parser.add_argument("--shutdown-timeout", type=float, default=DEFAULT_SHUTDOWN_TIMEOUT,
                        help="seconds connections get on SIGTERM/SIGINT before they are closed by force "
                             f"(default {DEFAULT_SHUTDOWN_TIMEOUT:g}; a second signal exits at once)")
    parser.add_argument("--channels", choices=("loop", "pool"), default="loop",
                        help="where upload channels run: on the server's event loop, so a chunk's ask and reply "
                             "cross no thread (default), or on the shared pool of workers, where a writer that "
                             "stalls without declaring blocking holds only its own upload (see docs/runtime.md)")
    parser.set_defaults(run=run)

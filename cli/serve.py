"""``liveupload serve``: the upload page under uvicorn, saving into a folder.

Runs :func:`server.app.create_app` with one upload named ``files`` whose
options come from the flags, and the default consume hook (completed uploads
are copied into ``--uploads-dir`` under sanitised, de-duplicated names).

Pages are signed with ``--secret`` (default: ``$LIVEUPLOAD_SECRET``). With
a fixed secret, a page left open while the server restarts rejoins the new
process and says that its unsaved uploads were lost. Without one, a random
secret is made per process (nothing is written to disk): the new process
cannot verify the old pages, so LiveView's client reloads them and they start
empty; ``serve`` says so in its first lines (and logs ``serve.random_secret``).

Before serving it checks that Phoenix's scripts are installed and that the
port is free (:mod:`cli.startup`); if not, it says what to do and exits 1.
It then prints the address to open, and runs until Ctrl-C.

Shutdown is graceful on SIGINT and SIGTERM
(:class:`server.graceful.GracefulServer`): every channel is left first, then
the sockets close and every process still alive is stopped.
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
from server.graceful import GracefulServer
from server.session_token import SECRET_ENV

__all__ = ["configure", "run", "secret_source", "upload_options"]

log = structlog.get_logger("liveupload.server")


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


def run(args: argparse.Namespace) -> int:
    source = secret_source(args)
    try:
        app = create_app(upload_configs={"files": upload_options(args)}, uploads_dir=args.uploads_dir,
                         secret=args.secret or None)  # None: create_app takes $LIVEUPLOAD_SECRET, else a random one
    except (TypeError, ValueError) as exc:
        log.error("serve.bad_options", error=str(exc))
        return 2
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
                    hint=f"pages open across a restart will reload and start empty; set --secret or {SECRET_ENV} "
                         "to keep them joined (they then say their unsaved uploads were lost)")
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        ws_max_size=app.state.max_message_size,
        ws_per_message_deflate=False,  # upload chunks are binary: zlib costs ~1.7 ms per 64 KB and halves throughput
        log_config=None,  # uvicorn's records go through our structlog handler
        lifespan="on",
    )
    server = GracefulServer(config, transport=app.state.transport, owns_runtime=True)
    log.info("serve.starting", host=args.host, port=args.port, uploads_dir=str(args.uploads_dir), secret=source,
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
    parser.set_defaults(run=run)

"""The ``wire`` scenario's ``pyview`` way: an upload page built with pyview-web.

Run by the scenario as a child process with another virtual environment's
interpreter (``--wire-pyview PYTHON``), so it imports only pyview, Starlette
and uvicorn, never this project's packages. The page is the equivalent of
``liveupload serve``'s for the benchmark's client (:func:`client.upload_files_async`):
one upload config ``files`` (``--max-entries`` entries, ``--max-file-size``,
``--chunk-size``), a form with ``phx-change``/``phx-submit``, the live file
input inside a fieldset stating the limits (``data-max-entries`` ...), the
entries with their errors, and on submit each completed entry saved into
``--dir`` (a hard link of pyview's temp file, a copy if that fails) and its
name listed in ``<ul id="saved">``. It prints ``listening url=http://HOST:PORT/``
once bound, as :mod:`benchmarks.wire_baseline` does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
from typing import Any

import uvicorn
from pyview import LiveView, LiveViewSocket, PyView
from pyview.meta import PyViewMeta
from pyview.template import LiveRender, LiveTemplate
from pyview.uploads import UploadConstraints
from pyview.vendor.ibis import Template

PAGE = """<div>
<form id="upload-form" phx-change="validate" phx-submit="save">
<fieldset data-max-entries="{{ max_entries }}" data-max-file-size="{{ max_file_size }}"
  data-chunk-size="{{ chunk_size }}">
{{ upload | live_file_input }}
</fieldset>
<ul class="upload-errors">{% for error in upload.errors %}<li>{{ error.message }}</li>{% endfor %}</ul>
<ul class="entries">{% for entry in upload.entries %}
<li class="entry" data-ref="{{ entry.ref }}" data-state="{{ entry.progress }}">{{ entry.name }}
{% for error in entry.errors %}<span class="error">{{ error.message }}</span>{% endfor %}</li>
{% endfor %}</ul>
<button type="submit">Upload</button>
</form>
<ul id="saved">{% for name in saved %}<li>{{ name }}</li>{% endfor %}</ul>
</div>"""


def _save(path: str, directory: str, name: str) -> str:
    """``path`` into ``directory`` under ``name`` (or ``name-N``): a hard link, a copy if linking fails."""
    base = os.path.basename(name) or "upload"
    stem, ext = os.path.splitext(base)
    candidate, n = base, 0
    while True:
        target = os.path.join(directory, candidate)
        try:
            os.link(path, target)
            return candidate
        except FileExistsError:
            n += 1
            candidate = f"{stem}-{n}{ext}"
        except OSError:
            if os.path.exists(target):
                n += 1
                candidate = f"{stem}-{n}{ext}"
                continue
            shutil.copyfile(path, target)
            return candidate


def make_view(directory: str, max_entries: int, max_file_size: int, chunk_size: int) -> type[LiveView]:
    template = LiveTemplate(Template(PAGE, template_id="pyview_app"))

    class UploadPage(LiveView[dict[str, Any]]):
        """The upload page: tracks, uploads and, on submit, saves."""

        async def mount(self, socket: LiveViewSocket[dict[str, Any]], session: dict[str, Any]) -> None:
            constraints = UploadConstraints(max_file_size=max_file_size, max_files=max_entries, accept=[],
                                            chunk_size=chunk_size)
            socket.context = {
                "upload": socket.allow_upload("files", constraints),
                "saved": [],
                "max_entries": max_entries,
                "max_file_size": max_file_size,
                "chunk_size": chunk_size,
            }

        async def handle_event(self, event: str, payload: Any, socket: LiveViewSocket[dict[str, Any]]) -> None:
            if event != "save":
                return
            context = socket.context
            with context["upload"].consume_uploads() as uploads:
                for upload in uploads:
                    if upload.entry.progress < upload.entry.size:  # bytes written so far, for internal uploads
                        continue
                    upload.file.flush()
                    name = _save(upload.file.name, directory, upload.entry.name)
                    context["saved"].append(f"{name} ({upload.entry.size} bytes)")

        async def render(self, assigns: dict[str, Any], meta: PyViewMeta) -> LiveRender:
            return LiveRender(template, assigns, meta)

    return UploadPage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyview_app.py", description=__doc__)
    parser.add_argument("--dir", required=True, help="where the saved files go")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-entries", type=int, default=10)
    parser.add_argument("--max-file-size", type=int, default=200_000_000)
    parser.add_argument("--chunk-size", type=int, default=64_000)
    args = parser.parse_args(argv)
    app = PyView()
    app.add_live_view("/", make_view(args.dir, args.max_entries, args.max_file_size, args.chunk_size))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    host, port = sock.getsockname()[:2]
    # the ceiling's uvicorn options (benchmarks/wire_baseline.py), bar the request timeout
    config = uvicorn.Config(
        app,
        timeout_keep_alive=5,
        ws_max_size=args.chunk_size + 64 * 1024,  # a chunk and its frame's header
        ws_per_message_deflate=False,
        log_config=None,
        log_level="warning",
        lifespan="on",
    )
    print(f"pyview_app: listening url=http://{host}:{port}/", file=sys.stderr, flush=True)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

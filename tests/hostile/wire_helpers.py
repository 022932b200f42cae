"""Shared by the hostile-input tests on the wire: the real app under uvicorn on
loopback, a real upload to show the server still works, and the log as it is
rendered (control characters and lengths are a matter of the rendering)."""

from __future__ import annotations

import io
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import structlog

import actors
from server.app import create_app, serve_in_thread
from tests.server.wire import Page, Upload, Wire, ok


@contextmanager
def server(tmp_path: Path, **options: Any) -> Iterator[tuple[str, Any]]:
    """The real app (one upload ``files``, default writer and consume) on loopback."""
    config = {"accept": "any", "max_entries": 10, "max_file_size": 10_000, "chunk_size": 1_000,
              **options.pop("config", {})}
    app = create_app(secret="test", uploads_dir=tmp_path / "uploads", upload_configs={"files": config}, **options)
    with serve_in_thread(app) as url:
        yield url, app


def assert_real_upload_completes(url: str, tmp_path: Path, name: str = "after.txt") -> None:
    """A fresh socket and page: track, allow, join, send, submit; the file is saved."""
    wire = Wire(url)
    try:
        page = Page(wire)
        data = b"still works " * 100
        tokens = page.upload_tokens({name: len(data)})
        upload = Upload(page, "0", tokens["0"])
        assert upload.join_reply == ok()
        upload.send_all(data)
        assert page.submit()["status"] == "ok"
        assert (tmp_path / "uploads" / name).read_bytes() == data
    finally:
        wire.close()


@contextmanager
def rendered_log() -> Iterator[io.StringIO]:
    """The log as ``liveupload serve`` renders it (key-value lines), into a
    string; the logging set-up is restored after."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        actors.configure_logging("info", stream=stream)
        yield stream
    finally:
        actors.log.stop_logging()
        for handler in list(root.handlers):
            if handler not in saved[1]:
                root.removeHandler(handler)
        root.setLevel(saved[0])
        structlog.reset_defaults()

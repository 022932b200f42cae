"""A Python client for the upload page, speaking LiveView's upload protocol
the way Phoenix's JavaScript client does (see ``docs/protocol.md``).

``upload_files(url, paths)`` fetches the page at ``url`` (for its signed
``data-phx-session``/``data-phx-static`` and CSRF token), opens
the page's socket with the ``websockets`` library, joins the page's ``lv:``
topic, and then for each batch of at most ``max_entries`` files (the limit
the page states):

1. sends the form's change event with ``uploads`` (the files are tracked;
   entries the server marks invalid, e.g. ``too_large``, fail and are
   cancelled through the page's cancel event);
2. sends ``allow_upload`` and gets one signed token per entry;
3. uploads up to ``concurrency`` entries at once, each on its own
   ``lvu:<ref>`` topic: join with the token, then binary ``chunk`` pushes,
   stop-and-wait (the next chunk only after the reply), with rising
   ``progress`` on the ``lv:`` topic, pushed without waiting for its reply
   as Phoenix's client does (the reply's diff is applied when it comes);
   an error leaves the topic and reports
   ``progress {"error": reason}`` (except ``writer_error``, which the server
   recorded itself);
4. submits the form, which consumes the completed entries, and reads the
   saved names off the page.

Heartbeats keep the socket open. Nothing here prints: progress goes to the
``on_progress`` callback (``liveupload send`` draws bars with it).
"""

from __future__ import annotations

import asyncio
import itertools
import mimetypes
import os
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from client.channels import ServerError, Socket
from client.live_page import LivePage

__all__ = ["FileResult", "LivePage", "ServerError", "upload_files", "upload_files_async"]

log = structlog.get_logger("liveupload.client")

ProgressCallback = Callable[["FileResult"], None]


@dataclass
class FileResult:
    """What became of one file. ``sent`` counts acknowledged bytes."""

    path: str
    name: str
    size: int
    sent: int = 0
    ok: bool = False
    saved_as: str | None = None
    error: str | None = None
    ref: str = ""

    def fail(self, error: str) -> None:
        if self.error is None:
            self.error = error
        self.ok = False


# ---------------------------------------------------------------- uploading


_entry_refs = itertools.count()


@dataclass
class _Batch:
    page: LivePage
    config_ref: str
    input_name: str
    results: list[FileResult]
    on_progress: ProgressCallback | None
    concurrency: int
    config: dict = field(default_factory=dict)


def _entry_fields(result: FileResult, input_name: str) -> dict[str, Any]:
    stat = os.stat(result.path)
    return {
        "path": input_name,
        "ref": result.ref,
        "last_modified": int(stat.st_mtime * 1000),
        "name": result.name,
        "relative_path": "",
        "type": mimetypes.guess_type(result.name)[0] or "application/octet-stream",
        "size": result.size,
    }


def _notify(batch: _Batch, result: FileResult) -> None:
    if batch.on_progress is not None:
        batch.on_progress(result)


async def _upload_batch(batch: _Batch) -> None:
    page = batch.page
    fields = [_entry_fields(r, batch.input_name) for r in batch.results]
    form = page.view.form
    # ``_target`` in ``meta``, as LiveView 1.x's client sends it, and in the urlencoded
    # form too, as the 0.20 client did (pyview, which bundles it, reads it only there)
    target = {"_target": batch.input_name}
    await page.form_event(form.get("phx-change", "validate"), value=urllib.parse.urlencode(target), meta=target,
                          uploads={batch.config_ref: fields})
    errors = page.view.upload_errors
    live = []
    for result, entry_fields in zip(batch.results, fields, strict=True):
        entry = page.view.entries.get(result.ref)
        if errors or (entry is not None and entry.errors):
            result.fail(", ".join((entry.errors if entry is not None else []) or errors))
            await page.cancel(result.ref)
            _notify(batch, result)
        else:
            live.append((result, entry_fields))
    if not live:
        return
    reply = await page.push("allow_upload", {"ref": batch.config_ref, "entries": [f for _, f in live]})
    if "error" in reply:
        reasons = {str(ref): reason for ref, reason in reply["error"]}
        for result, _ in live:
            result.fail(reasons.get(result.ref) or reasons.get(batch.config_ref) or "failed preflight")
            await page.cancel(result.ref)
            _notify(batch, result)
        return
    batch.config = reply.get("config") or {}
    tokens = reply.get("entries") or {}
    gate = asyncio.Semaphore(batch.concurrency)

    async def one(result: FileResult) -> None:
        async with gate:
            # the entry's preflight answer, passed back as the ``lvu:`` join's token as
            # Phoenix's client does: Phoenix signs a string, other servers send the entry's fields
            token = tokens.get(result.ref)
            if token is None:
                result.fail("failed preflight")
            elif isinstance(token, dict) and "uploader" in token:
                result.fail(f"external uploader {token['uploader']!r}: not supported by this client")
            else:
                await _upload_entry(batch, result, token)
            _notify(batch, result)

    await asyncio.gather(*(one(result) for result, _ in live))
    for result, _ in live:
        if not result.ok:
            await page.cancel(result.ref)


async def _upload_entry(batch: _Batch, result: FileResult, token: Any) -> None:
    """One entry on its ``lvu:`` topic, chunk by chunk, stop-and-wait."""
    page, socket = batch.page, batch.page.socket
    topic, join_ref = f"lvu:{result.ref}", socket.ref()
    chunk_size = int(batch.config.get("chunk_size") or 64_000)
    chunk_timeout = int(batch.config.get("chunk_timeout") or 10_000) / 1000
    try:
        status, response = await socket.call(topic, "phx_join", {"token": token}, join_ref, ref=join_ref)
        if status != "ok":
            await _entry_error(page, batch.config_ref, result, response.get("reason", "join refused"))
            return
        last = 0
        with open(result.path, "rb") as handle:
            while result.sent < result.size:
                data = handle.read(min(chunk_size, result.size - result.sent))
                if not data:
                    raise OSError(f"{result.path} shrank to {result.sent} bytes while uploading")
                status, response = await socket.call(topic, "chunk", data, join_ref, timeout=chunk_timeout + 5)
                if status != "ok":
                    await _leave(socket, topic, join_ref)
                    await _entry_error(page, batch.config_ref, result, response.get("reason", "chunk refused"))
                    return
                result.sent += len(data)
                percent = result.sent * 100 // result.size
                if percent > last:
                    last = percent
                    # pushed, not awaited: Phoenix's client goes on with the next chunk
                    await page.push_nowait("progress", {"event": None, "ref": batch.config_ref,
                                                        "entry_ref": result.ref, "progress": percent})
                _notify(batch, result)
    except ServerError as exc:  # the topic closed or crashed, a reply timed out, the socket went
        await _leave(socket, topic, join_ref)
        await _entry_error(page, batch.config_ref, result, str(exc))
        return
    except OSError as exc:
        await _leave(socket, topic, join_ref)
        await _entry_error(page, batch.config_ref, result, f"read error: {exc}")
        return
    result.ok = True


async def _leave(socket: Socket, topic: str, join_ref: str) -> None:
    try:
        await socket.call(topic, "phx_leave", {}, join_ref)
    except ServerError:
        pass  # already closed by the server


async def _entry_error(page: LivePage, config_ref: str, result: FileResult, reason: str) -> None:
    """As the JS client: report the error, except ``writer_error`` (the server has it)."""
    result.fail(reason)
    if reason != "writer_error":
        try:
            await page.push("progress", {"event": None, "ref": config_ref, "entry_ref": result.ref,
                                         "progress": {"error": reason}})
        except ServerError as exc:
            log.debug("client.progress_error_refused", ref=result.ref, error=str(exc))


async def _save(page: LivePage, batch: list[FileResult]) -> None:
    """Submit the form; the page's new saved items belong to this batch's files."""
    uploaded = [r for r in batch if r.ok]
    if not uploaded:
        return
    before = len(page.view.saved)
    await page.form_event(page.view.form.get("phx-submit", "save"))
    saved = page.view.saved[before:]
    for result, text in zip(uploaded, saved, strict=False):
        if ": not saved (" in text:
            result.fail(text)
        else:
            result.saved_as = text
    for result in uploaded[len(saved):]:
        result.fail(f"not saved: {page.view.notice or 'the server listed nothing'}")


async def upload_files_async(
    url: str,
    paths: Sequence[str | os.PathLike[str]],
    *,
    concurrency: int = 4,
    upload: str | None = None,
    on_progress: ProgressCallback | None = None,
    timeout: float = 30.0,
) -> list[FileResult]:
    """Upload ``paths`` through the page at ``url``; one result per path.

    ``upload`` picks the file input by name (default: the first one).
    Raises :class:`ServerError` if the page cannot be opened or joined;
    every other failure is in the results (``ok`` false, ``error`` says
    why; a socket lost midway fails every file not yet saved).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    results = []
    for path in paths:
        path = os.fspath(path)
        result = FileResult(path=path, name=Path(path).name, size=0)
        try:
            result.size = os.stat(path).st_size
            if not Path(path).is_file():
                result.fail("not a regular file")
            elif result.size == 0:
                result.fail("empty file (LiveView's client does not upload empty files)")
        except OSError as exc:
            result.fail(exc.strerror or str(exc))
        results.append(result)
    todo = [r for r in results if r.error is None]
    if not todo:
        return results
    page = await LivePage.open(url, timeout=timeout)
    try:
        chosen = [i for i in page.view.inputs if upload is None or i.name == upload]
        if not chosen:
            raise ServerError(f"the page has no file input {upload!r}" if upload else "the page has no file input")
        target = chosen[0]
        per_batch = target.limits.get("max_entries") or (len(todo) if target.multiple else 1)
        await _upload_batches(page, target, todo, per_batch, concurrency, on_progress)
    finally:
        await page.close()
    return results


async def _upload_batches(page: LivePage, target: Any, todo: list[FileResult], per_batch: int,
                          concurrency: int, on_progress: ProgressCallback | None) -> None:
    try:
        for start in range(0, len(todo), per_batch):
            batch = todo[start:start + per_batch]
            for result in batch:
                result.ref = str(next(_entry_refs))
            await _upload_batch(_Batch(page, target.ref, target.name, batch, on_progress, concurrency))
            await _save(page, batch)
            for result in batch:
                if on_progress is not None:
                    on_progress(result)
    except ServerError as exc:  # the socket or the page went away midway
        log.warning("client.server_error", error=str(exc))
        for result in todo:
            if result.saved_as is None:
                result.fail(str(exc))


def upload_files(url: str, paths: Sequence[str | os.PathLike[str]], **options: Any) -> list[FileResult]:
    """Blocking form of :func:`upload_files_async` (runs its own event loop)."""
    return asyncio.run(upload_files_async(url, paths, **options))

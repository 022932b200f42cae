"""The default writer: chunks go to a fresh random temp file.

Mirrors Phoenix's ``UploadTmpFileWriter``: ``init`` opens the file, ``meta`` is
``{"path": path}``, ``write_chunk`` appends, ``close`` closes it. A ``"done"``
file outlives ``close`` so it can be consumed; :meth:`TmpFileWriter.release`
deletes it when the channel ends (Phoenix ties the file's life to the channel
process instead). A cancelled or failed upload's file is deleted by ``close``
itself: nothing of it is left behind even before the channel ends.

The file can be made where it will end up (option ``dir``: e.g. a hidden
folder inside the uploads folder), so that consuming it is a rename or a hard
link rather than a copy (see :class:`server.storage.SaveToDirectory`).
"""

from __future__ import annotations

import errno
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import structlog

from .behaviour import Chunk, CloseReason, CloseResult, InitResult, UploadWriter, WriteResult

__all__ = [
    "TMPFILE_PREFIX",
    "TMPFILE_SUFFIX",
    "TmpFileState",
    "TmpFileWriter",
    "default_writer_factory",
    "oserror_reason",
    "remove_dir_if_empty",
]

#: Every temp file this writer creates starts with this (leak checks scan for it).
TMPFILE_PREFIX = "liveupload-"
TMPFILE_SUFFIX = ".upload"

_log = structlog.get_logger("liveupload.writers")


def oserror_reason(exc: OSError) -> str:
    """An Elixir-like reason for *exc*: the lower-case errno name (``"enospc"``),
    or ``str(exc)`` when it carries no known errno."""
    code = errno.errorcode.get(exc.errno) if exc.errno is not None else None
    return code.lower() if code else str(exc)


@dataclass
class TmpFileState:
    """Per-upload state: the file's path, its open handle and bytes written."""

    path: str
    file: BinaryIO | None = field(repr=False)
    size: int = 0
    prune_dir: bool = False  # remove the folder once empty (``make_dir``)


#: Open flags of a new temp file: created here and now, never through a link.
_CREATE_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)


class TmpFileWriter(UploadWriter):
    """Writes chunks to ``<dir>/liveupload-XXXX.upload``.

    Options:

    * ``dir``: the folder (default: the system temp dir). Put it on the file
      system the upload will be consumed into, so consuming is a rename.
    * ``make_dir``: create ``dir`` (mode 0700) if it is missing, and remove it
      again once empty when an upload's file is deleted (default False: a
      missing ``dir`` fails ``init`` with ``"enoent"``). For a folder of its
      own, such as the uploads folder's hidden ``.partial``.
    * ``mode``: the new file's permission bits, less the umask (default
      0600, as ``mkstemp``); a file renamed into place keeps them.
    """

    loop_safe = True  # its writes land in the page cache

    def init(self, opts: Mapping[str, Any] | None) -> InitResult:
        opts = opts or {}
        directory = os.fspath(opts.get("dir") or tempfile.gettempdir())
        make_dir = bool(opts.get("make_dir", False))
        mode = int(opts.get("mode", 0o600))
        try:
            fd, path = _create(directory, mode, make_dir)
        except OSError as exc:
            return ("error", oserror_reason(exc))
        try:
            handle = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            _unlink_quietly(path)
            raise
        return ("ok", TmpFileState(path=path, file=handle, prune_dir=make_dir))

    def meta(self, state: TmpFileState) -> dict:
        return {"path": state.path}

    def write_chunk(self, data: Chunk, state: TmpFileState) -> WriteResult:
        if state.file is None:
            raise ValueError(f"write_chunk after close on {state.path}")
        try:
            state.file.write(data)
            # Flush per chunk so a disk error belongs to the chunk that hit it.
            state.file.flush()
        except OSError as exc:
            return ("error", oserror_reason(exc), state)
        state.size += len(data)
        return ("ok", state)

    def close(self, state: TmpFileState, reason: CloseReason) -> CloseResult:
        """Close the file; for any reason but ``"done"`` delete it too (a
        cancelled or failed upload is never consumed)."""
        handle, state.file = state.file, None
        try:
            if handle is not None:
                handle.close()
        except OSError as exc:
            return ("error", oserror_reason(exc))
        finally:
            if reason != "done":
                _unlink_quietly(state.path, state.prune_dir)
        return ("ok", state)

    def release(self, state: TmpFileState) -> None:
        """Delete the temp file (closing it first if ``close`` never ran).

        Idempotent; a missing file is fine, other failures are logged.
        """
        handle, state.file = state.file, None
        if handle is not None:
            try:
                handle.close()
            except OSError:
                pass  # the upload is being discarded anyway
        _unlink_quietly(state.path, state.prune_dir)


def _create(directory: str, mode: int, make_dir: bool) -> tuple[int, str]:
    """Create a fresh ``liveupload-XXXX.upload`` in *directory*: ``(fd, path)``.

    With *make_dir* a missing folder is made (again: another upload may have
    removed it, empty, between our ``makedirs`` and our ``open``)."""
    for attempt in range(100):
        path = os.path.join(directory, f"{TMPFILE_PREFIX}{secrets.token_hex(8)}{TMPFILE_SUFFIX}")
        try:
            return os.open(path, _CREATE_FLAGS, mode), path
        except FileExistsError:
            continue
        except FileNotFoundError:
            if not make_dir or attempt >= 10:
                raise
            os.makedirs(directory, mode=0o700, exist_ok=True)
    raise FileExistsError(errno.EEXIST, "no free temp file name", directory)


def _unlink_quietly(path: str, prune_dir: bool = False) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        _log.warning("temp file not removed", path=path, reason=oserror_reason(exc))
    if prune_dir:
        remove_dir_if_empty(os.path.dirname(path))


def remove_dir_if_empty(directory: str) -> None:
    """Remove *directory* if nothing is left in it (else, or if gone, leave it).

    Safe against a writer creating a file there meanwhile: ``rmdir`` fails on a
    folder that is not empty, and the writer re-creates a folder that vanished."""
    try:
        os.rmdir(directory)
    except OSError:
        pass


def default_writer_factory(name: str, entry: Any, session: Any) -> tuple[type[TmpFileWriter], dict]:
    """The writer used when ``allow_upload`` names none: ``(TmpFileWriter, {})``."""
    return (TmpFileWriter, {})

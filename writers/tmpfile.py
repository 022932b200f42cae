"""The default writer: chunks go to a fresh random temp file.

Mirrors Phoenix's ``UploadTmpFileWriter``: ``init`` opens the file, ``meta`` is
``{"path": path}``, ``write_chunk`` appends, ``close`` closes it whatever the
reason. The file outlives ``close`` so a ``"done"`` upload can be consumed;
:meth:`TmpFileWriter.release` deletes it when the channel ends (Phoenix ties
the file's life to the channel process instead).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import structlog

from .behaviour import CloseReason, CloseResult, InitResult, UploadWriter, WriteResult

__all__ = [
    "TMPFILE_PREFIX",
    "TMPFILE_SUFFIX",
    "TmpFileState",
    "TmpFileWriter",
    "default_writer_factory",
    "oserror_reason",
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


class TmpFileWriter(UploadWriter):
    """Writes chunks to ``<dir>/liveupload-XXXX.upload``.

    Options: ``dir`` (default: the system temp dir).
    """

    def init(self, opts: Mapping[str, Any] | None) -> InitResult:
        directory = (opts or {}).get("dir") or None
        try:
            fd, path = tempfile.mkstemp(
                prefix=TMPFILE_PREFIX, suffix=TMPFILE_SUFFIX, dir=directory
            )
        except OSError as exc:
            return ("error", oserror_reason(exc))
        try:
            handle = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            _unlink_quietly(path)
            raise
        return ("ok", TmpFileState(path=os.fspath(path), file=handle))

    def meta(self, state: TmpFileState) -> dict:
        return {"path": state.path}

    def write_chunk(self, data: bytes, state: TmpFileState) -> WriteResult:
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
        """Close the file for any reason; never delete it (see :meth:`release`)."""
        handle, state.file = state.file, None
        if handle is not None:
            try:
                handle.close()
            except OSError as exc:
                return ("error", oserror_reason(exc))
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
        _unlink_quietly(state.path)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        _log.warning("temp file not removed", path=path, reason=oserror_reason(exc))


def default_writer_factory(name: str, entry: Any, session: Any) -> tuple[type[TmpFileWriter], dict]:
    """The writer used when ``allow_upload`` names none: ``(TmpFileWriter, {})``."""
    return (TmpFileWriter, {})

"""The ``EchoWriter`` from Phoenix's ``UploadWriter`` docs: logs chunk sizes,
keeps a running total and stores nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from .behaviour import Chunk, CloseReason, CloseResult, InitResult, UploadWriter, WriteResult

__all__ = ["EchoWriter", "LOG_LEVELS"]

#: Accepted ``level`` names (case-insensitive) and the method each logs with.
LOG_LEVELS: dict[str, str] = {
    "debug": "debug",
    "info": "info",
    "warn": "warning",
    "warning": "warning",
    "error": "error",
    "critical": "critical",
    "fatal": "critical",
}

_log = structlog.get_logger("liveupload.writers")


class EchoWriter(UploadWriter):
    """Logs ``"received chunk"`` (``size``, ``total``) per chunk and
    ``"closing upload"`` (``total``, ``reason``) on close, at ``opts["level"]``.

    State is ``{"total": int, "level": level as given, "method": structlog method}``;
    ``meta`` is ``{"level": level}``, the level exactly as configured.
    A missing or unknown level makes ``init`` return ``("error", reason)``
    (Phoenix's ``Keyword.fetch!`` would crash the join instead).
    """

    loop_safe = True

    def init(self, opts: Mapping[str, Any] | None) -> InitResult:
        if not isinstance(opts, Mapping) or "level" not in opts:
            return ("error", "missing_level")
        level = opts["level"]
        method = LOG_LEVELS.get(level.lower()) if isinstance(level, str) else None
        if method is None:
            return ("error", ("unknown_level", level))
        return ("ok", {"total": 0, "level": level, "method": method})

    def meta(self, state: dict) -> dict:
        return {"level": state["level"]}

    def write_chunk(self, data: Chunk, state: dict) -> WriteResult:
        size = len(data)
        total = state["total"] + size
        getattr(_log, state["method"])("received chunk", size=size, total=total)
        return ("ok", {**state, "total": total})

    def close(self, state: dict, reason: CloseReason) -> CloseResult:
        getattr(_log, state["method"])("closing upload", total=state["total"], reason=reason)
        return ("ok", state)

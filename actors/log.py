"""Logging set-up: structlog for everything, Pykka's stdlib records included.

Library code only calls ``structlog.get_logger``; an application (the command
line, a server) calls ``configure_logging`` once. structlog then renders
through the stdlib ``logging`` machinery, so records from Pykka's ``pykka``
logger (and uvicorn's) come out of the same formatter with the same fields.

Rendering happens on one listener thread (stdlib ``QueueHandler`` and
``QueueListener``): a process that crashes hands its report over and goes on
dying, instead of spending a millisecond of GIL time formatting its
traceback while its supervisor waits. ``stop_logging`` drains and stops it
(also at interpreter exit).

Every field is made safe to print before it is rendered (:func:`clip_fields`):
control characters are escaped, so a client's string cannot drive the
terminal, and long strings are cut (:func:`clip`), so a 60 KB topic costs a
log line of a few hundred bytes. Tracebacks are rendered after, untouched.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import re
import sys
from typing import Any, TextIO

import structlog

__all__ = [
    "CLIENT_FIELDS",
    "CLIENT_FIELD_LIMIT",
    "FIELD_LIMIT",
    "clip",
    "clip_fields",
    "configure_logging",
    "flush_logging",
    "output_handlers",
    "stop_logging",
]

#: Log fields that carry what a client sent (topics, event names, refs...).
CLIENT_FIELDS = frozenset({
    "topic", "event_name", "phx_event", "join_ref", "old_join_ref", "ref", "entry", "upload",
    "config", "name", "client_name", "path", "vsn", "peer", "origin", "host",
})
#: The longest string kept in a client field; :data:`FIELD_LIMIT` in any other.
CLIENT_FIELD_LIMIT = 200
FIELD_LIMIT = 2_000

# C0 and C1 controls, DEL, and the bidirectional overrides that reorder a line.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_RENDERED_LATER = frozenset({"exc_info", "exception", "stack", "stack_info", "_record", "_from_structlog"})

_HANDLER_NAME = "liveupload"
_listener: logging.handlers.QueueListener | None = None


def clip(text: str, limit: int = CLIENT_FIELD_LIMIT) -> str:
    """``text`` safe to log or echo: cut to ``limit`` characters (with an
    ellipsis and the original length) and control characters escaped
    (``"\\x1b"``)."""
    cut = text if len(text) <= limit else f"{text[:limit]}…({len(text)} chars)"
    return _UNSAFE.sub(_escape, cut)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clip_fields(_logger: Any, _method: str, event_dict: Any) -> Any:
    """A structlog processor: every string field :func:`clip`-ped (client
    fields to :data:`CLIENT_FIELD_LIMIT`), and containers whose ``repr`` is
    over :data:`FIELD_LIMIT` replaced by their clipped ``repr``."""
    for key, value in event_dict.items():
        if key in _RENDERED_LATER:
            continue
        if isinstance(value, str):
            limit = CLIENT_FIELD_LIMIT if key in CLIENT_FIELDS else FIELD_LIMIT
            if len(value) > limit or _UNSAFE.search(value):
                event_dict[key] = clip(value, limit)
        elif isinstance(value, (list, tuple, dict, set, bytes)):
            text = repr(value)
            if len(text) > FIELD_LIMIT:
                event_dict[key] = clip(text, FIELD_LIMIT)
    return event_dict


def _capture_exc_info(_logger: Any, _method: str, event_dict: Any) -> Any:
    """Resolve ``exc_info=True`` to the exception now: rendering happens later,
    on the listener thread, where no exception is being handled."""
    if event_dict.get("exc_info") is True:
        event_dict["exc_info"] = sys.exc_info()
    return event_dict


class _HandOverHandler(logging.handlers.QueueHandler):
    """Queues records as they are: the listener's formatter renders them, the
    structlog event dict and the exception included (the stdlib's ``prepare``
    would format them here, in the logging thread)."""

    def prepare(self, record: logging.LogRecord) -> Any:
        return record


def configure_logging(level: str | int = "info", *, json: bool = False, stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging (Pykka's included) to one handler on
    ``stream`` (stderr by default), as key-value lines or JSON."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso"),
        clip_fields,
    ]
    structlog.configure(
        processors=[*shared, _capture_exc_info, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    global _listener
    stop_logging()
    output = logging.StreamHandler(stream or sys.stderr)
    output.set_name(_HANDLER_NAME)
    output.setFormatter(formatter)
    records: queue.SimpleQueue[Any] = queue.SimpleQueue()
    hand_over = _HandOverHandler(records)
    hand_over.set_name(_HANDLER_NAME)
    _listener = logging.handlers.QueueListener(records, output)
    _listener.start()
    root = logging.getLogger()
    root.addHandler(hand_over)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.getLogger("pykka").setLevel(root.level)


def output_handlers() -> list[logging.StreamHandler]:
    """The stream handlers that write the rendered lines (to redirect them)."""
    if _listener is None:
        return []
    return [h for h in _listener.handlers if isinstance(h, logging.StreamHandler)]


def flush_logging() -> None:
    """Render everything logged so far before returning (the listener goes on)."""
    if _listener is not None:
        _listener.stop()  # drains the queue and joins the thread...
        _listener.start()  # ...and a fresh thread takes over


def stop_logging() -> None:
    """Render what is queued, stop the listener thread, detach the handler."""
    global _listener
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    if _listener is not None:
        _listener.stop()
        _listener = None


atexit.register(stop_logging)

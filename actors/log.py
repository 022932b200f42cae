"""Logging set-up: structlog for everything, Pykka's stdlib records included.

Library code only calls ``structlog.get_logger``; an application (the command
line, a server) calls ``configure_logging`` once. structlog then renders
through the stdlib ``logging`` machinery, so records from Pykka's ``pykka``
logger (and uvicorn's) come out of the same formatter with the same fields.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

__all__ = ["configure_logging"]

_HANDLER_NAME = "liveupload"


def configure_logging(level: str | int = "info", *, json: bool = False, stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging (Pykka's included) to one handler on
    ``stream`` (stderr by default), as key-value lines or JSON."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso"),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
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
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.getLogger("pykka").setLevel(root.level)

"""uvicorn's log records, made to fit ours.

uvicorn logs a text frame that is not UTF-8 with ``logger.exception``: a full
traceback at error level on ``uvicorn.error`` for every such frame, which any
client can send at will. :func:`quiet_client_errors` turns it into one warning
line (``frame.invalid_utf8``); uvicorn still closes the socket with 1007.
"""

from __future__ import annotations

import logging

__all__ = ["quiet_client_errors"]

_INVALID_UTF8 = "Invalid UTF-8 sequence received from client."


class _ClientErrorFilter(logging.Filter):
    """Rewrites uvicorn's traceback for a client's bad frame as one warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _INVALID_UTF8:
            record.msg, record.args = "frame.invalid_utf8", ()
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def quiet_client_errors() -> None:
    """Install the filter on ``uvicorn.error`` (once, however often called)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _ClientErrorFilter) for f in logger.filters):
        logger.addFilter(_ClientErrorFilter())

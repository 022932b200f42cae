"""Upload errors as the page states them: codes (:func:`format_error`) and
words for people (:func:`explain_error`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .sizes import exact_size, human_size

__all__ = ["explain_error", "format_error"]


def format_error(error: Any) -> str:
    """One entry/config error as text: ``"too_large"`` or
    ``("writer_failure", reason)`` -> ``"writer_failure: reason"``."""
    if isinstance(error, (tuple, list)):
        if len(error) == 2:
            return f"{error[0]}: {error[1]}"
        return ": ".join(str(e) for e in error)
    return str(error)


_WORDS = {
    "too_large": "the file is larger than the {max_file_size} limit",
    "too_many_files": "more than {max_entries} file(s) chosen: cancel the ones marked over the limit",
    "not_accepted": "this type of file is not accepted (accepted: {accept})",
    "writer_failure": "the server could not write the file",
    "channel_crash": "the server could not write the file: its upload crashed",
    "external_client_failure": "the browser could not send the file",
    "lost_connection": "the connection was lost: select the file again",
    "invalid_token": "the upload was refused: reload the page",
    "file_size_limit_exceeded": "more bytes than announced were sent",
}


def explain_error(error: Any, config: Mapping[str, Any] | None = None) -> str:
    """One error in words for people: ``"too_large"`` -> ``"the file is
    larger than the 7.6 MB (8000000 bytes) limit"``; a ``(code, reason)`` pair appends
    the reason; unknown codes are returned as text."""
    config = config or {}
    code, reason = error, None
    if isinstance(error, (tuple, list)) and error:
        code, reason = error[0], (": ".join(str(e) for e in error[1:]) or None)
    template = _WORDS.get(str(code))
    if template is None:
        return format_error(error)
    accept = config.get("accept", "any")
    if isinstance(accept, (list, tuple)):
        accept = ", ".join(str(a) for a in accept)
    largest = config.get("max_file_size", 8_000_000)
    if isinstance(largest, int) and largest >= 1024:
        largest = f"{human_size(largest)} ({exact_size(largest)})"
    elif isinstance(largest, int):
        largest = exact_size(largest)
    words = template.format(max_file_size=largest,
                            max_entries=config.get("max_entries", 1), accept=accept)
    return f"{words} ({reason})" if reason else words

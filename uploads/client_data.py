"""What the client sends an upload session, and its one parser.

The entries the client announces (LiveView's ``serializeUploads`` and
``toPreflightPayload``) and the progress it reports are checked here, by
:func:`check_entries` and :func:`parse_progress`, for both who take them: the
session, whose methods are a Python API that checks its own arguments, and
the server's ``lv:`` edge (``server.client_input``), which refuses a
malformed event before the session sees it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_REASON", "ClientError", "ProgressValue", "check_entries", "parse_progress"]

#: A percentage 0..100, or ``{"error": reason}``.
ProgressValue = int | dict[str, str]

#: The longest client-reported error reason kept (longer ones are cut).
MAX_REASON = 200

#: The fields of one announced entry: name -> (types, required). ``meta`` is
#: the application's own (any JSON) and is not checked.
_ENTRY_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "ref": ((str,), True),
    "name": ((str,), True),
    "size": ((int,), True),
    "type": ((str,), False),
    "relative_path": ((str,), False),
    "last_modified": ((int, float), False),
    "path": ((str,), False),
}


class ClientError(ValueError):
    """What the client sent cannot be used (a malformed entry, an unknown ref).

    Session methods that take client input answer it with ``("error", reason)``
    instead of raising, so a bad frame never crashes a session and its uploads.
    """


def check_entries(announced: Any) -> list[Mapping[str, Any]]:
    """``announced`` if it is a list of well-formed entries, else :class:`ClientError`
    saying what is wrong with the first bad one."""
    if not isinstance(announced, list):
        raise ClientError(f"entries must be a list, got {type(announced).__name__}")
    for i, fields in enumerate(announced):
        if not isinstance(fields, Mapping):
            raise ClientError(f"entry {i} must be an object, got {type(fields).__name__}")
        for key, (types, required) in _ENTRY_FIELDS.items():
            value = fields.get(key)
            if value is None and not required:
                continue
            if isinstance(value, bool) or not isinstance(value, types):
                expected = " or ".join(t.__name__ for t in types)
                raise ClientError(f"entry {i}: {key} must be {expected}, got {type(value).__name__}")
        if not fields["ref"]:
            raise ClientError(f"entry {i}: ref must not be empty")
        if fields["size"] < 0:
            raise ClientError(f"entry {i}: size must not be negative")
    return announced


def parse_progress(progress: Any) -> ProgressValue:
    """A progress report: an int 0..100, or ``{"error": reason}`` with a string
    reason (cut to :data:`MAX_REASON`). LiveView's client reports a crashed
    upload channel with the ``phx_error`` payload itself
    (``{"error": {"reason": "channel_crash"}}``), so an object with a string
    ``reason`` stands for that reason."""
    if isinstance(progress, int) and not isinstance(progress, bool):
        if 0 <= progress <= 100:
            return progress
        raise ClientError(f"progress must be 0..100, got {progress}")
    if isinstance(progress, Mapping) and "error" in progress:
        reason = progress["error"]
        if isinstance(reason, Mapping):
            reason = reason.get("reason")
        if isinstance(reason, str) and reason:
            return {"error": reason[:MAX_REASON]}
        raise ClientError(f"a progress error must be a non-empty string, got {type(reason).__name__}")
    raise ClientError(f'progress must be 0..100 or {{"error": reason}}, got {type(progress).__name__}')

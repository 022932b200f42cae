"""What the client sends on the ``lv:`` topic, checked once, at the edge.

Every field of an event is type-checked here before the session sees it: a
value of the wrong type (a list where a ref should be, an object for a size)
would otherwise raise inside the session's process (an unhashable ref in a
dict lookup) and crash it, cancelling every upload of the page. Each parser
returns the event as the session takes it, or raises :class:`BadInput`,
which the handler answers with an error reply and one warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "BadInput",
    "Cancel",
    "Preflight",
    "Progress",
    "ProgressValue",
    "parse_cancel",
    "parse_preflight",
    "parse_progress",
    "parse_uploads",
]

#: A percentage 0..100, or ``{"error": reason}``.
ProgressValue = int | dict[str, str]

#: The fields of one entry the client announces (``serializeUploads`` and
#: ``toPreflightPayload`` in LiveView's client): name -> (types, required).
#: ``meta`` is the application's own (any JSON) and is not checked.
_ENTRY_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "ref": ((str,), True),
    "name": ((str,), True),
    "size": ((int,), True),
    "type": ((str,), False),
    "relative_path": ((str,), False),
    "last_modified": ((int, float), False),
    "path": ((str,), False),
}

#: The longest client-reported error reason kept (longer ones are cut).
MAX_REASON = 200


class BadInput(ValueError):
    """A malformed event: ``log_event`` names the warning, ``reason`` goes in
    the error reply (``"invalid ..."``), ``why`` says what was wrong."""

    def __init__(self, log_event: str, reason: str, why: str) -> None:
        super().__init__(f"{reason}: {why}")
        self.log_event = log_event
        self.reason = reason
        self.why = why


@dataclass(frozen=True)
class Cancel:
    """The cancel button's click: an entry of an upload."""

    upload: str
    ref: str


@dataclass(frozen=True)
class Preflight:
    """``allow_upload``: the entries of one upload config."""

    config_ref: str
    entries: list[dict[str, Any]]


@dataclass(frozen=True)
class Progress:
    """``progress``: one entry's percentage or error."""

    config_ref: str
    entry_ref: str
    progress: ProgressValue


def parse_uploads(uploads: Any) -> dict[str, list[dict[str, Any]]]:
    """The change event's ``uploads``: the selected files per config ref."""
    if not isinstance(uploads, dict):
        raise BadInput("lv.bad_uploads", "invalid uploads", "uploads is not an object")
    for config_ref, entries in uploads.items():
        why = _bad_entries(entries)
        if why is not None:
            raise BadInput("lv.bad_uploads", "invalid uploads", f"config {config_ref!r:.100}: {why}")
    return uploads


def parse_cancel(value: Any) -> Cancel:
    """The cancel event's ``value``: ``{"ref": entry ref, "upload": name}``."""
    if not isinstance(value, dict):
        why: str | None = f"value must be an object, got {type(value).__name__}"
    else:
        why = _bad_ref(value.get("ref"), "ref") or _bad_ref(value.get("upload"), "upload")
    if why is not None:
        raise BadInput("lv.bad_cancel", "invalid cancel", why)
    return Cancel(upload=value["upload"], ref=value["ref"])


def parse_preflight(payload: dict[str, Any]) -> Preflight:
    """``allow_upload``: ``{"ref": config ref, "entries": [...]}``."""
    config_ref, entries = payload.get("ref"), payload.get("entries")
    why = _bad_ref(config_ref, "ref") or _bad_entries(entries)
    if why is not None:
        raise BadInput("lv.bad_preflight", "invalid preflight", why)
    return Preflight(config_ref=payload["ref"], entries=payload["entries"])


def parse_progress(payload: dict[str, Any]) -> Progress:
    """``progress``: ``{"ref", "entry_ref", "progress"}``.

    A percentage is an int 0..100. An error is ``{"error": reason}`` with a
    string reason; LiveView's client reports a crashed upload channel with the
    ``phx_error`` payload itself (``{"error": {"reason": "channel_crash"}}``),
    so an object with a string ``reason`` stands for that reason.
    """
    config_ref, entry_ref = payload.get("ref"), payload.get("entry_ref")
    progress, why = _progress_value(payload.get("progress"))
    why = _bad_ref(config_ref, "ref") or _bad_ref(entry_ref, "entry_ref") or why
    if why is not None or progress is None:
        raise BadInput("lv.bad_progress", "invalid progress", why or "no progress")
    return Progress(config_ref=payload["ref"], entry_ref=payload["entry_ref"], progress=progress)


def _bad_ref(value: Any, what: str) -> str | None:
    """Why ``value`` is not a usable ref (a non-empty string), or ``None``."""
    if isinstance(value, str) and value:
        return None
    return f"{what} must be a non-empty string, got {type(value).__name__}"


def _bad_entries(entries: Any) -> str | None:
    """Why the client's list of entries is malformed, or ``None``."""
    if not isinstance(entries, list):
        return f"entries must be a list, got {type(entries).__name__}"
    for i, fields in enumerate(entries):
        if not isinstance(fields, dict):
            return f"entry {i} must be an object, got {type(fields).__name__}"
        for key, (types, required) in _ENTRY_FIELDS.items():
            value = fields.get(key)
            if value is None and not required:
                continue
            if isinstance(value, bool) or not isinstance(value, types):
                return f"entry {i}: {key} must be {' or '.join(t.__name__ for t in types)}, got {type(value).__name__}"
        if not fields["ref"]:
            return f"entry {i}: ref must not be empty"
        if fields["size"] < 0:
            return f"entry {i}: size must not be negative"
    return None


def _progress_value(progress: Any) -> tuple[ProgressValue | None, str | None]:
    if isinstance(progress, int) and not isinstance(progress, bool):
        if 0 <= progress <= 100:
            return progress, None
        return None, f"progress must be 0..100, got {progress}"
    if isinstance(progress, dict) and "error" in progress:
        reason = progress["error"]
        if isinstance(reason, dict):
            reason = reason.get("reason")
        if isinstance(reason, str) and reason:
            return {"error": reason[:MAX_REASON]}, None
        return None, f"a progress error must be a non-empty string, got {type(reason).__name__}"
    return None, f"progress must be 0..100 or {{\"error\": reason}}, got {type(progress).__name__}"

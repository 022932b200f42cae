"""What the client sends on the ``lv:`` topic, checked once, at the edge.

Every field of an event is type-checked here before the session sees it: a
value of the wrong type (a list where a ref should be, an object for a size)
would otherwise reach the session's process, which answers it with an error
but logs it as its own. Each parser returns the event as the session takes
it, or raises :class:`BadInput`, which the handler answers with an error
reply and one warning. The entries and progress inside an event are checked
by the uploads layer's own parser (``uploads.client_data``), the one the
session applies to its arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from uploads.client_data import ClientError, ProgressValue, check_entries
from uploads.client_data import parse_progress as parse_progress_value

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
    entries: list[Mapping[str, Any]]


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
        try:
            check_entries(entries)
        except ClientError as exc:
            raise BadInput("lv.bad_uploads", "invalid uploads", f"config {config_ref!r:.100}: {exc}") from None
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
    why = _bad_ref(payload.get("ref"), "ref")
    if why is None:
        try:
            return Preflight(config_ref=payload["ref"], entries=check_entries(payload.get("entries")))
        except ClientError as exc:
            why = str(exc)
    raise BadInput("lv.bad_preflight", "invalid preflight", why)


def parse_progress(payload: dict[str, Any]) -> Progress:
    """``progress``: ``{"ref", "entry_ref", "progress"}``, the progress a
    percentage or an error (see ``uploads.client_data.parse_progress``)."""
    why = _bad_ref(payload.get("ref"), "ref") or _bad_ref(payload.get("entry_ref"), "entry_ref")
    if why is None:
        try:
            progress = parse_progress_value(payload.get("progress"))
            return Progress(config_ref=payload["ref"], entry_ref=payload["entry_ref"], progress=progress)
        except ClientError as exc:
            why = str(exc)
    raise BadInput("lv.bad_progress", "invalid progress", why)


def _bad_ref(value: Any, what: str) -> str | None:
    """Why ``value`` is not a usable ref (a non-empty string), or ``None``."""
    if isinstance(value, str) and value:
        return None
    return f"{what} must be a non-empty string, got {type(value).__name__}"


"""What an upload allows and what the client announced: ``UploadConfig`` and
``UploadEntry``, with Phoenix's validation rules.

Plain data owned by one ``UploadSession``; nothing here is a process.
"""

from __future__ import annotations

import mimetypes
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from writers import WriterFactory, default_writer_factory

__all__ = [
    "MAX_ENTRY_ERRORS",
    "MAX_REFUSED_ENTRIES",
    "EntryError",
    "UploadConfig",
    "UploadEntry",
    "validate_accept",
]

EntryError = Any
"""``"too_large"``, ``"too_many_files"``, ``"not_accepted"``,
``("writer_failure", reason)`` or ``("channel_crash", reason)``."""

MaxEntriesMode = Literal["selected", "total"]

#: Entries kept beyond ``max_entries``, shown with ``too_many_files`` so the
#: user can cancel some; the rest of an over-long announcement is not kept.
MAX_REFUSED_ENTRIES = 8

#: Errors kept per entry (the latest); older ones are dropped.
MAX_ENTRY_ERRORS = 8


def validate_accept(accept: Any) -> Literal["any"] | tuple[str, ...]:
    """Check an ``accept`` option as Phoenix does: ``"any"`` or a non-empty list of
    extensions (``".jpg"``) and MIME types (``"image/png"``, ``"image/*"``)."""
    if accept == "any":
        return "any"
    if isinstance(accept, str) or not isinstance(accept, (list, tuple)) or not accept:
        raise ValueError(f'accept must be "any" or a non-empty list of extensions and MIME types, got {accept!r}')
    for item in accept:
        if not isinstance(item, str) or not (
            (item.startswith(".") and len(item) > 1) or (item.count("/") == 1 and "" not in item.split("/"))
        ):
            raise ValueError(
                f"invalid accept filter {item!r}: expected an extension like '.jpg' or a MIME type like 'image/*'"
            )
    return tuple(item.lower() for item in accept)


def is_accepted(accept: Literal["any"] | tuple[str, ...], client_name: str, client_type: str) -> bool:
    """True if a file of that name and MIME type passes the ``accept`` filters."""
    if accept == "any":
        return True
    name, mime = client_name.lower(), (client_type or "").lower()
    for item in accept:
        if item.startswith("."):
            if name.endswith(item) or (mime and mime == mimetypes.types_map.get(item)):
                return True
        elif item.endswith("/*"):
            if mime.startswith(item[:-1]):
                return True
        elif mime == item:
            return True
    return False


@dataclass
class UploadEntry:
    """One file the client announced, and what became of it."""

    ref: str
    upload_config: str
    client_name: str
    client_size: int
    client_type: str = ""
    client_last_modified: int | None = None
    client_relative_path: str | None = None
    client_meta: Any = None
    progress: int = 0
    preflighted: bool = False
    done: bool = False
    cancelled: bool = False
    errors: list[EntryError] = field(default_factory=list)
    channel: Any = None
    monitor: Any = None
    #: The writer's ``meta``, from the channel's ``upload_done`` news: what
    #: consuming hands over, so consuming never asks the channel. Not client data.
    meta: Any = None
    #: Random, minted when the entry is announced: its tokens name it, so a
    #: later entry the client gives the same ``ref`` is another entry.
    id: str = field(default_factory=lambda: secrets.token_urlsafe(12))

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def failed(self) -> bool:
        """Terminal without success: a validation error, a writer failure or a crash."""
        return bool(self.errors) or self.cancelled

    def add_error(self, error: EntryError) -> None:
        """Record ``error`` once; past ``MAX_ENTRY_ERRORS`` the oldest goes."""
        if error not in self.errors:
            self.errors.append(error)
            del self.errors[:-MAX_ENTRY_ERRORS]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "upload_config": self.upload_config,
            "client_name": self.client_name,
            "client_size": self.client_size,
            "client_type": self.client_type,
            "client_last_modified": self.client_last_modified,
            "client_relative_path": self.client_relative_path,
            "client_meta": self.client_meta,
            "progress": self.progress,
            "preflighted": self.preflighted,
            "done": self.done,
            "cancelled": self.cancelled,
            "valid": self.valid,
            "errors": list(self.errors),
        }

    @classmethod
    def from_client(cls, config: str, fields: Mapping[str, Any]) -> UploadEntry:
        """Build an entry from one announcement that passed ``check_entries``."""
        ref, name, size = fields["ref"], fields["name"], fields["size"]
        last_modified = fields.get("last_modified")
        return cls(
            ref=ref,
            upload_config=config,
            client_name=name,
            client_size=size,
            client_type=fields.get("type") or "",
            client_last_modified=last_modified if isinstance(last_modified, int) else None,
            client_relative_path=fields.get("relative_path") or None,
            client_meta=fields.get("meta"),
        )


@dataclass
class UploadConfig:
    """``allow_upload``'s options for one upload name, and its entries in order."""

    name: str
    ref: str
    accept: Literal["any"] | tuple[str, ...]
    max_entries: int = 1
    max_file_size: int = 8_000_000
    chunk_size: int = 64_000
    chunk_timeout: float = 10.0
    writer: WriterFactory = default_writer_factory
    auto_upload: bool = False
    progress: Callable[..., Any] | None = None
    max_entries_mode: MaxEntriesMode = "selected"
    entries: list[UploadEntry] = field(default_factory=list)
    errors: list[tuple[str, EntryError]] = field(default_factory=list)
    consumed_count: int = 0

    def __post_init__(self) -> None:
        for option in ("max_entries", "max_file_size", "chunk_size"):
            value = getattr(self, option)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{option} must be a positive integer, got {value!r}")
        if not self.chunk_timeout > 0:
            raise ValueError(f"chunk_timeout must be positive seconds, got {self.chunk_timeout!r}")
        if self.max_entries_mode not in ("selected", "total"):
            raise ValueError(f'max_entries_mode must be "selected" or "total", got {self.max_entries_mode!r}')

    def entry(self, ref: str) -> UploadEntry | None:
        for entry in self.entries:
            if entry.ref == ref:
                return entry
        return None

    def client_config(self) -> dict[str, int]:
        """What the client is told: sizes in bytes, the chunk timeout in ms."""
        return {
            "max_file_size": self.max_file_size,
            "max_entries": self.max_entries,
            "chunk_size": self.chunk_size,
            "chunk_timeout": int(self.chunk_timeout * 1000),
        }

    def put_entries(self, announced: list[Mapping[str, Any]]) -> int:
        """Track the client's entries (checked by ``check_entries``; known refs
        are kept) and validate them all against the config.

        At most ``max_entries + MAX_REFUSED_ENTRIES`` entries are kept: the
        ones over ``max_entries`` show ``too_many_files`` (so the user can
        cancel some, as in Phoenix); the rest of the announcement is dropped,
        so what a client announces never grows the session past that.
        Returns how many new entries were not kept.
        """
        new = [UploadEntry.from_client(self.name, fields) for fields in announced]
        known = {entry.ref for entry in self.entries}
        room = self.max_entries + MAX_REFUSED_ENTRIES - len(self.entries)
        dropped = 0
        for entry in new:
            if entry.ref in known:
                continue
            if room <= 0:
                dropped += 1
                continue
            self.entries.append(entry)
            known.add(entry.ref)
            room -= 1
        self.validate()
        return dropped

    def validate(self) -> None:
        """Recompute validation errors: size, type, and the number of entries."""
        self.errors = [
            (ref, err) for ref, err in self.errors if err not in ("too_large", "not_accepted", "too_many_files")
        ]
        for entry in self.entries:
            entry.errors = [e for e in entry.errors if e not in ("too_large", "not_accepted")]
            if entry.client_size > self.max_file_size:
                entry.add_error("too_large")
            if not is_accepted(self.accept, entry.client_name, entry.client_type):
                entry.add_error("not_accepted")
            self.errors.extend((entry.ref, e) for e in entry.errors if e in ("too_large", "not_accepted"))
        counted = len([e for e in self.entries if not e.cancelled])
        if self.max_entries_mode == "total":
            counted += self.consumed_count
        if counted > self.max_entries:
            self.errors.append((self.ref, "too_many_files"))

    def config_errors(self) -> list[EntryError]:
        return [err for ref, err in self.errors if ref == self.ref]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ref": self.ref,
            "accept": self.accept if self.accept == "any" else list(self.accept),
            "max_entries": self.max_entries,
            "max_file_size": self.max_file_size,
            "chunk_size": self.chunk_size,
            "chunk_timeout": self.chunk_timeout,
            "auto_upload": self.auto_upload,
            "max_entries_mode": self.max_entries_mode,
            "errors": [list(pair) for pair in self.errors],
            "entries": [entry.to_dict() for entry in self.entries],
        }

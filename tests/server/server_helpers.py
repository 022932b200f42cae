"""Journaled writers for the server tests: every entry's writer is a
``TmpFileWriter`` inside a ``writers.JournalingWriter`` tagged with the entry's
name, all journaling into one ``writers.Journal``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from writers import Journal, journaling

WAIT = 10.0


def journal_writer(journal: Journal, directory: Path | None = None) -> Callable[..., Any]:
    """An ``allow_upload`` writer factory journaling ``(event, entry name, ...)``."""

    def factory(name: str, entry: dict, session: Any) -> Any:
        return journaling(journal, opts={"dir": str(directory) if directory else None}, tag=(entry["client_name"],))

    return factory


def released(name: str) -> Callable[[list[Any]], bool]:
    """A journal predicate: the writer of entry ``name`` was released."""
    return lambda items: ("release", name) in items


def wait_released(journal: Journal, *names: str, timeout: float = WAIT) -> list[Any]:
    """Wait until the writers of every entry in ``names`` were released."""
    return journal.wait_for(lambda items: all(("release", name) in items for name in names), timeout)

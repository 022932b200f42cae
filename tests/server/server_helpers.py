"""Helpers for the server tests: a writer that journals what happens to it,
and a thread-safe journal waited on without sleeps."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from writers import TmpFileWriter

WAIT = 10.0


class Journal:
    """A list that writers append to from their channels' threads; tests wait
    on it with a deadline (a condition variable, never a sleep)."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._changed = threading.Condition()

    def append(self, item: Any) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def items(self) -> list[Any]:
        with self._changed:
            return list(self._items)

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float = WAIT) -> list[Any]:
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self._items), timeout):
                raise AssertionError(f"journal never matched; it holds {self._items}")
            return list(self._items)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items())


class JournalWriter(TmpFileWriter):
    """``TmpFileWriter`` that journals ``(event, entry name, ...)``: init with
    its path, every close with its reason, and release."""

    def init(self, opts: Any) -> Any:
        result = super().init({"dir": opts.get("dir")})
        if result[0] == "ok":
            opts["journal"].append(("init", opts["name"], result[1].path))
            result[1].journal = opts["journal"]
            result[1].entry_name = opts["name"]
        return result

    def close(self, state: Any, reason: Any) -> Any:
        state.journal.append(("close", state.entry_name, reason))
        return super().close(state, reason)

    def release(self, state: Any) -> None:
        super().release(state)
        state.journal.append(("release", state.entry_name))


def journal_writer(journal: Journal, directory: Path | None = None) -> Callable[..., Any]:
    """An ``allow_upload`` writer factory for :class:`JournalWriter`."""

    def factory(name: str, entry: dict, session: Any) -> Any:
        return (JournalWriter, {"journal": journal, "dir": str(directory) if directory else None,
                                "name": entry["client_name"]})

    return factory


def closes(journal: Journal, name: str) -> list[Any]:
    return [item[2] for item in journal.items() if item[0] == "close" and item[1] == name]


def released(journal: Journal, name: str) -> Callable[[list[Any]], bool]:
    return lambda items: ("release", name) in items

"""Helpers of the server tests: journaled writers (every entry's writer is a
``TmpFileWriter`` inside a ``writers.JournalingWriter`` tagged with the entry's
name, all journaling into one ``writers.Journal``), and ``liveupload serve``
in a child process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import pytest

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


REPO = Path(__file__).resolve().parents[2]


@contextmanager
def serve_child(
    tmp_path: Path, *flags: str, env: dict[str, str | None] | None = None,
    preexec_fn: Callable[[], Any] | None = None,
) -> Iterator[tuple[subprocess.Popen, str, list[str]]]:
    """``liveupload serve --port 0`` in a child process with a temp folder of its
    own (``env`` values of ``None`` are removed; ``preexec_fn`` runs in the child
    before it starts, e.g. to lower an rlimit); yields the process, its URL and
    the log lines read up to ``serve.listening``. Killed if still running at the end."""
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    child_env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    for key, value in (env or {}).items():
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[key] = value
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--port", "0", "--uploads-dir", str(tmp_path / "uploads"), *flags],
        stderr=subprocess.PIPE, text=True, env=child_env, cwd=tmp_path, preexec_fn=preexec_fn,
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            match = re.search(r"serve\.listening.*?url=(\S+)", line)
            if match:
                url = match.group(1).rstrip("/")
                break
        else:
            pytest.fail("serve never listened:\n" + "".join(lines))
        yield proc, url, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

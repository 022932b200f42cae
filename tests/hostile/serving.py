"""``liveupload serve`` as a child process for the hostile tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.server.server_helpers import serve_child


class Served:
    def __init__(self, proc: subprocess.Popen, url: str, lines: list[str]) -> None:
        self.proc, self.url, self.lines = proc, url, lines

    def stop(self, signum: int, timeout: float) -> str:
        """Signal the server and wait (at most ``timeout`` s) for it to exit; its log."""
        self.proc.send_signal(signum)
        _, rest = self.proc.communicate(timeout=timeout)
        self.lines.append(rest)
        return "".join(self.lines)


@contextmanager
def serve(tmp_path: Path, *flags: str) -> Iterator[Served]:
    """``liveupload serve --port 0`` with its own temp folder; killed if still running at the end."""
    with serve_child(tmp_path, *flags) as (proc, url, lines):
        yield Served(proc, url, lines)

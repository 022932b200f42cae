"""``liveupload serve`` as a child process for the hostile tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent.parent


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
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--port", "0", "--uploads-dir", str(tmp_path / "uploads"), *flags],
        stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
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
        yield Served(proc, url, lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

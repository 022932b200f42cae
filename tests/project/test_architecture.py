"""The layers import one way: runtime <- supervision <- upload actors <- server and
benchmarks; and processes run on the pooled scheduler unless told otherwise.

Each check runs in a fresh interpreter, so nothing another test imported counts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.timeout(60), pytest.mark.pure]  # the checks run in fresh interpreters

ABOVE_THE_RUNTIME = ("uploads", "supervision", "writers", "server", "benchmarks")


def loaded_after(statement: str) -> list[str]:
    """The project modules a fresh interpreter has loaded after ``statement``."""
    code = (
        f"import json, sys; {statement}; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('actors', 'supervision', 'uploads', 'writers', 'server', 'benchmarks'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=50, check=True)
    return json.loads(out.stdout)


def test_the_runtime_imports_nothing_above_it():
    loaded = loaded_after("import actors; actors.Process; actors.shutdown")
    assert [m for m in loaded if m.startswith(ABOVE_THE_RUNTIME)] == []


def test_supervision_imports_the_runtime_only():
    loaded = loaded_after("import supervision")
    assert [m for m in loaded if m.startswith(("uploads", "writers", "server", "benchmarks"))] == []
    assert "actors.process" in loaded


def test_the_upload_actors_import_neither_the_server_nor_the_benchmarks():
    loaded = loaded_after("from uploads import UploadChannel, UploadSession")
    assert "uploads.channel" in loaded and "uploads.session" in loaded
    assert [m for m in loaded if m.startswith(("server", "benchmarks"))] == []


def test_the_pooled_scheduler_is_the_default_for_every_process_the_upload_actors_included():
    code = """
import json, threading, actors
from uploads import UploadChannel, UploadSession

class Where(actors.Process):
    def on_receive(self, message):
        return threading.current_thread().name

ref = Where.start()
where = ref.ask("where", timeout=5)
ref.stop()
print(json.dumps([actors.default_substrate(), where, UploadChannel.substrate, UploadSession.substrate]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=50, check=True)
    default, where, channel, session = json.loads(out.stdout.strip().splitlines()[-1])
    assert default == "pool" and where.startswith("actors-worker-")
    assert channel is None and session is None  # neither class opts out of the default

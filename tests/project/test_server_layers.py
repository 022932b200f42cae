"""Server, client and command line apart: the server imports neither the
client, the command line nor the benchmarks; the client needs only the
server's wire codec; the command line loads the benchmark harness only for
``bench`` and ``crashtest``.

Each check runs in a fresh interpreter, so nothing another test imported counts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.timeout(60), pytest.mark.pure]  # the checks run in fresh interpreters

PROJECT = ("actors", "supervision", "uploads", "writers", "server", "client", "cli", "benchmarks")


def loaded_after(statement: str) -> list[str]:
    """The project modules a fresh interpreter has loaded after ``statement``."""
    code = (
        f"import json, sys; {statement}; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {PROJECT!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=50, check=True)
    return json.loads(out.stdout)


def in_packages(modules: list[str], *packages: str) -> list[str]:
    """The ``modules`` that belong to one of ``packages``."""
    return [m for m in modules if m.split(".")[0] in packages]


def test_the_server_imports_neither_the_client_nor_the_command_line_nor_the_benchmarks():
    loaded = loaded_after("import server.app, server.graceful")
    assert "server.liveview" in loaded and "server.page.document" in loaded
    assert in_packages(loaded, "client", "cli", "benchmarks") == []


def test_the_client_needs_only_the_wire_codec_of_the_server():
    loaded = loaded_after("import client")
    assert "client.upload" in loaded
    assert in_packages(loaded, "server", "cli", "benchmarks") == ["server", "server.protocol"]
    assert in_packages(loaded, "actors", "supervision", "uploads", "writers") == []


def test_the_command_line_loads_the_benchmarks_only_for_their_commands():
    serve = loaded_after("import cli.main; cli.main.build_parser('serve').parse_args(['serve'])")
    assert "cli.serve" in serve and in_packages(serve, "benchmarks") == []
    assert "cli.send" not in serve
    bench = loaded_after("import cli.main; cli.main.build_parser('bench')")
    assert "benchmarks.cli" in bench and "benchmarks.crashdrill.cli" not in bench


def test_the_chosen_command_is_the_first_word_that_names_one():
    from cli.main import chosen_command

    assert chosen_command(["--log-level", "debug", "send", "serve"]) == "send"
    assert chosen_command(["--help"]) is None

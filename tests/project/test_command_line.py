"""The ``liveupload`` command line as a newcomer meets it: global flags on
either side of the subcommand, a taken port or missing scripts said in words
with what to do, and ``serve``'s first lines: the address to open and what a
missing secret means."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]


def child_env(tmp_path: Path, **extra: str | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp_path)}
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_serve(tmp_path: Path, *flags: str, **env: str | None) -> subprocess.CompletedProcess:
    """``liveupload serve`` expected to refuse to start (a hang fails on the timeout)."""
    return subprocess.run([sys.executable, "-m", "cli", "serve", "--uploads-dir", str(tmp_path / "up"), *flags],
                          capture_output=True, text=True, env=child_env(tmp_path, **env), cwd=tmp_path, timeout=60)


@pytest.mark.pure
@pytest.mark.parametrize("argv", [
    ["--log-level", "debug", "--log-json", "serve"],
    ["serve", "--log-level", "debug", "--log-json"],
    ["--log-json", "serve", "--log-level", "debug"],
])
def test_global_flags_are_accepted_before_or_after_the_subcommand(argv):
    args = build_parser("serve").parse_args(argv)
    assert (args.command, args.log_level, args.log_json) == ("serve", "debug", True)
    plain = build_parser("serve").parse_args(["serve"])
    assert (plain.log_level, plain.log_json) == ("info", False)


@pytest.mark.pure  # the server runs in a child process
def test_a_taken_port_is_named_with_a_way_out(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_serve(tmp_path, "--port", str(port))
    assert proc.returncode == 1, proc.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in proc.stderr
    assert "--port 0" in proc.stderr
    assert "Traceback" not in proc.stderr and "Errno" not in proc.stderr


@pytest.mark.pure  # the server runs in a child process
def test_serve_refuses_to_start_without_phoenix_s_scripts(tmp_path):
    proc = run_serve(tmp_path, "--port", "0", LIVEUPLOAD_NODE_MODULES=str(tmp_path / "nowhere"))
    assert proc.returncode == 1, proc.stderr
    assert "Phoenix's scripts are not installed" in proc.stderr
    assert f"cd {REPO} && npm ci --omit=dev" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.pure  # the server runs in a child process
@pytest.mark.parametrize("secret", [None, "s3cret"])
def test_serve_s_first_lines_are_the_address_and_what_no_secret_means(tmp_path, secret):
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--port", "0", "--log-level", "warning",
         "--uploads-dir", str(tmp_path / "up")],
        stderr=subprocess.PIPE, text=True, env=child_env(tmp_path, LIVEUPLOAD_SECRET=secret), cwd=tmp_path,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert first.startswith("liveupload: open http://127.0.0.1:") and first.endswith("/ (Ctrl-C to stop)\n")
        url = first.split()[2]
        if secret is None:
            assert proc.stderr.readline().startswith("No --secret set: open pages will reload empty after a restart")
        assert "data-phx-main" in httpx.get(url, trust_env=False, timeout=30).text  # the address is served
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)  # not communicate(timeout=...): it would skip what readline() buffered
        rest = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # --log-level after the subcommand took effect: no info lines, the random-secret warning stays.
    assert "serve.starting" not in rest and "serve.listening" not in rest
    assert ("serve.random_secret" in rest) == (secret is None)

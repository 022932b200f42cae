"""A smoke test of the benchmark harness: it runs end to end on tiny parameters,
reports every figure and cleans up after itself (the ``no_leaks`` fixture
checks processes, threads, temp files and sockets). Nothing here is timed:
no assertion is about speed."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pytest

from benchmarks import cli, stats, substrates
from benchmarks.clients import chunks_for
from benchmarks.params import upload_counts
from benchmarks.scenarios import DEFAULT

# The harness runs every substrate itself: once is enough.
pytestmark = pytest.mark.substrates("pool")

TINY = [
    "--quick",
    "--no-progress",
    "--max-uploads", "10",
    "--chunk-bytes", "1000",
    "--chunk-budget", "20",
    "--min-chunks", "2",
    "--repeat", "1",
    "--client-threads", "2",
    "--uploads-per-session", "4",
    "--max-spawn", "10",
    "--spawn-baseline", "5",
    "--pool-spawn", "50",
    "--pool-spawn-small", "20",
    "--pool-channels", "12",
    "--crash-uploads", "6",
    "--blocking-writers", "6",
    "--blocking-seconds", "0.05",
    "--quiet-seconds", "0.02",
    "--server-uploads", "3",
    "--server-chunks", "2",
    "--server-client-processes", "2",
    "--page-events", "50",
    "--wire-scale", "0.0001",
    "--wire-concurrency-scale", "0.1",
    "--wire-repeat", "1",
    "--wire-client-processes", "2",
    "--wire-events", "10",
    "--wire-workload", "W2",  # one upload per run here; tests/stress/test_bench_wire.py runs all three
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    return parser


def test_harness_runs_every_scenario_and_writes_its_figures(tmp_path, capsys):
    args = _parser().parse_args([*TINY, "--out", str(tmp_path)])
    assert args.run(args) == 0

    printed = capsys.readouterr().out
    assert "targets" in printed and "chunks/s" in printed and "µs/spawn" in printed
    # the channels table: chunks/s, MB/s and per-chunk latency p50/p99 (issue 6)
    header = next(line for line in printed.splitlines() if line.lstrip().startswith("writer") and "chunks/s" in line)
    for column in ("chunks/s", "MB/s", "chunk p50 ms", "chunk p99 ms"):
        assert column in header, (column, header)

    results = json.loads((tmp_path / "results.json").read_text())
    machine = results["machine"]
    for key in ("cpu_count", "cpu_model", "memory_total_bytes", "python", "os"):
        assert machine[key], key
    assert machine["versions"]["pykka"]
    assert set(results["scenarios"]) == set(DEFAULT)
    assert not any("error" in section for section in results["scenarios"].values())

    channels = results["scenarios"]["channels"]
    flavors = {(r["writer"], r["flavor"], r["uploads"]) for r in channels["rows"]}
    for uploads in (1, 10):
        for writer in ("null", "tmpfile"):
            for flavor in ("ours", "peer", "direct"):
                assert (writer, flavor, uploads) in flavors
        assert ("tmpfile", "plain", uploads) in flavors
    for row in channels["rows"]:
        assert row["failures"] == 0, row
        assert row["chunks"] == row["uploads"] * row["chunks_per_upload"]
        for figure in ("chunks_per_s", "mb_per_s", "p50_ms", "p99_ms"):
            assert row[figure] is not None and row[figure] >= 0, (figure, row)
    assert {r["uploads"] for r in channels["ratios"]} == {1, 10}
    assert {r["substrate"] for r in channels["rows"] if r["flavor"] == "ours"} == set(substrates.available())
    assert all(r["cost_vs_peer"] is not None for r in channels["ratios"])
    assert any("plain file writes" in t["name"] for t in channels["targets"])

    spawn = results["scenarios"]["spawn"]
    kinds = {(r["kind"], r["substrate"]): r for r in spawn["rows"]}
    ran_on = set(substrates.available())
    assert set(kinds) == {("pykka", "-")} | {(kind, s) for kind in ("channel", "process") for s in ran_on}
    for substrate in ran_on:
        channel = kinds[("channel", substrate)]
        assert channel["count"] == (12 if substrate == "pool" else 10) and channel["limit"] == "flag bound"
        assert channel["us_per_spawn"] > 0 and channel["kb_per_idle"] is not None
    for row in spawn["rows"]:  # every row says what stopped it, and left nothing running
        assert row["limit"] == "flag bound", row
        assert row["left_processes"] == 0 and row["left_threads"] == 0, row
    pooled = sorted(r["count"] for r in spawn["rows"] if r["kind"] == "process" and r["substrate"] == "pool")
    assert pooled == [20, 50]
    spawn_targets = {t["name"]: t for t in spawn["targets"]}
    assert "pooled spawn µs at K=50 vs K=20" in spawn_targets and "pooled stop µs at K=50 vs K=20" in spawn_targets
    assert "bare process spawn on the pool, at the largest K=50" in spawn_targets  # the K it is read at
    assert spawn_targets["processes and threads left once a spawn row stopped (limit rows included)"]["met"] is True
    assert any(t["name"].startswith("idle upload channels") and t["met"] for t in spawn["targets"])
    assert spawn["curve"]

    blocking = results["scenarios"]["blocking"]
    assert [r["case"] for r in blocking["rows"]] == ["thread", "pool, unmarked", "pool, blocking=True"]
    for row in blocking["rows"]:
        assert row["failures"] == 0 and row["chunks"] > 0, row
        assert row["quiet_asks"] > 0 and row["load_asks"] > 0, row
        for figure in ("quiet_p99_ms", "load_p99_ms", "p99_rise_ms", "chunks_per_s", "vs_thread"):
            assert row[figure] is not None, (figure, row)
    by_case = {r["case"]: r for r in blocking["rows"]}
    assert by_case["pool, blocking=True"]["channels_on_threads"] == 6  # the declared writers got threads
    assert by_case["pool, unmarked"]["channels_on_threads"] == 0
    assert len(blocking["targets"]) == 4

    channels_targets = {t["name"]: t for t in channels["targets"]}
    assert channels_targets["10 concurrent uploads complete on the pool (worst writer)"]["value"] == 10
    if {"thread", "pool"} <= ran_on:  # read at U=1000 when the run has it; this one stops at 10 and says so
        vs_thread = channels_targets["no-op chunks/s, pool vs thread substrate at U=10"]
        assert "this run's largest U; the issue's U=1,000" in vs_thread["detail"]

    crash = results["scenarios"]["crash"]
    assert {row["substrate"] for row in crash["rows"]} == ran_on
    for row in crash["rows"]:
        assert row["crashed"] == 3 and row["completed"] == 3
        assert row["closed_once"] == row["released_once"] == 6
        assert row["closed_twice_or_more"] == row["never_closed"] == row["closed_with_wrong_reason"] == 0
        assert row["reports"] == 3 and row["client_saw_exception"] == 3
        assert row["close_p99_ms"] is not None and row["report_p99_ms"] is not None
    assert {row["logs"] for row in crash["rows"]} == {"rendered", "dropped"}

    server = results["scenarios"]["server"]
    if not server.get("skipped"):
        # every substrate as shipped (deflate off, as the clients' sockets negotiated it),
        # then one extra row with the server accepting deflate
        cases = [(r["substrate"], r["server_config"], r["deflate"]) for r in server["rows"]]
        assert cases == [(s, "shipped", "off") for s in substrates.available()] + [("pool", "deflate on", "on")]
        assert all(r["sockets"] > 0 for r in server["rows"])
        lag_targets = [t["name"] for t in server["targets"] if t["name"].startswith("event-loop lag")]
        assert len(lag_targets) == len(substrates.available()) and all("shipped" in n for n in lag_targets)
        for row in server["rows"]:
            assert row["completed"] == 3 and row["failures"] == 0, row
            assert row["bytes"] == 3 * 2 * 1000 and row["chunks_timed"] == 6, row
            assert row["mb_per_s"] > 0 and row["chunk_p99_ms"] is not None, row
            assert row["loop_lag_samples"] >= 0

    wire = results["scenarios"]["wire"]
    assert [(r["workload"], r["server"]) for r in wire["rows"]] == [
        ("W2", "liveupload"), ("W2", "ceiling"), ("W2", "ceiling+events")]
    assert [(r["server"], r["entries"]) for r in wire["events"]] == [("liveupload", 10), ("liveupload", 100), ("ceiling", None)]
    for row in wire["rows"]:
        assert row["completed"] == row["uploads"] and row["arrived_bytes"] == row["expected_bytes"] > 0, row

    for plot in ("channels.png", "spawn.png"):
        assert (tmp_path / plot).read_bytes().startswith(b"\x89PNG")


def test_scenarios_can_be_chosen_and_markdown_printed(tmp_path, capsys):
    args = _parser().parse_args([*TINY, "--out", str(tmp_path), "--markdown", "--no-plots", "crash"])
    assert args.scenario == ["crash"]
    assert args.run(args) == 0
    assert "| substrate |" in capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results["scenarios"]) == ["crash"]
    assert not (tmp_path / "channels.png").exists()


def test_unknown_scenario_is_refused():
    with pytest.raises(SystemExit):
        _parser().parse_args(["nonsense"])


def test_liveupload_bench_command_is_wired():
    from cli.main import COMMANDS

    assert COMMANDS["bench"][0] == "benchmarks.cli"
    args = _parser().parse_args(["--quick", "spawn"])
    assert args.run is cli.run and args.scenario == ["spawn"] and args.preset == "quick"


def test_thread_substrate_is_available():
    assert "thread" in substrates.available()
    with pytest.raises(ValueError):
        with substrates.using("no-such-substrate"):
            pass


def test_percentiles_and_chunk_counts():
    assert stats.percentile([1.0, 2.0], 50) == 1.5
    assert stats.percentile([5.0], 99) == 5.0
    assert math.isnan(stats.percentile([], 50))
    assert stats.percentile(list(range(101)), 99) == 99
    assert upload_counts(1000) == [1, 10, 100, 1000]
    assert upload_counts(3000) == [1, 10, 100, 1000, 3000]
    assert chunks_for(1, 6000, 8) == 6000 and chunks_for(1000, 6000, 8) == 8


def test_spawn_until_limit_goes_past_the_flag_bound_and_names_the_limit(tmp_path, capsys):
    """``--spawn-until-limit`` keeps joining channels past the flag bound until a real
    limit: here a small time budget (a smoke test must not hunt for the machine's
    thread limit). The row says which limit, and everything it started is stopped."""
    args = _parser().parse_args(
        [*TINY, "--out", str(tmp_path), "--no-plots", "--spawn-until-limit", "--spawn-seconds", "0.5", "spawn"]
    )
    assert args.run(args) == 0
    printed = capsys.readouterr().out
    assert "time budget" in printed and "limit" in printed
    spawn = json.loads((tmp_path / "results.json").read_text())["scenarios"]["spawn"]
    channels = {r["substrate"]: r for r in spawn["rows"] if r["kind"] == "channel"}
    assert set(channels) == set(substrates.available())
    for substrate, row in channels.items():
        bound = 12 if substrate == "pool" else 10
        assert row["until_limit"] is True and row["max_spawn"] == bound
        assert row["limit"] == "time budget", row
        assert row["count"] > bound, row  # past the flag bound
        assert row["left_processes"] == 0 and row["left_threads"] == 0, row
    assert all(r["limit"] == "flag bound" for r in spawn["rows"] if r["kind"] != "channel")
    names = {t["name"]: t for t in spawn["targets"]}
    assert names["idle upload channels with their sessions on the pool (of 12 asked), until a limit"]["met"] is True
    assert names["processes and threads left once a spawn row stopped (limit rows included)"]["value"] == 0


def test_a_thread_limit_or_a_memory_floor_stops_a_channel_row_which_then_cleans_up(monkeypatch):
    """The limits the until-limit mode runs into, without running the machine out of
    threads: a join failing as CPython does at the thread limit, and less available
    memory than the reserve. The row names the limit; nothing it started is left (the
    row counts it, and the ``no_leaks`` fixture checks this process)."""
    from benchmarks.params import PRESETS
    from benchmarks.progress import NoProgress
    from benchmarks.scenarios import spawn
    from benchmarks.sessions import SessionFleet

    timeouts = set()

    class ThreadLimitedFleet(SessionFleet):
        def join(self, count=1, on_join=None, timeout=None):
            timeouts.add(timeout)
            joined = []
            for _ in range(count):
                if len(self.channels) >= 7:
                    raise RuntimeError("can't start new thread")
                joined += super().join(1, on_join, timeout)
            return joined

    params = PRESETS["quick"].with_(max_spawn=10, uploads_per_session=4, spawn_until_limit=True, spawn_seconds=60.0)
    monkeypatch.setattr(spawn, "SessionFleet", ThreadLimitedFleet)
    with substrates.using("thread"):
        row, curve = spawn._channels(params, "thread", NoProgress())
    assert (row["limit"], row["count"], row["sessions"]) == ("thread limit", 7, 2)
    assert row["left_processes"] == 0 and row["left_threads"] == 0
    assert [point["live"] for point in curve] == [1, 2, 3, 4, 5, 6, 7]
    assert spawn.JOIN_TIMEOUT in timeouts  # until a limit, a wedged join ends the row rather than hanging it

    monkeypatch.setattr(spawn, "SessionFleet", SessionFleet)
    row, curve = spawn._channels(params.with_(memory_reserve_mb=2**40), "pool", NoProgress())
    assert (row["limit"], row["count"], curve) == ("memory", 0, [])
    assert row["left_processes"] == 0 and row["left_threads"] == 0
    assert spawn._limit_of(MemoryError()) == "memory"


def test_the_wire_server_may_come_from_another_checkout(tmp_path):
    """``--wire-server-checkout`` names the checkout whose ``liveupload serve``
    the wire scenario measures (before/after figures); anything else is refused."""
    root = str(Path(cli.__file__).resolve().parents[1])
    params = cli.params_from_args(_parser().parse_args(["wire", "--wire-server-checkout", root]))
    assert params.wire_server_checkout == root
    assert cli.params_from_args(_parser().parse_args(["wire"])).wire_server_checkout is None
    with pytest.raises(ValueError, match="not a checkout of liveupload"):
        cli.params_from_args(_parser().parse_args(["wire", "--wire-server-checkout", str(tmp_path)]))


def test_the_wire_pyview_interpreter_must_import_pyview(tmp_path):
    """``--wire-pyview PYTHON`` is kept (as an absolute path) only if ``import
    pyview, uvicorn`` works in that interpreter; a missing interpreter or one
    without pyview is refused before anything runs."""
    assert cli.params_from_args(_parser().parse_args(["wire"])).wire_pyview_python is None
    with pytest.raises(ValueError, match="no such interpreter"):
        cli.params_from_args(_parser().parse_args(["wire", "--wire-pyview", str(tmp_path / "nope")]))
    with pytest.raises(ValueError, match="import pyview, uvicorn failed"):
        cli.params_from_args(_parser().parse_args(["wire", "--wire-pyview", sys.executable]))
    # an interpreter that has a (stand-in) pyview package
    (tmp_path / "pyview").mkdir()
    (tmp_path / "pyview" / "__init__.py").write_text("")
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={tmp_path} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    params = cli.params_from_args(_parser().parse_args(["wire", "--wire-pyview", str(python)]))
    assert params.wire_pyview_python == str(python)

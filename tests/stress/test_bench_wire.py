"""The ``wire`` scenario (issue 16's W1-W3 against a bare Starlette/uvicorn
endpoint) on tiny parameters: both servers run as child processes, every
upload's bytes arrive on the server's disk, each row carries its figures and
each workload its targets. Nothing here is timed: no assertion is about speed."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from websockets.asyncio.client import connect

from benchmarks.params import PRESETS
from benchmarks.progress import NoProgress
from benchmarks.scenarios import DEFAULT, wire
from benchmarks.targets import WIRE_CPU_VS_CEILING, WIRE_RATE_VS_CEILING
from benchmarks.wire_baseline import ACK, EVENT_REPLY

pytestmark = [pytest.mark.substrates("pool"), pytest.mark.timeout(180)]

TINY = PRESETS["quick"].with_(
    chunk_bytes=4_000, wire_scale=0.001, wire_concurrency_scale=0.1, wire_repeat=2, wire_client_processes=2,
    wire_events=20,
)


def test_workloads_scale_sizes_and_concurrency():
    assert wire.workloads(PRESETS["full"]) == wire.WORKLOADS
    assert wire.workloads(PRESETS["default"]) == wire.WORKLOADS  # the sizes by default
    assert wire.workloads(PRESETS["quick"]) == {"W1": (20, 320_000), "W2": (1, 4_000_000), "W3": (200, 64_000)}
    # at least one chunk per file and one upload per workload
    assert wire.workloads(TINY) == {"W1": (2, 16_000), "W2": (1, 200_000), "W3": (20, 4_000)}
    assert "wire" in DEFAULT


def test_wire_runs_both_servers_interleaved_and_the_bytes_arrive():
    section = wire.run(TINY, NoProgress())
    rows = {(r["workload"], r["server"]): r for r in section["rows"]}
    assert list(rows) == [(w, s) for w in ("W1", "W2", "W3") for s in ("liveupload", "ceiling", "ceiling+events")]
    for (name, _server), row in rows.items():
        uploads, size = wire.workloads(TINY)[name]
        assert row["runs"] == 2 and len(row["each"]) == 2
        assert row["completed"] == uploads and row["first_failure"] is None, row
        assert row["arrived_bytes"] == row["expected_bytes"] == uploads * size  # on the server's disk, every run
        for run in row["each"]:
            assert run["bytes"] == uploads * size and run["arrived_bytes"] == uploads * size
            # CPU comes in clock ticks (10 ms): a tiny run may measure none
            assert run["server_cpu_seconds"] >= 0 and run["client_cpu_seconds"] >= 0
        assert row["mb_per_s"] > 0 and row["seconds"] > 0, row
        assert row["server_cpu_s_per_gb"] >= 0 and row["client_cpu_s_per_gb"] >= 0, row
    assert [r["workload"] for r in section["ratios"]] == ["W1", "W2", "W3"]
    for ratio in section["ratios"]:
        assert {"mb_per_s_vs_events", "server_cpu_vs_events"} <= set(ratio)
    targets = {t["name"]: t for t in section["targets"]}
    for name, bound in WIRE_CPU_VS_CEILING.items():
        assert targets[f"{name}: server CPU per GB vs the ceiling's"]["limit"] == bound
        assert f"{name}: liveupload send's CPU per GB vs the server's" in targets
        assert targets[f"{name}: bytes on the liveupload server's disk"]["met"] is True
        assert targets[f"{name}: bytes on the ceiling server's disk"]["met"] is True
        assert targets[f"{name}: bytes on the ceiling+events server's disk"]["met"] is True
    for name, bound in WIRE_RATE_VS_CEILING.items():
        assert targets[f"{name}: MB/s vs the ceiling's"]["limit"] == bound
    assert "W2: MB/s vs the ceiling's" not in targets
    # the cost of one progress event, with 10 and 100 entries on the page
    # and the stack's floor for one: the same number of event frames to the bare endpoint
    assert [(r["server"], r["entries"], r["events"]) for r in section["events"]] == [
        ("liveupload", 10, 20), ("liveupload", 100, 20), ("ceiling", None, 20)]
    floor = section["events"][-1]["server_cpu_ms_per_event"]
    for row in section["events"]:
        assert row["server_cpu_ms_per_event"] >= 0 and row["ms_per_event"] > 0, row
    for row in section["events"][:2]:
        assert row["net_of_floor_ms"] == pytest.approx(row["server_cpu_ms_per_event"] - floor)
    event_target = targets["server CPU per progress event with 100 entries on the page"]
    assert event_target["limit"] == 0.2 and event_target["unit"] == "ms"
    assert "the stack's floor for one" in event_target["detail"]


def test_the_bare_endpoint_answers_chunks_and_event_frames_in_order(tmp_path, monkeypatch):
    """The ceiling writes chunks and answers each ``ok``; an event frame gets a
    reply as long as liveupload's to a progress event; and the ``ceiling+events``
    client, which pushes one per rising percentage without waiting, uploads
    the whole file with every answer in its place."""
    folder = tmp_path / "ceiling"
    folder.mkdir()
    server = wire._Server("ceiling", [wire.sys.executable, "-m", "benchmarks.wire_baseline", "--port", "0",
                                      "--dir", str(folder), "--chunk-size", "4000"], str(folder), str(tmp_path))
    try:
        socket_url = wire._socket_url(server.url)

        async def talk() -> list[str]:
            async with connect(socket_url, proxy=None) as ws:
                answers = []
                for frame in (b"x" * 4_000, wire.event_frame(1, 1), b"y" * 10):
                    await ws.send(frame)
                    answers.append(await asyncio.wait_for(ws.recv(), 30))
                return answers

        assert asyncio.run(talk()) == [ACK, EVENT_REPLY, ACK]
        assert server.arrived() == 4_010
        event = json.loads(wire.event_frame(42, 42))
        assert event[3] == "progress" and event[4]["progress"] == 42
        path = tmp_path / "file.bin"
        path.write_bytes(os.urandom(41_000))  # 11 chunks: the percentage rises after every one
        pushed: list[int] = []
        frame = wire.event_frame
        monkeypatch.setattr(wire, "event_frame", lambda ref, percent: pushed.append(percent) or frame(ref, percent))
        outcome = asyncio.run(wire._bare_one(socket_url, str(path), 4_000, events=True))
        assert outcome == (True, 41_000, None)
        assert pushed == [9, 19, 29, 39, 48, 58, 68, 78, 87, 97, 100]
        assert server.arrived() == 41_000
        pushed.clear()
        assert asyncio.run(wire._bare_one(socket_url, str(path), 4_000, events=False)) == (True, 41_000, None)
        assert pushed == []
    finally:
        server.stop()


def test_cpu_seconds_reads_this_process():
    before = wire.cpu_seconds(os.getpid())
    sum(i * i for i in range(300_000))  # some CPU to see
    assert wire.cpu_seconds(os.getpid()) >= before >= 0


def _fake_run(mb_per_s: float, cpu_per_gb: float, size: int) -> dict[str, object]:
    return {"completed": 1, "arrived_bytes": size, "first_failure": None, "mb_per_s": mb_per_s,
            "server_cpu_s_per_gb": cpu_per_gb, "client_cpu_s_per_gb": 1.0, "seconds": 1.0}


def test_the_pyview_way_runs_only_with_a_pyview_interpreter_and_gets_its_own_ratios():
    """``--wire-pyview`` adds the ``pyview`` way (served by that interpreter,
    driven by liveupload's client) and the ``vs pyview`` ratios; without it
    the ways, steps and tables are as before. The pyview server itself needs
    pyview-web, which this environment does not have: it runs by hand
    (``liveupload bench wire --wire-pyview PYTHON``, docs/benchmarks.md)."""
    assert wire.ways(TINY) == wire.RUNS and "pyview" not in wire.ways(TINY)
    with_pyview = TINY.with_(wire_pyview_python="/venv/bin/python")
    assert wire.ways(with_pyview) == {**wire.RUNS, "pyview": "pyview"}
    assert wire.steps(with_pyview) == wire.steps(TINY) + len(TINY.wire_workloads) * TINY.wire_repeat
    assert os.path.isfile(wire.PYVIEW_APP)
    with open(wire.PYVIEW_APP, encoding="utf-8") as f:  # it runs in the other environment: nothing of ours
        imported = {line.split()[1].split(".")[0] for line in f if line.startswith(("import ", "from "))}
    assert imported <= {"__future__", "argparse", "os", "shutil", "socket", "sys", "typing", "uvicorn", "pyview"}

    chosen = {"W2": (1, 1_000)}
    speeds = {"liveupload": (40.0, 8.0), "ceiling": (100.0, 4.0), "ceiling+events": (80.0, 5.0), "pyview": (20.0, 16.0)}
    runs = {("W2", way): [_fake_run(*speeds[way], 1_000)] for way in wire.ways(with_pyview)}
    section = wire._section(with_pyview, chosen, runs)
    assert [r["server"] for r in section["rows"]] == ["liveupload", "ceiling", "ceiling+events", "pyview"]
    assert section["ratios_pyview"] == [{"workload": "W2", "mb_per_s_vs_pyview": 2.0, "server_cpu_vs_pyview": 0.5}]
    names = {t["name"] for t in section["targets"]}
    assert "W2: bytes on the pyview server's disk" in names  # checked as every server's, no other pyview target
    assert not any("pyview" in name for name in names - {"W2: bytes on the pyview server's disk"})
    key, _title, columns = next(spec for spec in wire.TABLES if spec[0] == "ratios_pyview")
    assert [header for _, header, _ in columns] == ["workload", "MB/s vs pyview", "CPU/GB vs pyview"]

    runs = {k: v for k, v in runs.items() if k[1] != "pyview"}
    section = wire._section(TINY, chosen, runs)
    assert section["ratios_pyview"] == [] and [r["server"] for r in section["rows"]][-1] == "ceiling+events"

"""``wire``: issue 16's workloads against the WebSocket stack's own ceiling.

W1: 20 concurrent uploads of 16 MB; W2: 1 upload of 200 MB; W3: 200
concurrent uploads of 1 MB (the issue's sizes, in the default preset and
``--full``; ``--quick`` sends a fiftieth of each file, the concurrency stays).
Each workload runs against two servers (three with ``--wire-pyview``),
child processes started once for the scenario, in three ways (four with
``--wire-pyview``):

* ``liveupload``: ``liveupload serve`` as shipped (``--max-entries 10``, the
  default writer and consume hook, temp files and saved files in this run's
  folder), driven by the Python client exactly as ``liveupload send`` does
  (``client.upload_files_async``: fetch the page, join, validate, preflight,
  one ``lvu:`` topic per entry, 64,000-byte chunks stop-and-wait, progress
  pushed without waiting, submit, read the saved names), one page per 10
  uploads, every page uploading all its files at once;
* ``ceiling``: a bare Starlette WebSocket endpoint under uvicorn with the same
  options (:mod:`benchmarks.wire_baseline`) that writes each binary frame to a
  file and answers it with a short text frame, driven by the same kind of
  client with the protocol reduced to bytes in, ``ok`` back: one connection
  per upload, the same chunks, stop-and-wait;
* ``ceiling+events``: the same endpoint, the same client, which also sends a
  text frame the size of a ``progress`` event whenever an upload's whole
  percentage rises, without waiting for its answer, as Phoenix's client
  does. LiveView's protocol costs a frame in and a frame out per event, so
  this row is what the stack alone costs for the frames the upload server
  handles: the ratios against it show what the server adds to them;
* ``pyview`` (only with ``--wire-pyview PYTHON``): an equivalent upload page
  built with pyview-web (:mod:`benchmarks.pyview_app`), served by that
  interpreter (a virtual environment of its own) under uvicorn, driven by the
  same client as ``liveupload``; the ``vs pyview`` ratios are liveupload's
  figures over its (no targets: the issue's bound is the ceiling).

The clients run in ``wire_client_processes`` OS processes (pages dealt out
among them), all released by one event once ready. Runs interleave
(``liveupload``, ``ceiling``, ``liveupload``, ...; ``wire_repeat`` of each) and
a row is the median of its runs. Figures: MB/s (bytes of completed uploads
over the time from the release to the last client's end, page loads and saves
included), the server's CPU seconds per GB (``utime + stime`` of the server
process from ``/proc/PID/stat``, read just before the release and after the
last client ended), the clients' CPU seconds per GB (``os.times`` in each
client process), and the bytes that arrived on the server's disk (checked,
then deleted, after every run).

Then the cost of one ``progress`` event with 10 and with 100 entries on the
page (``wire_event_entries``): a ``liveupload serve --max-entries 100`` of its
own, one page tracking and preflighting that many entries (no chunks), then
``wire_events`` progress events (each entry in turn, rising), each awaited;
the server's CPU over them from ``/proc``, per event. Beside it, the stack's
floor for one event: the same number of event-sized text frames, each
awaited, sent to the bare endpoint (a frame in, a frame as long as
liveupload's reply out).

Targets (issue 16), as ratios of the two servers' medians in this run: server
CPU per GB at most 2.5x the ceiling's on W1 and W2, 3x on W3; MB/s at least
0.5x the ceiling's on W1 and W3; ``liveupload send`` spends less CPU per GB
than the server it talks to; a progress event with 100 entries on the page
costs at most 0.2 ms of server CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from websockets.asyncio.client import connect

import actors
import benchmarks
from benchmarks.client_processes import ClientProcesses
from benchmarks.params import Params
from benchmarks.progress import Progress
from benchmarks.stats import rate
from benchmarks.targets import (
    PROGRESS_EVENT_ENTRIES,
    PROGRESS_EVENT_MS,
    WIRE_CLIENT_VS_SERVER_CPU,
    WIRE_CPU_VS_CEILING,
    WIRE_RATE_VS_CEILING,
    TableSpec,
    target,
)
from benchmarks.wire_baseline import ACK, EVENT_REPLY
from client import upload_files_async
from client.live_page import LivePage

__all__ = ["NAME", "PER_PAGE", "RUNS", "SERVERS", "TABLES", "WORKLOADS", "event_frame", "run", "steps", "ways",
           "workloads"]

NAME = "wire"
WORKLOADS: dict[str, tuple[int, int]] = {"W1": (20, 16_000_000), "W2": (1, 200_000_000), "W3": (200, 1_000_000)}
"""The issue's workloads: name -> (concurrent uploads, bytes per file)."""
PER_PAGE = 10
"""Files per page (``liveupload serve --max-entries``)."""
SERVERS = ("liveupload", "ceiling")
RUNS: dict[str, str] = {"liveupload": "liveupload", "ceiling": "ceiling", "ceiling+events": "ceiling"}
"""Each way a workload runs -> the server it runs against (``ceiling+events``:
the bare endpoint, with a text frame per rising percentage as well); :func:`ways`
adds ``pyview`` when a pyview interpreter is given."""
PYVIEW_APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pyview_app.py")
"""The pyview-web upload page, run as a script by the pyview interpreter (it imports nothing of ours)."""
WAIT = 900.0
"""Seconds any one run, or a server's start, may take before the scenario gives up."""
GB = 1e9

TABLES: list[TableSpec] = [
    (
        "rows",
        "wire: issue 16's workloads, liveupload serve vs the bare Starlette/uvicorn endpoint (medians)",
        [
            ("workload", "workload", ""),
            ("server", "server", ""),
            ("uploads", "U", "d"),
            ("file_mb", "MB per file", ",.2f"),
            ("completed", "completed", "d"),
            ("runs", "runs", "d"),
            ("mb_per_s", "MB/s", ",.1f"),
            ("server_cpu_s_per_gb", "server CPU s/GB", ",.2f"),
            ("client_cpu_s_per_gb", "client CPU s/GB", ",.2f"),
            ("seconds", "s", ",.2f"),
        ],
    ),
    (
        "events",
        "wire: server CPU per progress event, by entries on the page, and the stack's floor for one",
        [
            ("server", "server", ""),
            ("entries", "entries", "d"),
            ("events", "events", "d"),
            ("server_cpu_ms_per_event", "server CPU ms/event", ".3f"),
            ("net_of_floor_ms", "above the floor ms", ".3f"),
            ("ms_per_event", "wall ms/event", ".3f"),
        ],
    ),
    (
        "ratios",
        "wire: liveupload / ceiling, and the client's CPU against the server's",
        [
            ("workload", "workload", ""),
            ("mb_per_s_ratio", "MB/s ratio", ".2f"),
            ("server_cpu_ratio", "server CPU/GB ratio", ".2f"),
            ("mb_per_s_vs_events", "MB/s vs ceiling+events", ".2f"),
            ("server_cpu_vs_events", "CPU/GB vs ceiling+events", ".2f"),
            ("client_vs_server_cpu", "client/server CPU", ".2f"),
        ],
    ),
    (
        "ratios_pyview",
        "wire: liveupload / pyview-web (the same client; with --wire-pyview)",
        [
            ("workload", "workload", ""),
            ("mb_per_s_vs_pyview", "MB/s vs pyview", ".2f"),
            ("server_cpu_vs_pyview", "CPU/GB vs pyview", ".2f"),
        ],
    ),
]


def workloads(params: Params) -> dict[str, tuple[int, int]]:
    """The run's workloads: the issue's, scaled by ``wire_scale`` (bytes per
    file, at least one chunk) and ``wire_concurrency_scale`` (uploads, at least 1)."""
    out = {}
    for name in params.wire_workloads:
        uploads, size = WORKLOADS[name]
        out[name] = (
            max(1, round(uploads * params.wire_concurrency_scale)),
            max(params.chunk_bytes, round(size * params.wire_scale)) if params.wire_scale < 1 else size,
        )
    return out


def ways(params: Params) -> dict[str, str]:
    """The ways the run's workloads run (:data:`RUNS`, and ``pyview`` if
    ``wire_pyview_python`` is set) -> the server each runs against."""
    return {**RUNS, "pyview": "pyview"} if params.wire_pyview_python else dict(RUNS)


def steps(params: Params) -> int:
    return len(params.wire_workloads) * params.wire_repeat * len(ways(params)) + 1


# -- the clients, each in an OS process of its own -------------------------------------


def _pages(paths: list[str]) -> list[list[str]]:
    return [paths[start : start + PER_PAGE] for start in range(0, len(paths), PER_PAGE)]


async def _liveupload(url: str, paths: list[str]) -> list[tuple[bool, int, str | None]]:
    """Every page of ``paths`` at once, each uploading all its files at once, as ``liveupload send``."""
    pages = _pages(paths)
    batches = await asyncio.gather(
        *(upload_files_async(url, page, concurrency=len(page), timeout=WAIT) for page in pages),
        return_exceptions=True,
    )
    out: list[tuple[bool, int, str | None]] = []
    for page, batch in zip(pages, batches, strict=True):
        if isinstance(batch, BaseException):
            out.extend((False, 0, repr(batch)) for _ in page)
        else:
            out.extend((r.ok and r.saved_as is not None, r.sent, r.error) for r in batch)
    return out


def event_frame(ref: int, percent: int) -> str:
    """A text frame shaped and sized as the ``progress`` event Phoenix's client pushes."""
    return json.dumps(["4", str(ref), "lv:phx-GBenchBenchBench0", "progress",
                       {"event": None, "ref": "phx-GBenchBenchBench0", "entry_ref": "0", "progress": percent}],
                      separators=(",", ":"))


async def _bare_one(url: str, path: str, chunk_bytes: int, events: bool) -> tuple[bool, int, str | None]:
    """One upload to the ceiling: a connection, chunks stop-and-wait, ``ok`` each;
    with ``events``, an event frame (not waited for) whenever the whole
    percentage rises, as Phoenix's client pushes ``progress``. The socket is
    opened as ``client.channels.Socket`` opens its own."""
    sent = 0
    size = os.path.getsize(path)
    percent = unanswered = 0
    try:
        async with connect(url, open_timeout=WAIT, close_timeout=WAIT, max_size=None, proxy=None) as ws:
            with open(path, "rb") as handle:
                while data := handle.read(chunk_bytes):
                    await ws.send(data)
                    while (reply := await asyncio.wait_for(ws.recv(), WAIT)) == EVENT_REPLY:
                        unanswered -= 1
                    if reply != ACK:
                        return False, sent, f"unexpected reply {reply!r}"
                    sent += len(data)
                    if events and sent * 100 // size > percent:
                        percent = sent * 100 // size
                        await ws.send(event_frame(percent, percent))
                        unanswered += 1
            while unanswered:  # the last events' answers, as the page's reply to 100%
                if await asyncio.wait_for(ws.recv(), WAIT) != EVENT_REPLY:
                    return False, sent, "unexpected reply to an event"
                unanswered -= 1
    except Exception as exc:  # noqa: BLE001 - a failed upload is a result
        return False, sent, repr(exc)
    return True, sent, None


def _socket_url(url: str) -> str:
    return re.sub(r"^http", "ws", url.rstrip("/")) + "/upload"


async def _bare(url: str, paths: list[str], chunk_bytes: int, events: bool) -> list[tuple[bool, int, str | None]]:
    socket_url = _socket_url(url)
    return list(await asyncio.gather(*(_bare_one(socket_url, path, chunk_bytes, events) for path in paths)))


def _client_main(conn: Any, go: Any) -> None:
    """A client process: for every ``("run", way, url, paths, chunk_bytes)``
    it is sent (``way``: one of :data:`RUNS`), report ready, wait for ``go``,
    upload, and send back what it saw."""
    actors.configure_logging("warning")
    try:
        while True:
            command = conn.recv()
            if command[0] != "run":
                return
            _, way, url, paths, chunk_bytes = command
            conn.send(("ready",))
            go.wait()
            began, cpu = time.monotonic(), os.times()
            if way in ("liveupload", "pyview"):  # the same client, LiveView's upload protocol
                results = asyncio.run(_liveupload(url, paths))
            else:
                results = asyncio.run(_bare(url, paths, chunk_bytes, events=way == "ceiling+events"))
            ended, cpu_end = time.monotonic(), os.times()
            failures = [error for ok, _, error in results if not ok]
            conn.send(
                (
                    "done",
                    {
                        "began": began,
                        "ended": ended,
                        "uploads": len(paths),
                        "completed": len(paths) - len(failures),
                        "bytes": sum(sent for ok, sent, _ in results if ok),
                        # tick counts as floats: a difference of none may come out as -1e-17
                        "cpu_seconds": max(0.0, round(cpu_end.user + cpu_end.system - cpu.user - cpu.system, 6)),
                        "first_failure": failures[0] if failures else None,
                    },
                )
            )
    except (EOFError, KeyboardInterrupt):
        return
    finally:
        conn.close()


def _shares(paths: list[str], processes: int) -> list[list[str]]:
    """Whole pages dealt out among the processes, round-robin."""
    shares: list[list[str]] = [[] for _ in range(processes)]
    for k, page in enumerate(_pages(paths)):
        shares[k % processes].extend(page)
    return shares


# -- the servers, child processes -----------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """``utime + stime`` of process ``pid`` (all its threads), from ``/proc/PID/stat``."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Server:
    """A server in a child process: its URL, its CPU, the folder it writes into."""

    def __init__(self, name: str, argv: list[str], folder: str, directory: str, root: str | None = None) -> None:
        """``root``: the checkout whose code the child runs (default: this one)."""
        self.name = name
        self.folder = folder
        self.log_path = os.path.join(directory, f"{name}.log")
        root = root or os.path.dirname(os.path.dirname(os.path.abspath(benchmarks.__file__)))
        env = {
            **os.environ,
            "TMPDIR": directory,  # temp files on the saved files' file system, cleaned with the run
            "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
            "PYTHONUNBUFFERED": "1",
        }
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env, cwd=directory)
        self.url = self._wait_listening()

    def _wait_listening(self) -> str:
        deadline = time.monotonic() + 60
        url = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                match = re.search(r"(http://[^\s/]+/)", f.read())
            if match:
                url = match.group(1)
                with contextlib.suppress(OSError):
                    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                    with opener.open(url, timeout=5) as response:
                        if response.status == 200:
                            return url
            time.sleep(0.05)  # polling a child's start-up; no event to wait on across processes
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            raise RuntimeError(f"{self.name} did not start (url {url}): {f.read()[-2000:]}")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def arrived(self) -> int:
        """Bytes in the server's folder; the files are then deleted."""
        total = 0
        for entry in os.scandir(self.folder):
            if entry.is_file():
                total += entry.stat().st_size
                os.unlink(entry.path)
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def _servers(params: Params, directory: str, largest: int) -> Iterator[dict[str, _Server]]:
    saved = os.path.join(directory, "saved")
    ceiling = os.path.join(directory, "ceiling")
    os.makedirs(saved)
    os.makedirs(ceiling)
    python = sys.executable
    started: dict[str, _Server] = {}
    try:
        started["liveupload"] = _Server(
            "liveupload",
            [python, "-m", "cli", "--log-level", "warning", "serve", "--port", "0", "--uploads-dir", saved,
             "--max-entries", str(PER_PAGE), "--max-file-size", str(largest),
             "--chunk-size", str(params.chunk_bytes), "--secret", "liveupload-bench"],
            saved,
            directory,
            params.wire_server_checkout,
        )
        started["ceiling"] = _Server(
            "ceiling",
            [python, "-m", "benchmarks.wire_baseline", "--port", "0", "--dir", ceiling,
             "--chunk-size", str(params.chunk_bytes)],
            ceiling,
            directory,
        )
        if params.wire_pyview_python:
            pyview = os.path.join(directory, "pyview")
            os.makedirs(pyview)
            started["pyview"] = _Server(
                "pyview",
                [params.wire_pyview_python, PYVIEW_APP, "--port", "0", "--dir", pyview,
                 "--max-entries", str(PER_PAGE), "--max-file-size", str(largest),
                 "--chunk-size", str(params.chunk_bytes)],
                pyview,
                directory,
            )
        yield started
    finally:
        for server in started.values():
            server.stop()


# -- the cost of a progress event ---------------------------------------------------------


async def _progress_events(url: str, entries: int, events: int, cpu: Callable[[], float]) -> dict[str, Any]:
    """One page tracking and preflighting ``entries`` entries, then ``events``
    progress events (entry after entry, each rising by one percent), each
    awaited; the server's CPU (``cpu()``) and the wall time over them."""
    page = await LivePage.open(url, timeout=WAIT)
    try:
        (file_input,) = page.view.inputs[:1]
        fields = [
            {"path": file_input.name, "ref": str(i), "last_modified": 0, "name": f"event-{i}.bin",
             "relative_path": "", "type": "application/octet-stream", "size": 1_000_000}
            for i in range(entries)
        ]
        await page.form_event(page.view.form.get("phx-change", "validate"), meta={"_target": file_input.name},
                              uploads={file_input.ref: fields})
        reply = await page.push("allow_upload", {"ref": file_input.ref, "entries": fields})
        if "error" in reply or len(reply.get("entries") or {}) != entries:
            raise RuntimeError(f"the page refused {entries} entries: {reply.get('error')}")
        began, cpu_began = time.perf_counter(), cpu()
        for k in range(events):
            await page.push("progress", {"event": None, "ref": file_input.ref, "entry_ref": str(k % entries),
                                         "progress": min(99, 1 + k // entries)})
        seconds, server_cpu = time.perf_counter() - began, cpu() - cpu_began
    finally:
        await page.close()
    return _event_row("liveupload", entries, events, server_cpu, seconds)


async def _floor_events(url: str, events: int, cpu: Callable[[], float]) -> dict[str, Any]:
    """The stack's floor for one event: ``events`` event-sized text frames to
    the bare endpoint, each awaited (its answer is as long as liveupload's)."""
    async with connect(_socket_url(url), open_timeout=WAIT, close_timeout=WAIT, proxy=None) as ws:
        began, cpu_began = time.perf_counter(), cpu()
        for k in range(events):
            await ws.send(event_frame(k, min(99, 1 + k // 100)))
            if await asyncio.wait_for(ws.recv(), WAIT) != EVENT_REPLY:
                raise RuntimeError("the bare endpoint did not answer an event frame")
        seconds, server_cpu = time.perf_counter() - began, cpu() - cpu_began
    return _event_row("ceiling", None, events, server_cpu, seconds)


def _event_row(server: str, entries: int | None, events: int, cpu: float, seconds: float) -> dict[str, Any]:
    return {
        "server": server,
        "entries": entries,
        "events": events,
        "server_cpu_seconds": cpu,
        "server_cpu_ms_per_event": cpu * 1e3 / events,
        "ms_per_event": seconds * 1e3 / events,
    }


def _event_costs(params: Params, directory: str) -> list[dict[str, Any]]:
    saved = os.path.join(directory, "saved-events")
    os.makedirs(saved)
    most = max(params.wire_event_entries)
    server = _Server(
        "liveupload-events",
        [sys.executable, "-m", "cli", "--log-level", "warning", "serve", "--port", "0", "--uploads-dir", saved,
         "--max-entries", str(most), "--secret", "liveupload-bench"],
        saved,
        directory,
        params.wire_server_checkout,
    )
    try:
        return [
            asyncio.run(_progress_events(server.url, entries, params.wire_events, server.cpu_seconds))
            for entries in params.wire_event_entries
        ]
    finally:
        server.stop()


# -- one run, and the scenario ----------------------------------------------------------


def _run_once(
    way: str, server: _Server, clients: ClientProcesses, paths: list[str], params: Params, expected: int
) -> dict[str, Any]:
    cpu: list[float] = []
    reports = clients.run(
        lambda share: ("run", way, server.url, share, params.chunk_bytes),
        _shares(paths, len(clients.conns)),
        lambda: cpu.append(server.cpu_seconds()),
    )
    server_cpu = server.cpu_seconds() - cpu[0]
    arrived = server.arrived()
    sent = sum(r["bytes"] for r in reports)
    seconds = max(r["ended"] for r in reports) - min(r["began"] for r in reports)
    return {
        "completed": sum(r["completed"] for r in reports),
        "bytes": sent,
        "arrived_bytes": arrived,
        "expected_bytes": expected,
        "seconds": seconds,
        "mb_per_s": rate(sent, seconds) / 1e6,
        "server_cpu_seconds": server_cpu,
        "client_cpu_seconds": sum(r["cpu_seconds"] for r in reports),
        "server_cpu_s_per_gb": server_cpu / (sent / GB) if sent else float("nan"),
        "client_cpu_s_per_gb": sum(r["cpu_seconds"] for r in reports) / (sent / GB) if sent else float("nan"),
        "first_failure": next((r["first_failure"] for r in reports if r["first_failure"]), None),
    }


def _median(runs: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in runs if r[key] == r[key]]  # NaN != NaN
    return statistics.median(values) if values else float("nan")


def _ratio(a: float, b: float) -> float:
    return a / b if b and a == a and b == b else float("nan")


def run(params: Params, progress: Progress) -> dict[str, Any]:
    chosen = workloads(params)
    directory = tempfile.mkdtemp(prefix="liveupload-bench-wire-")
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    try:
        inputs = os.path.join(directory, "in")
        os.makedirs(inputs)
        progress.note("wire: starting the servers and the client processes")
        largest = max(size for _, size in chosen.values())
        with _servers(params, directory, largest) as servers:
            clients = ClientProcesses(_client_main, params.wire_client_processes, "bench-wire-client", WAIT)
            try:
                for name, (uploads, size) in chosen.items():
                    source = os.path.join(inputs, f"{name}.bin")
                    with open(source, "wb") as f:
                        for start in range(0, size, 1 << 20):
                            f.write(os.urandom(min(1 << 20, size - start)))
                    # a name per upload (hard links of one file), so saved names never collide
                    paths = []
                    for k in range(uploads):
                        path = os.path.join(inputs, f"{name}-{k}.bin")
                        os.link(source, path)
                        paths.append(path)
                    for repeat in range(params.wire_repeat):
                        for way, server in ways(params).items():
                            label = f"wire {name} {way} {repeat + 1}/{params.wire_repeat}"
                            progress.note(f"{label}: {uploads} x {size:,} B")
                            runs.setdefault((name, way), []).append(
                                _run_once(way, servers[server], clients, paths, params, uploads * size)
                            )
                            progress.tick(label)
                    for path in [source, *paths]:
                        os.unlink(path)
            finally:
                clients.close()
            progress.note("wire: the stack's floor for one event")
            ceiling = servers["ceiling"]
            floor = asyncio.run(_floor_events(ceiling.url, params.wire_events, ceiling.cpu_seconds))
        progress.note(f"wire: progress events with {', '.join(map(str, params.wire_event_entries))} entries")
        events = _event_costs(params, directory)
        for row in events:
            row["net_of_floor_ms"] = row["server_cpu_ms_per_event"] - floor["server_cpu_ms_per_event"]
        events.append(floor)
        progress.tick("wire: progress events")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    section = _section(params, chosen, runs)
    section["events"] = events
    for row in events:
        if row["entries"] == PROGRESS_EVENT_ENTRIES:
            section["targets"].append(
                target(
                    f"server CPU per progress event with {row['entries']} entries on the page",
                    row["server_cpu_ms_per_event"], "<=", PROGRESS_EVENT_MS, "ms",
                    f"{row['events']} events, awaited one by one; {row['ms_per_event']:.2f} ms each, wall; "
                    f"the stack's floor for one (a frame in and out of the bare endpoint) "
                    f"{floor['server_cpu_ms_per_event']:.3f} ms, so {row['net_of_floor_ms']:.3f} ms above it",
                )
            )
    return section


def _section(
    params: Params, chosen: dict[str, tuple[int, int]], runs: dict[tuple[str, str], list[dict[str, Any]]]
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    ratios: list[dict[str, Any]] = []
    vs_pyview: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    for name, (uploads, size) in chosen.items():
        medians: dict[str, dict[str, Any]] = {}
        for way in ways(params):
            done = runs[(name, way)]
            row = {
                "workload": name,
                "server": way,
                "uploads": uploads,
                "file_bytes": size,
                "file_mb": size / 1e6,
                "runs": len(done),
                "completed": min(r["completed"] for r in done),
                "arrived_bytes": min(r["arrived_bytes"] for r in done),
                "expected_bytes": uploads * size,
                "first_failure": next((r["first_failure"] for r in done if r["first_failure"]), None),
                "each": done,
            }
            for key in ("mb_per_s", "server_cpu_s_per_gb", "client_cpu_s_per_gb", "seconds"):
                row[key] = _median(done, key)
            rows.append(row)
            medians[way] = row
        ours, ceiling, with_events = medians["liveupload"], medians["ceiling"], medians["ceiling+events"]
        ratio: dict[str, Any] = {
            "workload": name,
            "mb_per_s_ratio": _ratio(ours["mb_per_s"], ceiling["mb_per_s"]),
            "server_cpu_ratio": _ratio(ours["server_cpu_s_per_gb"], ceiling["server_cpu_s_per_gb"]),
            "mb_per_s_vs_events": _ratio(ours["mb_per_s"], with_events["mb_per_s"]),
            "server_cpu_vs_events": _ratio(ours["server_cpu_s_per_gb"], with_events["server_cpu_s_per_gb"]),
            "client_vs_server_cpu": _ratio(ours["client_cpu_s_per_gb"], ours["server_cpu_s_per_gb"]),
        }
        ratios.append(ratio)
        if "pyview" in medians:
            pyview = medians["pyview"]
            vs_pyview.append({
                "workload": name,
                "mb_per_s_vs_pyview": _ratio(ours["mb_per_s"], pyview["mb_per_s"]),
                "server_cpu_vs_pyview": _ratio(ours["server_cpu_s_per_gb"], pyview["server_cpu_s_per_gb"]),
            })
        scale = f"{uploads} x {size / 1e6:g} MB, medians of {params.wire_repeat}"
        figures = (
            f"liveupload {ours['mb_per_s']:.1f} MB/s, {ours['server_cpu_s_per_gb']:.2f} s/GB; "
            f"ceiling {ceiling['mb_per_s']:.1f} MB/s, {ceiling['server_cpu_s_per_gb']:.2f} s/GB; "
            f"ceiling+events {with_events['mb_per_s']:.1f} MB/s, {with_events['server_cpu_s_per_gb']:.2f} s/GB "
            f"({ratio['mb_per_s_vs_events']:.2f}x and {ratio['server_cpu_vs_events']:.2f}x of it) ({scale})"
        )
        checks.append(
            target(
                f"{name}: server CPU per GB vs the ceiling's",
                ratio["server_cpu_ratio"], "<=", WIRE_CPU_VS_CEILING[name], "x", figures,
            )
        )
        if name in WIRE_RATE_VS_CEILING:
            checks.append(
                target(
                    f"{name}: MB/s vs the ceiling's",
                    ratio["mb_per_s_ratio"], ">=", WIRE_RATE_VS_CEILING[name], "x", figures,
                )
            )
        checks.append(
            target(
                f"{name}: liveupload send's CPU per GB vs the server's",
                ratio["client_vs_server_cpu"], "<", WIRE_CLIENT_VS_SERVER_CPU, "x",
                f"client {ours['client_cpu_s_per_gb']:.2f} s/GB, server {ours['server_cpu_s_per_gb']:.2f} s/GB",
            )
        )
        for row in medians.values():
            checks.append(
                target(
                    f"{name}: bytes on the {row['server']} server's disk",
                    row["arrived_bytes"], ">=", row["expected_bytes"], "B",
                    f"{row['completed']}/{uploads} completed in every run" + (
                        f"; first failure: {row['first_failure']}" if row["first_failure"] else ""
                    ),
                )
            )
    return {
        "description": __doc__.strip().splitlines()[0],
        "per_page": PER_PAGE,
        "server_checkout": params.wire_server_checkout,
        "workloads": {name: {"uploads": u, "file_bytes": s} for name, (u, s) in chosen.items()},
        "rows": rows,
        "ratios": ratios,
        "ratios_pyview": vs_pyview,
        "targets": checks,
    }


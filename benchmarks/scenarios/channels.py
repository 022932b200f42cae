"""``channels``: U concurrent uploads x C chunks x B bytes through ``UploadChannel``s,
beside their baselines, scaled over U.

For every U (1, 10, 100, 1000 by default) and two writers (``NullWriter``,
which does nothing, and ``TmpFileWriter``), the same chunks go through:

* ``ours``: sessions and channels made by ``join`` (one session per
  ``uploads_per_session`` uploads), on each substrate;
* ``peer``: one plain ``pykka.ThreadingActor`` per upload (``baselines``);
* ``direct``: the same writer calls made by the client threads themselves;
* ``plain`` (TmpFileWriter only): plain Python file writes to as many files.

Clients are stop-and-wait per upload (``benchmarks.clients``). Each upload
carries ``C = max(min_chunks, chunk_budget / U)`` chunks, so every point moves
about the same number of chunks. Only the chunk phase is timed: sessions,
joins and writer ``init`` happen before it, stopping and deleting after it;
the close with ``"done"`` on the last chunk is inside it. Every point runs
``repeat`` times, interleaved with the others; its row is the best run (the
highest chunks/s: on a shared machine noise only ever slows a run down, as
``timeit`` reasons), and ``runs_chunks_per_s`` keeps them all. A ratio is
the median over repeats of the ratio within one repeat, whose two runs were
made back to back (``ours/peer µs/chunk`` is wall time per chunk, the
inverse of chunks/s); the overhead in µs/chunk compares the best runs.

``from_loop`` (issue 16): the per-chunk cost of the path the server takes,
a coroutine on an asyncio loop awaiting ``actors.ask_async`` of one
``UploadChannel`` (a ``NullWriter``, so only the ask is measured),
``LOOP_ASKS`` chunks in a row, per place the channel runs: ``pool`` and
``thread`` (the loop is not bound: every ask wakes another thread and every
reply comes back by ``call_soon_threadsafe``), and ``loop`` (the asking loop
is bound with ``actors.substrates.bind_loop``, as ``liveupload serve`` binds
its own, so the channel runs on it; sessions stay on the pool). CPU is the
whole process's (``time.process_time``), so the workers' and the wake-ups'
share is in it; the best of ``repeat`` runs is kept, and ``vs_pool`` is the
CPU per ask over the pool's, in the same run.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import statistics
import tempfile
import threading
import time
from typing import Any

import structlog

import actors
from actors import substrates as runtime_substrates
from benchmarks import substrates
from benchmarks.clients import DriveResult, chunks_for, drive_async, drive_sync
from benchmarks.params import Params
from benchmarks.progress import Progress
from benchmarks.scenarios.baselines import DirectUpload, PeerFleet, plain_files
from benchmarks.sessions import SessionFleet, fixed_writer
from benchmarks.stats import latency_summary, rate, ratio
from benchmarks.targets import (
    ISSUE_CONCURRENT_UPLOADS,
    NOOP_COST_VS_PEER,
    POOL_VS_THREAD_NOOP,
    POOL_VS_THREAD_UPLOADS,
    TMPFILE_VS_PLAIN,
    TableSpec,
    scale_note,
    target,
)
from benchmarks.writers import NullWriter
from writers import TmpFileWriter

__all__ = ["NAME", "TABLES", "run", "steps"]

NAME = "channels"
WRITERS = ("null", "tmpfile")

log = structlog.get_logger("liveupload.bench")

TABLES: list[TableSpec] = [
    (
        "rows",
        "channels: U uploads x C chunks x B bytes, stop-and-wait",
        [
            ("writer", "writer", ""),
            ("flavor", "through", ""),
            ("substrate", "substrate", ""),
            ("uploads", "U", "d"),
            ("chunks_per_upload", "C", "d"),
            ("chunks_per_s", "chunks/s", ",.0f"),
            ("mb_per_s", "MB/s", ",.1f"),
            ("us_per_chunk", "µs/chunk", ",.1f"),
            ("p50_ms", "chunk p50 ms", ".3f"),
            ("p99_ms", "chunk p99 ms", ".3f"),
        ],
    ),
    (
        "ratios",
        "channels: ours against the baselines (same run)",
        [
            ("writer", "writer", ""),
            ("substrate", "substrate", ""),
            ("uploads", "U", "d"),
            ("vs_direct", "ours/direct chunks/s", ".3f"),
            ("overhead_us", "overhead µs/chunk", ",.1f"),
            ("cost_vs_peer", "ours/peer µs/chunk", ".2f"),
            ("vs_plain", "ours/plain MB/s", ".2f"),
            ("vs_thread", "chunks/s vs thread", ".2f"),
        ],
    ),
    (
        "from_loop",
        "channels: a coroutine asks one channel chunk by chunk (the server's path), per place the channel runs",
        [
            ("channel_on", "channel on", ""),
            ("asks", "asks", ",d"),
            ("cpu_us_per_ask", "CPU µs/ask", ",.1f"),
            ("us_per_ask", "wall µs/ask", ",.1f"),
            ("vs_pool", "CPU vs pool", ".2f"),
        ],
    ),
]

LOOP_ASKS = 20_000
"""Chunks asked in a row by the ``from_loop`` measurement."""


def _flavors(params: Params) -> list[tuple[str, str, str | None]]:
    """``(writer, flavor, substrate)`` of every point measured per U."""
    points: list[tuple[str, str, str | None]] = []
    for writer in WRITERS:
        points.extend((writer, "ours", name) for name in params.substrates)
        points.append((writer, "peer", None))
        points.append((writer, "direct", None))
        if writer == "tmpfile":
            points.append((writer, "plain", None))
    return points


def steps(params: Params) -> int:
    places = sum(name in params.substrates for name in ("pool", "thread", "loop"))
    return (len(params.uploads) * len(_flavors(params)) + places) * params.repeat


def _writer(writer: str, directory: str) -> tuple[Any, Any]:
    if writer == "null":
        return NullWriter, None
    return TmpFileWriter, {"dir": directory}


def _ask_chunk(ref: Any, data: bytes) -> Any:
    return ref.ask(("chunk", data), block=False)


def _measure(
    flavor: str,
    writer: str,
    substrate: str | None,
    uploads: int,
    chunks: int,
    data: bytes,
    params: Params,
    directory: str,
) -> tuple[DriveResult, float, float]:
    """One point: set up, drive the chunk phase, tear down; (result, setup s, teardown s)."""
    size = chunks * len(data)
    writer_cls, opts = _writer(writer, directory)
    began = time.perf_counter()
    if flavor == "ours":
        assert substrate is not None
        with substrates.using(substrate):
            fleet = SessionFleet(
                fixed_writer(writer_cls, opts),
                size=size,
                chunk_size=len(data),
                per_session=params.uploads_per_session,
            )
            try:
                fleet.join(uploads)
                ready = time.perf_counter()
                sends = [functools.partial(_ask_chunk, ref) for ref in fleet.channels]
                result = drive_async(sends, chunks, data, client_threads=params.client_threads)
            finally:
                finished = time.perf_counter()
                fleet.close()
    elif flavor == "peer":
        with PeerFleet(writer_cls, opts, size=size) as peers:
            peers.start(uploads)
            ready = time.perf_counter()
            sends = [functools.partial(_ask_chunk, ref) for ref in peers.refs]
            try:
                result = drive_async(sends, chunks, data, client_threads=params.client_threads)
            finally:
                finished = time.perf_counter()
    else:
        targets: list[Any] = []
        try:
            if flavor == "direct":
                targets.extend(DirectUpload(writer_cls(), opts, size) for _ in range(uploads))
            else:
                targets.extend(plain_files(directory, uploads, size))
            ready = time.perf_counter()
            result = drive_sync(targets, chunks, data, client_threads=params.client_threads)
        finally:
            finished = time.perf_counter()
            for upload in targets:
                upload.finish()
    ended = time.perf_counter()
    return result, ready - began, ended - finished


def _row(
    flavor: str,
    writer: str,
    substrate: str | None,
    uploads: int,
    chunks: int,
    runs: list[tuple[DriveResult, float, float]],
) -> dict[str, Any]:
    rates = [rate(r.chunks, r.seconds) for r, _, _ in runs]
    result, setup, teardown = runs[rates.index(max(rates))]
    cps = rate(result.chunks, result.seconds)
    row: dict[str, Any] = {
        "writer": writer,
        "flavor": flavor,
        "substrate": substrate or "-",
        "uploads": uploads,
        "chunks_per_upload": chunks,
        "chunk_bytes": result.bytes // result.chunks if result.chunks else 0,
        "chunks": result.chunks,
        "bytes": result.bytes,
        "seconds": result.seconds,
        "cpu_seconds": result.cpu_seconds,
        "chunks_per_s": cps,
        "mb_per_s": rate(result.bytes, result.seconds) / 1e6,
        "us_per_chunk": 1e6 / cps if cps else float("nan"),
        "cpu_us_per_chunk": result.cpu_seconds / result.chunks * 1e6 if result.chunks else float("nan"),
        "system_us_per_chunk": result.system_seconds / result.chunks * 1e6 if result.chunks else float("nan"),
        "setup_seconds": setup,
        "teardown_seconds": teardown,
        "failures": len(result.failures),
        # uploads whose every chunk was acknowledged (the last one closes the writer with "done")
        "completed": uploads - len(result.failures),
        "runs_chunks_per_s": rates,
        "runs_mb_per_s": [rate(r.bytes, r.seconds) / 1e6 for r, _, _ in runs],
    }
    row.update({key: value for key, value in latency_summary(result.latencies).items() if key != "n"})
    if result.failures:
        first = next(iter(result.failures.values()))
        row["first_failure"] = repr(first)
        log.warning(
            "bench_upload_failures",
            flavor=flavor,
            writer=writer,
            uploads=uploads,
            failures=len(result.failures),
            first=repr(first),
        )
    return row


def _paired(ours: dict[str, Any], other: dict[str, Any] | None, key: str, invert: bool = False) -> float:
    """The median over repeats of ours / other (or other / ours), each repeat's
    two runs made back to back, so slow spells of the machine cancel out."""
    if other is None:
        return float("nan")
    pairs = [ratio(b, a) if invert else ratio(a, b) for a, b in zip(ours[key], other[key], strict=False)]
    pairs = [p for p in pairs if p == p]
    return statistics.median(pairs) if pairs else float("nan")


def _ratios(rows: list[dict[str, Any]], params: Params) -> list[dict[str, Any]]:
    by = {(r["writer"], r["flavor"], r["substrate"], r["uploads"]): r for r in rows}
    out = []
    for uploads in params.uploads:
        for writer in WRITERS:
            direct = by.get((writer, "direct", "-", uploads))
            peer = by.get((writer, "peer", "-", uploads))
            plain = by.get((writer, "plain", "-", uploads))
            for substrate in params.substrates:
                ours = by.get((writer, "ours", substrate, uploads))
                if ours is None:
                    continue
                out.append(
                    {
                        "writer": writer,
                        "substrate": substrate,
                        "uploads": uploads,
                        "vs_direct": _paired(ours, direct, "runs_chunks_per_s"),
                        "overhead_us": ours["us_per_chunk"] - direct["us_per_chunk"] if direct else float("nan"),
                        "cost_vs_peer": _paired(ours, peer, "runs_chunks_per_s", invert=True),
                        "vs_plain": _paired(ours, plain, "runs_mb_per_s"),
                        "vs_thread": _paired(ours, by.get((writer, "ours", "thread", uploads)), "runs_chunks_per_s"),
                    }
                )
    return out


def _targets(ratios: list[dict[str, Any]], rows: list[dict[str, Any]], params: Params) -> list[dict[str, Any]]:
    checks = []
    at = params.target_uploads if params.target_uploads in params.uploads else params.uploads[-1]
    for substrate in params.substrates:
        mine = [r for r in ratios if r["substrate"] == substrate]
        tmp = next((r for r in mine if r["writer"] == "tmpfile" and r["uploads"] == at), None)
        checks.append(
            target(
                f"TmpFileWriter MB/s vs plain file writes at U={at} ({substrate})",
                tmp["vs_plain"] if tmp else None,
                ">=",
                TMPFILE_VS_PLAIN,
                "x",
            )
        )
        null = [r for r in mine if r["writer"] == "null" and r["cost_vs_peer"] == r["cost_vs_peer"]]
        worst = max(null, key=lambda r: r["cost_vs_peer"], default=None)
        detail = ", ".join(f"U={r['uploads']}: {r['cost_vs_peer']:.2f}x" for r in null)
        checks.append(
            target(
                f"no-op per-chunk cost vs plain Pykka actor, worst U ({substrate})",
                worst["cost_vs_peer"] if worst else None,
                "<=",
                NOOP_COST_VS_PEER,
                "x",
                detail,
            )
        )
    top = params.uploads[-1]
    if "thread" in params.substrates and "pool" in params.substrates:
        # Issue 11 reads it at U=1000, not at the largest U (10,000 with --full); a run
        # that stops short of 1000 reads it at its largest U and says so.
        at_u = POOL_VS_THREAD_UPLOADS if POOL_VS_THREAD_UPLOADS in params.uploads else top
        pool = next(
            (r for r in ratios if r["substrate"] == "pool" and r["writer"] == "null" and r["uploads"] == at_u), None
        )
        others = ", ".join(
            f"U={r['uploads']:,}: {r['vs_thread']:.2f}x"
            for r in ratios
            if r["substrate"] == "pool"
            and r["writer"] == "null"
            and r["uploads"] != at_u
            and r["vs_thread"] == r["vs_thread"]
        )
        short = (
            ""
            if at_u == POOL_VS_THREAD_UPLOADS
            else f"this run's largest U; the issue's U={POOL_VS_THREAD_UPLOADS:,} "
            f"needs --max-uploads {POOL_VS_THREAD_UPLOADS}"
        )
        checks.append(
            target(
                f"no-op chunks/s, pool vs thread substrate at U={at_u:,}",
                pool["vs_thread"] if pool else None,
                ">=",
                POOL_VS_THREAD_NOOP,
                "x",
                "; ".join(x for x in (short, others) if x),
            )
        )
    if "pool" in params.substrates:
        done = [r for r in rows if r["flavor"] == "ours" and r["substrate"] == "pool" and r["uploads"] == top]
        worst = min(done, key=lambda r: r["completed"], default=None)
        checks.append(
            target(
                f"{top:,} concurrent uploads complete on the pool (worst writer)",
                None if worst is None else worst["completed"],
                ">=",
                top,
                "uploads",
                "; ".join(
                    x
                    for x in (
                        ", ".join(f"{r['writer']}: {r['completed']:,}" for r in done),
                        scale_note(top, ISSUE_CONCURRENT_UPLOADS, "uploads"),
                    )
                    if x
                ),
            )
        )
    return checks


class _LoopThread:
    """An asyncio loop on a thread of its own, as uvicorn's is, optionally bound
    as the ``"loop"`` substrate's home."""

    def __init__(self, bind: bool) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-asking-loop", daemon=True)
        self.thread.start()
        self.bound = bind and self.call(_bind())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        if self.bound:
            self.call(_unbind())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


async def _bind() -> bool:
    return runtime_substrates.bind_loop()


async def _unbind() -> None:
    runtime_substrates.unbind_loop()


async def _ask_in_a_row(channel: Any, data: bytes, asks: int) -> tuple[float, float]:
    """CPU and wall seconds of ``asks`` chunk asks awaited one after the other."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(asks):
        if await actors.ask_async(channel, ("chunk", data)) != "ok":
            raise RuntimeError("a chunk was refused")
    return time.process_time() - cpu, time.perf_counter() - wall


def _from_loop_once(channel_on: str, data: bytes, asks: int) -> tuple[float, float]:
    """One run: a fresh session and channel, ``asks`` chunks from a loop; (CPU s, wall s)."""
    on_loop = channel_on == "loop"
    asking = _LoopThread(bind=on_loop)
    try:
        if on_loop and not asking.bound:
            raise RuntimeError("another event loop is bound: the loop row would not run on its own loop")
        with substrates.using("pool" if on_loop else channel_on):
            fleet = SessionFleet(fixed_writer(NullWriter, None), size=len(data) * (asks + 1), chunk_size=len(data))
            try:
                fleet.join(1)
                return asking.call(_ask_in_a_row(fleet.channels[0], data, asks))
            finally:
                fleet.close()
    finally:
        asking.close()


def from_loop(params: Params, data: bytes, progress: Progress) -> list[dict[str, Any]]:
    """The ``from_loop`` rows: CPU and wall per ask, per place the channel runs."""
    places = [name for name in ("pool", "thread", "loop") if name in params.substrates]
    best: dict[str, tuple[float, float]] = {}
    for _ in range(params.repeat):
        for place in places:
            progress.note(f"channels from a loop: channel on {place}")
            cpu, wall = _from_loop_once(place, data, LOOP_ASKS)
            if place not in best or cpu < best[place][0]:
                best[place] = (cpu, wall)
            progress.tick(f"channels from a loop: channel on {place}")
    pool_cpu = best["pool"][0] if "pool" in best else float("nan")
    return [
        {
            "channel_on": place,
            "asks": LOOP_ASKS,
            "cpu_us_per_ask": cpu / LOOP_ASKS * 1e6,
            "us_per_ask": wall / LOOP_ASKS * 1e6,
            "vs_pool": ratio(cpu, pool_cpu),
        }
        for place, (cpu, wall) in best.items()
    ]


def run(params: Params, progress: Progress) -> dict[str, Any]:
    """Measure every point; the section's ``rows``, ``ratios`` and ``targets``."""
    data = os.urandom(params.chunk_bytes)
    directory = tempfile.mkdtemp(prefix="liveupload-bench-")
    runs: dict[tuple[str, str, str | None, int], list[tuple[DriveResult, float, float]]] = {}
    chunks_of: dict[int, int] = {}
    try:
        for uploads in params.uploads:
            chunks = chunks_of[uploads] = chunks_for(uploads, params.chunk_budget, params.min_chunks)
            for _ in range(params.repeat):
                for writer, flavor, substrate in _flavors(params):
                    progress.note(f"channels U={uploads} {writer} {flavor}")
                    measured = _measure(flavor, writer, substrate, uploads, chunks, data, params, directory)
                    runs.setdefault((writer, flavor, substrate, uploads), []).append(measured)
                    progress.tick(f"channels U={uploads} {writer} {flavor}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    rows = [
        _row(flavor, writer, substrate, uploads, chunks_of[uploads], measured)
        for (writer, flavor, substrate, uploads), measured in runs.items()
    ]
    rows.sort(key=lambda r: (WRITERS.index(r["writer"]), r["uploads"]))
    ratios = _ratios(rows, params)
    return {
        "description": __doc__.strip().splitlines()[0],
        "chunk_bytes": params.chunk_bytes,
        "client_threads": params.client_threads,
        "uploads_per_session": params.uploads_per_session,
        "rows": rows,
        "ratios": ratios,
        "from_loop": from_loop(params, data, progress),
        "targets": _targets(ratios, rows, params),
    }

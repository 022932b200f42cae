"""``spawn``: what a process costs to start and to keep, and how many fit.

Three kinds, started K at a time and left idle:

* ``channel``: an ``UploadChannel`` made by a session's ``join`` (the session
  starts it under its ``DynamicSupervisor`` and has it ``init`` a NullWriter),
  with the sessions and supervisors it needs (one per ``uploads_per_session``
  channels) counted in: everything a live upload costs before its first chunk;
* ``process``: a bare ``actors.Process`` with nothing to do (``spawn_baseline``
  of them on threads; on the pool twice, ``pool_spawn_small`` and
  ``pool_spawn``, whose per-process memory is too small to read off a
  thousand: the cost per start and stop at the large K must stay within 2x of
  the small K's, 10,000 vs 1,000,000 with ``--full``, 10,000 vs 100,000 by
  default); a bare process is stopped with ``actors.exit(ref, "shutdown")``
  and ``await_exit``, as a supervisor stops its children;
* ``pykka``: a plain ``pykka.ThreadingActor`` (the peer, no substrate).

Figures: microseconds per spawn (wall time / K), KB of resident memory per
idle one ((RSS after - RSS before) / K, after a warm-up and a garbage
collection on both sides, each row in a fresh child process so that memory
freed earlier in the run cannot hide what the spawns allocate), threads per
spawn, and the stop time. Channels are joined in batches up to the "flag
bound" (``pool_channels`` on the pool: 100,000 with ``--full``; ``max_spawn``
on threads, below the thread limit); a batch that cannot
start ends the run with the limit it hit: ``thread limit`` (no new OS thread
could start), ``memory`` (``MemoryError``, or less than ``memory_reserve_mb``
available) or the error itself. The batches give the scaling curve (cost per
spawn as the live count grows). Every row has a ``limit``: ``flag bound``
when it stopped at the flag.

``--spawn-until-limit`` (``spawn_until_limit``) measures the largest K this
machine reaches: channels are joined past the flag bound, a tenth of it per
batch, until a real limit stops them: ``thread limit`` (the thread substrate's
usual end: one OS thread per channel, session and supervisor), ``memory``, or
``time budget`` (``spawn_seconds`` per row, 120 by default: the pool's memory
outlasts any patience). Whatever stopped a row, everything it started is then
stopped and waited for, and the row records what was left (``left_processes``,
``left_threads``; a target says 0). Each row runs in a child process, so a
limit hit there cannot harm the rest of the run.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import threading
import time
from typing import Any

import psutil
import pykka
import structlog

import actors
from benchmarks import substrates
from benchmarks.leaks import Baseline
from benchmarks.params import Params
from benchmarks.progress import Progress
from benchmarks.sessions import SessionFleet, fixed_writer
from benchmarks.stats import ratio
from benchmarks.targets import (
    ISSUE_POOL_CHANNELS,
    ISSUE_POOL_PROCESSES,
    POOL_IDLE_KB,
    POOL_SPAWN_US,
    SCALE_COST_RATIO,
    TableSpec,
    scale_note,
    target,
)
from benchmarks.writers import NullWriter

__all__ = ["NAME", "TABLES", "run", "steps"]

NAME = "spawn"
BATCHES = 10
JOIN_TIMEOUT = 60.0
"""With ``spawn_until_limit``: the longest one join may take before the row ends on it."""

log = structlog.get_logger("liveupload.bench")

TABLES: list[TableSpec] = [
    (
        "rows",
        "spawn: start K idle processes",
        [
            ("kind", "kind", ""),
            ("substrate", "substrate", ""),
            ("count", "K reached", ",d"),
            ("us_per_spawn", "µs/spawn", ",.1f"),
            ("kb_per_idle", "KB RSS/idle", ",.1f"),
            ("threads_per_spawn", "threads/spawn", ".2f"),
            ("us_per_spawn_last_tenth", "µs/spawn last 10%", ",.1f"),
            ("gc_share_of_spawn", "GC share", ".0%"),
            ("stop_us_per_process", "µs/stop", ",.1f"),
            ("limit", "limit", ""),
        ],
    )
]


class Idle(actors.Process):
    """A process that only waits."""


class PlainIdle(pykka.ThreadingActor):
    """A plain Pykka actor that only waits."""


def steps(params: Params) -> int:
    pooled = len(_pool_counts(params)) - 1 if "pool" in params.substrates else 0
    return len(params.substrates) * (BATCHES + 1) + pooled + 1


def _rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def _thread_limit_reached() -> bool:
    """Can this process start one more OS thread right now?"""
    probe = threading.Thread(target=lambda: None, name="bench-thread-probe")
    try:
        probe.start()
    except RuntimeError:
        return True
    probe.join()
    return False


def _limit_of(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "memory"
    if _thread_limit_reached() or "can't start new thread" in repr(exc):
        return "thread limit"
    return f"error: {exc!r}"


def _row(
    kind: str, substrate: str, count: int, seconds: float, rss: int, threads: int, stop: float, limit: str
) -> dict[str, Any]:
    return {
        "kind": kind,
        "substrate": substrate,
        "count": count,
        "seconds": seconds,
        "us_per_spawn": seconds / count * 1e6 if count else float("nan"),
        "rss_delta_bytes": rss,
        "kb_per_idle": rss / count / 1024 if count else float("nan"),
        "threads_per_spawn": threads / count if count else float("nan"),
        "stop_seconds": stop,
        "stop_us_per_process": stop / count * 1e6 if count else float("nan"),
        "limit": limit,
    }


def _simple(kind: str, substrate: str, count: int) -> dict[str, Any]:
    """Start ``count`` bare processes (or plain Pykka actors), measure, stop them all."""
    start = Idle.start if kind == "process" else PlainIdle.start
    for ref in [start() for _ in range(10)]:  # warm-up
        ref.stop()
    gc.collect()
    baseline = Baseline()
    refs: list[Any] = []
    limit = "flag bound"
    tenth = max(1, count // 10)
    rss0, threads0 = _rss(), threading.active_count()
    collecting = _GcClock()
    began = time.perf_counter()
    first_tenth = last_tenth_began = None
    try:
        with collecting:
            for n in range(count):
                if n == tenth:
                    first_tenth = time.perf_counter() - began
                if n == count - tenth:
                    last_tenth_began = time.perf_counter()
                refs.append(start())
    except Exception as exc:  # noqa: BLE001 - the limit is the result
        limit = _limit_of(exc)
    ended = time.perf_counter()
    seconds = ended - began
    rss, threads = _rss() - rss0, threading.active_count() - threads0
    began = time.perf_counter()
    if kind == "process":  # as a supervisor stops its children: every exit signal, then every wait
        for ref in refs:
            actors.exit(ref, actors.SHUTDOWN)
        for ref in refs:
            actors.await_exit(ref)
    else:
        stops = [ref.stop(block=False) for ref in refs]
        for stopped in stops:
            stopped.get()
    stop = time.perf_counter() - began
    row = _row(kind, substrate, len(refs), seconds, rss, threads, stop, limit)
    # The marginal cost: the first tenth of the spawns (few live) against the last (nearly all live).
    if len(refs) == count and first_tenth is not None and last_tenth_began is not None:
        row["us_per_spawn_first_tenth"] = first_tenth / tenth * 1e6
        row["us_per_spawn_last_tenth"] = (ended - last_tenth_began) / tenth * 1e6
    else:
        row["us_per_spawn_first_tenth"] = row["us_per_spawn_last_tenth"] = float("nan")
    row["gc_share_of_spawn"] = collecting.seconds / seconds if seconds else float("nan")
    row["gc_collections"] = collecting.collections
    refs.clear()
    row["left_processes"], row["left_threads"] = _left_behind(baseline)
    return row


class _GcClock:
    """Time spent in the cyclic garbage collector during a ``with`` block
    (``gc.callbacks``): how much of a spawn's cost is the collector walking
    the live processes, not the runtime."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections: dict[int, int] = {}
        self._began = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._began
            generation = info.get("generation", -1)
            self.collections[generation] = self.collections.get(generation, 0) + 1

    def __enter__(self) -> _GcClock:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_exc: Any) -> None:
        gc.callbacks.remove(self._callback)


def _channels(params: Params, substrate: str, progress: Progress) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Join channels in batches up to the flag bound (``pool_channels`` on the
    pool, ``max_spawn`` elsewhere), or with ``spawn_until_limit`` until a real
    limit; the row and the scaling curve. Whatever stopped it, every session and
    channel is then stopped and waited for, and the row says what was left
    (``left_processes``, ``left_threads``: 0 and 0 when all is clean)."""
    flag = channel_bound(params, substrate)
    bound = None if params.spawn_until_limit else flag
    with SessionFleet(fixed_writer(NullWriter), size=1, chunk_size=1, per_session=params.uploads_per_session) as warm:
        warm.join(min(10, params.uploads_per_session))
    batch = max(1, flag // BATCHES)
    curve: list[dict[str, Any]] = []
    limit = "flag bound"
    baseline = Baseline()
    fleet = SessionFleet(fixed_writer(NullWriter), size=1, chunk_size=1, per_session=params.uploads_per_session)
    rss0, threads0 = _rss(), threading.active_count()
    spawning = 0.0
    deadline = time.monotonic() + params.spawn_seconds if bound is None else None
    rss = threads = count = 0
    try:
        while bound is None or len(fleet.channels) < bound:
            if psutil.virtual_memory().available < params.memory_reserve_mb * 2**20:
                limit = "memory"
                break
            if deadline is not None and time.monotonic() >= deadline:
                limit = "time budget"
                break
            want = batch if bound is None else min(batch, bound - len(fleet.channels))
            before = len(fleet.channels)
            began = time.perf_counter()
            try:
                # A runtime wedged at a limit must end the row, not hang it: one join gets a minute.
                fleet.join(want, timeout=JOIN_TIMEOUT if bound is None else None)
            except Exception as exc:  # noqa: BLE001 - the limit is the result
                limit = _limit_of(exc)
                log.warning("bench_spawn_limit", limit=limit, reached=len(fleet.channels), error=repr(exc))
                break
            finally:
                took = time.perf_counter() - began
                spawning += took
                joined = len(fleet.channels) - before
                if joined:
                    curve.append(
                        {
                            "substrate": substrate,
                            "live": len(fleet.channels),
                            "us_per_spawn": took / joined * 1e6,
                            "rss_mb": psutil.Process().memory_info().rss / 2**20,
                        }
                    )
            label = f"spawn {substrate} channels {len(fleet.channels):,}"
            if len(curve) <= BATCHES:
                progress.tick(label)  # the steps counted for this row; past the flag bound, only notes
            else:
                progress.note(label)
        count = len(fleet.channels)
        rss, threads = _rss() - rss0, threading.active_count() - threads0
    except MemoryError:
        limit, count = "memory", len(fleet.channels)
    finally:
        progress.note(f"spawn {substrate}: stopping {len(fleet.channels):,} channels")
        began = time.perf_counter()
        stop_error = _close(fleet)
        stop = time.perf_counter() - began
    left_processes, left_threads = _left_behind(baseline)
    for _ in range(len(curve), BATCHES):
        progress.tick(f"spawn {substrate} channels {count:,}")  # a row stopped early still uses its steps
    row = _row("channel", substrate, count, spawning, rss, threads, stop, limit)
    row["sessions"] = -(-count // params.uploads_per_session)
    row["max_spawn"] = flag
    row["until_limit"] = bool(params.spawn_until_limit)
    row["left_processes"] = left_processes
    row["left_threads"] = left_threads
    if stop_error:
        row["stop_error"] = stop_error
    return row, curve


def _close(fleet: SessionFleet) -> str | None:
    """Stop the fleet; ``None``, or what went wrong (a limit can leave a session
    half-made: the row reports it rather than losing every other figure)."""
    started = [*fleet.sessions, *fleet.channels]
    try:
        fleet.close()
    except Exception as exc:  # noqa: BLE001 - reported in the row
        log.warning("bench_spawn_stop_failed", error=repr(exc))
        for ref in started:  # what would not stop is killed (a session's supervisor is linked to it)
            if ref.is_alive():
                actors.exit(ref, actors.KILL)
        return repr(exc)
    return None


def _left_behind(before: Baseline, grace: float = 30.0) -> tuple[int, int]:
    """Processes and threads started since ``before`` still there, after waiting
    (with a deadline) for exiting ones to finish: the proof that a row, even one
    stopped by a limit, cleaned up after itself. The pool's spare workers park
    for a few seconds before they leave: the grace covers them."""
    before.settle(grace)
    left = before.leaks(("processes", "threads"))
    return len(left["processes"]), len(left["threads"])


def channel_bound(params: Params, substrate: str) -> int:
    """How many channels the spawn scenario joins on ``substrate`` (the flag
    bound; with ``spawn_until_limit``, the size of a batch is a tenth of it)."""
    return params.pool_channels if substrate == "pool" else params.max_spawn


class _PipeProgress:
    """Progress of a child process, sent to the parent's bar through a pipe."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def tick(self, label: str) -> None:
        self.conn.send(("tick", label))

    def note(self, label: str) -> None:
        self.conn.send(("note", label))


def _child_main(conn: Any, what: str, args: tuple[Any, ...]) -> None:
    """In a fresh interpreter: measure one row and send it back."""
    actors.configure_logging("warning")
    try:
        progress = _PipeProgress(conn)
        substrate = args[1]
        with substrates.using(substrate) if substrate != "-" else contextlib.nullcontext():
            if what == "channels":
                result: Any = _channels(args[0], substrate, progress)
            else:
                result = _simple(args[0], substrate, args[2])
        conn.send(("result", result))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        conn.send(("error", repr(exc)))
    finally:
        conn.close()


def _in_child(what: str, args: tuple[Any, ...], progress: Progress, timeout: float = 1800.0) -> Any:
    """Run one measurement in a fresh child process and return its result.

    A fresh interpreter's resident memory grows only with what the measurement
    allocates (a long-lived one reuses memory freed by earlier scenarios, which
    hides the cost of Python objects), and a limit hit there (no thread left)
    cannot harm the rest of the run.
    """
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(send, what, args), name=f"bench-spawn-{what}")
    child.start()
    send.close()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if not receive.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"spawn measurement {what} {args[1:]} took over {timeout}s")
            try:
                kind, payload = receive.recv()
            except EOFError:
                child.join()
                raise RuntimeError(f"spawn measurement {what} died with exit code {child.exitcode}") from None
            if kind == "tick":
                progress.tick(payload)
            elif kind == "note":
                progress.note(payload)
            elif kind == "result":
                return payload
            else:
                raise RuntimeError(f"spawn measurement {what} failed: {payload}")
    finally:
        receive.close()
        child.join(timeout=60)
        if child.is_alive():
            child.kill()
            child.join()


def run(params: Params, progress: Progress) -> dict[str, Any]:
    """The section's ``rows`` (one per kind and substrate, two for bare pooled
    processes: ``pool_spawn_small`` and ``pool_spawn``), ``curve`` and ``targets``.

    Each row is measured in a fresh child process (see ``_in_child``)."""
    rows: list[dict[str, Any]] = []
    curve: list[dict[str, Any]] = []
    for substrate in params.substrates:
        row, points = _in_child("channels", (params, substrate), progress)
        rows.append(row)
        curve.extend(points)
        if substrate == "pool":
            for count in _pool_counts(params):
                rows.append(_in_child("simple", ("process", substrate, count), progress))
                progress.tick(f"spawn {substrate} processes {count:,}")
        else:
            rows.append(_in_child("simple", ("process", substrate, params.spawn_baseline), progress))
            progress.tick(f"spawn {substrate} processes")
    rows.append(_in_child("simple", ("pykka", "-", params.spawn_baseline), progress))
    progress.tick("spawn pykka actors")
    return {
        "description": __doc__.strip().splitlines()[0],
        "uploads_per_session": params.uploads_per_session,
        "rows": rows,
        "curve": curve,
        "targets": _targets(rows, params),
    }


def _pool_counts(params: Params) -> list[int]:
    return sorted({params.pool_spawn_small, params.pool_spawn})


def _targets(rows: list[dict[str, Any]], params: Params) -> list[dict[str, Any]]:
    checks = []
    cleaned = [r for r in rows if "left_processes" in r]
    if cleaned:
        left = {f"{r['kind']} {r['substrate']}": r["left_processes"] + r["left_threads"] for r in cleaned}
        checks.append(
            target(
                "processes and threads left once a spawn row stopped (limit rows included)",
                max(left.values()),
                "<=",
                0,
                "",
                ", ".join(f"{k} ({r['limit']}): {v}" for (k, v), r in zip(left.items(), cleaned, strict=False))
                + "".join(f"; {r['substrate']} stop failed: {r['stop_error']}" for r in cleaned if r.get("stop_error")),
            )
        )
    pooled = sorted((r for r in rows if r["kind"] == "process" and r["substrate"] == "pool"), key=lambda r: r["count"])
    if not pooled:
        return checks
    small, large = pooled[0], pooled[-1]
    # Read at the largest K: the cost per spawn grows with the live count (the cyclic
    # GC walks them all), so the largest K is the honest figure; the name says which.
    checks.append(
        target(
            f"bare process spawn on the pool, at the largest K={large['count']:,}",
            large["us_per_spawn"],
            "<=",
            POOL_SPAWN_US,
            "µs",
            "; ".join(
                x
                for x in (
                    f"{small['us_per_spawn']:.1f} µs at K={small['count']:,}" if small is not large else "",
                    scale_note(large["count"], ISSUE_POOL_PROCESSES, "processes"),
                )
                if x
            ),
        )
    )
    checks.append(
        target(
            f"resident memory per idle pooled process, at K={large['count']:,}",
            large["kb_per_idle"],
            "<=",
            POOL_IDLE_KB,
            "KB",
        )
    )
    checks.append(
        target(
            f"idle pooled processes reached (of {params.pool_spawn:,} asked)",
            large["count"],
            ">=",
            params.pool_spawn,
            "",
            scale_note(params.pool_spawn, ISSUE_POOL_PROCESSES, "processes")
            + ("" if large["limit"] == "flag bound" else f"; stopped by {large['limit']}"),
        )
    )
    if large["count"] > small["count"]:
        note = scale_note(large["count"], ISSUE_POOL_PROCESSES, "processes")
        spawn_detail = (
            f"{large['us_per_spawn']:.1f} vs {small['us_per_spawn']:.1f} µs "
            f"(cyclic GC {large['gc_share_of_spawn']:.0%} "
            f"vs {small['gc_share_of_spawn']:.0%} of it); marginal (last tenth of the spawns) "
            f"{large['us_per_spawn_last_tenth']:.1f} vs {small['us_per_spawn_last_tenth']:.1f} µs"
        )
        checks.append(
            target(
                f"pooled spawn µs at K={large['count']:,} vs K={small['count']:,}",
                ratio(large["us_per_spawn"], small["us_per_spawn"]),
                "<=",
                SCALE_COST_RATIO,
                "x",
                "; ".join(x for x in (spawn_detail, note) if x),
            )
        )
        checks.append(
            target(
                f"pooled stop µs at K={large['count']:,} vs K={small['count']:,}",
                ratio(large["stop_us_per_process"], small["stop_us_per_process"]),
                "<=",
                SCALE_COST_RATIO,
                "x",
                "; ".join(
                    x
                    for x in (f"{large['stop_us_per_process']:.1f} vs {small['stop_us_per_process']:.1f} µs", note)
                    if x
                ),
            )
        )
    channels = next((r for r in rows if r["kind"] == "channel" and r["substrate"] == "pool"), None)
    if channels is not None:
        checks.append(
            target(
                f"idle upload channels with their sessions on the pool (of {params.pool_channels:,} asked)"
                + (", until a limit" if channels.get("until_limit") else ""),
                channels["count"],
                ">=",
                params.pool_channels,
                "",
                "; ".join(
                    x
                    for x in (
                        f"{channels['kb_per_idle']:.1f} KB and {channels['us_per_spawn']:.0f} µs each",
                        scale_note(
                            channels["count"] if channels.get("until_limit") else params.pool_channels,
                            ISSUE_POOL_CHANNELS,
                            "channels",
                        ),
                        "" if channels["limit"] == "flag bound" else f"stopped by {channels['limit']}",
                    )
                    if x
                ),
            )
        )
    return checks

"""``blocking``: writers that block, and what they do to an unrelated process.

``blocking_writers`` uploads (200) run through sessions and channels at
once, stop-and-wait, for ``blocking_seconds``; each writer blocks
``blocking_wait`` (10 ms) in every ``write_chunk`` with
``threading.Event().wait``, as a writer streaming to a slow peer would.
Meanwhile a bystander, a process with nothing to do with the uploads, is
asked ``"ping"`` by a thread of the harness every ``ping_every`` (1 ms), and
every ask's round trip is timed. The bystander is first pinged the same way
for ``quiet_seconds`` without the load, on the same substrate, so the figure
is the rise of its p99 under the load.

Three cases:

* ``thread``: everything on the thread substrate (a thread per process), the
  reference: blocking there costs only the blocking thread;
* ``pool, unmarked``: everything on the pool; the writer does not say it
  blocks (``WaitingWriter``), so the scheduler must notice the stuck
  workers and hand their places on;
* ``pool, blocking=True``: the same writer declaring ``blocking = True``
  (``DeclaredWaitingWriter``): the session starts its channel on a dedicated
  thread; the sessions and the bystander stay on the pool.

Figures: the bystander's ask latency p50/p99 without and with the load, the
rise of its p99, the blockers' aggregate chunks/s (the ideal is
``writers / wait``) against the thread case's, the peak thread count and the
scheduler's hand-offs during the load. Targets (issue 11): the p99 rises by
at most 5 ms and chunks/s is at least 0.8x the thread substrate's.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from typing import Any

import actors
from actors.substrates.pool import scheduler
from benchmarks import substrates
from benchmarks.clients import drive_async
from benchmarks.params import Params
from benchmarks.progress import Progress
from benchmarks.sessions import SessionFleet, fixed_writer
from benchmarks.stats import latency_summary, rate, ratio
from benchmarks.targets import BLOCKING_P99_INCREASE_MS, BLOCKING_VS_THREAD, TableSpec, target
from benchmarks.writers import DeclaredWaitingWriter, WaitingWriter

__all__ = ["NAME", "TABLES", "Bystander", "Pinger", "ping_for", "run", "steps"]

NAME = "blocking"
WAIT = 60.0

CASES: tuple[tuple[str, str, type[WaitingWriter]], ...] = (
    ("thread", "thread", WaitingWriter),
    ("pool, unmarked", "pool", WaitingWriter),
    ("pool, blocking=True", "pool", DeclaredWaitingWriter),
)
"""``(case, substrate of every process, writer class)``."""

TABLES: list[TableSpec] = [
    (
        "rows",
        "blocking: writers blocking in every chunk beside a bystander process asked every ms",
        [
            ("case", "case", ""),
            ("writers", "writers", "d"),
            ("wait_ms", "block ms", ".0f"),
            ("quiet_p50_ms", "ask p50 quiet", ".3f"),
            ("quiet_p99_ms", "ask p99 quiet", ".3f"),
            ("load_p50_ms", "ask p50 loaded", ".3f"),
            ("load_p99_ms", "ask p99 loaded", ".3f"),
            ("p99_rise_ms", "p99 rise ms", ".3f"),
            ("chunks_per_s", "blockers chunks/s", ",.0f"),
            ("vs_ideal", "of ideal", ".2f"),
            ("vs_thread", "vs thread", ".2f"),
            ("peak_threads", "peak threads", "d"),
            ("handoffs", "hand-offs", ",d"),
        ],
    )
]


class Bystander(actors.Process):
    """A process unrelated to the uploads: answers ``"pong"``."""

    def on_receive(self, message: Any) -> Any:
        return "pong"


def _ask(ref: Any) -> None:
    reply = ref.ask("ping", timeout=WAIT)
    if reply != "pong":
        raise RuntimeError(f"the bystander answered {reply!r}")


def ping_for(ref: Any, seconds: float, every: float) -> list[float]:
    """Ask ``ref`` from this thread for ``seconds``, pausing ``every`` between
    asks; the round trips in seconds."""
    latencies: list[float] = []
    clock = time.perf_counter
    pause = threading.Event()  # never set: its wait is the pacing
    end = clock() + seconds
    while True:
        began = clock()
        if began >= end and latencies:
            return latencies
        _ask(ref)
        latencies.append(clock() - began)
        pause.wait(every)


class Pinger:
    """Asks ``ref`` from a thread of its own, every ``every`` seconds, for the
    length of a ``with`` block; records each round trip and the peak thread count."""

    def __init__(self, ref: Any, every: float) -> None:
        self.ref = ref
        self.every = every
        self.latencies: list[float] = []
        self.peak_threads = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-pinger")

    def _run(self) -> None:
        clock = time.perf_counter
        try:
            while not self._stop.is_set():
                began = clock()
                _ask(self.ref)
                self.latencies.append(clock() - began)
                self.peak_threads = max(self.peak_threads, threading.active_count())
                self._stop.wait(self.every)
        except BaseException as exc:  # noqa: BLE001 - re-raised by __exit__
            self.error = exc

    def __enter__(self) -> Pinger:
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        if self.error is not None:
            raise self.error


def steps(params: Params) -> int:
    return len(_cases(params))


def _cases(params: Params) -> list[tuple[str, str, type[WaitingWriter]]]:
    return [case for case in CASES if case[1] in params.substrates]


def _handoffs() -> int:
    return scheduler().handoffs


def _measure(params: Params, case: str, substrate: str, writer: type[WaitingWriter]) -> dict[str, Any]:
    data = os.urandom(params.blocking_chunk_bytes)
    ceiling = int(params.blocking_seconds / params.blocking_wait) + 2  # chunks one upload can possibly send
    with substrates.using(substrate):
        bystander = Bystander.start()
        try:
            _ask(bystander)  # warm
            quiet = ping_for(bystander, params.quiet_seconds, params.ping_every)
            fleet = SessionFleet(
                fixed_writer(writer, {"wait": params.blocking_wait}),
                size=ceiling * len(data),
                chunk_size=len(data),
                per_session=min(params.uploads_per_session, params.blocking_writers),
            )
            try:
                channels = fleet.join(params.blocking_writers)
                sends = [functools.partial(_ask_chunk, ref) for ref in channels]
                handoffs = _handoffs()
                with Pinger(bystander, params.ping_every) as pinger:
                    result = drive_async(
                        sends,
                        ceiling,
                        data,
                        client_threads=params.client_threads,
                        duration=params.blocking_seconds,
                        timeout=WAIT,
                    )
                handoffs = _handoffs() - handoffs
                channel_threads = sum(1 for ref in channels if _on_thread(ref))
            finally:
                fleet.close()
        finally:
            bystander.stop()
            actors.await_exit(bystander, WAIT)
    quiet_stats, load_stats = latency_summary(quiet), latency_summary(pinger.latencies)
    chunks_per_s = rate(result.chunks, result.seconds)
    ideal = params.blocking_writers / params.blocking_wait
    return {
        "case": case,
        "substrate": substrate,
        "writer": writer.__name__,
        "writers": params.blocking_writers,
        "wait_ms": params.blocking_wait * 1e3,
        "seconds": result.seconds,
        "chunks": result.chunks,
        "chunks_per_s": chunks_per_s,
        "ideal_chunks_per_s": ideal,
        "vs_ideal": ratio(chunks_per_s, ideal),
        "chunk_p50_ms": latency_summary(result.latencies)["p50_ms"],
        "chunk_p99_ms": latency_summary(result.latencies)["p99_ms"],
        "failures": len(result.failures),
        "quiet_asks": quiet_stats["n"],
        "quiet_p50_ms": quiet_stats["p50_ms"],
        "quiet_p99_ms": quiet_stats["p99_ms"],
        "load_asks": load_stats["n"],
        "load_p50_ms": load_stats["p50_ms"],
        "load_p99_ms": load_stats["p99_ms"],
        "load_max_ms": load_stats["max_ms"],
        "p99_rise_ms": load_stats["p99_ms"] - quiet_stats["p99_ms"],
        "peak_threads": pinger.peak_threads,
        "handoffs": handoffs if substrate == "pool" else None,
        "channels_on_threads": channel_threads,
    }


def _ask_chunk(ref: Any, data: bytes) -> Any:
    return ref.ask(("chunk", data), block=False)


def _on_thread(ref: Any) -> bool:
    """Did this channel get a dedicated thread (its class or start argument chose one)?"""
    mailbox = getattr(ref, "actor_inbox", None)
    return getattr(mailbox, "owner", None) is None  # the pool sets ``owner`` on the mailboxes it runs


def run(params: Params, progress: Progress) -> dict[str, Any]:
    """The section's ``rows`` (one per case) and ``targets``."""
    rows = []
    for case, substrate, writer in _cases(params):
        progress.note(f"blocking: {case}")
        rows.append(_measure(params, case, substrate, writer))
        progress.tick(f"blocking: {case}")
    thread = next((r for r in rows if r["case"] == "thread"), None)
    for row in rows:
        row["vs_thread"] = ratio(row["chunks_per_s"], thread["chunks_per_s"]) if thread else float("nan")
    checks = []
    for row in rows:
        if row["substrate"] != "pool":
            continue
        checks.append(
            target(
                f"bystander ask p99 rise under {row['writers']} blocking writers ({row['case']})",
                row["p99_rise_ms"],
                "<=",
                BLOCKING_P99_INCREASE_MS,
                "ms",
                f"p99 {row['quiet_p99_ms']:.2f} ms quiet, {row['load_p99_ms']:.2f} ms loaded"
                + (f"; on threads {thread['p99_rise_ms']:+.2f} ms" if thread else ""),
            )
        )
        checks.append(
            target(
                f"blocking writers' chunks/s vs thread substrate ({row['case']})",
                row["vs_thread"],
                ">=",
                BLOCKING_VS_THREAD,
                "x",
                f"{row['chunks_per_s']:,.0f} vs {thread['chunks_per_s']:,.0f} chunks/s "
                f"(ideal {row['ideal_chunks_per_s']:,.0f})"
                if thread
                else "the thread substrate was not run",
            )
        )
    return {
        "description": __doc__.strip().splitlines()[0],
        "blocking_wait": params.blocking_wait,
        "blocking_seconds": params.blocking_seconds,
        "quiet_seconds": params.quiet_seconds,
        "ping_every": params.ping_every,
        "gil_switch_interval_ms": sys.getswitchinterval() * 1e3,
        "rows": rows,
        "targets": checks,
    }

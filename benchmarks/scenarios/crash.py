"""``crash``: a share of uploads crash in ``write_chunk``; how fast is the crash
cleaned up, and is every writer closed exactly once?

U uploads of C chunks run at once through sessions and channels, each with a
``FaultyWriter``; a seeded ``crash_share`` of them get ``fault="raise"`` at a
chunk drawn from 1..C. Every upload's journal is a ``writers.Journal``, whose timed
``("chunk", n)`` entry, appended just before the fault fires, is the crash
moment, and whose ``("close", "cancel")`` entry is the close moment. The
supervisor's ``supervisor_report`` (a temporary child that crashed is
reported ``child_terminated``) is stamped by an ``EventClock``. It runs twice:
with crash logs rendered as in production (the log handler writes them to
``os.devnull`` meanwhile; the targets are read on this run), and with them
dropped once stamped, which leaves the runtime's own cost.

Figures: latency from the exception to ``close("cancel")`` and to the
supervisor's report (p50/p99), and the counts: uploads crashed and completed,
writers closed exactly once (and with which reason), released exactly once,
reports and crash logs seen.
"""

from __future__ import annotations

import functools
import os
import random
from collections import Counter
from typing import Any

import structlog

import actors
from benchmarks import substrates
from benchmarks.clients import drive_async
from benchmarks.events import EventClock, quiet_handlers
from benchmarks.params import Params
from benchmarks.progress import Progress
from benchmarks.sessions import SessionFleet
from benchmarks.stats import latency_summary
from benchmarks.targets import CRASH_P99_MS, TableSpec, target
from writers import FaultInjected, FaultyWriter, Journal

__all__ = ["NAME", "TABLES", "run", "steps"]

NAME = "crash"
WAIT = 60.0

log = structlog.get_logger("liveupload.bench")

TABLES: list[TableSpec] = [
    (
        "rows",
        "crash: writers raising in write_chunk, latency from the exception",
        [
            ("substrate", "substrate", ""),
            ("logs", "crash logs", ""),
            ("uploads", "U", "d"),
            ("crashed", "crashed", "d"),
            ("completed", "completed", "d"),
            ("close_p50_ms", "to close p50 ms", ".3f"),
            ("close_p99_ms", "to close p99 ms", ".3f"),
            ("report_p50_ms", "to report p50 ms", ".3f"),
            ("report_p99_ms", "to report p99 ms", ".3f"),
            ("closed_once", "closed once", "d"),
            ("released_once", "released once", "d"),
            ("reports", "reports", "d"),
        ],
    )
]


LOGS = ("rendered", "dropped")
"""How crash logs are treated: rendered as in production (the targets are read
there), or dropped once stamped, which leaves the runtime's own cost."""


def steps(params: Params) -> int:
    return len(params.substrates) * len(LOGS)


def _ask_chunk(ref: Any, data: bytes) -> Any:
    return ref.ask(("chunk", data), block=False)


def _plan(params: Params) -> dict[str, int | None]:
    """Entry ref -> the chunk its writer raises at (``None``: it completes)."""
    rng = random.Random(params.seed)
    crashing = set(rng.sample(range(params.crash_uploads), round(params.crash_uploads * params.crash_share)))
    return {
        str(k): (rng.randint(1, params.crash_chunks) if k in crashing else None) for k in range(params.crash_uploads)
    }


def _measure(params: Params, substrate: str, logs: str) -> dict[str, Any]:
    plan = _plan(params)
    journals = {ref: Journal() for ref in plan}

    def writer_factory(_name: str, entry: dict[str, Any], _session: Any) -> tuple[Any, dict[str, Any]]:
        at = plan[entry["ref"]]
        opts: dict[str, Any] = {"journal": journals[entry["ref"]], "journal_release": True}
        if at is not None:
            opts.update(fault="raise", at_chunk=at)
        return (FaultyWriter, opts)

    data = os.urandom(params.crash_chunk_bytes)
    clock = EventClock(["supervisor_report", "process_crashed"], keep=("offender", "process"), drop=logs == "dropped")
    crashed_refs = [ref for ref, at in plan.items() if at is not None]
    with substrates.using(substrate), quiet_handlers(), clock.installed():
        fleet = SessionFleet(
            writer_factory,
            size=params.crash_chunks * len(data),
            chunk_size=len(data),
            per_session=params.uploads_per_session,
        )
        try:
            channels = fleet.join(params.crash_uploads)
            sends = [functools.partial(_ask_chunk, ref) for ref in channels]
            result = drive_async(sends, params.crash_chunks, data, client_threads=params.client_threads)
            for k, ref in enumerate(channels):
                if plan[str(k)] is not None:
                    actors.await_exit(ref, WAIT)  # its terminate closed the writer
            reports_complete = clock.wait_for("supervisor_report", len(crashed_refs), WAIT)
        finally:
            fleet.close()
    raised_by_client = sum(1 for failure in result.failures.values() if isinstance(failure, FaultInjected))
    to_close, to_report = [], []
    # A channel's child id is ("upload", config ref, entry ref).
    reports = {fields["offender"]["id"][-1]: moment for moment, fields in clock.of("supervisor_report")}
    for entry_ref in crashed_refs:
        journal = journals[entry_ref]
        crashed_at = journal.first(("chunk", plan[entry_ref]))
        closed_at = journal.first(("close", "cancel"))
        if crashed_at is not None and closed_at is not None:
            to_close.append(closed_at - crashed_at)
        if crashed_at is not None and entry_ref in reports:
            to_report.append(reports[entry_ref] - crashed_at)
    closes = {ref: journal.closes() for ref, journal in journals.items()}
    releases = {ref: journal.count("release") for ref, journal in journals.items()}
    reasons = Counter(repr(reason) for calls in closes.values() for reason in calls)
    wrong_reason = sum(
        1
        for ref, calls in closes.items()
        if len(calls) == 1 and calls[0] != ("done" if plan[ref] is None else "cancel")
    )
    close_stats = latency_summary(to_close)
    report_stats = latency_summary(to_report)
    return {
        "substrate": substrate,
        "logs": logs,
        "uploads": params.crash_uploads,
        "chunks_per_upload": params.crash_chunks,
        "chunk_bytes": params.crash_chunk_bytes,
        "crashed": len(crashed_refs),
        "client_saw_exception": raised_by_client,
        "completed": sum(1 for ref, at in plan.items() if at is None and closes[ref] == ["done"]),
        "close_p50_ms": close_stats["p50_ms"],
        "close_p99_ms": close_stats["p99_ms"],
        "close_max_ms": close_stats["max_ms"],
        "report_p50_ms": report_stats["p50_ms"],
        "report_p99_ms": report_stats["p99_ms"],
        "report_max_ms": report_stats["max_ms"],
        "closed_once": sum(1 for calls in closes.values() if len(calls) == 1),
        "closed_twice_or_more": sum(1 for calls in closes.values() if len(calls) > 1),
        "never_closed": sum(1 for calls in closes.values() if not calls),
        "closed_with_wrong_reason": wrong_reason,
        "close_reasons": dict(reasons),
        "released_once": sum(1 for n in releases.values() if n == 1),
        "reports": len(reports),
        "reports_complete": reports_complete,
        "crash_logs": len(clock.of("process_crashed")),
        "other_failures": len(result.failures) - raised_by_client,
    }


def run(params: Params, progress: Progress) -> dict[str, Any]:
    """The section's ``rows`` (one per substrate) and ``targets``."""
    rows, checks = [], []
    for substrate in params.substrates:
        for logs in LOGS:
            progress.note(f"crash {substrate} logs {logs}")
            rows.append(_measure(params, substrate, logs))
            progress.tick(f"crash {substrate} logs {logs}")
        row, bare = rows[-2], rows[-1]
        runtime_only = (
            f"with crash logs dropped: close p99 {bare['close_p99_ms']:.2f} ms, "
            f"report p99 {bare['report_p99_ms']:.2f} ms"
        )
        checks.append(
            target(
                f"crash to close('cancel') p99 ({substrate})",
                row["close_p99_ms"],
                "<",
                CRASH_P99_MS,
                "ms",
                runtime_only,
            )
        )
        checks.append(
            target(
                f"crash to supervisor report p99 ({substrate})",
                row["report_p99_ms"],
                "<",
                CRASH_P99_MS,
                "ms",
                runtime_only,
            )
        )
        checks.append(
            target(
                f"writers not closed and released exactly once ({substrate})",
                sum(
                    r["uploads"] - min(r["closed_once"], r["released_once"]) + r["closed_with_wrong_reason"]
                    for r in (row, bare)
                ),
                "<=",
                0,
                "writers",
                f"closed once {row['closed_once']}/{row['uploads']}, "
                f"released once {row['released_once']}/{row['uploads']}, "
                f"wrong close reason {row['closed_with_wrong_reason']}, reports {row['reports']}/{row['crashed']}",
            )
        )
    return {
        "description": __doc__.strip().splitlines()[0],
        "crash_share": params.crash_share,
        "rows": rows,
        "targets": checks,
    }

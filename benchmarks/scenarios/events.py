"""``events``: what one ``progress`` event costs the server, 10 and 100 entries on the page.

A page's ``lv:`` handler runs in the harness's process on an asyncio loop of
its own, behind a stand-in channel that encodes every frame as the transport
would (``benchmarks.page_events``): join, select and preflight N files, then
``page_events`` progress events spread over the entries. Figures, best of
``repeat`` runs: server CPU per event (``time.process_time``, every thread:
the session's work, the hops to it and back, the page's render, diff and the
reply's encoding), the CPU of one bare ask of a process from the loop (the
runtime's share of an event, which issue 16's substrate work addresses), the
event's CPU net of it, the reply's bytes per event, and the ``diff`` pushes
the events caused (0: each change is rendered once, in its reply). Target
(issue 16): at most 0.2 ms per event with 100 entries on the page (before
issue 16: about 1.2 ms with 10 and 3.8 ms with 100 on this harness).
"""

from __future__ import annotations

from typing import Any

from benchmarks import substrates
from benchmarks.page_events import measure_progress_events, measure_round_trip
from benchmarks.params import Params
from benchmarks.progress import Progress
from benchmarks.targets import PROGRESS_EVENT_ENTRIES, PROGRESS_EVENT_US, TableSpec, target

__all__ = ["NAME", "TABLES", "run", "steps"]

NAME = "events"
ENTRIES = (10, PROGRESS_EVENT_ENTRIES)

TABLES: list[TableSpec] = [
    (
        "rows",
        "events: server CPU per progress event, N entries on the page",
        [
            ("substrate", "substrate", ""),
            ("entries", "entries", "d"),
            ("events", "events", "d"),
            ("cpu_us_per_event", "µs/event", ".1f"),
            ("round_trip_us", "µs bare ask", ".1f"),
            ("net_us_per_event", "µs net of ask", ".1f"),
            ("reply_bytes", "reply bytes", ".0f"),
            ("pushes", "pushes", "d"),
        ],
    )
]


def steps(params: Params) -> int:
    return len(params.substrates) * len(ENTRIES)


def _point(params: Params, entries: int, bound: bool) -> dict[str, Any]:
    runs = [measure_progress_events(entries, params.page_events, bound=bound) for _ in range(max(1, params.repeat))]
    best = min(runs, key=lambda r: r.cpu_us_per_event)
    ask = min(measure_round_trip(params.page_events, bound=bound) for _ in range(max(1, params.repeat)))
    return {
        "entries": entries,
        "events": best.events,
        "cpu_us_per_event": best.cpu_us_per_event,
        "round_trip_us": ask,
        "net_us_per_event": best.cpu_us_per_event - ask,
        "reply_bytes": best.reply_bytes_per_event,
        "pushes": best.pushes,
    }


def run(params: Params, progress: Progress) -> dict[str, Any]:
    rows = []
    for substrate in params.substrates:
        for entries in ENTRIES:
            progress.note(f"events: {substrate}, {entries} entries")
            with substrates.using(substrate):
                rows.append({"substrate": substrate, **_point(params, entries, bound=substrate == "loop")})
            progress.tick(f"events: {substrate}, {entries} entries")
    checks = [
        target(
            f"server CPU per progress event, {row['entries']} entries on the page ({row['substrate']})",
            row["cpu_us_per_event"] / 1000,
            "<=",
            PROGRESS_EVENT_US / 1000,
            "ms",
            f"of which a bare ask of the session: {row['round_trip_us'] / 1000:.3f} ms; "
            f"net of it {row['net_us_per_event'] / 1000:.3f} ms; {row['pushes']} pushes",
        )
        for row in rows
        if row["entries"] == PROGRESS_EVENT_ENTRIES
    ]
    return {"description": __doc__.strip().splitlines()[0], "rows": rows, "targets": checks}

"""The issues' targets as data: a figure, a bound, and whether the run met it.

The bounds are the ones issue 6 (the benchmark harness) and issue 11
(lightweight processes) set; scenarios read them from here so a changed bound
changes in one place. Scale targets are checked at the scale the run used
(``--full`` runs the issue's scale, the default a smaller one):
``scale_note`` says so in the target's detail.
"""

from __future__ import annotations

import math
import operator
from typing import Any

__all__ = ["TableSpec", "scale_note", "target"]

# issue 6: the harness
TMPFILE_VS_PLAIN = 0.9
"""``TmpFileWriter`` MB/s at 100 uploads, at least this times plain file writes'."""
NOOP_COST_VS_PEER = 1.3
"""No-op writer: our per-chunk cost at most this times a plain Pykka actor's."""
CRASH_P99_MS = 10.0
"""Crash to ``close("cancel")`` and to the supervisor's report, p99 under this."""
LOOP_LAG_P99_MS = 20.0
"""Server with 100 concurrent uploads: event-loop lag p99 under this."""

# issue 11: lightweight processes
POOL_SPAWN_US = 10.0
"""Microseconds per pooled process spawn, at most."""
POOL_IDLE_KB = 2.0
"""Resident KB per idle pooled process, at most."""
SCALE_COST_RATIO = 2.0
"""Start and stop cost per process at the large K within this factor of the small K's."""
POOL_VS_THREAD_NOOP = 2.0
"""No-op chunks/s at ``POOL_VS_THREAD_UPLOADS`` concurrent uploads, pool at least this times the thread substrate."""
POOL_VS_THREAD_UPLOADS = 1_000
"""The U issue 11 reads ``POOL_VS_THREAD_NOOP`` at ("throughput at 1000 concurrent uploads"),
whatever larger U a run goes on to (``--full``: 10,000)."""
BLOCKING_P99_INCREASE_MS = 5.0
"""Blocking load: a bystander's ask p99 rises by at most this."""
BLOCKING_VS_THREAD = 0.8
"""Blocking load: the blockers' chunks/s at least this times the thread substrate's."""
# issue 16: server speed
PROGRESS_EVENT_US = 200.0
"""Server CPU per ``progress`` event with ``PROGRESS_EVENT_ENTRIES`` entries on the page, at most (µs)."""
PROGRESS_EVENT_ENTRIES = 100
# issue 19: the S3 writer
S3_VS_BOTO3 = 0.8
"""S3Writer through channels: MB/s at least this times boto3's ``upload_fileobj`` of the same bytes."""
S3_THREADS = 64
"""OS threads in the process with 1,000 concurrent small S3 uploads, at most."""

# issue 16: server speed, against the WebSocket stack's ceiling (the ``wire`` scenario)
WIRE_CPU_VS_CEILING = {"W1": 2.5, "W2": 2.5, "W3": 3.0}
"""Server CPU seconds per GB at most this times the bare Starlette/uvicorn endpoint's, per workload."""
WIRE_RATE_VS_CEILING = {"W1": 0.5, "W3": 0.5}
"""MB/s at least this times the bare endpoint's, per workload."""
WIRE_CLIENT_VS_SERVER_CPU = 1.0
"""``liveupload send``'s CPU per GB below this times the server's."""
PROGRESS_EVENT_MS = 0.2
"""Server CPU ms per ``progress`` event with ``PROGRESS_EVENT_ENTRIES`` entries on the page, at most."""
PROGRESS_EVENT_ENTRIES = 100

ISSUE_POOL_PROCESSES = 1_000_000
ISSUE_POOL_SPAWN_SMALL = 10_000
ISSUE_POOL_CHANNELS = 100_000
ISSUE_CONCURRENT_UPLOADS = 10_000

_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}

TableSpec = tuple[str, str, list[tuple[str, str, str]]]
"""``(rows key in the section, title, [(column key, header, format spec)])``."""


def target(name: str, value: float | None, op: str, limit: float, unit: str = "", detail: str = "") -> dict[str, Any]:
    """A target check: ``met`` is None when the figure could not be measured."""
    if value is not None and isinstance(value, float) and math.isnan(value):
        value = None
    return {
        "name": name,
        "value": value,
        "op": op,
        "limit": limit,
        "unit": unit,
        "met": None if value is None else bool(_OPS[op](value, limit)),
        "detail": detail,
    }


def scale_note(ran: int, issue: int, what: str = "") -> str:
    """``""`` if the run reached the issue's scale, else a note that it ran smaller."""
    if ran >= issue:
        return ""
    return f"this run: {ran:,}{' ' + what if what else ''}; the issue's {issue:,} runs with --full"

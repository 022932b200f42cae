"""``server``: end to end over loopback WebSockets (the hook; not measured yet).

What it will measure, once the server serves uploads (``lv:``/``lvu:`` topic
handlers wired into ``server.app.create_app``): ``server_uploads`` concurrent
uploads from clients in separate processes (``multiprocessing``, so the
clients' Python does not share the server's GIL), each speaking Phoenix's
channel protocol over a WebSocket to ``serve_in_thread(create_app(...))``
(the ``liveupload send`` client, ``server.send``, run in each process): join
the LiveView, preflight, join ``lvu:<ref>``, push chunks stop-and-wait.
Figures: aggregate MB/s, p99 chunk latency (measured in the clients), and the
event loop's lag p99 while the uploads run (``LoopLag``, a task inside the
server's loop). Target: lag p99 under 20 ms at 100 concurrent uploads.

Until then ``run`` reports the scenario as skipped, with the reason.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks.params import Params
from benchmarks.progress import Progress
from benchmarks.stats import latency_summary
from benchmarks.targets import TableSpec, target

__all__ = ["NAME", "TABLES", "LoopLag", "ready", "run", "steps"]

NAME = "server"

TABLES: list[TableSpec] = [
    (
        "rows",
        "server: uploads over loopback WebSockets",
        [
            ("substrate", "substrate", ""),
            ("uploads", "U", "d"),
            ("mb_per_s", "MB/s", ",.1f"),
            ("p99_ms", "chunk p99 ms", ".3f"),
            ("loop_lag_p99_ms", "loop lag p99 ms", ".3f"),
        ],
    )
]


class LoopLag:
    """Measures an event loop's lag: a task asks to wake every ``interval``
    seconds and records how late each wake-up is. Start it inside the loop with
    ``start()``, stop it with ``await stop()``; ``summary()`` gives p50/p99 in ms."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._probe())

    async def _probe(self) -> None:
        while True:
            due = time.perf_counter() + self.interval
            await asyncio.sleep(self.interval)  # the lateness of this wake-up is the figure
            self.lags.append(max(0.0, time.perf_counter() - due))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def summary(self) -> dict[str, float | int]:
        return latency_summary(self.lags)


def ready() -> str | None:
    """``None`` if the server can serve uploads end to end, else why not."""
    try:
        from server.app import create_app
    except Exception as exc:  # noqa: BLE001 - not ready, whatever the reason
        return f"server.app cannot be imported: {exc!r}"
    import importlib.util

    registry = create_app().state.registry
    if registry.match("lv:bench") is None or registry.match("lvu:bench") is None:
        return "server.app's default app has no lv:/lvu: upload handlers yet"
    if importlib.util.find_spec("server.send") is None:
        return "there is no protocol client (server.send) to drive uploads with yet"
    return "the end-to-end client of this scenario is not written yet (benchmarks/scenarios/server.py)"


def steps(params: Params) -> int:
    return 1


def run(params: Params, progress: Progress) -> dict[str, Any]:
    """Skipped (with the reason) until the server serves uploads; see the module doc."""
    reason = ready()
    progress.tick("server")
    return {
        "description": __doc__.strip().splitlines()[0],
        "skipped": reason,
        "rows": [],
        "targets": [
            target(
                f"event-loop lag p99 with {params.server_uploads} concurrent uploads",
                None,
                "<",
                20.0,
                "ms",
                f"not measured: {reason}",
            )
        ],
    }

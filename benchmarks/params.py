"""The knobs of a run, with three presets: ``quick`` (seconds, for CI and a first
look), ``default`` (under 2 minutes on a 2-core machine) and ``full`` (scales
up to the issue's figures: 10,000 concurrent uploads, 1,000,000 pooled
processes, 100,000 idle pooled channels). Flags override single knobs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["Params", "PRESETS", "upload_counts"]


def upload_counts(max_uploads: int) -> list[int]:
    """1, 10, 100, ... up to ``max_uploads``, ending with ``max_uploads`` itself."""
    if max_uploads < 1:
        raise ValueError(f"max_uploads must be >= 1, got {max_uploads}")
    counts, u = [], 1
    while u < max_uploads:
        counts.append(u)
        u *= 10
    counts.append(max_uploads)
    return counts


@dataclass(frozen=True)
class Params:
    """Everything a run's scenarios need to know; recorded in the JSON."""

    preset: str = "default"
    substrates: tuple[str, ...] = ("thread",)

    # channels (and their baselines)
    max_uploads: int = 1000
    chunk_bytes: int = 64_000
    chunk_budget: int = 4_000
    """Chunks per measured point; each upload gets ``chunk_budget / U`` of them..."""
    min_chunks: int = 8
    """...but never fewer than this."""
    uploads_per_session: int = 100
    client_threads: int = 4
    repeat: int = 3
    """Runs of every channels point; the row shows the best run by chunks/s."""
    target_uploads: int = 100
    """The U at which the TmpFileWriter-vs-plain-files target is read."""

    # spawn
    max_spawn: int = 2_000
    """The largest K tried (the "flag bound")."""
    spawn_baseline: int = 1_000
    """K for the plain Pykka actor row and bare processes on threads."""
    pool_spawn: int = 100_000
    """K for bare processes on the pool (a thousand is too few to see their memory);
    the "large" end of the scale check (the issue's is 1,000,000: ``--full``)."""
    pool_spawn_small: int = 10_000
    """K of the "small" end: start and stop cost per pooled process at ``pool_spawn``
    must stay within 2x of their cost at this K."""
    pool_channels: int = 5_000
    """Idle upload channels (with their sessions) joined on the pool; the thread
    substrate stays at ``max_spawn``, below its thread limit (the issue's is 100,000: ``--full``)."""
    memory_reserve_mb: int = 1_024
    """Stop spawning when less memory than this is available (the "memory" limit)."""
    spawn_until_limit: bool = False
    """Join channels past the flag bound, until a real limit stops them: no new
    OS thread (``thread limit``), ``MemoryError`` or less than
    ``memory_reserve_mb`` available (``memory``), or ``spawn_seconds`` spent
    (``time budget``)."""
    spawn_seconds: float = 120.0
    """The time budget of one channel row with ``spawn_until_limit``."""

    # crash
    crash_uploads: int = 100
    crash_share: float = 0.5
    crash_chunks: int = 8
    crash_chunk_bytes: int = 4_096
    seed: int = 1

    # blocking
    blocking_writers: int = 200
    """Uploads whose writer blocks ``blocking_wait`` seconds in every chunk."""
    blocking_wait: float = 0.010
    blocking_seconds: float = 1.5
    """How long the blocking load runs (the bystander is pinged meanwhile)."""
    quiet_seconds: float = 0.5
    """How long the bystander is pinged without the load, on the same substrate."""
    ping_every: float = 0.001
    """Pause between two asks of the bystander (pacing, so the pinger is light)."""
    blocking_chunk_bytes: int = 1_000

    # server
    server_uploads: int = 100
    server_client_processes: int = 2
    """OS processes the server's clients run in (uploads are shared among them)."""
    server_chunks: int = 10
    """Chunks per upload (of ``chunk_bytes`` each)."""

    # events
    page_events: int = 2_000
    """Progress events per point of the ``events`` scenario (10 and 100 entries on the page)."""

    # wire (W1-W3 against a bare Starlette/uvicorn endpoint, both servers child processes)
    wire_scale: float = 1.0
    """Fraction of the issue's file sizes (W1 16 MB, W2 200 MB, W3 1 MB); ``--quick``: 0.02."""
    wire_concurrency_scale: float = 1.0
    """Fraction of the issue's concurrent uploads (W1 20, W2 1, W3 200); tests shrink it."""
    wire_repeat: int = 3
    """Interleaved runs of every workload on each server (the rows are their medians)."""
    wire_client_processes: int = 2
    """OS processes the clients run in (uploads are shared among them)."""
    wire_workloads: tuple[str, ...] = ("W1", "W2", "W3")
    wire_event_entries: tuple[int, ...] = (10, 100)
    """Entries on the page when the cost of one progress event is measured."""
    wire_server_checkout: str | None = None
    """Run ``liveupload serve`` from this checkout (its code, this harness and
    ceiling): another commit's server measured the same way, for before/after figures."""
    wire_pyview_python: str | None = None
    """An interpreter whose environment has pyview-web: the workloads also run
    against a pyview upload page (:mod:`benchmarks.pyview_app`), driven by the same client."""
    wire_events: int = 3_000
    """Progress events measured per page (server CPU comes in 10 ms clock ticks: 3,000 events of 0.2 ms
    read to within 2%)."""

    # s3 (a Swift started by the scenario)
    s3_big_uploads: int = 10
    s3_big_bytes: int = 16_000_000
    s3_small_uploads: int = 100
    s3_small_bytes: int = 256_000
    s3_part_size: int = 8 * 1024 * 1024
    s3_parts_in_flight: int = 2

    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else; ``extra["s3_store"]``: ``{"settings", "bucket"}`` of a running store for ``s3``."""

    @property
    def uploads(self) -> list[int]:
        return upload_counts(self.max_uploads)

    def with_(self, **changes: Any) -> Params:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["uploads"] = self.uploads
        return data


PRESETS: dict[str, Params] = {
    "quick": Params(
        preset="quick",
        max_uploads=100,
        chunk_budget=400,
        min_chunks=4,
        max_spawn=200,
        spawn_baseline=200,
        pool_spawn=10_000,
        pool_spawn_small=1_000,
        pool_channels=1_000,
        crash_uploads=20,
        crash_chunks=4,
        blocking_seconds=0.5,
        quiet_seconds=0.3,
        server_uploads=10,
        server_client_processes=2,
        server_chunks=5,
        page_events=500,
        wire_scale=0.02,
        wire_repeat=1,
        wire_events=100,
        s3_big_uploads=2,
        s3_small_uploads=20,
    ),
    "default": Params(),
    "full": Params(
        preset="full",
        max_uploads=10_000,
        chunk_budget=20_000,
        repeat=3,
        max_spawn=20_000,
        spawn_baseline=10_000,
        pool_spawn=1_000_000,
        pool_channels=100_000,
        crash_uploads=1_000,
        blocking_seconds=5.0,
        quiet_seconds=2.0,
        server_uploads=100,
        server_client_processes=4,
        server_chunks=50,
        wire_scale=1.0,
        wire_events=5_000,
        s3_big_uploads=100,
        s3_small_uploads=1_000,
    ),
}

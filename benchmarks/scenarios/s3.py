"""``s3``: uploads through ``UploadChannel``s with ``S3Writer`` into a real Swift, against boto3.

Two cases, each run twice in the same process against the same store:

* ``big``: ``s3_big_uploads`` concurrent uploads of ``s3_big_bytes`` (16 MB),
  64 KB chunks stop-and-wait through sessions and channels as the server
  drives them, 8 MiB parts, 2 in flight per upload (the writer's defaults);
* ``small``: ``s3_small_uploads`` concurrent uploads of ``s3_small_bytes``
  (256 KB): each goes up as one ``PutObject`` at ``close("done")``;

then boto3's own ``upload_fileobj`` of the same bytes (same part size and
parts in flight, the uploads run concurrently on up to 64 threads).

Figures: MB/s of each side and their ratio (target >= 0.8x boto3's); bytes
an upload holds (buffer + parts queued or sending + the chunk being handled,
tracked per chunk) and the process's RSS growth per upload in flight, against
the bound ``part_size x (parts_in_flight + 1) + 64 KB``; the peak of the
process's OS threads (target <= 64 with 1,000 small uploads: channels run on
the shared scheduler and wait for the store through deferred replies, every
request goes through the bounded I/O pool). boto3's MB/s is Swift's ceiling
here as far as one client process can reach it.

The store: a private Swift started by the scenario (``benchmarks.objectstore``),
or ``params.extra["s3_store"]`` (``{"settings": client settings, "bucket": name}``)
when the caller already runs one (the tests).
"""

from __future__ import annotations

import functools
import io
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from boto3.s3.transfer import TransferConfig

import writers.s3 as s3w
from benchmarks.clients import drive_async
from benchmarks.objectstore.swift_store import SwiftStore, create_bucket
from benchmarks.params import Params
from benchmarks.progress import Progress
from benchmarks.sessions import SessionFleet
from benchmarks.stats import rate, ratio
from benchmarks.targets import S3_THREADS, S3_VS_BOTO3, TableSpec, scale_note, target
from writers import Chunk

__all__ = ["NAME", "TABLES", "run", "steps"]

NAME = "s3"
WAIT = 600.0
MB = 1_000_000
MiB = 1024 * 1024
CHUNK = 64_000
BUCKET = "liveupload-bench"

TABLES: list[TableSpec] = [
    (
        "rows",
        "s3: uploads through UploadChannels with S3Writer into Swift, vs boto3 upload_fileobj of the same bytes",
        [
            ("case", "case", ""),
            ("side", "who", ""),
            ("uploads", "uploads", ",d"),
            ("size_kb", "KB each", ",.0f"),
            ("seconds", "seconds", ".2f"),
            ("mb_per_s", "MB/s", ".1f"),
            ("vs_boto3", "vs boto3", ".2f"),
            ("held_mib", "held/upload MiB", ".2f"),
            ("rss_mib", "RSS/upload MiB", ".2f"),
            ("bound_mib", "bound MiB", ".2f"),
            ("peak_threads", "peak threads", "d"),
        ],
    )
]


def steps(params: Params) -> int:
    return 1 + 2 * 2


class TrackedS3Writer(s3w.S3Writer):
    """``S3Writer`` that records the most bytes any upload held after a chunk."""

    peak_held = 0
    _lock = threading.Lock()

    def write_chunk(self, data: Chunk, state: s3w.S3State) -> Any:
        result = super().write_chunk(data, state)
        held = len(data) + len(state.buffer) + sum(getattr(f, "nbytes", 0) for f in state.inflight.values())
        if held > TrackedS3Writer.peak_held:
            with TrackedS3Writer._lock:
                TrackedS3Writer.peak_held = max(TrackedS3Writer.peak_held, held)
        return result


def _proc_status() -> tuple[int, int]:
    """(RSS bytes, OS threads) of this process."""
    rss = threads = 0
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


class Sampler:
    """Samples RSS and the OS thread count every ``every`` seconds; keeps the peaks."""

    def __init__(self, every: float = 0.02) -> None:
        self.every = every
        self.base_rss, self.base_threads = _proc_status()
        self.peak_rss, self.peak_threads = self.base_rss, self.base_threads
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="s3-bench-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def _sample(self) -> None:
        rss, threads = _proc_status()
        self.peak_rss, self.peak_threads = max(self.peak_rss, rss), max(self.peak_threads, threads)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@contextmanager
def _store(params: Params) -> Iterator[tuple[dict[str, Any], str]]:
    """Client settings and a bucket: the caller's store, or a private Swift."""
    given = params.extra.get("s3_store")
    if given:
        yield dict(given["settings"]), given["bucket"]
        return
    root = tempfile.mkdtemp(prefix="liveupload-bench-swift-")
    store = SwiftStore(root)
    try:
        store.start()
        settings = store.client_settings()
        create_bucket(s3w.client_for(settings), BUCKET)
        yield settings, BUCKET
    finally:
        store.stop()
        shutil.rmtree(root, ignore_errors=True)


def _delete_prefix(client: Any, bucket: str, prefix: str) -> int:
    """Delete every object under *prefix*; how many there were."""
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            count += len(keys)
    return count


def _count_prefix(client: Any, bucket: str, prefix: str, size: int) -> int:
    """Objects under *prefix* of exactly *size* bytes."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(1 for page in pages for o in page.get("Contents", []) if o["Size"] == size)


def _ask_chunk(ref: Any, data: bytes) -> Any:
    return ref.ask(("chunk", data), block=False)


def _client_settings(settings: dict, params: Params, uploads: int) -> dict[str, Any]:
    """One client for both sides, with a connection per concurrent request."""
    return {**settings, "max_pool_connections": min(uploads, 64) * params.s3_parts_in_flight + 8}


def _through_channels(
    params: Params, settings: dict, bucket: str, prefix: str, uploads: int, size: int, writer: type[TrackedS3Writer]
) -> dict[str, Any]:
    settings = _client_settings(settings, params, uploads)
    data = os.urandom(CHUNK)
    chunks = size // CHUNK
    options = {
        "bucket": bucket,
        "prefix": prefix,
        "client": settings,
        "part_size": params.s3_part_size,
        "parts_in_flight": params.s3_parts_in_flight,
    }

    def factory(_name: str, entry: Any, _session: Any) -> tuple[Any, dict]:
        return (writer, {**options, "entry": entry})

    TrackedS3Writer.peak_held = 0
    fleet = SessionFleet(factory, size=size, chunk_size=CHUNK, per_session=min(params.uploads_per_session, uploads))
    try:
        with Sampler() as sampler:
            channels = fleet.join(uploads, timeout=WAIT)
            sends = [functools.partial(_ask_chunk, ref) for ref in channels]
            result = drive_async(sends, chunks, data, client_threads=params.client_threads, timeout=WAIT)
    finally:
        fleet.close()
    stored = _count_prefix(s3w.client_for(settings), bucket, prefix, size)
    return {
        "seconds": result.seconds,
        "failures": len(result.failures) + (uploads - stored),
        "stored": stored,
        "held": TrackedS3Writer.peak_held,
        "rss_growth": sampler.peak_rss - sampler.base_rss,
        "peak_threads": sampler.peak_threads,
    }


def _through_boto3(params: Params, settings: dict, bucket: str, prefix: str, uploads: int, size: int) -> dict[str, Any]:
    body = os.urandom(CHUNK) * (size // CHUNK)
    workers = min(uploads, 64)
    client = s3w.client_for(_client_settings(settings, params, uploads))
    config = TransferConfig(
        multipart_threshold=params.s3_part_size,
        multipart_chunksize=params.s3_part_size,
        max_concurrency=params.s3_parts_in_flight,
    )

    def one(i: int) -> None:
        client.upload_fileobj(io.BytesIO(body), bucket, f"{prefix}/{i}/upload-{i}.bin", Config=config)

    with Sampler() as sampler:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="boto3-upload") as pool:
            list(pool.map(one, range(uploads)))
        seconds = time.perf_counter() - started
    stored = _count_prefix(client, bucket, prefix, size)
    return {
        "seconds": seconds,
        "failures": uploads - stored,
        "stored": stored,
        "held": None,
        "rss_growth": sampler.peak_rss - sampler.base_rss,
        "peak_threads": sampler.peak_threads,
    }


def _row(case: str, side: str, uploads: int, size: int, bound: int, m: dict[str, Any]) -> dict[str, Any]:
    return {
        "case": case,
        "side": side,
        "uploads": uploads,
        "size_kb": size / 1000,
        "seconds": m["seconds"],
        "mb_per_s": rate(uploads * size / MB, m["seconds"]),
        "held_mib": m["held"] / MiB if m["held"] is not None else float("nan"),
        "rss_mib": m["rss_growth"] / uploads / MiB,
        "bound_mib": bound / MiB,
        "peak_threads": m["peak_threads"],
        "failures": m["failures"],
        "stored": m["stored"],
    }


def run(params: Params, progress: Progress) -> dict[str, Any]:
    """The section's ``rows`` (writer and boto3 per case) and ``targets``."""
    bound = params.s3_part_size * (params.s3_parts_in_flight + 1) + 64 * 1024
    cases = (
        ("big", params.s3_big_uploads, params.s3_big_bytes),
        ("small", params.s3_small_uploads, params.s3_small_bytes),
    )
    rows: list[dict[str, Any]] = []
    run_id = uuid.uuid4().hex[:8]
    progress.note("s3: starting the store")
    # Hundreds of concurrent PUTs overflow the client's connection pool on purpose
    # (a connection per channel thread); urllib3 would warn for every one.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    with _store(params) as (settings, bucket):
        progress.tick("s3: store up")
        client = s3w.client_for(settings)
        try:
            # Warm the store (its first requests are slow) before either side is timed.
            for i in range(3):
                client.put_object(Bucket=bucket, Key=f"bench-{run_id}/warm/{i}", Body=os.urandom(256_000))
            _delete_prefix(client, bucket, f"bench-{run_id}/warm/")
            for case, uploads, size in cases:
                sides: list[tuple[str, Any]] = [
                    ("S3Writer", functools.partial(_through_channels, writer=TrackedS3Writer)),
                    ("boto3", _through_boto3),
                ]
                for side, measure in sides:
                    progress.note(f"s3: {case}, {side}")
                    prefix = f"bench-{run_id}/{case}/{side.split(',')[0].lower()}{'-pool' if 'pool' in side else ''}"
                    measured = measure(params, settings, bucket, prefix, uploads, size)
                    rows.append(_row(case, side, uploads, size, bound, measured))
                    _delete_prefix(client, bucket, prefix)
                    progress.tick(f"s3: {case}, {side}")
        finally:
            s3w.shutdown()
    for case, _uploads, _size in cases:
        boto3 = next(r for r in rows if r["case"] == case and r["side"] == "boto3")
        for row in rows:
            if row["case"] == case:
                row["vs_boto3"] = ratio(row["mb_per_s"], boto3["mb_per_s"])
    return {
        "description": __doc__.strip().splitlines()[0],
        "part_size": params.s3_part_size,
        "parts_in_flight": params.s3_parts_in_flight,
        "bound_bytes": bound,
        "store": "caller's" if params.extra.get("s3_store") else "private Swift",
        "rows": rows,
        "targets": _targets(params, rows, bound),
    }


def _targets(params: Params, rows: list[dict[str, Any]], bound: int) -> list[dict[str, Any]]:
    checks = []
    for row in rows:
        if row["side"] == "boto3":
            continue
        label = f"{row['uploads']:,} x {row['size_kb']:,.0f} KB, {row['side']}"
        if row["side"] == "S3Writer":
            checks.append(
                target(
                    f"S3Writer MB/s vs boto3 upload_fileobj ({label})",
                    row["vs_boto3"],
                    ">=",
                    S3_VS_BOTO3,
                    "x",
                    f"{row['mb_per_s']:.1f} MB/s; {row['failures']} failed",
                )
            )
        if row["case"] == "big" and row["side"] == "S3Writer":
            checks.append(
                target(
                    f"bytes held per upload in flight, tracked ({label})",
                    row["held_mib"],
                    "<=",
                    bound / MiB,
                    "MiB",
                    "buffer + parts queued or sending + the chunk, after each chunk "
                    "(while a chunk waits for a part, Pending, the upload holds a full buffer "
                    "and every part in flight: the bound itself)",
                )
            )
            checks.append(
                target(
                    f"RSS growth per upload in flight ({label})",
                    row["rss_mib"],
                    "<=",
                    bound / MiB,
                    "MiB",
                    "peak RSS over the run minus RSS before it, divided by the uploads",
                )
            )
        if row["case"] == "small":
            why = (
                "channels on the shared scheduler, answering chunks by deferred replies; "
                f"requests on the I/O pool (at most {s3w.pool_size()} threads)"
            )
            checks.append(
                target(
                    f"OS threads in the process ({label})",
                    row["peak_threads"],
                    "<=",
                    S3_THREADS,
                    "",
                    "; ".join(x for x in (why, scale_note(row["uploads"], 1_000, "uploads")) if x),
                )
            )
    return checks

"""Measure S3Writer against boto3's own ``upload_fileobj`` on a private Swift.

    PYTHONPATH=. .venv/bin/python -m benchmarks.objectstore.measure_s3 [MB] [ROUNDS]

Prints MB/s for one upload of MB megabytes (default 50) fed in 64 KB chunks
through ``S3Writer`` (as a channel would), and for ``upload_fileobj`` of the
same bytes (8 MiB parts, 4 threads, as S3Writer's defaults), alternating,
best of ROUNDS; and the peak bytes held per upload (buffer + parts in flight).
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import time

from boto3.s3.transfer import TransferConfig

import writers.s3 as s3w
from benchmarks.objectstore.swift_store import SwiftStore
from writers import settle

MB = 1_000_000
MiB = 1024 * 1024


def through_writer(settings: dict, bucket: str, data: bytes, parts_in_flight: int) -> tuple[float, int]:
    writer = s3w.S3Writer()
    _, state = writer.init(
        {"bucket": bucket, "key": "measure/writer", "client": settings, "parts_in_flight": parts_in_flight}
    )
    peak = 0
    start = time.perf_counter()
    view = memoryview(data)
    for i in range(0, len(data), 64_000):
        result = settle(writer.write_chunk(bytes(view[i : i + 64_000]), state))
        assert result[0] == "ok", result
        peak = max(peak, len(state.buffer) + state.part_size * len(state.inflight))
    assert settle(writer.close(state, "done"))[0] == "ok"
    return time.perf_counter() - start, peak


def through_boto3(client, bucket: str, data: bytes) -> float:
    config = TransferConfig(multipart_chunksize=8 * MiB, multipart_threshold=8 * MiB, max_concurrency=4)
    start = time.perf_counter()
    client.upload_fileobj(io.BytesIO(data), bucket, "measure/boto3", Config=config)
    return time.perf_counter() - start


def main(argv: list[str]) -> None:
    size = int(argv[1]) * MB if len(argv) > 1 else 50 * MB
    rounds = int(argv[2]) if len(argv) > 2 else 3
    root = tempfile.mkdtemp(prefix="liveupload-swift-measure-")
    store = SwiftStore(root)
    try:
        t0 = time.monotonic()
        store.start()
        print(f"swift up in {time.monotonic() - t0:.1f} s")
        settings = store.client_settings()
        client = s3w.client_for(settings)
        client.create_bucket(Bucket="measure")
        data = os.urandom(size)
        best: dict[str, list[float]] = {
            "writer(2 in flight)": [],
            "writer(4 in flight)": [],
            "boto3 upload_fileobj": [],
        }
        peaks = {}
        for _ in range(rounds):
            for label, n in (("writer(2 in flight)", 2), ("writer(4 in flight)", 4)):
                seconds, peak = through_writer(settings, "measure", data, n)
                best[label].append(seconds)
                peaks[label] = peak
            best["boto3 upload_fileobj"].append(through_boto3(client, "measure", data))
        for label, times in best.items():
            extra = f", peak held {peaks[label] / MiB:.1f} MiB" if label in peaks else ""
            print(
                f"{label}: best {size / min(times) / MB:.0f} MB/s, "
                f"median {size / sorted(times)[len(times) // 2] / MB:.0f} MB/s{extra}"
            )
    finally:
        s3w.shutdown()
        store.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv)

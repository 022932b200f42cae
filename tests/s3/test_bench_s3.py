"""``liveupload bench s3`` on its quick preset, against the session's Swift."""

from __future__ import annotations

import pytest

from benchmarks.params import PRESETS
from benchmarks.progress import NoProgress
from benchmarks.scenarios import load

pytestmark = [pytest.mark.timeout(180), pytest.mark.substrates("pool")]


def test_the_s3_scenario_runs_on_its_quick_preset(s3):
    params = PRESETS["quick"].with_(
        s3_big_uploads=1, s3_small_uploads=6,
        extra={"s3_store": {"settings": s3.settings(), "bucket": s3.bucket}},
    )
    section = load("s3").run(params, NoProgress())
    rows = {(r["case"], r["side"]): r for r in section["rows"]}
    assert set(rows) == {("big", "S3Writer"), ("big", "boto3"), ("small", "S3Writer"), ("small", "boto3")}
    for row in rows.values():
        assert row["failures"] == 0 and row["stored"] == row["uploads"], row
        assert row["mb_per_s"] > 0 and row["peak_threads"] > 0
    assert rows[("big", "boto3")]["vs_boto3"] == 1.0
    bound = section["bound_bytes"]
    assert bound == 8 * 1024 * 1024 * 3 + 64 * 1024
    assert 0 < rows[("big", "S3Writer")]["held_mib"] * 1024 * 1024 <= bound  # tracked per chunk: never above the bound
    names = [t["name"] for t in section["targets"]]
    assert len(names) == 5 and all(t["met"] is not None for t in section["targets"])
    left = s3.client.list_objects_v2(Bucket=s3.bucket, Prefix="bench-")
    assert left.get("KeyCount", 0) == 0  # the scenario deletes what it uploaded
    assert s3.client.list_multipart_uploads(Bucket=s3.bucket, Prefix="bench-").get("Uploads", []) == []

"""The S3 tests' store: one real Swift (with s3api) for the whole session.

Swift missing is a failure, never a skip: ``.ci/run`` and the README's test
command install it. Its directory lives under the temp dir in force when the
session starts, and every server is stopped (by PID) at the end.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

import writers.s3
from benchmarks.objectstore.swift_store import SwiftError, SwiftStore, create_bucket

BUCKET = "liveupload-tests"
MiB = 1024 * 1024


@pytest.fixture(scope="session")
def swift() -> SwiftStore:
    root = tempfile.mkdtemp(prefix="liveupload-swift-", dir=tempfile.gettempdir())
    store = SwiftStore(root)
    try:
        try:
            store.start()
        except SwiftError as exc:
            pytest.fail(f"cannot run the S3 tests' store: {exc}", pytrace=False)
        client = writers.s3.client_for(store.client_settings())
        create_bucket(client, BUCKET, timeout=60.0)
        writers.s3.shutdown()
        yield store
    finally:
        store.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class S3:
    """What a test needs: the store, its client settings, a bucket and a prefix of its own."""

    swift: SwiftStore
    bucket: str
    prefix: str

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Client settings for the store; *extra* (e.g. ``retries``) gives a client of its own."""
        return {**self.swift.client_settings(), **extra}

    @property
    def client(self) -> Any:
        return writers.s3.client_for(self.settings())

    def objects(self) -> dict[str, int]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}

    def multipart_uploads(self) -> list[dict]:
        response = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=self.prefix)
        return response.get("Uploads", [])

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()


@pytest.fixture
def s3(swift: SwiftStore):
    """A prefix of the test's own; afterwards the module's threads, processes and
    connections are shut down (the leak check runs after this)."""
    writers.s3.configure(retry_interval=0.2)
    yield S3(swift=swift, bucket=BUCKET, prefix=f"t-{uuid.uuid4().hex[:12]}")
    writers.s3.shutdown()
    writers.s3.configure(retry_interval=writers.s3.DEFAULT_RETRY_INTERVAL, budget_bytes=writers.s3.DEFAULT_BUDGET_BYTES)

"""``liveupload serve --store s3://...`` against Swift: past one machine.

Two ``serve --store`` processes on two ports share one Swift bucket; Phoenix's
own JS client (jsdom under Node) uploads through both, and every object is
found in the bucket with the bytes sent. A store that cannot be used stops
``serve`` at start with one clear line; ``liveupload s3 cleanup`` aborts what a
crash left; ``create_app`` takes the same writer through ``upload_configs``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import writers.s3 as s3w
from cli.s3 import parse_duration
from server.app import create_app, serve_in_thread
from server.page.sizes import human_size
from server.storage import KeepInStore
from benchmarks.objectstore.swift_store import ACCESS_KEY, REGION, SECRET_KEY
from tests.e2e.test_js_client import _missing as node_missing
from tests.e2e.test_js_client import run_node
from tests.server.test_server import serve_process

pytestmark = [pytest.mark.timeout(120), pytest.mark.substrates("pool")]

REPO = Path(__file__).resolve().parents[2]
MB = 1_000_000


@pytest.fixture(autouse=True)
def _need_node() -> None:
    reason = node_missing()
    if reason:
        pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)


def aws_env(s3, secret: str = SECRET_KEY) -> dict[str, str | None]:
    """The standard AWS variables pointing at the test store (and nothing else of the AWS chain)."""
    return {
        "AWS_ENDPOINT_URL_S3": s3.swift.endpoint,
        "AWS_ENDPOINT_URL": None,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_SESSION_TOKEN": None,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_PROFILE": None,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def child_env(s3, **kw: Any) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for key, value in aws_env(s3, **kw).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def files(node: int, *sizes: int) -> list[dict[str, Any]]:
    return [
        {"name": f"node{node}-file{i}.bin", "type": "application/octet-stream",
         "base64": base64.b64encode(os.urandom(size)).decode()}
        for i, size in enumerate(sizes)
    ]


def upload_through_page(url: str, sent: list[dict[str, Any]], results: dict[str, Any]) -> None:
    spec = {"steps": [
        {"select": sent},
        {"waitFor": "li.entry", "count": len(sent), "timeoutMs": 60_000},
        {"submit": None},
        {"waitFor": "#saved li", "count": len(sent), "timeoutMs": 80_000},
    ]}
    try:
        results[url] = run_node("steps.mjs", url + "/", spec, timeout=90)
    except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
        results[url] = exc


def test_two_serve_nodes_on_one_store_put_every_upload_in_the_bucket(s3, tmp_path):
    store = f"s3://{s3.bucket}/{s3.prefix}"
    flags = ("--store", store, "--secret", "one-secret-for-every-node", "--max-file-size", str(20 * MB))
    sent = {1: files(1, 9 * MB, 300_000, 17), 2: files(2, 6 * MB, 64_000, 1)}  # LiveView's client drops empty files
    env = aws_env(s3)
    for node in "ab":
        (tmp_path / node).mkdir()
    with serve_process(tmp_path / "a", *flags, env=env) as (url_a, lines_a), \
            serve_process(tmp_path / "b", *flags, env=env) as (url_b, lines_b):
        assert url_a != url_b
        results: dict[str, Any] = {}
        threads = [threading.Thread(target=upload_through_page, args=(url, sent[n], results))
                   for n, url in ((1, url_a), (2, url_b))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
            assert not thread.is_alive()
        for url in (url_a, url_b):
            assert not isinstance(results[url], BaseException), results[url]
    objects = s3.objects()
    assert len(objects) == 6
    by_name = {key.rsplit("/", 1)[-1]: key for key in objects}
    for node, url in ((1, url_a), (2, url_b)):
        listed = results[url]["final"]["saved"]
        for item in sent[node]:
            data = base64.b64decode(item["base64"])
            key = by_name[item["name"]]
            assert key.startswith(s3.prefix + "/")
            assert objects[key] == len(data)
            assert hashlib.sha256(s3.read(key)).hexdigest() == hashlib.sha256(data).hexdigest()
            assert f"{key} ({human_size(len(data))})" in listed  # the page lists the object by key and size
    assert s3.multipart_uploads() == []
    assert not list((tmp_path / "a").glob("uploads/*")) and not list((tmp_path / "b").glob("uploads/*"))  # --uploads-dir of serve_process
    log_text = "".join(lines_a + lines_b)
    assert log_text.count("upload.stored") == 6, log_text


def serve_refused(s3, tmp_path: Path, store: str, **env_kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", "serve", "--port", "0", "--store", store],
        check=False, capture_output=True, text=True, env=child_env(s3, **env_kw), cwd=tmp_path, timeout=60,
    )


def test_serve_with_a_wrong_secret_exits_with_one_clear_line(s3, tmp_path):
    proc = serve_refused(s3, tmp_path, f"s3://{s3.bucket}/{s3.prefix}", secret="not-the-secret")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"liveupload serve: cannot use s3://{s3.bucket}/{s3.prefix} at {s3.swift.endpoint}: SignatureDoesNotMatch "
        "(the store refused the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY))"
    ]
    assert "serve.listening" not in proc.stderr + proc.stdout


def test_serve_with_a_missing_bucket_exits_with_one_clear_line(s3, tmp_path):
    proc = serve_refused(s3, tmp_path, "s3://no-such-bucket-here/x")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"liveupload serve: cannot use s3://no-such-bucket-here/x at {s3.swift.endpoint}: NoSuchBucket "
        "(the bucket does not exist)"
    ]


def test_serve_refuses_a_store_that_is_not_an_s3_url(s3, tmp_path):
    proc = serve_refused(s3, tmp_path, "/tmp/bucket")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "liveupload serve: --store must look like s3://bucket/prefix, got '/tmp/bucket'"


def test_create_app_takes_the_s3_writer_through_upload_configs(s3):
    factory = s3w.s3_writer_factory(s3.bucket, prefix=s3.prefix, client=s3.settings())
    app = create_app(secret="s", consume=KeepInStore(),
                     upload_configs={"files": {"accept": "any", "max_entries": 2, "writer": factory}})
    sent = files(0, 70_000, 5)
    results: dict[str, Any] = {}
    with serve_in_thread(app) as url:
        upload_through_page(url, sent, results)
    assert not isinstance(results[url], BaseException), results[url]
    objects = s3.objects()
    assert sorted(objects.values()) == [5, 70_000]
    assert sorted(results[url]["final"]["saved"]) == sorted(f"{k} ({human_size(n)})" for k, n in objects.items())


# ----------------------------------------------------------------- s3 cleanup


def cleanup(s3, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", "s3", "cleanup", "--store", f"s3://{s3.bucket}/{s3.prefix}", *flags],
        check=False, capture_output=True, text=True, env=child_env(s3), timeout=60,
    )


def test_s3_cleanup_lists_with_dry_run_and_aborts_stale_multipart_uploads(s3):
    client = s3.client
    left = [client.create_multipart_upload(Bucket=s3.bucket, Key=f"{s3.prefix}/crashed/{i}.bin")["UploadId"]
            for i in range(2)]
    client.upload_part(Bucket=s3.bucket, Key=f"{s3.prefix}/crashed/0.bin", UploadId=left[0], PartNumber=1,
                       Body=b"x" * 1000)

    young = cleanup(s3, "--older-than", "1h")
    assert young.returncode == 0, young.stderr
    assert young.stdout.splitlines() == [
        f"0 stale multipart upload(s) aborted under s3://{s3.bucket}/{s3.prefix} (older than 3600 s)"]

    dry = cleanup(s3, "--older-than", "0s", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("stale\t") for line in lines[:2])
    assert {line.split("\t")[2] for line in lines[:2]} == set(left)
    assert lines[2].startswith("2 stale multipart upload(s) found")
    assert len(s3.multipart_uploads()) == 2

    done = cleanup(s3, "--older-than", "0")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines[:2]] == ["aborted", "aborted"]
    assert lines[2].startswith("2 stale multipart upload(s) aborted")
    assert s3.multipart_uploads() == []


def test_durations():
    assert parse_duration("30m") == 1800
    assert parse_duration("24h") == 86400
    assert parse_duration("2d") == 172800
    assert parse_duration("90") == parse_duration("90s") == 90
    for bad in ("", "1w", "h", "-1h", "1 hour"):
        with pytest.raises(ValueError):
            parse_duration(bad)

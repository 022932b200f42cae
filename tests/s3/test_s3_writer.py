"""``S3Writer`` driven directly, against the session's real Swift (see conftest)."""

from __future__ import annotations

import base64
import hashlib
import random
import threading
from concurrent.futures import wait as wait_futures

import pytest

import writers.s3 as s3w
from tests.s3.conftest import MiB
from writers import Pending, settle
from writers.s3 import S3Writer

pytestmark = [pytest.mark.timeout(60), pytest.mark.pure]  # no process here
WAIT = 20.0
PART = 5 * MiB


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def start(s3, **opts):
    opts.setdefault("client", s3.settings())
    opts.setdefault("prefix", s3.prefix)
    opts.setdefault("part_size", PART)
    writer = S3Writer()
    result = writer.init({"bucket": s3.bucket, "entry": {"client_name": "photo of me.jpg", "client_type": "image/jpeg"}, **opts})
    assert result[0] == "ok", result
    return writer, result[1]


def done(result):
    """A callback's final result: a ``Pending`` waited for and resumed, as a channel would."""
    return settle(result, WAIT)


def close(writer, state, reason):
    """Close, then wait until any abort or delete it handed to the pool has been tried."""
    result = done(writer.close(state, reason))
    assert s3w.wait_aborts(WAIT)
    return result


def write_all(writer, state, data: bytes, chunk: int = 64_000):
    for i in range(0, len(data), chunk):
        result = done(writer.write_chunk(data[i : i + chunk], state))
        if result[0] != "ok":
            return result
        state = result[1]
    return ("ok", state)


def wait_parts(state) -> list:
    """Wait for the parts in flight; their exceptions (None for a part stored)."""
    futures = list(state.inflight.values())
    wait_futures(futures, timeout=WAIT)
    return [f.exception() for f in futures]


def multipart_etag(data: bytes, part: int) -> str:
    digests = b"".join(hashlib.md5(data[i : i + part]).digest() for i in range(0, len(data), part))
    return f"{hashlib.md5(digests).hexdigest()}-{(len(data) + part - 1) // part}"


def test_a_file_under_one_part_is_one_put_with_nothing_remote_before_close(s3):
    data = payload(300_000)
    writer, state = start(s3)
    assert write_all(writer, state, data)[0] == "ok"
    assert state.upload_id is None and s3.objects() == {} and s3.multipart_uploads() == []
    assert close(writer, state, "done") == ("ok", state)
    meta = writer.meta(state)
    assert meta == {"bucket": s3.bucket, "key": state.key, "size": len(data), "etag": hashlib.md5(data).hexdigest()}
    assert state.key.startswith(s3.prefix + "/") and state.key.endswith("/photo_of_me.jpg")
    assert s3.read(state.key) == data
    assert s3.client.head_object(Bucket=s3.bucket, Key=state.key)["ContentType"] == "image/jpeg"
    writer.release(state)


def test_an_empty_file_is_an_empty_object(s3):
    writer, state = start(s3, key=lambda entry: f"{s3.prefix}/empty-{entry['client_name']}")
    assert close(writer, state, "done")[0] == "ok"
    assert s3.objects() == {f"{s3.prefix}/empty-photo of me.jpg": 0}


@pytest.mark.parametrize("size", [3 * PART + 1_000_000, 2 * PART])
def test_a_multipart_upload_is_byte_identical_and_its_etag_checked(s3, size):
    data = payload(size, seed=size)
    writer, state = start(s3, parts_in_flight=2)
    assert write_all(writer, state, data)[0] == "ok"
    assert state.upload_id is not None
    assert len(s3.multipart_uploads()) == 1
    assert close(writer, state, "done")[0] == "ok"
    assert state.etag == multipart_etag(data, PART)
    assert writer.meta(state)["size"] == size
    assert hashlib.sha256(s3.read(state.key)).digest() == hashlib.sha256(data).digest()
    assert s3.multipart_uploads() == []


def test_part_size_below_the_s3_minimum_is_refused(s3):
    with pytest.raises(ValueError, match="part_size"):
        S3Writer().init({"bucket": s3.bucket, "part_size": MiB, "client": s3.settings()})


@pytest.mark.parametrize("reason", ["cancel", ("error", "client_went_away")])
def test_cancel_or_error_in_the_middle_leaves_no_parts(s3, reason):
    data = payload(2 * PART + 100_000)
    writer, state = start(s3)
    assert write_all(writer, state, data)[0] == "ok"
    wait_parts(state)
    assert [u["Key"] for u in s3.multipart_uploads()] == [state.key]
    assert close(writer, state, reason) == ("ok", state)
    assert s3.multipart_uploads() == []
    assert s3.objects() == {}
    assert s3w.budget_in_use() == 0


def test_a_part_refused_by_the_store_fails_the_next_write_with_its_code(s3):
    settings = s3.settings(retries={"total_max_attempts": 1})
    client = s3w.client_for(settings)

    def corrupt(params, **_):
        params["headers"]["Content-MD5"] = base64.b64encode(hashlib.md5(b"other bytes").digest()).decode()

    client.meta.events.register("before-call.s3.UploadPart", corrupt)
    writer, state = start(s3, client=settings)
    data = payload(PART)
    assert write_all(writer, state, data)[0] == "ok"  # the part is on its way
    wait_parts(state)
    result = done(writer.write_chunk(b"more", state))
    assert result == ("error", ("s3_error", "BadDigest"), state)
    assert close(writer, state, ("error", result[1])) == ("ok", state)
    assert s3.multipart_uploads() == [] and s3.objects() == {}


def test_a_completed_object_with_an_unexpected_etag_is_deleted(s3):
    settings = s3.settings(read_timeout=61)  # a client of its own
    client = s3w.client_for(settings)

    def tamper(parsed, **_):
        parsed["ETag"] = '"0123456789abcdef0123456789abcdef-2"'

    client.meta.events.register("after-call.s3.CompleteMultipartUpload", tamper)
    writer, state = start(s3, client=settings)
    assert write_all(writer, state, payload(PART + 10))[0] == "ok"
    assert close(writer, state, "done") == ("error", ("s3_error", "ETagMismatch"))
    assert s3.objects() == {} and s3.multipart_uploads() == []


def test_a_part_with_an_unexpected_etag_fails_the_upload(s3):
    settings = s3.settings(read_timeout=62)
    client = s3w.client_for(settings)

    def tamper(parsed, **_):
        parsed["ETag"] = '"0123456789abcdef0123456789abcdef"'

    client.meta.events.register("after-call.s3.UploadPart", tamper)
    writer, state = start(s3, client=settings)
    assert write_all(writer, state, payload(PART + 10))[0] == "ok"
    assert close(writer, state, "done") == ("error", ("s3_error", "PartETagMismatch"))
    assert s3.objects() == {} and s3.multipart_uploads() == []


def test_a_wrong_secret_fails_init_with_the_store_code_and_leaves_nothing(s3):
    settings = s3.settings(aws_secret_access_key="not-the-secret")
    assert S3Writer().init({"bucket": s3.bucket, "client": settings, "prefix": s3.prefix}) == (
        "error",
        ("s3_error", "SignatureDoesNotMatch"),
    )
    # Without the bucket check, the first request that goes out fails the same way.
    writer, state = start(s3, client=settings, check_bucket=False)
    result = write_all(writer, state, payload(PART))
    assert result == ("error", ("s3_error", "SignatureDoesNotMatch"), state)
    assert close(writer, state, ("error", result[1])) == ("ok", state)
    writer, state = start(s3, client=settings, check_bucket=False)
    assert close(writer, state, "done") == ("error", ("s3_error", "SignatureDoesNotMatch"))
    assert s3.objects() == {} and s3.multipart_uploads() == []
    assert s3w.pending_aborts() == []


def test_a_missing_bucket_fails_init(s3):
    assert S3Writer().init({"bucket": "no-such-bucket-here", "client": s3.settings()}) == (
        "error",
        ("s3_error", "NoSuchBucket"),
    )


def test_write_chunk_waits_for_a_part_when_the_buffer_and_the_parts_in_flight_are_full(s3):
    settings = s3.settings(read_timeout=63)
    client = s3w.client_for(settings)
    entered, release = threading.Event(), threading.Event()

    def hold(**_):
        entered.set()
        assert release.wait(WAIT)

    client.meta.events.register("before-call.s3.UploadPart", hold)
    writer, state = start(s3, client=settings, parts_in_flight=1)
    chunk = 256 * 1024
    data = payload(3 * PART)
    assert write_all(writer, state, data[:PART])[0] == "ok"  # part 1 handed to the pool
    assert entered.wait(WAIT)
    assert write_all(writer, state, data[PART : 2 * PART - chunk])[0] == "ok"  # buffered at once
    bound = PART * (1 + 1)
    assert len(state.buffer) + PART * len(state.inflight) <= bound
    try:
        # The last chunk of part 2 fills the buffer while part 1 is in flight: the
        # answer is a Pending (no thread waits), done once part 1 is.
        pending = writer.write_chunk(data[2 * PART - chunk : 2 * PART], state)
        assert isinstance(pending, Pending), pending
        assert not pending.wait_for.done(), "the wait for a part in flight ended while that part is held"
        assert s3w.budget_in_use() == PART
    finally:
        release.set()
    assert done(pending) == ("ok", state)
    assert len(state.buffer) + PART * len(state.inflight) <= bound
    assert write_all(writer, state, data[2 * PART :])[0] == "ok"
    assert close(writer, state, "done")[0] == "ok"
    assert s3.read(state.key) == data
    assert s3w.budget_in_use() == 0


def test_the_global_byte_budget_holds_a_second_upload_until_a_part_is_done(s3):
    s3w.configure(budget_bytes=PART)
    settings = s3.settings(read_timeout=64)
    client = s3w.client_for(settings)
    entered, release = threading.Event(), threading.Event()

    def hold(**_):
        if not entered.is_set():
            entered.set()
            assert release.wait(WAIT)

    client.meta.events.register("before-call.s3.UploadPart", hold)
    first, first_state = start(s3, client=settings)
    second, second_state = start(s3, client=settings)
    data = payload(PART)
    assert write_all(first, first_state, data)[0] == "ok"
    assert entered.wait(WAIT)
    try:
        # The second upload's part is taken (it has room in flight), but waits for
        # the budget without a thread: not queued on the pool, not sent.
        assert write_all(second, second_state, data)[0] == "ok"
        assert s3w.parts_waiting_for_budget() == 1 and s3w.budget_in_use() == PART
        [part] = second_state.inflight.values()
        assert not part.running() and not part.done()
    finally:
        release.set()
    assert close(first, first_state, "done")[0] == "ok" and close(second, second_state, "done")[0] == "ok"
    assert s3.read(first_state.key) == data == s3.read(second_state.key)


def test_cleanup_stale_aborts_old_multipart_uploads_only(s3):
    client = s3.client
    old = client.create_multipart_upload(Bucket=s3.bucket, Key=f"{s3.prefix}/old")["UploadId"]
    client.upload_part(Bucket=s3.bucket, Key=f"{s3.prefix}/old", UploadId=old, PartNumber=1, Body=b"abc")
    assert s3w.cleanup_stale(client, s3.bucket, s3.prefix, older_than_seconds=3600) == []
    found = s3w.cleanup_stale(client, s3.bucket, s3.prefix, older_than_seconds=-60)
    assert [(f["key"], f["upload_id"], f["aborted"]) for f in found] == [(f"{s3.prefix}/old", old, True)]
    assert s3.multipart_uploads() == []


def test_batch_delete_works_on_this_store(s3):
    client = s3.client
    for name in ("a", "b"):
        client.put_object(Bucket=s3.bucket, Key=f"{s3.prefix}/{name}", Body=b"x")
    response = client.delete_objects(
        Bucket=s3.bucket, Delete={"Objects": [{"Key": f"{s3.prefix}/a"}, {"Key": f"{s3.prefix}/b"}]}
    )
    assert len(response.get("Deleted", [])) == 2 and s3.objects() == {}

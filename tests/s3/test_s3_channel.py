"""``S3Writer`` behind the real upload channel and session, against Swift."""

from __future__ import annotations

import base64
import hashlib
import random
import threading

import pytest
from pykka import ActorDeadError

import actors
import writers.s3 as s3w
from tests.helpers import WAIT
from tests.s3.conftest import MiB
from uploads import UploadSession
from uploads.inprocess import InProcessClient, stop_session
from writers.s3 import S3Writer, s3_writer_factory

pytestmark = pytest.mark.timeout(60)
PART = 5 * MiB


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def started(s3, max_entries: int = 1, **writer_opts):
    writer_opts.setdefault("client", s3.settings())
    factory = s3_writer_factory(s3.bucket, prefix=s3.prefix, part_size=PART, **writer_opts)
    session = UploadSession.start()
    client = InProcessClient(session)
    client.call("allow_upload", "avatar", accept="any", max_entries=max_entries, max_file_size=200 * MiB, writer=factory)
    return session, client


def test_an_upload_through_the_channel_lands_in_the_bucket_and_is_consumed_as_its_meta(s3):
    data = payload(PART + 300_000)
    session, client = started(s3)
    try:
        assert client.upload({"big photo.png": data}) == {"big photo.png": ["ok"] * 87}
        [meta] = client.call("consume_uploaded_entries", "avatar", lambda meta: ("ok", meta))
        assert meta["bucket"] == s3.bucket and meta["size"] == len(data) and meta["etag"].endswith("-2")
        assert meta["key"].startswith(s3.prefix + "/") and meta["key"].endswith("/big_photo.png")
        assert s3.read(meta["key"]) == data  # consuming leaves the object where it is
        assert s3.multipart_uploads() == []
    finally:
        stop_session(session)


def test_a_cancel_in_the_middle_leaves_no_parts(s3):
    data = payload(3 * PART)
    session, client = started(s3)
    try:
        token = client.preflight({"a.bin": data})["entries"]["0"]
        channel = client.join(token)
        assert set(client.send(channel, data[: 2 * PART + 64_000], 64_000)) == {"ok"}
        assert len(s3.multipart_uploads()) == 1
        assert channel.ask("cancel", timeout=WAIT) == "ok"
        actors.await_exit(channel, WAIT)
        assert s3w.wait_aborts(WAIT)  # the abort goes to the I/O pool: nothing in the channel waits for it
        assert s3.multipart_uploads() == [] and s3.objects() == {}
    finally:
        stop_session(session)


def two_multipart_uploads_in_flight(s3, client) -> list:
    """Two uploads past their first part (so each has a multipart upload open); their channels."""
    files = {f"f{i}.bin": payload(2 * PART, seed=i) for i in range(2)}
    reply = client.preflight(files)
    channels = []
    for i, data in enumerate(files.values()):
        channels.append(client.join(reply["entries"][str(i)]))
        assert set(client.send(channels[-1], data[: PART + 64_000], 64_000)) == {"ok"}
    assert len(s3.multipart_uploads()) == 2
    return channels


def test_a_stopped_session_aborts_its_uploads_in_flight(s3):
    session, client = started(s3, max_entries=2)
    try:
        channels = two_multipart_uploads_in_flight(s3, client)
    finally:
        stop_session(session)
    for channel in channels:  # each saw its owner go and closed its writer with "cancel"
        actors.await_exit(channel, WAIT)
    assert s3w.wait_aborts(WAIT)
    assert s3.multipart_uploads() == [] and s3.objects() == {}


def test_a_killed_session_leaves_no_parts_behind(s3):
    """A kill runs nothing in the session: each channel sees its owner go
    (its monitor), closes its writer with "cancel", and the upload is aborted."""
    session, client = started(s3, max_entries=2)
    try:
        channels = two_multipart_uploads_in_flight(s3, client)
        actors.exit(session, actors.KILL)
        assert actors.await_exit(session, WAIT) == "killed"
        for channel in channels:
            assert actors.await_exit(channel, WAIT) in (("shutdown", "owner_down"), "shutdown")
        assert s3w.wait_aborts(WAIT) and s3w.wait_no_pending_aborts(WAIT)  # none failed and was retried
        assert s3.multipart_uploads() == [] and s3.objects() == {}
    finally:
        stop_session(session)


def test_a_writer_error_closes_only_its_own_channel(s3):
    bad_settings = s3.settings(retries={"total_max_attempts": 1})
    s3w.client_for(bad_settings).meta.events.register(
        "before-call.s3.UploadPart",
        lambda params, **_: params["headers"].__setitem__("Content-MD5", base64.b64encode(b"0" * 16).decode()),
    )
    good = s3_writer_factory(s3.bucket, prefix=s3.prefix, part_size=PART, client=s3.settings())
    bad = s3_writer_factory(s3.bucket, prefix=s3.prefix, part_size=PART, client=bad_settings)

    def factory(name, entry, session):
        return (bad if entry["client_name"] == "bad.bin" else good)(name, entry, session)

    session = UploadSession.start()
    client = InProcessClient(session)
    client.call("allow_upload", "avatar", accept="any", max_entries=2, max_file_size=200 * MiB, writer=factory)
    bad_data, good_data = payload(3 * PART, seed=1), payload(PART + 1000, seed=2)
    try:
        reply = client.preflight({"bad.bin": bad_data, "good.bin": good_data})
        bad_channel = client.join(reply["entries"]["0"])
        good_channel = client.join(reply["entries"]["1"])
        replies = client.send(bad_channel, bad_data, 64_000)
        assert replies[-1] == ("error", {"reason": "writer_error"}) and set(replies[:-1]) == {"ok"}
        assert actors.await_exit(bad_channel, WAIT) == ("shutdown", "writer_error")
        assert client.entry("0")["errors"] == [("writer_failure", ("s3_error", "BadDigest"))]
        assert session.is_alive() and good_channel.is_alive()
        assert set(client.send(good_channel, good_data, 64_000)) == {"ok"}
        [meta] = client.call("consume_uploaded_entries", "avatar", lambda meta: ("ok", meta))
        assert s3.read(meta["key"]) == good_data
        assert s3w.wait_aborts(WAIT)
        assert s3.multipart_uploads() == []
    finally:
        stop_session(session)


def test_a_wrong_secret_fails_the_join_with_writer_error_and_the_store_code(s3):
    session, client = started(s3, client=s3.settings(aws_secret_access_key="wrong"))
    try:
        token = client.preflight({"a.bin": b"abc"})["entries"]["0"]
        assert client.join(token) == ("error", {"reason": "writer_error"})
        assert client.entry("0")["errors"] == [("writer_failure", ("s3_error", "SignatureDoesNotMatch"))]
        assert s3.objects() == {} and s3.multipart_uploads() == []
    finally:
        stop_session(session)


@pytest.mark.substrates("pool")
def test_many_concurrent_uploads_through_channels_are_all_intact(s3):
    small = {f"s{i}.bin": payload(200_000 + i, seed=i) for i in range(90)}
    large = {f"l{i}.bin": payload(PART + 100_000 * i, seed=1000 + i) for i in range(10)}
    files = {**small, **large}
    session, client = started(s3, max_entries=len(files))
    try:
        reply = client.preflight(files)
        channels = [client.join(reply["entries"][str(i)]) for i in range(len(files))]
        results: dict[str, list] = {}

        def send(name, channel, data):
            replies = []
            for start in range(0, len(data), 64_000):  # stop-and-wait, as the JS client
                replies.append(channel.ask(("chunk", data[start : start + 64_000]), timeout=40))
                if replies[-1] != "ok":
                    break
            results[name] = replies

        threads = [
            threading.Thread(target=send, args=(name, channel, data))
            for (name, data), channel in zip(files.items(), channels)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(45)
        assert all(set(r) == {"ok"} for r in results.values()) and len(results) == len(files)
        metas = client.call("consume_uploaded_entries", "avatar", lambda meta, entry: ("ok", (entry["client_name"], meta)))
        assert len(metas) == len(files)
        for name, meta in metas:
            assert hashlib.sha256(s3.read(meta["key"])).digest() == hashlib.sha256(files[name]).digest(), name
        assert s3.multipart_uploads() == []
        assert s3w.pool_threads() <= s3w.DEFAULT_POOL_SIZE
    finally:
        stop_session(session)


class JournaledS3Writer(S3Writer):
    """S3Writer noting every close reason (the channel must close it once)."""

    def __init__(self, journal: list) -> None:
        self.journal = journal

    def close(self, state, reason):
        self.journal.append((state.key, reason))
        return super().close(state, reason)


@pytest.mark.substrates("pool")  # a blocking writer's channel has a thread of its own anyway
def test_object_server_killed_mid_upload_fails_that_upload_only_and_its_abort_is_retried_once_back(s3):
    journal: list = []
    writer = JournaledS3Writer(journal)
    settings = s3.settings(retries={"total_max_attempts": 1})

    def factory(name, entry, session):
        # One part in flight: part 3 waits for part 2, so part 2's failure ends a write, not the close.
        opts = {"bucket": s3.bucket, "prefix": s3.prefix, "part_size": PART, "parts_in_flight": 1}
        return (writer, {**opts, "client": settings, "entry": entry})

    session = UploadSession.start()
    client = InProcessClient(session)
    # The sibling idles while the object server is down and back: a chunk timeout
    # far above that wait, so only the killed server can end an upload here.
    client.call("allow_upload", "avatar", accept="any", max_entries=2, max_file_size=200 * MiB, writer=factory,
                chunk_timeout=300.0)
    doomed, sibling = payload(4 * PART, seed=5), payload(PART + 500_000, seed=6)
    try:
        reply = client.preflight({"doomed.bin": doomed, "sibling.bin": sibling})
        doomed_channel = client.join(reply["entries"]["0"])
        sibling_channel = client.join(reply["entries"]["1"])
        assert set(client.send(sibling_channel, sibling[:1_000_000], 64_000)) == {"ok"}  # buffered only
        assert set(client.send(doomed_channel, doomed[: PART + 64_000], 64_000)) == {"ok"}
        assert len(s3.multipart_uploads()) == 1
        s3.swift.stop_server("object", kill=True)
        try:
            replies = client.send(doomed_channel, doomed[PART + 64_000 :], 64_000)
            assert replies[-1] == ("error", {"reason": "writer_error"})
            reason = ("s3_error", "ServiceUnavailable")
            assert actors.await_exit(doomed_channel, WAIT) == ("shutdown", "writer_error")
            assert client.entry("0")["errors"] == [("writer_failure", reason)]
            [(key, closed_with)] = journal
            assert closed_with == ("error", reason)
            assert s3w.wait_aborts(WAIT)
            [pending] = s3w.pending_aborts()
            assert pending.key == key and pending.reason == reason
            assert session.is_alive() and sibling_channel.is_alive()
        finally:
            s3.swift.restart_server("object")
        assert s3w.wait_no_pending_aborts(30)
        assert [u["Key"] for u in s3.multipart_uploads()] == []
        assert set(client.send(sibling_channel, sibling[1_000_000:], 64_000)) == {"ok"}
        [meta] = client.call("consume_uploaded_entries", "avatar", lambda meta: ("ok", meta))
        assert s3.read(meta["key"]) == sibling
        assert [reason for _, reason in journal] == [("error", ("s3_error", "ServiceUnavailable")), "done"]
    finally:
        stop_session(session)


def held_requests(settings: dict, operation: str) -> tuple[threading.Event, threading.Event]:
    """Hold every *operation* request of the client for *settings* until released:
    (entered, release). The request waits on an I/O thread, never on the channel."""
    entered, release = threading.Event(), threading.Event()

    def hold(**_):
        entered.set()
        assert release.wait(WAIT)

    s3w.client_for(settings).meta.events.register(f"before-call.s3.{operation}", hold)
    return entered, release


@pytest.mark.substrates("pool")
def test_a_channel_killed_while_its_chunk_waits_for_a_part_aborts_the_multipart_upload(s3):
    settings = s3.settings(read_timeout=71)  # a client of its own, for the hook
    entered, release = held_requests(settings, "UploadPart")
    session, client = started(s3, client=settings, parts_in_flight=1)
    data = payload(3 * PART)
    try:
        channel = client.join(client.preflight({"a.bin": data})["entries"]["0"])
        assert set(client.send(channel, data[: PART + 64_000], 64_000)) == {"ok"}  # part 1 on its way, held
        assert entered.wait(WAIT)
        assert set(client.send(channel, data[PART + 64_000 : 2 * PART - 64_000], 64_000)) == {"ok"}
        # The chunk that fills part 2 waits for part 1: its answer is deferred, no thread held.
        waiting = channel.ask(("chunk", data[2 * PART - 64_000 : 2 * PART]), block=False)
        assert channel.ask("consume_start", timeout=WAIT) == ("error", "in_progress")
        assert not waiting.done()
        actors.exit(channel, actors.KILL)
        assert actors.await_exit(channel, WAIT) == "killed"
        with pytest.raises(ActorDeadError):
            waiting.get(timeout=WAIT)
    finally:
        release.set()
        stop_session(session)
    assert s3w.wait_aborts(WAIT)  # the kill's release aborted the upload once part 1 was done
    assert s3.multipart_uploads() == [] and s3.objects() == {}
    assert s3w.budget_in_use() == 0 and s3w.parts_waiting_for_budget() == 0


@pytest.mark.substrates("pool")
def test_a_cancel_while_the_put_of_a_small_file_is_pending_leaves_no_object(s3):
    settings = s3.settings(read_timeout=72)
    entered, release = held_requests(settings, "PutObject")
    session, client = started(s3, client=settings)
    data = payload(60_000)
    try:
        channel = client.join(client.preflight({"a.bin": data})["entries"]["0"])
        last = channel.ask(("chunk", data), block=False)  # the whole file: close("done") puts it
        assert entered.wait(WAIT)
        assert not last.done()
        assert channel.ask("cancel", timeout=WAIT) == "ok"
        assert actors.await_exit(channel, WAIT) == ("shutdown", "cancelled")
        with pytest.raises(ActorDeadError):
            last.get(timeout=WAIT)
    finally:
        release.set()
        stop_session(session)
    assert s3w.wait_aborts(WAIT)  # the put went through, then its object was deleted
    assert s3.objects() == {} and s3.multipart_uploads() == []

"""``S3Writer``: stream an upload entry into one S3 object (multipart upload).

Nothing remote happens until a part's worth of data has arrived: a file smaller
than one part goes up as a single ``PutObject`` at ``close("done")``. Bigger
files become a multipart upload whose parts are sent by a **shared, bounded
pool of I/O threads** while the client keeps sending; ``write_chunk`` answers
as soon as its chunk is buffered. Every request to the store runs on that pool,
and every wait for one is a :class:`writers.Pending` (the behaviour's extension
for writers that wait on the network): the channel answers the chunk once the
wait is over, holding no thread meanwhile, so the writer is not ``blocking``
and its channels run on the shared scheduler. When an upload already has
``parts_in_flight`` parts on their way and its buffer holds a full part,
``write_chunk`` answers ``Pending`` until one of them is done: that is the
back-pressure the client feels. Memory per upload is bounded by
``part_size * (parts_in_flight + 1)`` plus one chunk, and a global byte budget
bounds the bytes of all parts queued or in flight together.

Integrity: each part (and a single ``PutObject``) carries its ``Content-MD5``,
the part's ETag is checked against it, and the completed object's ETag is
checked against ``md5(concatenated part md5s)-N``; a mismatch fails the close
and deletes the object.

Failures are reported as ``("s3_error", code)``: *code* is the store's error
code (``"SignatureDoesNotMatch"``, ``"NoSuchBucket"``, ``"ServiceUnavailable"``,
``"BadDigest"``...), the name of the client's exception when the store could
not be reached (``"EndpointConnectionError"``, ``"ReadTimeoutError"``...), or
one of this module's: ``"PartETagMismatch"``, ``"ETagMismatch"``.

An abort that fails (store unreachable) is recorded in :data:`pending_aborts`
and retried by a small supervised process until it succeeds; see
:func:`pending_aborts`, :func:`configure` and :func:`shutdown`. Stale multipart
uploads a crash left behind are found and aborted by :func:`cleanup_stale`.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

import actors
import supervision

from .behaviour import Chunk, CloseReason, CloseResult, InitResult, Pending, UploadWriter, WriteResult

__all__ = [
    "DEFAULT_BUDGET_BYTES",
    "DEFAULT_PART_SIZE",
    "DEFAULT_PARTS_IN_FLIGHT",
    "DEFAULT_POOL_SIZE",
    "MAX_PARTS",
    "MIN_PART_SIZE",
    "PendingAbort",
    "S3State",
    "S3Writer",
    "budget_in_use",
    "cleanup_stale",
    "client_for",
    "configure",
    "default_key",
    "parts_waiting_for_budget",
    "pending_aborts",
    "pool_size",
    "pool_threads",
    "retry_pending_aborts",
    "s3_reason",
    "s3_writer_factory",
    "shutdown",
    "wait_aborts",
    "wait_no_pending_aborts",
]

_log = structlog.get_logger("liveupload.writers.s3")

MIN_PART_SIZE = 5 * 1024 * 1024
"""S3's minimum size of every part but the last."""
MAX_PARTS = 10_000
DEFAULT_PART_SIZE = 8 * 1024 * 1024
DEFAULT_PARTS_IN_FLIGHT = 2
DEFAULT_POOL_SIZE = 16
DEFAULT_BUDGET_BYTES = 512 * 1024 * 1024
DEFAULT_RETRY_INTERVAL = 30.0
DEFAULT_PREFIX = "uploads"
IO_THREAD_LINGER = 2.0
"""Seconds an idle I/O thread waits for another job before it ends."""
BUCKET_CHECK_TTL = 60.0
"""Seconds a successful bucket check at ``init`` is trusted for the same client and bucket."""


# -- reasons ----------------------------------------------------------------------


def s3_reason(exc: BaseException) -> tuple[str, str]:
    """``("s3_error", code)`` for a client exception: the store's error code, or
    the exception's class name when no response came back."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code") or str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "Unknown"))
        return ("s3_error", str(code))
    return ("s3_error", type(exc).__name__)


class _Mismatch(Exception):
    """The store's ETag is not the one computed here."""

    def __init__(self, code: str, expected: str, got: str) -> None:
        super().__init__(f"{code}: expected {expected}, got {got}")
        self.code = code


def _reason_of(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, _Mismatch):
        return ("s3_error", exc.code)
    if isinstance(exc, _StoreFailed):
        return exc.reason
    return s3_reason(exc)


# -- settings, clients, the I/O pool and the byte budget -----------------------------

_settings_lock = threading.Lock()
_pool_size = DEFAULT_POOL_SIZE
_retry_interval = DEFAULT_RETRY_INTERVAL


def configure(
    *,
    pool_size: int | None = None,
    budget_bytes: int | None = None,
    retry_interval: float | None = None,
) -> None:
    """Set the shared limits: I/O threads in the pool, the byte budget of all
    parts queued or in flight, and the seconds between retries of failed aborts."""
    global _pool_size, _retry_interval
    with _settings_lock:
        if pool_size is not None:
            if pool_size < 1:
                raise ValueError(f"pool_size must be >= 1, got {pool_size}")
            _pool_size = pool_size
            _pool.max_workers = pool_size
        if budget_bytes is not None:
            _budget.set_limit(budget_bytes)
        if retry_interval is not None:
            if not retry_interval > 0:
                raise ValueError(f"retry_interval must be > 0, got {retry_interval}")
            _retry_interval = float(retry_interval)


class _IOPool:
    """A bounded pool of I/O threads shared by every upload.

    At most ``max_workers`` threads; a thread is started when a job is queued
    and none is idle, and it ends once it has waited ``linger`` seconds with
    no job, so an idle process soon holds no thread, while a busy one does not
    start a thread per request (starting one is what a channel would wait
    for). :meth:`join` ends idle threads at once (a test leaves none behind).
    """

    def __init__(self, max_workers: int, linger: float = IO_THREAD_LINGER) -> None:
        self.max_workers = max_workers
        self.linger = linger
        self._cond = threading.Condition(threading.Lock())
        self._jobs: collections.deque[tuple[Future, Callable[..., Any], tuple]] = collections.deque()
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._draining = False
        self._serial = 0

    def submit(self, future: Future, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on a pool thread; its outcome goes to ``future``."""
        with self._cond:
            self._jobs.append((future, fn, args))
            if self._idle >= len(self._jobs):
                self._cond.notify()
            elif len(self._threads) < self.max_workers:
                self._serial += 1
                thread = threading.Thread(target=self._work, name=f"s3-io-{self._serial}", daemon=True)
                self._threads.add(thread)
                thread.start()

    def _next_job(self, me: threading.Thread) -> tuple[Future, Callable[..., Any], tuple] | None:
        """The next job, waiting up to ``linger`` for one; None when this thread should end."""
        with self._cond:
            deadline = time.monotonic() + self.linger
            while not self._jobs:
                left = deadline - time.monotonic()
                if self._draining or left <= 0:
                    self._threads.discard(me)
                    return None
                self._idle += 1
                try:
                    self._cond.wait(left)
                finally:
                    self._idle -= 1
            return self._jobs.popleft()

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            job = self._next_job(me)
            if job is None:
                return
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting upload
                future.set_exception(exc)
            else:
                future.set_result(result)
                del result
            del job, future, fn, args  # hold nothing of a finished job while waiting for the next

    def threads(self) -> list[threading.Thread]:
        with self._cond:
            return list(self._threads)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the threads to end: each finishes the jobs queued, then ends
        without lingering."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._draining = True
            self._cond.notify_all()
        try:
            for thread in self.threads():
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        finally:
            with self._cond:
                self._draining = False
        return not self.threads()


class _Part(Future):
    """One part's upload, and the bytes it counts of the budget once granted.

    A part waits for room in the budget without holding a thread: the budget
    calls :meth:`granted` when its bytes fit, which queues the part on the
    pool. Whoever drops a part that never ran (:meth:`drop`) gives its bytes
    back if the budget had granted them; the part's job gives them back otherwise.
    """

    def __init__(self, nbytes: int) -> None:
        super().__init__()
        self.nbytes = nbytes
        self._held = False
        self._guard = threading.Lock()

    def granted(self) -> bool:
        """The budget took this part's bytes: False (and they go back) if it was dropped meanwhile."""
        with self._guard:
            if self.cancelled():
                _budget.release(self.nbytes)
                return False
            self._held = True
            return True

    def drop(self) -> bool:
        """Cancel it if it has not started; True if so (its bytes, if held, go back)."""
        if not self.cancel():
            return False  # sending or done: its job gives the bytes back
        with self._guard:
            held, self._held = self._held, False
        if held:
            _budget.release(self.nbytes)
        return True


class _ByteBudget:
    """A counting semaphore of bytes whose waiters hold no thread: ``reserve(n,
    grant)`` calls ``grant()`` once *n* bytes fit (at once, or from whichever
    ``release`` makes room), first come first served."""

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self.limit = limit
        self.used = 0
        self._waiting: collections.deque[tuple[int, Callable[[], Any]]] = collections.deque()

    def set_limit(self, limit: int) -> None:
        if limit < MIN_PART_SIZE:
            raise ValueError(f"budget_bytes must be >= {MIN_PART_SIZE} (one part), got {limit}")
        with self._lock:
            self.limit = limit
            grants = self._admit()
        for grant in grants:
            grant()

    def reserve(self, n: int, grant: Callable[[], Any]) -> None:
        with self._lock:
            self._waiting.append((n, grant))
            grants = self._admit()
        for ready in grants:
            ready()

    def release(self, n: int) -> None:
        with self._lock:
            self.used -= n
            grants = self._admit()
        for grant in grants:
            grant()

    def waiting(self) -> int:
        """Parts waiting for room."""
        with self._lock:
            return len(self._waiting)

    def _admit(self) -> list[Callable[[], Any]]:
        """Take the waiters that fit now, in order (under the lock)."""
        grants = []
        # A part bigger than the whole budget still goes, alone.
        while self._waiting and (not self.used or self.used + self._waiting[0][0] <= self.limit):
            n, grant = self._waiting.popleft()
            self.used += n
            grants.append(grant)
        return grants


_pool = _IOPool(DEFAULT_POOL_SIZE)
_budget = _ByteBudget(DEFAULT_BUDGET_BYTES)


def _first_done(futures: Iterable[Future]) -> Future:
    """A future done as soon as any of *futures* is (at once if one already is)."""
    first: Future = Future()

    def done(_future: Future) -> None:
        with contextlib.suppress(InvalidStateError):
            first.set_result(None)

    for future in futures:
        future.add_done_callback(done)
    return first


def _all_done(futures: Iterable[Future]) -> Future:
    """A future done once every one of *futures* is (at once if there are none)."""
    pending = list(futures)
    every: Future = Future()
    left = [len(pending)]
    guard = threading.Lock()

    def done(_future: Future) -> None:
        with guard:
            left[0] -= 1
            last = left[0] == 0
        if last:
            every.set_result(None)

    if not pending:
        every.set_result(None)
    for future in pending:
        future.add_done_callback(done)
    return every


def _on_pool(fn: Callable[..., Any], *args: Any) -> Future:
    """Run ``fn(*args)`` on the shared I/O pool; its future."""
    future: Future = Future()
    _pool.submit(future, fn, *args)
    return future


def pool_size() -> int:
    """The most I/O threads the pool runs at once (see :func:`configure`)."""
    return _pool.max_workers


def pool_threads() -> int:
    """How many I/O threads are running now."""
    return len(_pool.threads())


def parts_waiting_for_budget() -> int:
    """Parts taken by their upload but waiting for room in the byte budget."""
    return _budget.waiting()


def budget_in_use() -> int:
    """Bytes of parts queued or in flight, over all uploads."""
    return _budget.used


_clients_lock = threading.Lock()
_clients: dict[str, Any] = {}
_CLIENT_KEYS = ("endpoint_url", "region_name", "aws_access_key_id", "aws_secret_access_key", "aws_session_token")
_CONFIG_KEYS = ("retries", "connect_timeout", "read_timeout", "max_pool_connections")


def _settings_key(settings: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(settings or {}), sort_keys=True, default=str)


def client_for(settings: Mapping[str, Any] | None = None) -> Any:
    """The shared boto3 S3 client for *settings* (made on first use, path-style).

    *settings*: ``endpoint_url``, ``region_name``, ``aws_access_key_id``,
    ``aws_secret_access_key``, ``aws_session_token``, ``profile_name`` and the
    ``botocore.config.Config`` options ``retries``, ``connect_timeout``,
    ``read_timeout``, ``max_pool_connections``. Whatever is missing comes from
    the standard AWS chain (environment such as ``AWS_ENDPOINT_URL_S3``,
    config files).
    """
    key = _settings_key(settings)
    settings = json.loads(key)  # a deep copy: botocore's Config changes the retries dict it gets
    unknown = set(settings) - set(_CLIENT_KEYS) - set(_CONFIG_KEYS) - {"profile_name"}
    if unknown:
        raise ValueError(f"unknown S3 client settings: {sorted(unknown)}")
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            config = Config(
                s3={"addressing_style": "path"},
                max_pool_connections=settings.get("max_pool_connections", max(10, _pool_size + 8)),
                # Content-MD5 is the integrity check; no second checksum pass per part.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                **{k: settings[k] for k in ("retries", "connect_timeout", "read_timeout") if k in settings},
            )
            session = boto3.session.Session(profile_name=settings.get("profile_name"))
            client = session.client("s3", config=config, **{k: settings[k] for k in _CLIENT_KEYS if k in settings})
            _fix_delete_objects(client)
            _clients[key] = client
        return client


def _fix_delete_objects(client: Any) -> None:
    """Recent boto3 sends DeleteObjects without Content-MD5, which Swift refuses."""

    def add_md5(params: dict, **_kwargs: Any) -> None:
        body = params.get("body") or b""
        if isinstance(body, str):
            body = body.encode()
        if "Content-MD5" not in params["headers"]:
            params["headers"]["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()

    client.meta.events.register("before-call.s3.DeleteObjects", add_md5)


_bucket_checks: dict[tuple[str, str], float] = {}


def _check_bucket(client: Any, settings_key: str, bucket: str, prefix: str) -> None:
    """A signed read of the bucket (cached for a while): a wrong secret or a missing
    bucket fails ``init`` with the store's code instead of the first part."""
    now = time.monotonic()
    if now - _bucket_checks.get((settings_key, bucket), -BUCKET_CHECK_TTL) < BUCKET_CHECK_TTL:
        return
    client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    _bucket_checks[(settings_key, bucket)] = time.monotonic()


# -- keys ---------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _entry_field(entry: Any, name: str, default: Any = None) -> Any:
    if isinstance(entry, Mapping):
        return entry.get(name, default)
    return getattr(entry, name, default)


def sanitise_name(name: str) -> str:
    """A client's file name made safe as the last segment of a key."""
    base = str(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).strip("._")[:200]
    return cleaned or "upload"


def default_key(entry: Any, prefix: str = DEFAULT_PREFIX) -> str:
    """``<prefix>/<random id>/<sanitised client name>``."""
    name = sanitise_name(_entry_field(entry, "client_name", "") or "")
    head = prefix.strip("/")
    return f"{head}/{secrets.token_hex(12)}/{name}" if head else f"{secrets.token_hex(12)}/{name}"


# -- the writer ---------------------------------------------------------------------


@dataclass
class S3State:
    """Per-upload state (owned by the upload's channel)."""

    client: Any = field(repr=False)
    settings_key: str = field(repr=False)
    bucket: str
    key: str
    part_size: int
    parts_in_flight: int
    content_type: str
    buffer: bytearray = field(default_factory=bytearray, repr=False)
    size: int = 0
    upload_id: str | None = None
    creating: Future | None = field(default=None, repr=False)
    """``CreateMultipartUpload`` on its way (its result: the upload id)."""
    next_part: int = 1
    inflight: dict[int, _Part] = field(default_factory=dict, repr=False)
    parts: dict[int, tuple[str, bytes]] = field(default_factory=dict, repr=False)
    """Part number -> (ETag, md5 digest) of every part the store acknowledged."""
    failure: tuple[str, str] | None = None
    etag: str | None = None
    closed: bool = False
    finishing: Future | None = field(default=None, repr=False)
    """The last request of ``close("done")`` (``PutObject`` or ``CompleteMultipartUpload``)."""
    settled: bool = False
    """Nothing remote left to do or undo: closed and its outcome handled."""


class S3Writer(UploadWriter):
    """Streams an entry into ``s3://<bucket>/<key>``.

    Options (a mapping given to ``init``; :func:`s3_writer_factory` builds it):

    - ``bucket`` (required);
    - ``key``: a string, or a callable ``(entry) -> str``; default
      :func:`default_key` with ``prefix`` (default ``"uploads"``);
    - ``entry``: the upload entry (a dict as the session passes to factories);
    - ``part_size``: bytes per part, >= 5 MiB (default 8 MiB);
    - ``parts_in_flight``: parts of this upload queued or sending at once (default 2);
    - ``content_type``: default the entry's ``client_type``, else
      ``application/octet-stream``;
    - ``client``: client settings, see :func:`client_for`;
    - ``check_bucket``: a signed read of the bucket at ``init`` (default True), so a
      wrong secret or missing bucket fails the join with the store's code.
    """


    def init(self, opts: Mapping[str, Any] | None) -> InitResult:
        opts = dict(opts or {})
        bucket = opts.get("bucket")
        if not bucket:
            raise ValueError("S3Writer needs a bucket")
        part_size = int(opts.get("part_size", DEFAULT_PART_SIZE))
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be >= {MIN_PART_SIZE} bytes (S3's minimum), got {part_size}")
        parts_in_flight = int(opts.get("parts_in_flight", DEFAULT_PARTS_IN_FLIGHT))
        if parts_in_flight < 1:
            raise ValueError(f"parts_in_flight must be >= 1, got {parts_in_flight}")
        entry = opts.get("entry") or {}
        prefix = str(opts.get("prefix", DEFAULT_PREFIX))
        key = opts.get("key")
        key = key(entry) if callable(key) else (key or default_key(entry, prefix))
        content_type = opts.get("content_type") or _entry_field(entry, "client_type") or "application/octet-stream"
        settings = opts.get("client") or {}
        try:
            client = client_for(settings)
            if opts.get("check_bucket", True):
                with actors.blocking():
                    _check_bucket(client, _settings_key(settings), bucket, prefix)
        except (BotoCoreError, ClientError) as exc:
            reason = s3_reason(exc)
            _log.warning("s3 init failed", bucket=bucket, key=key, reason=reason)
            return ("error", reason)
        return (
            "ok",
            S3State(
                client=client,
                settings_key=_settings_key(settings),
                bucket=bucket,
                key=key,
                part_size=part_size,
                parts_in_flight=parts_in_flight,
                content_type=content_type,
            ),
        )

    def meta(self, state: S3State) -> dict:
        return {"bucket": state.bucket, "key": state.key, "size": state.size, "etag": state.etag}

    def write_chunk(self, data: Chunk, state: S3State) -> WriteResult | Pending:
        if state.closed:
            raise ValueError(f"write_chunk after close on s3://{state.bucket}/{state.key}")
        self._collect(state)
        if state.failure is not None:
            return ("error", state.failure, state)
        state.size += len(data)
        state.buffer += data
        return self._send_full_parts(state)

    def close(self, state: S3State, reason: CloseReason) -> CloseResult | Pending:
        if state.closed:
            raise ValueError(f"close twice on s3://{state.bucket}/{state.key}")
        state.closed = True
        if reason == "done":
            if state.upload_id is None and state.creating is None and state.failure is None:
                return self._put_single(state)
            return self._finish(state)
        self._abort(state)
        state.settled = True
        return ("ok", state)

    def release(self, state: S3State) -> None:
        """Drop the buffer; and if the upload ended without its close's outcome
        (a kill, or a cancel while ``close("done")`` was pending), undo what is
        remote: abort the multipart upload, or delete an object put meanwhile."""
        state.buffer = bytearray()
        if state.settled:
            return
        state.settled = True
        state.closed = True
        finishing = state.finishing
        if finishing is None:
            self._abort(state)
            return
        _aborts.start()
        finishing.add_done_callback(lambda _done: _on_pool(_undo_close, state))
        _log.info("s3 upload abandoned while closing", bucket=state.bucket, key=state.key)

    # -- parts ------------------------------------------------------------------

    def _send_full_parts(self, state: S3State) -> WriteResult | Pending:
        """Hand each full part of the buffer to the pool; ``Pending`` while one
        must wait for the multipart upload to exist or for a part in flight."""
        while len(state.buffer) >= state.part_size:
            self._collect(state)
            if state.failure is not None:
                return ("error", state.failure, state)
            if state.upload_id is None:
                if state.creating is None:
                    state.creating = _on_pool(_create_upload, state.client, state.bucket, state.key, state.content_type)
                return Pending(state.creating, lambda: self._send_full_parts(state))
            if len(state.inflight) >= state.parts_in_flight:
                return Pending(_first_done(state.inflight.values()), lambda: self._send_full_parts(state))
            body = state.buffer
            state.buffer = bytearray(body[state.part_size :])  # at most one chunk is copied
            del body[state.part_size :]
            self._send_part(state, body)
        return ("ok", state)

    def _send_part(self, state: S3State, body: bytearray) -> None:
        """Queue one part: on the pool once the byte budget has room for it."""
        if state.next_part > MAX_PARTS:
            raise ValueError(f"s3://{state.bucket}/{state.key}: more than {MAX_PARTS} parts of {state.part_size} bytes")
        assert state.upload_id is not None
        number, state.next_part = state.next_part, state.next_part + 1
        part = _Part(len(body))
        args = (state.client, state.bucket, state.key, state.upload_id, number, body)

        def grant() -> None:
            if part.granted():
                _pool.submit(part, _upload_part, *args)

        state.inflight[number] = part
        _budget.reserve(len(body), grant)

    def _collect(self, state: S3State) -> None:
        """Record what the store has answered: the upload id, finished parts, the first failure."""
        creating = state.creating
        if creating is not None and creating.done():
            state.creating = None
            exc = creating.exception()
            if exc is None:
                state.upload_id = creating.result()
                _log.debug("s3 multipart started", bucket=state.bucket, key=state.key, upload_id=state.upload_id)
            elif state.failure is None:
                state.failure = _reason_of(exc)
        for number, future in list(state.inflight.items()):
            if not future.done():
                continue
            del state.inflight[number]
            if future.cancelled():
                continue
            exc = future.exception()
            if exc is None:
                state.parts[number] = future.result()
            elif state.failure is None:
                state.failure = _reason_of(exc)
                _log.warning(
                    "s3 part failed", bucket=state.bucket, key=state.key, part=number, reason=state.failure
                )

    # -- close("done") -------------------------------------------------------------

    def _finish(self, state: S3State) -> CloseResult | Pending:
        """The last part, every part acknowledged, then ``CompleteMultipartUpload``;
        each wait a ``Pending``, never a thread."""
        self._collect(state)
        if state.creating is not None:
            return Pending(state.creating, lambda: self._finish(state))
        if state.failure is not None:
            return self._failed_close(state)
        if state.buffer:
            if len(state.inflight) >= state.parts_in_flight:
                return Pending(_first_done(state.inflight.values()), lambda: self._finish(state))
            body, state.buffer = state.buffer, bytearray()
            self._send_part(state, body)
        if state.inflight:
            return Pending(_all_done(state.inflight.values()), lambda: self._finish(state))
        numbers = sorted(state.parts)
        digests = b"".join(state.parts[n][1] for n in numbers)
        expected = f"{hashlib.md5(digests).hexdigest()}-{len(numbers)}"
        listing = [{"PartNumber": n, "ETag": state.parts[n][0]} for n in numbers]
        state.finishing = _on_pool(_complete_upload, state.client, state.bucket, state.key, state.upload_id, listing)
        return Pending(state.finishing, lambda: self._completed(state, expected))

    def _completed(self, state: S3State, expected: str) -> CloseResult:
        assert state.finishing is not None
        exc = state.finishing.exception()
        if exc is not None:
            state.failure = state.failure or _reason_of(exc)
            return self._failed_close(state)
        got = state.finishing.result()
        state.upload_id = None  # completed: nothing to abort any more
        state.settled = True
        if got != expected:
            _log.error("s3 etag mismatch", bucket=state.bucket, key=state.key, expected=expected, got=got)
            _delete_later(state)
            return ("error", ("s3_error", "ETagMismatch"))
        state.etag = got
        _log.debug("s3 upload completed", bucket=state.bucket, key=state.key, size=state.size, parts=len(state.parts))
        return ("ok", state)

    def _failed_close(self, state: S3State) -> CloseResult:
        """``close("done")`` failed: abort what is left, answer the failure."""
        assert state.failure is not None
        self._abort(state)
        state.settled = True
        return ("error", state.failure)

    def _put_single(self, state: S3State) -> Pending:
        """A file under one part: one ``PutObject`` with its Content-MD5."""
        body, state.buffer = state.buffer, bytearray()
        state.finishing = _on_pool(_put_object, state.client, state.bucket, state.key, body, state.content_type)
        return Pending(state.finishing, lambda: self._put_done(state))

    def _put_done(self, state: S3State) -> CloseResult:
        assert state.finishing is not None
        state.settled = True
        exc = state.finishing.exception()
        if exc is not None:
            state.failure = _reason_of(exc)
            return ("error", state.failure)
        expected, got = state.finishing.result()
        if got != expected:
            _log.error("s3 etag mismatch", bucket=state.bucket, key=state.key, expected=expected, got=got)
            _delete_later(state)
            return ("error", ("s3_error", "ETagMismatch"))
        state.etag = got
        return ("ok", state)

    # -- cancel, error, kill ---------------------------------------------------------

    def _abort(self, state: S3State) -> None:
        """Drop queued parts and abort the multipart upload once the parts being
        sent (and a ``CreateMultipartUpload`` on its way) are done, on the pool:
        nothing here waits. :func:`wait_aborts` waits for them."""
        state.buffer = bytearray()
        sending: list[Future] = [part for part in state.inflight.values() if not part.drop()]
        state.inflight.clear()
        creating, state.creating = state.creating, None
        upload_id, state.upload_id = state.upload_id, None
        if creating is not None:
            sending.append(creating)
        elif upload_id is None:
            return
        target = (state.client, state.settings_key, state.bucket, state.key)
        _aborts.start()
        _all_done(sending).add_done_callback(lambda _done: _on_pool(_abort_upload, *target, upload_id, creating))


class _StoreFailed(Exception):
    """A request the store did not take; carries only the reason (see :func:`_call`)."""

    def __init__(self, reason: tuple[str, str]) -> None:
        super().__init__(reason)
        self.reason = reason


def _call(method: Callable[..., Any], **kwargs: Any) -> Any:
    """Call the client (on an I/O thread). A failure is raised as a
    :class:`_StoreFailed` made outside the ``except`` block: the client's
    exception and its traceback (whose frames hold the HTTP response and its
    socket) are dropped here, so a failed request's connection is closed now,
    not whenever the upload's state goes away."""
    reason: tuple[str, str] | None = None
    try:
        return method(**kwargs)
    except (BotoCoreError, ClientError) as exc:
        reason = s3_reason(exc)
    raise _StoreFailed(reason)


def _create_upload(client: Any, bucket: str, key: str, content_type: str) -> str:
    """I/O thread: ``CreateMultipartUpload``; the upload id."""
    return str(_call(client.create_multipart_upload, Bucket=bucket, Key=key, ContentType=content_type)["UploadId"])


def _upload_part(client: Any, bucket: str, key: str, upload_id: str, number: int, body: bytearray) -> tuple[str, bytes]:
    """I/O thread: send one part with its Content-MD5, check its ETag; give its bytes back to the budget."""
    try:
        digest = hashlib.md5(body).digest()
        response = _call(
            client.upload_part,
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            ContentMD5=base64.b64encode(digest).decode(),
        )
        etag = response.get("ETag", "")
        if etag.strip('"') != digest.hex():
            raise _Mismatch("PartETagMismatch", digest.hex(), etag)
        return (etag, digest)
    finally:
        _budget.release(len(body))


def _put_object(client: Any, bucket: str, key: str, body: bytearray, content_type: str) -> tuple[str, str]:
    """I/O thread: one ``PutObject`` with its Content-MD5; (the MD5 in hex, the ETag the store returned)."""
    digest = hashlib.md5(body).digest()
    response = _call(
        client.put_object,
        Bucket=bucket,
        Key=key,
        Body=bytes(body),
        ContentMD5=base64.b64encode(digest).decode(),
        ContentType=content_type,
    )
    return digest.hex(), str(response.get("ETag", "")).strip('"')


def _complete_upload(client: Any, bucket: str, key: str, upload_id: str, parts: list[dict]) -> str:
    """I/O thread: ``CompleteMultipartUpload``; the ETag the store returned."""
    response = _call(
        client.complete_multipart_upload,
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": parts},
    )
    return str(response.get("ETag", "")).strip('"')


class _Outstanding:
    """Counts the aborts and deletes handed to the pool and not yet tried."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self.count = 0

    def start(self) -> None:
        with self._cond:
            self.count += 1

    def finish(self) -> None:
        with self._cond:
            self.count -= 1
            self._cond.notify_all()

    def wait(self, timeout: float | None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count == 0, timeout)


_aborts = _Outstanding()


def wait_aborts(timeout: float | None = None) -> bool:
    """Wait until every abort (and delete) that a cancel, an error or a kill
    handed to the pool has been tried: done, or recorded in :func:`pending_aborts`.
    False on timeout."""
    return _aborts.wait(timeout)


def _abort_upload(
    client: Any, settings_key: str, bucket: str, key: str, upload_id: str | None, creating: Future | None
) -> None:
    """I/O thread: ``AbortMultipartUpload`` (of the upload *creating* made, if its id
    was not known yet); one that fails is recorded and retried later."""
    try:
        if upload_id is None:
            if creating is None or creating.cancelled() or creating.exception() is not None:
                return  # no multipart upload was made
            upload_id = creating.result()
        assert upload_id is not None
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            _log.debug("s3 multipart aborted", bucket=bucket, key=key, upload_id=upload_id)
        except ClientError as exc:
            if s3_reason(exc)[1] != "NoSuchUpload":
                _record_abort(settings_key, bucket, key, upload_id, exc)
        except BotoCoreError as exc:
            _record_abort(settings_key, bucket, key, upload_id, exc)
    finally:
        _aborts.finish()


def _delete_object(state: S3State) -> None:
    """I/O thread: delete the object (its ETag was wrong, or nobody will consume it)."""
    try:
        try:
            state.client.delete_object(Bucket=state.bucket, Key=state.key)
        except (BotoCoreError, ClientError) as exc:
            reason = s3_reason(exc)
            _log.error("s3 object not deleted", bucket=state.bucket, key=state.key, reason=reason)
    finally:
        _aborts.finish()


def _delete_later(state: S3State) -> None:
    _aborts.start()
    _on_pool(_delete_object, state)


def _undo_close(state: S3State) -> None:
    """I/O thread, once an abandoned ``close("done")``'s last request is done: delete
    the object it made, or abort the multipart upload it failed to complete."""
    assert state.finishing is not None
    if state.finishing.exception() is None:
        _delete_object(state)  # finishes the count
        return
    upload_id, state.upload_id = state.upload_id, None
    _abort_upload(state.client, state.settings_key, state.bucket, state.key, upload_id, None)


def s3_writer_factory(bucket: str, **options: Any) -> Callable[[str, Any, Any], tuple[type[S3Writer], dict]]:
    """A writer factory for ``allow_upload(writer=...)``: every entry goes to
    *bucket* with *options* (see :class:`S3Writer`) and the entry itself."""

    def factory(name: str, entry: Any, session: Any) -> tuple[type[S3Writer], dict]:
        return (S3Writer, {"bucket": bucket, **options, "entry": entry})

    return factory


# -- aborts that failed: recorded, retried by a supervised process --------------------------


@dataclass
class PendingAbort:
    """A multipart upload whose abort failed; retried until the store says it is gone."""

    settings_key: str
    bucket: str
    key: str
    upload_id: str
    reason: tuple[str, str]
    recorded_at: float = field(default_factory=time.time)
    attempts: int = 1


_pending_lock = threading.Lock()
_pending: dict[str, PendingAbort] = {}
_pending_empty = threading.Event()
_pending_empty.set()
_settings_by_key: dict[str, dict] = {}
RETRY_SUPERVISOR = "liveupload.s3.abort_retry"
_retry_sup_lock = threading.Lock()


def pending_aborts() -> list[PendingAbort]:
    """The aborts still to be done (a copy)."""
    with _pending_lock:
        return list(_pending.values())


def wait_no_pending_aborts(timeout: float | None = None) -> bool:
    """Wait until every recorded abort has been done; False on timeout."""
    return _pending_empty.wait(timeout)


def _record_abort(settings_key: str, bucket: str, key: str, upload_id: str, exc: BaseException) -> None:
    reason = s3_reason(exc)
    with _pending_lock:
        _pending[upload_id] = PendingAbort(settings_key, bucket, key, upload_id, reason)
        _pending_empty.clear()
    _log.warning(
        "s3 abort failed, recorded for retry",
        bucket=bucket,
        key=key,
        upload_id=upload_id,
        reason=reason,
    )
    _ensure_retrier()


def retry_pending_aborts() -> int:
    """Try every recorded abort once now; how many are still pending."""
    for item in pending_aborts():
        client = _clients.get(item.settings_key) or client_for(json.loads(item.settings_key))
        try:
            with actors.blocking():
                client.abort_multipart_upload(Bucket=item.bucket, Key=item.key, UploadId=item.upload_id)
            done = True
        except ClientError as exc:
            done = s3_reason(exc)[1] == "NoSuchUpload"
            item.reason = s3_reason(exc)
        except BotoCoreError as exc:
            done = False
            item.reason = s3_reason(exc)
        with _pending_lock:
            if done:
                _pending.pop(item.upload_id, None)
                _log.info("s3 pending abort done", bucket=item.bucket, key=item.key, upload_id=item.upload_id)
            else:
                item.attempts += 1
            if not _pending:
                _pending_empty.set()
    with _pending_lock:
        return len(_pending)


class AbortRetrier(actors.Process):
    """Retries the recorded aborts every ``retry_interval`` seconds while any is left."""

    def on_start(self) -> None:
        self._timer = self.send_after("retry", _retry_interval)

    def on_receive(self, message: Any) -> Any:
        if message == "retry":
            left = retry_pending_aborts()
            self._timer = self.send_after("retry", _retry_interval) if left else None
            return left
        if message == "kick":
            if self._timer is None:
                self._timer = self.send_after("retry", _retry_interval)
            return None
        raise ValueError(f"AbortRetrier: unexpected message {message!r}")


def _ensure_retrier() -> None:
    """Start the retry supervisor if it is not running, or wake its retrier."""
    with _retry_sup_lock:
        sup = actors.whereis(RETRY_SUPERVISOR)
        if sup is None:
            spec = supervision.ChildSpec("abort_retrier", (AbortRetrier, (), {}), restart="permanent")
            try:
                supervision.Supervisor.start([spec], max_restarts=10, max_seconds=60.0, name=RETRY_SUPERVISOR)
            except actors.NameTakenError:
                pass
            return
    for _child_id, ref, _type in supervision.which_children(sup):
        if ref is not None:
            ref.tell("kick")


# -- cleanup and shutdown -----------------------------------------------------------------


def cleanup_stale(
    client: Any, bucket: str, prefix: str, older_than_seconds: float, *, abort: bool = True
) -> list[dict]:
    """Abort the multipart uploads under *prefix* started more than *older_than_seconds*
    ago (what a crashed process left). Returns ``{"key", "upload_id", "initiated",
    "aborted", "reason"}`` for each one found; with ``abort=False`` only lists them
    (``aborted`` False, a dry run)."""
    cutoff = time.time() - older_than_seconds
    found = []
    paginator = client.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            initiated = upload["Initiated"]
            if initiated.timestamp() > cutoff:
                continue
            item = {
                "key": upload["Key"],
                "upload_id": upload["UploadId"],
                "initiated": initiated,
                "aborted": abort,
                "reason": None,
            }
            if abort:
                try:
                    client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                except ClientError as exc:
                    if s3_reason(exc)[1] != "NoSuchUpload":
                        item.update(aborted=False, reason=s3_reason(exc))
                _log.info("s3 stale upload", **{k: v for k, v in item.items() if k != "initiated"})
            found.append(item)
    return found


def shutdown(timeout: float = 10.0) -> None:
    """Stop what this module started: the retry supervisor, the I/O threads and
    the clients' connections. Aborts still pending stay recorded (and are
    logged); the next failed abort or :func:`retry_pending_aborts` takes them up."""
    wait_aborts(timeout)
    sup = actors.whereis(RETRY_SUPERVISOR)
    if sup is not None:
        sup.stop()
        actors.await_exit(sup, timeout)
    _pool.join(timeout)
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
        _bucket_checks.clear()
    for client in clients:
        client.close()
    left = pending_aborts()
    if left:
        _log.warning("s3 aborts still pending at shutdown", uploads=[(p.bucket, p.key, p.upload_id) for p in left])

"""The client side of a measurement: threads that push chunks, stop-and-wait.

A wire client sends a chunk and waits for its reply before sending the next
one, for each upload; many uploads run at once. The harness does the same
with a small pool of client threads (``client_threads``, 4 by default), each
driving its share of the uploads like an event loop: it sends the first chunk
of every upload it drives, then, whenever a reply arrives, records the
latency and sends that upload's next chunk. Every upload has at most one chunk
in flight, so U uploads are U concurrent stop-and-wait clients, without
U extra OS threads competing with the processes being measured (which would
drown a cheap substrate in the clients' own thread switching).

A reply is noticed through the future's done-callback, which stamps
``perf_counter()`` in the thread that answers and queues the upload for its
client thread: latency is send to answer, not send to whenever the client
thread got round to it. (This is how the server's event loop hears replies:
``actors.ask_async`` resolves through the same callback.)

Synchronous targets (the direct writer calls, plain file writes) have nothing
to wait for: their client threads call them round-robin over their uploads,
and the latency is the call's duration.
"""

from __future__ import annotations

import gc
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DriveResult", "drive_async", "drive_sync", "chunks_for"]

AsyncSend = Callable[[bytes], Any]
"""Send one chunk of an upload; returns a future with ``add_done_callback``."""
SyncCall = Callable[[bytes], Any]
"""Hand one chunk of an upload over and return the reply (``"ok"``)."""

OK = "ok"


@dataclass
class DriveResult:
    """What the client threads saw during one chunk phase."""

    uploads: int
    chunks: int = 0
    bytes: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    system_seconds: float = 0.0
    """The kernel's share of ``cpu_seconds`` (file writes, thread switches)."""
    latencies: list[float] = field(default_factory=list)
    failures: dict[int, Any] = field(default_factory=dict)
    """Upload index -> the exception or unexpected reply that ended it."""


def chunks_for(uploads: int, budget: int, minimum: int) -> int:
    """Chunks per upload so a point moves about ``budget`` chunks in all,
    never fewer than ``minimum`` per upload."""
    return max(minimum, -(-budget // max(uploads, 1)))


def _shares(n: int, threads: int) -> list[range]:
    threads = max(1, min(threads, n))
    return [range(k, n, threads) for k in range(threads)]


def _run_clients(
    n_uploads: int, client_threads: int, body: Callable[[range, DriveResult], None]
) -> DriveResult:
    """Run ``body(share, partial_result)`` on each client thread, all released
    together; merge their results and time the phase from release to the last end."""
    gc.collect()  # every point starts from a collected heap, none pays for the last one's garbage
    shares = _shares(n_uploads, client_threads)
    partials = [DriveResult(uploads=len(share)) for share in shares]
    errors: list[BaseException] = []
    ends: list[float] = []
    started: list[tuple[float, os.times_result]] = []  # when the clients were released

    def mark_start() -> None:
        started.append((time.perf_counter(), os.times()))

    barrier = threading.Barrier(len(shares), action=mark_start)

    def client(share: range, partial: DriveResult) -> None:
        try:
            barrier.wait()
            body(share, partial)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors.append(exc)
        finally:
            ends.append(time.perf_counter())

    threads = [
        threading.Thread(target=client, args=(share, partial), name=f"bench-client-{k}")
        for k, (share, partial) in enumerate(zip(shares, partials, strict=True))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu_end = os.times()
    if errors:
        raise errors[0]
    merged = DriveResult(uploads=n_uploads)
    began, cpu_began = started[0]
    merged.seconds = max(ends) - began
    merged.cpu_seconds = (cpu_end.user + cpu_end.system) - (cpu_began.user + cpu_began.system)
    merged.system_seconds = cpu_end.system - cpu_began.system
    for partial in partials:
        merged.chunks += partial.chunks
        merged.bytes += partial.bytes
        merged.latencies.extend(partial.latencies)
        merged.failures.update(partial.failures)
    return merged


def drive_async(
    sends: Sequence[AsyncSend],
    chunks: int,
    data: bytes,
    *,
    client_threads: int = 4,
    timeout: float = 120.0,
    duration: float | None = None,
) -> DriveResult:
    """Send ``chunks`` chunks of ``data`` to every upload, stop-and-wait per upload.

    An upload whose reply is an exception or anything but ``"ok"`` stops there
    (recorded in ``failures``). ``timeout`` bounds the wait for any one reply.
    With ``duration`` (seconds), no upload sends a new chunk once that long has
    passed since the release (``chunks`` is then a ceiling): the phase ends when
    the chunks in flight at the deadline are answered.
    """

    def body(share: range, result: DriveResult) -> None:
        deadline = None if duration is None else time.perf_counter() + duration
        replies: queue.SimpleQueue[tuple[int, float, Any]] = queue.SimpleQueue()
        sent_at: dict[int, float] = {}
        sent: dict[int, int] = {}
        latencies = result.latencies
        size = len(data)

        def send(i: int) -> None:
            sent[i] = sent.get(i, 0) + 1
            sent_at[i] = time.perf_counter()
            future = sends[i](data)
            future.add_done_callback(lambda done, i=i: replies.put((i, time.perf_counter(), done)))

        for i in share:
            send(i)
        in_flight = len(share)
        while in_flight:
            try:
                i, answered, future = replies.get(timeout=timeout)
            except queue.Empty:
                for i in sent_at:
                    result.failures.setdefault(i, TimeoutError(f"no reply within {timeout}s"))
                return
            try:
                reply = future.get(timeout=0)
            except Exception as exc:  # noqa: BLE001 - the upload's failure is a result
                reply = exc
            if reply != OK:
                result.failures[i] = reply
                del sent_at[i]
                in_flight -= 1
                continue
            latencies.append(answered - sent_at[i])
            result.chunks += 1
            result.bytes += size
            if sent[i] < chunks and (deadline is None or answered < deadline):
                send(i)
            else:
                del sent_at[i]
                in_flight -= 1

    return _run_clients(len(sends), client_threads, body)


def drive_sync(
    calls: Sequence[SyncCall],
    chunks: int,
    data: bytes,
    *,
    client_threads: int = 4,
) -> DriveResult:
    """Call every upload ``chunks`` times with ``data``, round-robin per client thread."""

    def body(share: range, result: DriveResult) -> None:
        latencies = result.latencies
        clock = time.perf_counter
        size = len(data)
        live = list(share)
        for _ in range(chunks):
            for i in live:
                began = clock()
                reply = calls[i](data)
                latencies.append(clock() - began)
                if reply != OK:
                    result.failures[i] = reply
                    continue
                result.chunks += 1
                result.bytes += size
            live = [i for i in live if i not in result.failures]

    return _run_clients(len(calls), client_threads, body)

"""``server``: uploads end to end over loopback WebSockets, clients in other OS processes.

The server is ``server.app.create_app`` run by ``serve_in_thread`` (uvicorn
in a thread of the harness, its asyncio loop the one every page and upload
goes through), with one upload named ``files`` of ``max_entries`` =
``PER_PAGE`` and the default writer and consume hook (temp-file writer,
completed uploads copied into a folder; both in a temporary folder of the run). The clients run
in ``server_client_processes`` separate OS processes (2; 4 with ``--full``) (``multiprocessing``,
spawned once per run, so the clients' Python does not share the server's
GIL), each running the Python client, ``client.upload_files_async``,
exactly as ``liveupload send`` does: fetch the page, join its ``lv:`` topic,
validate, preflight, join ``lvu:<ref>`` per entry, push chunks stop-and-wait
with progress events, submit the form, read the saved names back. The
``server_uploads`` uploads (100) of ``server_chunks`` chunks of ``chunk_bytes``
are shared among the processes; each process opens one page per ``PER_PAGE``
of its uploads, all at once, each page uploading all its files concurrently.
Every client process is released by one event after all of them are ready.

Each substrate runs the server as shipped: ``serve_in_thread`` is given no
WebSocket options, so it uses its defaults, which are ``liveupload serve``'s:
permessage-deflate off (``ws_per_message_deflate=False``: upload chunks are
binary, zlib only costs). The client offers deflate (the ``websockets``
default), so the server refuses it. One more run, on the pool (else the first
substrate), has the server accept it (``ws_per_message_deflate=True``): every
64 KB chunk is then compressed by the client and inflated by the server,
which shows what deflate would cost. What each row's connections actually
negotiated is read from the clients' sockets (the ``deflate`` column), so a
changed default shows in the table rather than going unnoticed.

Figures: aggregate MB/s (bytes of completed uploads over the time from the
release to the last client's end, so page loads, joins and saves are in it),
chunk latency p50/p99 (a ``chunk`` push to its reply, timed inside the
clients around ``Socket.call``), and the server loop's lag p50/p99 while the
uploads run (``LoopLag``, a task in the server's loop asking to wake every
5 ms and recording how late it woke). Target (issue 6): lag p99 under 20 ms
with 100 concurrent uploads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import actors
from benchmarks import substrates
from benchmarks.client_processes import ClientProcesses
from benchmarks.params import Params
from benchmarks.progress import Progress
from benchmarks.sessions import fixed_writer
from benchmarks.stats import latency_summary, rate
from benchmarks.targets import LOOP_LAG_P99_MS, TableSpec, target
from client import channels, upload_files_async
from server.app import create_app, serve_in_thread
from writers import TmpFileWriter

__all__ = ["NAME", "TABLES", "LoopLag", "run", "steps"]

NAME = "server"
PER_PAGE = 10
"""Files per page (the upload's ``max_entries``): a page uploads them all at once."""
WAIT = 600.0

TABLES: list[TableSpec] = [
    (
        "rows",
        "server: uploads over loopback WebSockets, clients in other processes",
        [
            ("substrate", "substrate", ""),
            ("server_config", "server config", ""),
            ("deflate", "deflate", ""),
            ("uploads", "U", "d"),
            ("client_processes", "client procs", "d"),
            ("chunks_per_upload", "C", "d"),
            ("completed", "completed", "d"),
            ("mb_per_s", "MB/s", ",.1f"),
            ("chunk_p50_ms", "chunk p50 ms", ".3f"),
            ("chunk_p99_ms", "chunk p99 ms", ".3f"),
            ("loop_lag_p50_ms", "loop lag p50 ms", ".3f"),
            ("loop_lag_p99_ms", "loop lag p99 ms", ".3f"),
            ("loop_lag_max_ms", "loop lag max ms", ".3f"),
            ("server_cpu_seconds", "server CPU s", ".1f"),
            ("clients_cpu_seconds", "clients CPU s", ".1f"),
        ],
    )
]


class LoopLag:
    """Measures an event loop's lag: a task asks to wake every ``interval``
    seconds and records how late each wake-up is. Start it inside the loop with
    ``start()``, stop it with ``await stop()``; ``summary()`` gives p50/p99 in ms."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._probe())

    async def _probe(self) -> None:
        while True:
            due = time.perf_counter() + self.interval
            await asyncio.sleep(self.interval)  # the lateness of this wake-up is the figure
            self.lags.append(max(0.0, time.perf_counter() - due))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def summary(self) -> dict[str, float | int]:
        return latency_summary(self.lags)


class _LoopSpy:
    """An ASGI wrapper that notes the server's running loop (uvicorn's lifespan
    call comes first) and passes everything on; ``state`` is the app's, which
    ``serve_in_thread`` reads."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)


SHIPPED = None
"""A case's deflate setting that means: pass none, run the server as shipped."""


def _cases(params: Params) -> list[tuple[str, bool | None]]:
    """``(substrate, permessage-deflate)``: every substrate as shipped (``None``:
    deflate off, the server's default), then one extra row with deflate on (the
    pool if it runs, else the first substrate), to show what deflating costs."""
    cases: list[tuple[str, bool | None]] = [(substrate, SHIPPED) for substrate in params.substrates]
    cases.append(("pool" if "pool" in params.substrates else params.substrates[0], True))
    return cases


def steps(params: Params) -> int:
    return len(_cases(params))


# -- the clients, each in an OS process of its own -------------------------------------


def _pages(uploads: int) -> list[int]:
    """Files per page for ``uploads`` uploads: full pages of ``PER_PAGE``, then the rest."""
    return [min(PER_PAGE, uploads - start) for start in range(0, uploads, PER_PAGE)]


def _negotiated(sockets: list[bool]) -> None:
    """Note, for every socket the client opens in this process, whether its
    connection negotiated permessage-deflate (``True``) or not."""
    original = vars(channels.Socket)["open"].__func__  # the classmethod's function

    async def open_(cls: Any, url: str, timeout: float) -> Any:
        sock = await original(cls, url, timeout)
        sockets.append(bool(sock.ws.protocol.extensions))
        return sock

    # A patch in the client's own process, to measure it: mypy rightly objects to assigning a method.
    channels.Socket.open = classmethod(open_)  # type: ignore[method-assign, assignment]  # a patch in the client's process


def _timed_chunks(latencies: list[float]) -> None:
    """Time every ``chunk`` push of the client (push to reply), in this process."""
    original = channels.Socket.call

    async def call(
        self: Any, topic: str, event: str, payload: Any, join_ref: Any, ref: Any = None, timeout: Any = None
    ) -> Any:
        if event != "chunk":
            return await original(self, topic, event, payload, join_ref, ref=ref, timeout=timeout)
        began = time.perf_counter()
        reply = await original(self, topic, event, payload, join_ref, ref=ref, timeout=timeout)
        latencies.append(time.perf_counter() - began)
        return reply

    channels.Socket.call = call  # type: ignore[method-assign]  # a patch in the client's process, to time it


async def _upload_pages(url: str, path: str, pages: list[int]) -> list[Any]:
    batches = await asyncio.gather(
        *(upload_files_async(url, [path] * files, concurrency=files, timeout=WAIT) for files in pages),
        return_exceptions=True,
    )
    results: list[Any] = []
    for files, batch in zip(pages, batches, strict=True):
        results.extend([batch] * files if isinstance(batch, BaseException) else batch)
    return results


def _client_main(conn: Any, go: Any) -> None:
    """A client process: for every ``("run", url, path, uploads)`` it is sent,
    report ready, wait for ``go``, upload, and send back what it saw."""
    actors.configure_logging("warning")
    latencies: list[float] = []
    sockets: list[bool] = []
    _timed_chunks(latencies)
    _negotiated(sockets)
    try:
        while True:
            command = conn.recv()
            if command[0] != "run":
                return
            _, url, path, uploads = command
            latencies.clear()
            sockets.clear()
            conn.send(("ready",))
            go.wait()
            began, cpu = time.monotonic(), os.times()
            results = asyncio.run(_upload_pages(url, path, _pages(uploads)))
            ended, cpu_end = time.monotonic(), os.times()
            failed = [r for r in results if isinstance(r, BaseException) or not r.ok]
            conn.send(
                (
                    "done",
                    {
                        "began": began,
                        "ended": ended,
                        "uploads": uploads,
                        "completed": uploads - len(failed),
                        "bytes": sum(r.sent for r in results if not isinstance(r, BaseException) and r.ok),
                        "latencies": list(latencies),
                        "sockets": len(sockets),
                        "deflate_sockets": sum(sockets),
                        "cpu_seconds": cpu_end.user + cpu_end.system - cpu.user - cpu.system,
                        "first_failure": repr(failed[0] if isinstance(failed[0], BaseException) else failed[0].error)
                        if failed
                        else None,
                    },
                )
            )
    except (EOFError, KeyboardInterrupt):
        return
    finally:
        conn.close()


# -- the server, in this process ------------------------------------------------------


@contextlib.contextmanager
def _server(directory: str, params: Params, size: int, deflate: bool | None) -> Iterator[tuple[str, _LoopSpy]]:
    """The server, saving completed uploads into a fresh folder under
    ``directory`` that is deleted when it stops; ``deflate`` ``None`` leaves
    the WebSocket options as shipped."""
    saved = tempfile.mkdtemp(prefix="saved-", dir=directory)

    app = _LoopSpy(
        create_app(
            upload_configs={
                "files": {
                    "accept": "any",
                    "max_entries": PER_PAGE,
                    "max_file_size": size,
                    "chunk_size": params.chunk_bytes,
                    # the default writer, its temp files kept in this run's folder
                    "writer": fixed_writer(TmpFileWriter, {"dir": directory}),
                }
            },
            uploads_dir=saved,
        )
    )
    try:
        options: dict[str, Any] = {} if deflate is SHIPPED else {"ws_per_message_deflate": deflate}
        with serve_in_thread(app, **options) as url:
            yield url, app
    finally:
        shutil.rmtree(saved, ignore_errors=True)


def _measure(
    params: Params, substrate: str, deflate: bool | None, clients: ClientProcesses, path: str, directory: str
) -> dict[str, Any]:
    size = os.path.getsize(path)
    lag = LoopLag()
    processes = len(clients.conns)
    shares = [
        params.server_uploads // processes + (1 if k < params.server_uploads % processes else 0)
        for k in range(processes)
    ]
    with substrates.using(substrate), _server(directory, params, size, deflate) as (url, app):
        assert app.loop is not None  # uvicorn ran the lifespan before it listened
        loop = app.loop

        async def start() -> None:
            lag.start()

        def release() -> None:
            asyncio.run_coroutine_threadsafe(start(), loop).result(WAIT)

        cpu = os.times()
        try:
            reports = clients.run(lambda share: ("run", url, path, share), shares, release)
            cpu_end = os.times()
        finally:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(lag.stop(), loop).result(WAIT)
    seconds = max(r["ended"] for r in reports) - min(r["began"] for r in reports)
    chunk = latency_summary(latency for r in reports for latency in r["latencies"])
    lags = lag.summary()
    total = sum(r["bytes"] for r in reports)
    completed = sum(r["completed"] for r in reports)
    sockets = sum(r["sockets"] for r in reports)
    deflated = sum(r["deflate_sockets"] for r in reports)
    return {
        "substrate": substrate,
        "server_config": "shipped" if deflate is SHIPPED else f"deflate {'on' if deflate else 'off'}",
        # what the connections negotiated, read from the clients' sockets
        "deflate": "on" if sockets and deflated == sockets else "off" if not deflated else f"{deflated}/{sockets} on",
        "sockets": sockets,
        "deflate_sockets": deflated,
        "uploads": params.server_uploads,
        "client_processes": len(reports),
        "pages": sum(len(_pages(share)) for share in shares),
        "chunks_per_upload": params.server_chunks,
        "chunk_bytes": params.chunk_bytes,
        "completed": completed,
        "failures": params.server_uploads - completed,
        "first_failure": next((r["first_failure"] for r in reports if r["first_failure"]), None),
        "bytes": total,
        "seconds": seconds,
        "mb_per_s": rate(total, seconds) / 1e6,
        "chunk_p50_ms": chunk["p50_ms"],
        "chunk_p99_ms": chunk["p99_ms"],
        "chunk_max_ms": chunk["max_ms"],
        "chunks_timed": chunk["n"],
        "server_cpu_seconds": cpu_end.user + cpu_end.system - cpu.user - cpu.system,
        "clients_cpu_seconds": sum(r["cpu_seconds"] for r in reports),
        "loop_lag_samples": lags["n"],
        "loop_lag_p50_ms": lags["p50_ms"],
        "loop_lag_p99_ms": lags["p99_ms"],
        "loop_lag_max_ms": lags["max_ms"],
    }


def _case(row: dict[str, Any]) -> str:
    """A row's case in a target's name: ``"pool, shipped: deflate off"``, ``"pool, deflate on"``."""
    if row["server_config"] == "shipped":
        return f"{row['substrate']}, shipped: deflate {row['deflate']}"
    return f"{row['substrate']}, {row['server_config']}" + (
        "" if row["server_config"].endswith(row["deflate"]) else f" (negotiated {row['deflate']})"
    )


def run(params: Params, progress: Progress) -> dict[str, Any]:
    directory = tempfile.mkdtemp(prefix="liveupload-bench-server-")
    rows = []
    try:
        path = os.path.join(directory, "upload.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(params.chunk_bytes * params.server_chunks))
        progress.note("server: starting client processes")
        clients = ClientProcesses(_client_main, min(params.server_client_processes, params.server_uploads),
                                  "bench-server-client", WAIT)
        try:
            for substrate, deflate in _cases(params):
                label = f"server {substrate}, " + (
                    "as shipped" if deflate is SHIPPED else f"deflate {'on' if deflate else 'off'}"
                )
                progress.note(f"{label}: {params.server_uploads} uploads")
                rows.append(_measure(params, substrate, deflate, clients, path, directory))
                progress.tick(label)
        finally:
            clients.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    checks = [
        target(
            f"event-loop lag p99 with {row['uploads']} concurrent uploads ({_case(row)})",
            row["loop_lag_p99_ms"],
            "<",
            LOOP_LAG_P99_MS,
            "ms",
            f"{row['completed']}/{row['uploads']} completed, {row['mb_per_s']:.1f} MB/s, "
            f"chunk p99 {row['chunk_p99_ms']:.1f} ms",
        )
        for row in rows
        if row["server_config"] == "shipped"  # the target is about the server as shipped; the deflate row only compares
    ]
    checks.extend(
        target(
            f"server uploads completed ({_case(row)})",
            row["completed"],
            ">=",
            row["uploads"],
            "uploads",
            row["first_failure"] or "",
        )
        for row in rows
    )
    return {
        "description": __doc__.strip().splitlines()[0],
        "per_page": PER_PAGE,
        "rows": rows,
        "targets": checks,
    }

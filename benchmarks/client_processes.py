"""Client processes for the wire-level scenarios, started once and driven run by run.

Each process runs ``target(conn, go)``: it takes a job from its pipe, gets
ready (connects, opens its files), answers ``("ready",)``, waits for ``go``
so that every process starts at once, and answers ``("report", {...})``;
``("exit",)`` ends it. Clients in other processes keep their CPU out of the
measured server's, as real browsers' would be.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["ClientProcesses"]


class ClientProcesses:
    """``count`` processes running ``target``, named ``{name}-{k}``."""

    def __init__(self, target: Callable[[Any, Any], None], count: int, name: str, wait: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = name
        self.wait = wait
        self.go = context.Event()
        self.conns: list[Any] = []
        self.procs: list[Any] = []
        for k in range(count):
            parent, child = context.Pipe()
            proc = context.Process(target=target, args=(child, self.go), name=f"{name}-{k}")
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)

    def _receive(self, conn: Any, deadline: float) -> Any:
        if not conn.poll(max(0.0, deadline - time.monotonic())):
            raise TimeoutError(f"a {self.name} process did not answer within {self.wait}s")
        return conn.recv()

    def run(self, job: Callable[[Any], tuple], shares: Sequence[Any], on_release: Callable[[], None]) -> list[Any]:
        """One run: each process with a non-empty share gets ``job(share)``;
        ``on_release()`` runs once all are ready, just before they start; their reports."""
        deadline = time.monotonic() + self.wait
        self.go.clear()
        active = [(conn, share) for conn, share in zip(self.conns, shares, strict=False) if share]
        for conn, share in active:
            conn.send(job(share))
        for conn, _ in active:
            if self._receive(conn, deadline)[0] != "ready":
                raise RuntimeError(f"a {self.name} process failed to get ready")
        on_release()
        self.go.set()
        return [self._receive(conn, deadline)[1] for conn, _ in active]

    def close(self) -> None:
        """End every process (one left waiting by a failed run runs it, against no server, and ends)."""
        self.go.set()
        for conn in self.conns:
            with contextlib.suppress(OSError, BrokenPipeError):
                conn.send(("exit",))
        for proc in self.procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self.conns:
            conn.close()

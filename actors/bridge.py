"""The asyncio bridge: ask a process, or await its exit, from a coroutine
without blocking the loop."""

from __future__ import annotations

import asyncio
from typing import Any

from pykka import ActorRef

from actors.futures import ProcessFuture, to_asyncio
from actors.process import monitor
from actors.reasons import Down, ExitReason

__all__ = ["ask_async", "exit_future"]


async def ask_async(ref: ActorRef[Any], message: Any, timeout: float | None = None) -> Any:
    """Ask ``ref`` and await the reply; the reply resolves through
    ``loop.call_soon_threadsafe``, so the event loop never blocks.

    Raises what the process raised (the process then crashes, as with ``ask``),
    ``pykka.ActorDeadError`` if it is dead, ``TimeoutError`` after ``timeout``.
    """
    future = ref.ask(message, block=False)
    if not isinstance(future, ProcessFuture):
        raise TypeError(f"ask_async needs the ref of an actors.Process, got {ref!r}")
    try:
        return await asyncio.wait_for(to_asyncio(future), timeout)
    except asyncio.TimeoutError as exc:  # not the builtin TimeoutError before Python 3.11
        raise TimeoutError(f"no reply from {ref} within {timeout} seconds") from exc


class _LoopWatcher:
    """A monitor's watcher outside the runtime: hands the ``Down`` to the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[ExitReason]) -> None:
        self.loop = loop
        self.future = future

    def tell(self, down: Down) -> None:  # runs in the thread of the process that died
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future, down.reason)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def exit_future(ref: ActorRef[Any]) -> asyncio.Future[ExitReason]:
    """A future of the running loop resolved with ``ref``'s exit reason
    (``"noproc"`` if it is already dead), through a monitor in place on return.
    No process is needed to watch: the ``Down`` crosses into the loop by
    ``loop.call_soon_threadsafe``."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[ExitReason] = loop.create_future()
    monitor(ref, _LoopWatcher(loop, future))  # type: ignore[arg-type]  # a watcher needs only tell()
    return future


def _resolve(future: asyncio.Future[ExitReason], reason: ExitReason) -> None:
    if not future.done():
        future.set_result(reason)

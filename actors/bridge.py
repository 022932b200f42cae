"""The asyncio bridge: ask a process from a coroutine without blocking the loop."""

from __future__ import annotations

import asyncio
from typing import Any

from pykka import ActorRef

from actors.futures import ProcessFuture, to_asyncio

__all__ = ["ask_async"]


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

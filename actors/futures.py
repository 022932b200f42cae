"""Futures of asks to processes, awaitable from asyncio without blocking the loop.

Pykka's ``Future.__await__`` calls the blocking ``get()``, which freezes an event
loop until the actor answers. ``ProcessFuture`` adds done-callbacks to Pykka's
threading future, so an asyncio future can be completed through
``loop.call_soon_threadsafe`` the moment the process replies.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from pykka import ThreadingFuture

__all__ = ["ProcessFuture", "to_asyncio"]

T = TypeVar("T")


class ProcessFuture(ThreadingFuture[T]):
    """A Pykka threading future that can notify callbacks once it is resolved."""

    _callbacks: list[Callable[[ProcessFuture[T]], None]] | None = None

    def add_done_callback(self, fn: Callable[[ProcessFuture[T]], None]) -> None:
        """Call ``fn(self)`` once the future holds a value or an exception.

        Runs at once, in the caller's thread, if the future is already resolved;
        otherwise in the thread that resolves it.
        """
        with self._condition:
            if self._result is None:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        fn(self)

    def set(self, value: Any | None = None) -> None:
        super().set(value)
        self._run_callbacks()

    def set_exception(self, exc_info: Any = None) -> None:
        super().set_exception(sys.exc_info() if exc_info is None else exc_info)
        self._run_callbacks()

    def _run_callbacks(self) -> None:
        with self._condition:
            callbacks, self._callbacks = self._callbacks, None
        for fn in callbacks or ():
            fn(self)

    def __await__(self) -> Generator[Any, None, T]:
        """Await the reply without blocking the running event loop."""
        return to_asyncio(self).__await__()


def to_asyncio(
    future: ProcessFuture[T], loop: asyncio.AbstractEventLoop | None = None
) -> asyncio.Future[T]:
    """Return an asyncio future of ``loop`` that completes with ``future``.

    The value (or exception) crosses into the loop by ``call_soon_threadsafe``;
    nothing ever blocks the loop. Cancelling the asyncio future does not cancel
    the ask: the process still handles the message, its reply is dropped.
    """
    loop = loop or asyncio.get_running_loop()
    result: asyncio.Future[T] = loop.create_future()

    def transfer(done: ProcessFuture[T]) -> None:
        try:
            loop.call_soon_threadsafe(_copy_outcome, done, result)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    future.add_done_callback(transfer)
    return result


def _copy_outcome(done: ProcessFuture[T], result: asyncio.Future[T]) -> None:
    if result.done():
        return
    try:
        value = done.get(timeout=0)
    except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
        result.set_exception(exc)
    else:
        result.set_result(value)

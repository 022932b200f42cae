"""Futures of asks to processes: light, and awaitable without blocking asyncio.

Pykka's ``ThreadingFuture`` builds a ``threading.Condition`` per ask (several
microseconds and over a kilobyte) and its ``__await__`` blocks the event loop.
``ProcessFuture`` is a one-shot future over a single pre-acquired lock: ``set``
releases it, ``get`` acquires it. Waiting goes through ``blocking()`` so that
a process waiting on a pooled worker hands its place to a spare thread.
Done-callbacks let asyncio be told the moment it resolves.
"""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from pykka import Future, Timeout

from actors._pykka import Unset
from actors.current import blocking

__all__ = ["ExitFlag", "ProcessFuture", "to_asyncio"]

T = TypeVar("T")

_guard = threading.Lock()  # makes resolve/add-callback atomic; held for a few bytecodes
_allocate_lock = threading.Lock


class ProcessFuture(Future[T]):
    """A Pykka future resolved once by the process that handles the ask."""

    _outcome: tuple[Any, Any] | None = None  # (value, exc_info) once resolved
    _callbacks: list[Callable[[ProcessFuture[T]], None]] | None = None
    _get_hook: Any = None

    def __init__(self) -> None:  # Future.__init__ is skipped on purpose: it allocates
        self._ready = _allocate_lock()
        self._ready.acquire()

    def __repr__(self) -> str:
        return "<ProcessFuture resolved>" if self._outcome is not None else "<ProcessFuture pending>"

    def get(self, *, timeout: float | None = None) -> T:
        if self._get_hook is not None:
            return super().get(timeout=timeout)
        outcome = self._outcome
        if outcome is None:
            with blocking():
                acquired = self._ready.acquire(timeout=-1 if timeout is None else max(0.0, timeout))
            if not acquired:
                raise Timeout(f"{timeout} seconds")
            self._ready.release()  # let every other waiter through too
            outcome = self._outcome
            assert outcome is not None
        value, exc_info = outcome
        if exc_info is not None:
            exc_type, exc_value, exc_tb = exc_info
            if exc_value is None:
                exc_value = exc_type()
            raise exc_value.with_traceback(exc_tb)
        return value

    def set(self, value: Any | None = None) -> None:
        self._resolve((value, None))

    def set_exception(self, exc_info: Any = None) -> None:
        self._resolve((None, sys.exc_info() if exc_info is None else exc_info))

    def set_get_hook(self, func: Any) -> None:
        with _guard:
            if self._outcome is not None:
                raise queue.Full
            self._get_hook = func
            self._get_hook_result = _UNSET

    def done(self) -> bool:
        return self._outcome is not None

    def _resolve(self, outcome: tuple[Any, Any]) -> None:
        with _guard:
            if self._outcome is not None or self._get_hook is not None:
                raise queue.Full
            self._outcome = outcome
            callbacks, self._callbacks = self._callbacks, None
        self._ready.release()
        for fn in callbacks or ():
            fn(self)

    def add_done_callback(self, fn: Callable[[ProcessFuture[T]], None]) -> None:
        """Call ``fn(self)`` once resolved: at once if it already is, else in the
        thread that resolves it."""
        with _guard:
            if self._outcome is None:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        fn(self)

    def __await__(self) -> Generator[Any, None, T]:
        """Await the reply without blocking the running event loop."""
        return to_asyncio(self).__await__()


# Pykka's Future.get runs a get hook only while _get_hook_result is its own _Unset.
_UNSET = Unset()


class ExitFlag:
    """Set once when a process dies; ``wait`` is cheap to hold by the million.

    Stands in for the ``threading.Event`` Pykka gives every actor (a Condition
    and a lock each): the lock here is only made when somebody waits.
    """

    __slots__ = ("_lock", "_set")

    def __init__(self) -> None:
        self._set = False
        self._lock: Any = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with _guard:
            if self._set:
                return
            self._set = True
            lock = self._lock
        if lock is not None:
            lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        if self._set:
            return True
        with _guard:
            if self._set:
                return True
            if self._lock is None:
                self._lock = _allocate_lock()
                self._lock.acquire()
            lock = self._lock
        with blocking():
            acquired = lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout))
        if acquired:
            lock.release()
        return acquired


def to_asyncio(future: ProcessFuture[T], loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[T]:
    """Return an asyncio future of ``loop`` that completes with ``future``.

    The outcome crosses into the loop by ``call_soon_threadsafe``, or is set at
    once when it is resolved on the loop's own thread (by a process of the
    ``"loop"`` substrate); nothing ever blocks the loop. Cancelling the asyncio future does not cancel the ask: the
    process still handles the message, its reply is dropped.
    """
    loop = loop or asyncio.get_running_loop()
    result: asyncio.Future[T] = loop.create_future()
    loop_thread = threading.get_ident() if asyncio._get_running_loop() is loop else None

    def transfer(done: ProcessFuture[T]) -> None:
        if threading.get_ident() == loop_thread:  # resolved on the loop itself (a "loop" process): no hop
            _copy_outcome(done, result)
            return
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

"""Process exits, delivered to the event loop.

A topic handler has to learn when the actor behind it ends (an upload channel
that was consumed, timed out or crashed; a session that crashed) without ever
blocking the loop. :class:`ExitWatcher` is one small process that monitors
actors on the handlers' behalf, as a LiveView process monitors its upload
channels: ``await watcher.watch(ref)`` returns an asyncio future that
resolves with the exit reason, crossing into the loop through
``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import structlog

import actors
from actors import Down, ExitReason, ProcessRef

__all__ = ["ExitWatcher"]

log = structlog.get_logger("liveupload.server")


class _Watcher(actors.Process):
    """Monitors targets and calls a notifier with each one's exit reason."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: dict[Any, Callable[[ExitReason], None]] = {}

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Down):
            notify = self.waiting.pop(message.ref, None)
            if notify is not None:
                notify(message.reason)
            return None
        if isinstance(message, tuple) and len(message) == 3 and message[0] == "watch":
            self.waiting[self.monitor(message[1])] = message[2]
            return None
        if message == "stop":
            self.exit(actors.NORMAL)
            return None
        raise ValueError(f"exit watcher: unexpected message {message!r}")


class ExitWatcher:
    """One watcher process; start it with :meth:`start`, end it with :meth:`stop`."""

    def __init__(self, ref: ProcessRef) -> None:
        self.ref = ref

    @classmethod
    def start(cls) -> "ExitWatcher":
        return cls(_Watcher.start())

    async def watch(self, target: ProcessRef) -> "asyncio.Future[ExitReason]":
        """A future of the running loop resolved with ``target``'s exit reason
        (``"noproc"`` if it is already dead). The monitor is in place when
        this returns."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ExitReason] = loop.create_future()

        def notify(reason: ExitReason) -> None:  # runs in the watcher's process
            try:
                loop.call_soon_threadsafe(_resolve, future, reason)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

        await actors.ask_async(self.ref, ("watch", target, notify))
        return future

    async def stop(self) -> None:
        """End the watcher; pending futures stay unresolved."""
        try:
            await actors.ask_async(self.ref, "stop")
        except Exception as exc:  # noqa: BLE001 - already gone
            log.debug("watcher.stop_failed", error=repr(exc))


def _resolve(future: "asyncio.Future[ExitReason]", reason: ExitReason) -> None:
    if not future.done():
        future.set_result(reason)

"""The ``"thread"`` substrate: a dedicated OS thread per process, as a plain
Pykka ``ThreadingActor`` has. The thread sleeps on a lock while the mailbox is
empty and the mailbox's ``wake`` releases it."""

from __future__ import annotations

import threading
from itertools import count

from actors.current import set_current_process
from actors.mailbox import EMPTY
from actors.substrates.protocol import Runnable

__all__ = ["ThreadSubstrate"]


class ThreadSubstrate:
    """Runs each process on a thread of its own, named after its class."""

    name = "thread"

    def __init__(self) -> None:
        self._numbers = count(1)
        self._running: set[threading.Thread] = set()  # threads of processes still running

    def spawn(self, process: Runnable) -> None:
        wake_up = threading.Lock()
        wake_up.acquire()
        thread = threading.Thread(
            target=self._run,
            args=(process, wake_up),
            name=f"{type(process).__name__}-{next(self._numbers)}",
            daemon=process.use_daemon_thread,
        )
        process.actor_inbox.wake = lambda _mailbox: wake_up.release()
        self._running.add(thread)
        try:
            thread.start()
        except BaseException:
            self._running.discard(thread)
            raise

    def threads(self) -> list[threading.Thread]:
        return list(self._running)

    def _run(self, process: Runnable, wake_up: threading.Lock) -> None:
        """Start up, then take mail, sleeping while there is none."""
        set_current_process(process.actor_ref)
        mailbox = process.actor_inbox
        try:
            reason = process.run_start()
            while reason is None:
                envelope = mailbox.take()
                if envelope is EMPTY:
                    wake_up.acquire()
                    continue
                reason = process.run_envelope(envelope)
            process.run_finish(reason)
        finally:
            set_current_process(None)
            self._running.discard(threading.current_thread())

"""The seam between BEAM semantics and threads: what a substrate and a process
see of each other.

A substrate runs a ``Runnable``: it calls ``run_start`` once, then
``run_envelope`` for each envelope its mailbox yields until one returns an exit
reason, then ``run_finish`` with it, all on one thread at a time, with
``actors.current.set_current_process(actor_ref)`` set meanwhile. It hooks
``actor_inbox.wake`` to learn that an idle process has mail again. Waiting
inside a process goes through ``actors.current.blocking()``.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from actors._pykka import Envelope
from actors.mailbox import Mailbox
from actors.reasons import ExitReason

__all__ = ["Runnable", "Substrate"]


class Runnable(Protocol):
    """A process as a substrate runs it (``actors.Process`` implements it)."""

    actor_inbox: Mailbox

    @property
    def use_daemon_thread(self) -> bool: ...

    @property
    def actor_ref(self) -> Any: ...

    def run_start(self) -> ExitReason | None:
        """Run the start-up; the exit reason if it failed, else ``None``."""

    def run_envelope(self, envelope: Envelope[Any] | None) -> ExitReason | None:
        """Handle one envelope (``None``: the mailbox was closed); the reason to
        exit with, or ``None`` to go on."""

    def run_finish(self, reason: ExitReason) -> None:
        """Exit with ``reason``: clean up and send out the exit signals."""


class Substrate(Protocol):
    """Where processes run: how a process is started, waits and is woken."""

    name: str

    def spawn(self, process: Runnable) -> None:
        """Start running ``process``; raises if it cannot (it then never ran)."""

    def threads(self) -> list[threading.Thread]:
        """Every thread this substrate holds now (joined by ``actors.shutdown``)."""

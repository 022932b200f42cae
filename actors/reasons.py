"""Exit reasons and the messages that carry them, as on BEAM.

An exit reason is ``"normal"``, ``"shutdown"``, ``("shutdown", term)``,
``"killed"``, ``"noproc"``, or the exception instance that crashed a process.
``"kill"`` is not a reason a process exits with: it is the untrappable exit
signal that ends a process with ``"killed"``.
"""

from __future__ import annotations

from itertools import count
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from pykka import ActorRef

__all__ = [
    "KILL",
    "KILLED",
    "NOPROC",
    "NORMAL",
    "SHUTDOWN",
    "Down",
    "Exit",
    "ExitReason",
    "MonitorRef",
    "is_clean_exit",
]

NORMAL = "normal"
SHUTDOWN = "shutdown"
KILL = "kill"
KILLED = "killed"
NOPROC = "noproc"

ExitReason = str | tuple[str, Any] | BaseException


def is_clean_exit(reason: ExitReason) -> bool:
    """True for ``"normal"``, ``"shutdown"`` and ``("shutdown", term)``: exits that
    are not crashes, are never logged as errors, and end a transient child."""
    if isinstance(reason, str):
        return reason in (NORMAL, SHUTDOWN)
    return isinstance(reason, tuple) and len(reason) == 2 and reason[0] == SHUTDOWN


class Exit(NamedTuple):
    """A trapped exit signal, as ``{'EXIT', From, Reason}``: ``sender`` is the ref of
    the process that exited or sent the signal (``None`` from outside any process)."""

    sender: ActorRef[Any] | None
    reason: ExitReason


_monitor_ids = count(1)


class MonitorRef:
    """Identifies one monitor; ``Down.ref`` carries it back to the watcher."""

    __slots__ = ("id", "target", "watcher")

    def __init__(self, target: ActorRef[Any], watcher: ActorRef[Any]) -> None:
        self.id = next(_monitor_ids)
        self.target = target
        self.watcher = watcher

    def __repr__(self) -> str:
        return f"<MonitorRef #{self.id} on {self.target}>"


class Down(NamedTuple):
    """A monitor's notice that ``target`` exited with ``reason``, sent once."""

    ref: MonitorRef
    target: ActorRef[Any]
    reason: ExitReason

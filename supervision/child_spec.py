"""``ChildSpec``: how a supervisor starts, restarts and stops one child, as OTP's child spec.

``ChildSpec(id, start, restart="permanent", shutdown=5.0, type="worker")``

- ``id``: any hashable term but ``None``; unique among a ``Supervisor``'s children
  (a ``DynamicSupervisor`` does not require unique ids).
- ``start``: ``(ProcessClass, args, kwargs)``, started with
  ``ProcessClass.start_link(*args, **kwargs)`` from inside the supervisor, or a
  callable taking no argument that runs inside the supervisor and returns the
  ``ActorRef`` of an ``actors.Process`` (the supervisor links to it), or
  ``None`` to say "ignore" (OTP's ``ignore``: nothing is started).
- ``restart``: ``"permanent"`` (always restarted), ``"transient"`` (restarted
  unless it exits ``"normal"``, ``"shutdown"`` or ``("shutdown", term)``) or
  ``"temporary"`` (never restarted).
- ``shutdown``: seconds to wait after the ``"shutdown"`` exit signal before a
  kill, ``"brutal_kill"`` or ``"infinity"``. Default 5.0 for a worker and
  ``"infinity"`` for ``type="supervisor"``.
- ``type``: ``"worker"`` or ``"supervisor"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from actors import Process

__all__ = ["RESTART_TYPES", "SHUTDOWN_WORDS", "CHILD_TYPES", "ChildSpec", "Start"]

RESTART_TYPES = ("permanent", "transient", "temporary")
SHUTDOWN_WORDS = ("brutal_kill", "infinity")
CHILD_TYPES = ("worker", "supervisor")
DEFAULT_WORKER_SHUTDOWN = 5.0

Start = tuple[type[Process], tuple, dict] | Callable[[], Any]


@dataclass(frozen=True)
class ChildSpec:
    """How to start, restart and stop one child of a supervisor (validated on creation)."""

    id: Any
    start: Start
    restart: str = "permanent"
    shutdown: float | str | None = None
    """Seconds, ``"brutal_kill"`` or ``"infinity"``; ``None`` picks the default for ``type``."""
    type: str = "worker"

    def __post_init__(self) -> None:
        try:
            hash(self.id)
        except TypeError:
            raise TypeError(f"child spec id must be hashable, got {self.id!r}") from None
        if self.id is None:
            raise ValueError("child spec id must not be None")
        where = f"child spec {self.id!r}"
        _check_start(self.start, where)
        if self.restart not in RESTART_TYPES:
            raise ValueError(f"{where}: restart must be one of {RESTART_TYPES}, got {self.restart!r}")
        if self.type not in CHILD_TYPES:
            raise ValueError(f"{where}: type must be one of {CHILD_TYPES}, got {self.type!r}")
        shutdown = self.shutdown
        if shutdown is None:
            shutdown = "infinity" if self.type == "supervisor" else DEFAULT_WORKER_SHUTDOWN
            object.__setattr__(self, "shutdown", shutdown)
        if isinstance(shutdown, str):
            if shutdown not in SHUTDOWN_WORDS:
                raise ValueError(
                    f"{where}: shutdown must be seconds, 'brutal_kill' or 'infinity', got {shutdown!r}"
                )
        elif isinstance(shutdown, bool) or not isinstance(shutdown, (int, float)):
            raise TypeError(f"{where}: shutdown must be seconds, 'brutal_kill' or 'infinity', got {shutdown!r}")
        elif not shutdown >= 0 or math.isinf(shutdown):
            raise ValueError(f"{where}: shutdown seconds must be finite and >= 0, got {shutdown!r}")

    @property
    def shutdown_timeout(self) -> float | None:
        """Seconds to wait for an orderly exit: ``0`` for brutal_kill, ``None`` for infinity."""
        shutdown = self.shutdown
        if shutdown == "brutal_kill":
            return 0.0
        if not isinstance(shutdown, (int, float)):  # "infinity": __post_init__ allows no other word
            return None
        return float(shutdown)


def _check_start(start: Any, where: str) -> None:
    if isinstance(start, tuple):
        if len(start) != 3:
            raise ValueError(f"{where}: start must be (ProcessClass, args, kwargs) or a callable, got {start!r}")
        cls, args, kwargs = start
        if not (isinstance(cls, type) and issubclass(cls, Process)):
            raise TypeError(f"{where}: start[0] must be a subclass of actors.Process, got {cls!r}")
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"{where}: start[1] (args) must be a tuple or list, got {args!r}")
        if not isinstance(kwargs, Mapping):
            raise TypeError(f"{where}: start[2] (kwargs) must be a mapping, got {kwargs!r}")
    elif isinstance(start, type):
        raise TypeError(f"{where}: start must be (ProcessClass, args, kwargs), not the bare class {start!r}")
    elif not callable(start):
        raise TypeError(f"{where}: start must be (ProcessClass, args, kwargs) or a callable, got {start!r}")

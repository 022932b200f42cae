"""Functions that work on both supervisor kinds, as OTP's ``supervisor`` module functions.

Each is a synchronous call (an ``ask``) to the supervisor, given as its ref or
its registered name, so it works from outside any process and from inside
another process alike. ``timeout`` (seconds, default: wait as long as it
takes, like OTP's ``infinity``) raises ``pykka.Timeout``; a dead supervisor
raises ``pykka.ActorDeadError``. A supervisor cannot call itself (a child's
``start`` callable runs inside the supervisor): that raises ``RuntimeError``
instead of deadlocking.
"""

from __future__ import annotations

from typing import Any

from pykka import ActorDeadError

import actors
from actors import ProcessRef
from actors.futures import ProcessFuture
from supervision.child_spec import ChildSpec

__all__ = [
    "count_children",
    "delete_child",
    "restart_child",
    "start_child",
    "start_child_request",
    "terminate_child",
    "which_children",
]


def start_child(sup: ProcessRef | str, spec: ChildSpec, *, timeout: float | None = None) -> tuple[str, Any]:
    """Start a child by ``spec``: ``("ok", ref)``, ``("ok", None)`` if its start callable
    returned ``None`` (ignore), or ``("error", reason)``: the child's start failure
    reason, ``("already_started", ref)`` / ``"already_present"`` (a ``Supervisor``
    already has that id) or ``"max_children"`` (a ``DynamicSupervisor`` is full)."""
    if not isinstance(spec, ChildSpec):
        raise TypeError(f"start_child takes a ChildSpec, got {spec!r}")
    return _call(sup, ("start_child", spec), timeout)


def start_child_request(sup: ProcessRef | str, spec: ChildSpec) -> ProcessFuture[tuple[str, Any]]:
    """``start_child`` without waiting (OTP's ``gen_server:send_request``): the
    future of its answer. A process that must not hold its thread (one on the
    event loop) asks this way and hears of the answer through the future's
    done-callback, which runs in the supervisor's thread: it should only send
    the asker a message. A dead supervisor raises ``ActorDeadError`` here or
    in the future."""
    if not isinstance(spec, ChildSpec):
        raise TypeError(f"start_child_request takes a ChildSpec, got {spec!r}")
    ref = _resolve(sup)
    if actors.current_process() is ref:
        raise RuntimeError(f"{ref} cannot ask itself to start a child")
    future: ProcessFuture[tuple[str, Any]] = ref.ask(("start_child", spec), block=False)
    return future


def terminate_child(sup: ProcessRef | str, id_or_ref: Any, *, timeout: float | None = None) -> Any:
    """Shut a child down by its spec's shutdown: ``"ok"`` or ``("error", "not_found")``.

    A ``Supervisor`` takes the id or the ref and keeps the spec (unless temporary),
    so ``restart_child`` can start it again; a ``DynamicSupervisor`` takes the ref
    and forgets the child."""
    return _call(sup, ("terminate_child", id_or_ref), timeout)


def restart_child(sup: ProcessRef | str, child_id: Any, *, timeout: float | None = None) -> tuple[str, Any]:
    """Start again a ``Supervisor``'s terminated child: ``("ok", ref)`` or ``("error",
    "running" | "restarting" | "not_found" | reason)``; ``("error", "not_supported")``
    on a ``DynamicSupervisor``."""
    return _call(sup, ("restart_child", child_id), timeout)


def delete_child(sup: ProcessRef | str, child_id: Any, *, timeout: float | None = None) -> Any:
    """Remove a ``Supervisor``'s terminated child spec: ``"ok"`` or ``("error",
    "running" | "restarting" | "not_found")``; ``("error", "not_supported")`` on a
    ``DynamicSupervisor``."""
    return _call(sup, ("delete_child", child_id), timeout)


def which_children(sup: ProcessRef | str, *, timeout: float | None = None) -> list[tuple[Any, ProcessRef | None, str]]:
    """``(id, ref or None, type)`` for every child, in start order."""
    return _call(sup, ("which_children",), timeout)


def count_children(sup: ProcessRef | str, *, timeout: float | None = None) -> dict[str, int]:
    """``{"specs", "active", "supervisors", "workers"}``: child specs, running
    children, and specs of each type."""
    return _call(sup, ("count_children",), timeout)


def _call(sup: ProcessRef | str, message: tuple[Any, ...], timeout: float | None) -> Any:
    ref = _resolve(sup)
    if actors.current_process() is ref:
        raise RuntimeError(f"{ref} cannot call itself ({message[0]}): it would wait for itself forever")
    return ref.ask(message, timeout=timeout)


def _resolve(sup: ProcessRef | str) -> ProcessRef:
    if isinstance(sup, str):
        ref = actors.whereis(sup)
        if ref is None:
            raise ActorDeadError(f"no process is registered as {sup!r}")
        return ref
    if not isinstance(sup, ProcessRef):
        raise TypeError(f"expected a supervisor's ref or registered name, got {sup!r}")
    return sup

"""``Supervisor``: OTP's supervisor on ``actors.Process``, and the base it shares with
``DynamicSupervisor``.

A supervisor is a process that traps exits, starts its children linked to it,
and reacts to their exits as OTP's ``supervisor`` does (``do_restart``,
``restart/2`` per strategy, ``add_restart`` for the intensity, ``shutdown/2``
with a monitor, ``try_again_restart`` after a failed restart). Everything that
does not depend on how children are stored (the exit handling, the restart
intensity, starting one child, shutting children down, the reports) lives in
``SupervisorBase``; ``Supervisor`` keeps an ordered list of children with unique
ids and the three strategies, ``DynamicSupervisor`` (``supervision.dynamic``) a
set of anonymous children, one_for_one only, shut down concurrently.

Every state change is one method named after its OTP concept:
``_start_child``, ``_handle_child_exit`` (do_restart), ``_restart_child``
(restart), ``_add_restart`` (the intensity check), ``_restart_strategy``,
``_try_again_restart``, ``_terminate_children`` / ``_shutdown_children``
(shutdown/2), ``_report``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, NamedTuple

import structlog
from pykka import ActorDeadError, Timeout

import actors
from actors import KILL, KILLED, NORMAL, SHUTDOWN, ExitReason, ProcessRef, StartError, is_clean_exit
from supervision.child_spec import ChildSpec

__all__ = ["STRATEGIES", "Supervisor", "SupervisorBase", "SupervisorStartError"]

log = structlog.get_logger("liveupload.supervision")

STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")

_clock = time.monotonic
"""The clock of the restart intensity (module attribute so tests can replace it)."""


class SupervisorStartError(StartError):
    """A supervisor failed to start: ``child_id`` (``None`` if no child is to blame,
    e.g. a taken name) failed with ``reason``. The children already started have
    been stopped, in reverse order, before this is raised."""

    def __init__(self, supervisor: str, child_id: Any, reason: ExitReason) -> None:
        if child_id is None:
            message = f"supervisor {supervisor} failed to start: {reason!r}"
        else:
            message = f"supervisor {supervisor} failed to start child {child_id!r}: {reason!r}"
        Exception.__init__(self, message)
        self.supervisor = supervisor
        self.child_id = child_id
        self.reason = reason


class _Child:
    """A supervisor's record of one child: its spec and its current ref (``None``
    while not running). ``restarting`` marks a child whose restart failed and
    waits for its ``_TryAgainRestart``."""

    __slots__ = ("ref", "restarting", "spec")

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.ref: ProcessRef | None = None
        self.restarting = False

    def __repr__(self) -> str:
        return f"<child {self.spec.id!r} {self.ref}>"


class _TryAgainRestart(NamedTuple):
    """Sent by a supervisor to itself after a failed restart (OTP's try_again_restart)."""

    child: _Child


class _ChildStartFailed(Exception):
    def __init__(self, reason: ExitReason) -> None:
        super().__init__(reason)
        self.reason = reason


_STARTED = object()
"""Asked by ``start`` from outside: answered once ``on_start`` has succeeded."""

_CALLS = {
    "start_child": "_call_start_child",
    "terminate_child": "_call_terminate_child",
    "restart_child": "_call_restart_child",
    "delete_child": "_call_delete_child",
    "which_children": "_call_which_children",
    "count_children": "_call_count_children",
}


def _format_reason(reason: Any) -> str:
    return reason if isinstance(reason, str) else repr(reason)


class SupervisorBase(actors.Process):
    """What both supervisor kinds share: exits, intensity, starting, shutdown, reports.

    Subclasses store the children and define ``_children_in_order``, ``_owns``,
    ``_remove_child``, ``_child_exited``, ``_restart_strategy`` and the
    ``_call_*`` handlers of the API that differ between the kinds.
    """

    trap_exit = True
    concurrent_shutdown = False
    """Shut children down all at once (DynamicSupervisor) or one by one in reverse order."""

    def __init__(self, max_restarts: int = 3, max_seconds: float = 5.0, name: str | None = None) -> None:
        super().__init__()
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"max_restarts must be an int >= 0, got {max_restarts!r}")
        if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not max_seconds > 0:
            raise ValueError(f"max_seconds must be a number > 0, got {max_seconds!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"name must be a non-empty str or None, got {name!r}")
        self.max_restarts = max_restarts
        self.max_seconds = float(max_seconds)
        self.name = name
        self._parent = actors.current_process()
        self._by_ref: dict[ProcessRef, _Child] = {}
        self._restarts: deque[float] = deque()

    @classmethod
    def _start_and_wait(cls, *args: Any, **kwargs: Any) -> ProcessRef:
        """``Process.start``, then wait until ``on_start`` (starting the children) is done;
        raise ``SupervisorStartError`` if it failed."""
        ref = super().start(*args, **kwargs)
        try:
            ref.ask(_STARTED)
        except ActorDeadError:
            reason = actors.await_exit(ref)
            if isinstance(reason, SupervisorStartError):
                raise SupervisorStartError(reason.supervisor, reason.child_id, reason.reason) from reason
            cause = reason if isinstance(reason, BaseException) else None
            raise SupervisorStartError(str(ref), None, reason) from cause
        return ref

    @property
    def label(self) -> str:
        """How reports name this supervisor: its registered name, else its ref."""
        return self.name or str(self.actor_ref)

    # -- the life of the supervisor ---------------------------------------------------

    def on_start(self) -> None:
        if self.name is not None:
            try:
                actors.register(self.name, self.actor_ref)
            except actors.NameTakenError:
                raise SupervisorStartError(
                    str(self.actor_ref), None, ("already_started", actors.whereis(self.name))
                ) from None
        self._init_children()

    def _init_children(self) -> None:
        """Start the initial children (none for a dynamic supervisor)."""

    def terminate(self, reason: ExitReason) -> None:
        """Stop every child (reverse start order, or all at once for a dynamic
        supervisor) before this supervisor exits with ``reason``."""
        self._terminate_children(self._children_in_order())

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, actors.Exit):
            self._handle_exit(message.sender, message.reason)
            return None
        if isinstance(message, actors.Down):
            return None  # from the monitor of a shutdown, whose reason was already read
        if isinstance(message, _TryAgainRestart):
            self._try_again_restart(message.child)
            return None
        if message is _STARTED:
            return "ok"
        if isinstance(message, tuple) and message and message[0] in _CALLS:
            try:
                return getattr(self, _CALLS[message[0]])(*message[1:])
            except Exception as exc:  # noqa: BLE001 - a malformed call must not crash the supervisor
                log.error("supervisor_bad_call", supervisor=self.label, call=repr(message), reason=repr(exc))
                return ("error", exc)
        log.warning("supervisor_unexpected_message", supervisor=self.label, message=repr(message))
        return ("error", ("unexpected_message", message))

    def _handle_exit(self, sender: Any, reason: ExitReason) -> None:
        """An exit signal: a child's exit, the parent's (or anyone's deliberate)
        exit signal to this supervisor, or the death of a process no longer ours."""
        child = self._by_ref.get(sender) if sender is not None else None
        if child is not None:
            self._handle_child_exit(child, reason)
            return
        sender_alive = isinstance(sender, ProcessRef) and sender.exit_reason is None
        if sender is None or sender is self._parent or (sender_alive and reason != NORMAL):
            self.exit(reason)  # terminate() then stops the children
            return
        # A dead process we do not supervise: a child that failed to start, one
        # already shut down or replaced, or a linked stranger. OTP ignores these.
        log.debug("supervisor_ignored_exit", supervisor=self.label, sender=str(sender), reason=_format_reason(reason))

    # -- child exits and restarts ------------------------------------------------------

    def _handle_child_exit(self, child: _Child, reason: ExitReason) -> None:
        """OTP's do_restart: restart by the child's restart type, report crashes."""
        ref = child.ref
        self._forget_ref(child)
        restart = child.spec.restart
        clean = is_clean_exit(reason)
        if restart == "permanent" or (restart == "transient" and not clean):
            self._report("child_terminated", reason, child, ref, level="info" if clean else "error")
            self._restart_child(child)
        else:
            if not clean:
                self._report("child_terminated", reason, child, ref)
            self._child_exited(child)

    def _restart_child(self, child: _Child) -> None:
        """Count a restart; past the intensity, give up (stop everything, exit
        ``"shutdown"``); otherwise restart by the strategy."""
        if not self._add_restart():
            self._report("shutdown", "reached_max_restart_intensity", child, None)
            self.exit(SHUTDOWN)  # terminate() stops the other children
            return
        self._restart_strategy(child)

    def _add_restart(self) -> bool:
        """Record a restart now; False if that makes more than ``max_restarts``
        within ``max_seconds`` (the restart intensity is reached)."""
        now = _clock()
        restarts = self._restarts
        restarts.append(now)
        horizon = now - self.max_seconds
        while restarts and restarts[0] < horizon:
            restarts.popleft()
        return len(restarts) <= self.max_restarts

    def _restart_strategy(self, child: _Child) -> None:
        self._restart_one(child)

    def _restart_one(self, child: _Child) -> None:
        """one_for_one: start the child again; if that fails, report and try again later."""
        try:
            self._start_child(child)
        except _ChildStartFailed as failure:
            self._report("start_error", failure.reason, child, None)
            self._schedule_try_again(child)
            return
        if child.ref is None:  # its start callable said ignore: no longer running
            self._child_exited(child)

    def _schedule_try_again(self, child: _Child) -> None:
        child.restarting = True
        self.actor_ref.tell(_TryAgainRestart(child))

    def _try_again_restart(self, child: _Child) -> None:
        """A restart that failed before: try it again (it counts toward the intensity)."""
        if self._owns(child) and child.restarting and child.ref is None:
            self._restart_child(child)

    # -- starting ------------------------------------------------------------------------

    def _start_child(self, child: _Child) -> None:
        """Start ``child`` linked to this supervisor; raises ``_ChildStartFailed``."""
        ref = self._start_spec(child.spec)
        child.restarting = False
        child.ref = ref
        if ref is not None:
            self._by_ref[ref] = child

    def _start_spec(self, spec: ChildSpec) -> ProcessRef | None:
        start = spec.start
        try:
            if isinstance(start, tuple):
                cls, args, kwargs = start
                return cls.start_link(*args, **dict(kwargs))
            ref = start()
        except StartError as exc:
            raise _ChildStartFailed(exc.reason) from None
        except BaseException as exc:  # noqa: BLE001 - a child's failure never crashes us
            raise _ChildStartFailed(exc) from None
        if ref is None:
            return None  # OTP's ignore
        if not isinstance(ref, ProcessRef):
            raise _ChildStartFailed(("bad_return", ref))
        actors.link(self.actor_ref, ref)
        ref.parent = self.actor_ref  # adopted: actors.shutdown stops it through us, not as a root
        return ref

    # -- shutting down ---------------------------------------------------------------------

    def _terminate_children(self, children: Iterable[_Child]) -> None:
        """Shut ``children`` down (given in start order): one at a time in reverse
        order, or all at once if ``concurrent_shutdown``. Each then leaves the
        running set (``_child_exited``: a temporary child is removed)."""
        children = list(children)
        if self.concurrent_shutdown:
            self._shutdown_children(children)
        else:
            for child in reversed(children):
                self._shutdown_children([child])
        for child in children:
            if self._owns(child):
                self._child_exited(child)

    def _shutdown_children(self, children: list[_Child]) -> None:
        """OTP's shutdown/2 for many children at once: monitor and unlink each, send
        every exit signal (``"shutdown"``, or ``"kill"`` for brutal_kill) first, then
        wait for each until its own deadline, counted from the same instant, and
        kill the stragglers. Exits other than clean ones are ``shutdown_error``s."""
        me = self.actor_ref
        began = time.monotonic()
        pending: list[tuple[float, int, _Child, ProcessRef, actors.MonitorRef]] = []
        for child in children:
            ref = child.ref
            if ref is None:
                continue
            self._forget_ref(child)
            mref = actors.monitor(ref, me)
            actors.unlink(me, ref)
            timeout = child.spec.shutdown_timeout
            actors.exit(ref, KILL if child.spec.shutdown == "brutal_kill" else SHUTDOWN)
            deadline = math.inf if timeout is None else began + timeout
            pending.append((deadline, len(pending), child, ref, mref))
        pending.sort(key=lambda item: item[:2])
        for deadline, _, child, ref, mref in pending:
            reason = self._await_child(ref, deadline)
            actors.demonitor(mref)  # its Down is sent (and ignored); forget the monitor
            if not (is_clean_exit(reason) or (reason == KILLED and child.spec.shutdown == "brutal_kill")):
                self._report("shutdown_error", reason, child, ref)

    @staticmethod
    def _await_child(ref: ProcessRef, deadline: float) -> ExitReason:
        timeout = None if deadline == math.inf else max(0.0, deadline - time.monotonic())
        try:
            return actors.await_exit(ref, timeout)
        except Timeout:
            actors.exit(ref, KILL)
            return actors.await_exit(ref)

    def _forget_ref(self, child: _Child) -> None:
        if child.ref is not None:
            self._by_ref.pop(child.ref, None)
            child.ref = None

    # -- reports ---------------------------------------------------------------------------

    def _report(
        self,
        context: str,
        reason: Any,
        child: _Child,
        ref: ProcessRef | None,
        *,
        level: str = "error",
    ) -> None:
        """Log a ``supervisor_report`` as OTP's supervisor report: supervisor,
        context, reason, offender."""
        spec = child.spec
        fields: dict[str, Any] = {
            "supervisor": self.label,
            "context": context,
            "reason": _format_reason(reason),
            "offender": {
                "id": spec.id,
                "ref": None if ref is None else str(ref),
                "restart_type": spec.restart,
                "shutdown": spec.shutdown,
                "child_type": spec.type,
            },
        }
        getattr(log, level)("supervisor_report", **fields)

    # -- the API (both kinds) ----------------------------------------------------------------

    def _call_which_children(self) -> list[tuple[Any, ProcessRef | None, str]]:
        return [(c.spec.id, c.ref, c.spec.type) for c in self._children_in_order()]

    def _call_count_children(self) -> dict[str, int]:
        children = self._children_in_order()
        supervisors = sum(1 for c in children if c.spec.type == "supervisor")
        return {
            "specs": len(children),
            "active": sum(1 for c in children if c.ref is not None),
            "supervisors": supervisors,
            "workers": len(children) - supervisors,
        }

    # -- the storage of children (per kind) ---------------------------------------------------

    def _children_in_order(self) -> list[_Child]:
        raise NotImplementedError

    def _owns(self, child: _Child) -> bool:
        raise NotImplementedError

    def _remove_child(self, child: _Child) -> None:
        raise NotImplementedError

    def _child_exited(self, child: _Child) -> None:
        """``child`` is not running and is not restarted now."""
        raise NotImplementedError


class Supervisor(SupervisorBase):
    """OTP's supervisor: children with unique ids, started in order, stopped in
    reverse order, restarted by ``strategy``."""

    def __init__(
        self,
        children: Iterable[ChildSpec] = (),
        strategy: str = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        name: str | None = None,
    ) -> None:
        super().__init__(max_restarts, max_seconds, name)
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        self.strategy = strategy
        self._children: list[_Child] = []
        self._by_id: dict[Any, _Child] = {}
        for spec in children:
            if not isinstance(spec, ChildSpec):
                raise TypeError(f"children must be ChildSpec instances, got {spec!r}")
            if spec.id in self._by_id:
                raise ValueError(f"duplicate child id {spec.id!r}")
            child = _Child(spec)
            self._children.append(child)
            self._by_id[spec.id] = child

    @classmethod
    def start(  # type: ignore[override]  # a supervisor's options, not a process's init arguments
        cls,
        children: Iterable[ChildSpec] = (),
        strategy: str = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        name: str | None = None,
    ) -> ProcessRef:
        """Start a supervisor (not linked to the caller) and its children, in order.

        Returns once every child has started. If one fails, the ones already
        started are stopped in reverse order and ``SupervisorStartError`` (an
        ``actors.StartError``) names the child and its reason. ``start_link``
        (same arguments, from inside a process) starts it linked to the caller,
        which is how a parent supervisor starts it.
        """
        return cls._start_and_wait(children, strategy, max_restarts, max_seconds, name)

    @classmethod
    def child_spec(cls, id: Any, children: Iterable[ChildSpec] = (), **options: Any) -> ChildSpec:
        """A ``ChildSpec`` of ``type="supervisor"`` for a supervisor of ``children``;
        ``restart`` and ``shutdown`` go to the spec, the rest to ``start``."""
        spec_options = {key: options.pop(key) for key in ("restart", "shutdown") if key in options}
        return ChildSpec(id, (cls, (list(children),), options), type="supervisor", **spec_options)

    def _init_children(self) -> None:
        """Start the children in order; on a failure stop the started ones in
        reverse order and fail the start."""
        started: list[_Child] = []
        for child in list(self._children):
            try:
                self._start_child(child)
            except _ChildStartFailed as failure:
                self._report("start_error", failure.reason, child, None)
                self._terminate_children(started)
                raise SupervisorStartError(self.label, child.spec.id, failure.reason) from None
            if child.ref is None and child.spec.restart == "temporary":
                self._remove_child(child)
            else:
                started.append(child)

    # -- restart strategies -------------------------------------------------------------------

    def _restart_strategy(self, child: _Child) -> None:
        if self.strategy == "one_for_one":
            self._restart_one(child)
        elif self.strategy == "one_for_all":
            self._restart_multiple(child, list(self._children))
        else:
            self._restart_multiple(child, self._children[self._children.index(child) :])

    def _restart_multiple(self, child: _Child, group: list[_Child]) -> None:
        """one_for_all / rest_for_one: stop the others of ``group`` in reverse order
        (temporary ones are removed, never restarted), then start ``group`` in
        order. A failed start is reported and the whole restart tried again later."""
        self._terminate_children(c for c in group if c is not child)
        for member in [c for c in group if self._owns(c)]:
            if member.ref is not None:
                continue
            try:
                self._start_child(member)
            except _ChildStartFailed as failure:
                self._report("start_error", failure.reason, member, None)
                self._schedule_try_again(member)  # OTP retries from the child that failed
                return
            if member.ref is None and member.spec.restart == "temporary":
                self._remove_child(member)

    # -- storage ------------------------------------------------------------------------------

    def _children_in_order(self) -> list[_Child]:
        return list(self._children)

    def _owns(self, child: _Child) -> bool:
        return self._by_id.get(child.spec.id) is child

    def _remove_child(self, child: _Child) -> None:
        if self._owns(child):
            del self._by_id[child.spec.id]
            self._children.remove(child)
        self._forget_ref(child)

    def _child_exited(self, child: _Child) -> None:
        if child.spec.restart == "temporary":
            self._remove_child(child)

    def _find(self, key: Any) -> _Child | None:
        if isinstance(key, ProcessRef) and key in self._by_ref:
            return self._by_ref[key]
        try:
            return self._by_id.get(key)
        except TypeError:  # unhashable
            return None

    # -- the API ------------------------------------------------------------------------------

    def _call_start_child(self, spec: ChildSpec) -> tuple[str, Any]:
        existing = self._by_id.get(spec.id)
        if existing is not None:
            if existing.ref is not None:
                return ("error", ("already_started", existing.ref))
            return ("error", "already_present")
        child = _Child(spec)
        try:
            self._start_child(child)
        except _ChildStartFailed as failure:
            return ("error", failure.reason)
        if child.ref is None and spec.restart == "temporary":
            return ("ok", None)
        self._children.append(child)
        self._by_id[spec.id] = child
        return ("ok", child.ref)

    def _call_terminate_child(self, key: Any) -> Any:
        child = self._find(key)
        if child is None:
            return ("error", "not_found")
        child.restarting = False
        self._terminate_children([child])
        return "ok"

    def _call_restart_child(self, child_id: Any) -> tuple[str, Any]:
        child = self._find(child_id)
        if child is None:
            return ("error", "not_found")
        if child.ref is not None:
            return ("error", "running")
        if child.restarting:
            return ("error", "restarting")
        try:
            self._start_child(child)
        except _ChildStartFailed as failure:
            return ("error", failure.reason)
        return ("ok", child.ref)

    def _call_delete_child(self, child_id: Any) -> Any:
        child = self._find(child_id)
        if child is None:
            return ("error", "not_found")
        if child.ref is not None:
            return ("error", "running")
        if child.restarting:
            return ("error", "restarting")
        self._remove_child(child)
        return "ok"

"""``DynamicSupervisor``: Elixir's DynamicSupervisor (OTP's simple_one_for_one).

No initial children: they are added with ``start_child``, restarted one for
one, and removed from the supervisor when they stop for good (a temporary
child on any exit, a transient one on a clean exit, any child on
``terminate_child``). Ids need not be unique; ``terminate_child`` takes the
child's ref. When the supervisor stops (or reaches its restart intensity) it
shuts all its children down concurrently: every exit signal is sent first,
then each child is awaited until its deadline, counted from the same instant.
"""

from __future__ import annotations

from typing import Any

from actors import ProcessRef
from supervision.child_spec import ChildSpec
from supervision.supervisor import SupervisorBase, _Child, _ChildStartFailed

__all__ = ["DynamicSupervisor"]


class DynamicSupervisor(SupervisorBase):
    """A supervisor of children started on demand, one_for_one, at most ``max_children``."""

    concurrent_shutdown = True

    def __init__(
        self,
        max_children: int | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        name: str | None = None,
    ) -> None:
        super().__init__(max_restarts, max_seconds, name)
        if max_children is not None and (
            isinstance(max_children, bool) or not isinstance(max_children, int) or max_children < 0
        ):
            raise ValueError(f"max_children must be None or an int >= 0, got {max_children!r}")
        self.max_children = max_children
        self.strategy = "one_for_one"
        self._children: dict[_Child, None] = {}  # an ordered set, in start order

    @classmethod
    def start(  # type: ignore[override]  # a supervisor's options, not a process's init arguments
        cls,
        max_children: int | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        name: str | None = None,
    ) -> ProcessRef:
        """Start a dynamic supervisor (not linked to the caller); ``start_link`` with
        the same arguments starts it linked, from inside a process."""
        return cls._start_and_wait(max_children, max_restarts, max_seconds, name)

    @classmethod
    def child_spec(cls, id: Any, **options: Any) -> ChildSpec:  # `id` as in Elixir's child specs
        """A ``ChildSpec`` of ``type="supervisor"`` for a dynamic supervisor;
        ``restart`` and ``shutdown`` go to the spec, the rest to ``start``."""
        spec_options = {key: options.pop(key) for key in ("restart", "shutdown") if key in options}
        return ChildSpec(id, (cls, (), options), type="supervisor", **spec_options)

    # -- storage ------------------------------------------------------------------------------

    def _children_in_order(self) -> list[_Child]:
        return list(self._children)

    def _owns(self, child: _Child) -> bool:
        return child in self._children

    def _remove_child(self, child: _Child) -> None:
        self._children.pop(child, None)
        self._forget_ref(child)

    def _child_exited(self, child: _Child) -> None:
        self._remove_child(child)

    # -- the API ------------------------------------------------------------------------------

    def _call_start_child(self, spec: ChildSpec) -> tuple[str, Any]:
        if self.max_children is not None and len(self._children) >= self.max_children:
            return ("error", "max_children")
        child = _Child(spec)
        try:
            self._start_child(child)
        except _ChildStartFailed as failure:
            return ("error", failure.reason)
        if child.ref is None:
            return ("ok", None)  # ignored: nothing to supervise
        self._children[child] = None
        return ("ok", child.ref)

    def _call_terminate_child(self, key: Any) -> Any:
        child = self._by_ref.get(key) if isinstance(key, ProcessRef) else None
        if child is None:
            return ("error", "not_found")
        self._terminate_children([child])
        return "ok"

    def _call_restart_child(self, _child_id: Any) -> tuple[str, Any]:
        return ("error", "not_supported")

    def _call_delete_child(self, _child_id: Any) -> tuple[str, Any]:
        return ("error", "not_supported")

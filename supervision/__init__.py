"""supervision: OTP supervisors on the process runtime.

``Supervisor`` (one_for_one, one_for_all, rest_for_one), ``DynamicSupervisor``
(children started on demand), ``ChildSpec``, and the module functions that
work on both: ``start_child`` (and ``start_child_request``, its answer as a
future), ``terminate_child``, ``restart_child``,
``delete_child``, ``which_children``, ``count_children``.
"""

from __future__ import annotations

from supervision.api import (
    count_children,
    delete_child,
    restart_child,
    start_child,
    start_child_request,
    terminate_child,
    which_children,
)
from supervision.child_spec import ChildSpec
from supervision.dynamic import DynamicSupervisor
from supervision.supervisor import STRATEGIES, Supervisor, SupervisorBase, SupervisorStartError

__all__ = [
    "STRATEGIES",
    "ChildSpec",
    "DynamicSupervisor",
    "Supervisor",
    "SupervisorBase",
    "SupervisorStartError",
    "count_children",
    "delete_child",
    "restart_child",
    "start_child",
    "start_child_request",
    "terminate_child",
    "which_children",
]

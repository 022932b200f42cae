"""Registered names: ``register``, ``whereis``, ``unregister``, as ``erlang:register``.

A process has at most one name, a name at most one process, and the name is
freed the instant its process dies (this module's death hook).
"""

from __future__ import annotations

from typing import Any

from pykka import ActorRef

from actors.process import ProcessRef, from_a_killed_process, on_death, require_process, table_lock
from actors.reasons import ExitReason

__all__ = ["NameTakenError", "register", "registered", "unregister", "whereis"]

# Both under ``table_lock``, so a registration lands before or after a death, never between.
_names: dict[str, ProcessRef] = {}
_name_of: dict[ProcessRef, str] = {}


class NameTakenError(ValueError):
    """The name is registered to another process, or the process already has a name."""


def register(name: str, ref: ActorRef[Any]) -> None:
    """Register ``name`` for the live process ``ref``.

    Raises ``NameTakenError`` if the name is taken or the process already has a
    name, and ``ValueError`` if the process is dead.
    """
    ref = require_process(ref)
    if from_a_killed_process():
        return
    with table_lock:
        if ref.exit_reason is not None:
            raise ValueError(f"cannot register {name!r}: {ref} is not alive")
        holder = _names.get(name)
        if holder is not None and holder.is_alive():
            raise NameTakenError(f"name {name!r} is already registered to {holder}")
        if ref in _name_of:
            raise NameTakenError(f"{ref} is already registered as {_name_of[ref]!r}")
        if holder is not None:  # dead, its name not yet freed by its death hook
            del _name_of[holder]
        _names[name] = ref
        _name_of[ref] = name


def whereis(name: str) -> ProcessRef | None:
    """The live process registered as ``name``, or ``None``."""
    ref = _names.get(name)
    return ref if ref is not None and ref.is_alive() else None


def unregister(name: str) -> None:
    """Remove the registered ``name``; ``KeyError`` if nothing holds it."""
    with table_lock:
        ref = _names.pop(name)
        del _name_of[ref]


def registered() -> list[str]:
    """Every name registered now."""
    with table_lock:
        return list(_names)


def _free_name(ref: ProcessRef, _reason: ExitReason) -> None:
    if ref not in _name_of:  # most processes have no name: no lock for them
        return
    with table_lock:
        name = _name_of.pop(ref, None)
        if name is not None and _names.get(name) is ref:
            del _names[name]


on_death(_free_name)

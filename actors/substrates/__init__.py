"""Substrates: where processes run, by name.

A substrate implements ``Substrate`` (``protocol.py``): it starts a process
and drives it through its public ``Runnable`` interface. Three ship, one module
each: ``"pool"`` (the default, as on BEAM: every process on a small shared pool
of worker threads, ``pool.py``), ``"thread"`` (a dedicated OS thread per
process, ``thread.py``) and ``"loop"`` (callbacks on an asyncio event loop,
``loop.py``). ``Process.substrate``, ``Process.start(substrate=...)``
and ``set_default_substrate`` choose one by name; ``"loop"`` runs on the
loop bound with ``bind_loop`` when there is one (a server's), else on a loop
thread of its own.
"""

from __future__ import annotations

import threading
from typing import Any

from actors.substrates.loop import _SUBSTRATE as _LOOP
from actors.substrates.loop import bind_loop, bound_loop, unbind_loop
from actors.substrates.pool import PoolSubstrate
from actors.substrates.protocol import Runnable, Substrate
from actors.substrates.thread import ThreadSubstrate

__all__ = [
    "SUBSTRATES",
    "Runnable",
    "Substrate",
    "bind_loop",
    "bound_loop",
    "check",
    "default_substrate",
    "get",
    "set_default_substrate",
    "threads",
    "unbind_loop",
]

SUBSTRATES: dict[str, Substrate] = {s.name: s for s in (PoolSubstrate(), ThreadSubstrate(), _LOOP)}
"""Every substrate by name."""

_default = "pool"


def check(name: Any) -> None:
    """Refuse an unknown substrate name (``None`` means the default)."""
    if name is not None and name not in SUBSTRATES:
        raise ValueError(f"substrate must be one of {tuple(SUBSTRATES)}, got {name!r}")


def get(name: str | None) -> Substrate:
    """The substrate called ``name``, or the default one for ``None``."""
    check(name)
    return SUBSTRATES[name or _default]


def default_substrate() -> str:
    """The name of the substrate processes run on unless told otherwise."""
    return _default


def set_default_substrate(name: str) -> str:
    """Choose where processes started without an explicit choice run; returns the old one."""
    global _default
    if name not in SUBSTRATES:
        raise ValueError(f"substrate must be one of {tuple(SUBSTRATES)}, got {name!r}")
    old, _default = _default, name
    return old


def threads() -> list[threading.Thread]:
    """Every thread the substrates hold now: the scheduler's workers and
    watchdog, the dedicated thread of each ``"thread"`` process, and the
    ``"loop"`` substrate's own loop thread (never a bound loop's)."""
    return [thread for substrate in SUBSTRATES.values() for thread in substrate.threads()]

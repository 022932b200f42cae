"""The substrate a scenario runs its processes on, as a parameter.

The runtime has three (``actors.substrates``): ``"thread"``, a dedicated OS
thread per process (what a plain Pykka ``ThreadingActor`` has),
``"pool"``, the shared M:N scheduler (the runtime's default), and ``"loop"``,
callbacks on an asyncio event loop (the bound one, as in a server made by
``create_app``, else the substrate's own loop thread). The harness runs
every process-level figure on each and reports them side by side. A
``Substrate`` here is a name plus how to make it the default for every process
started inside a ``with using(name):`` block (sessions, supervisors, channels,
bare processes); scenarios never look at the name except to label their rows.
A runtime without ``actors.set_default_substrate`` has only ``"thread"``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import actors
from actors import substrates as runtime

__all__ = ["Substrate", "available", "register", "using", "SUBSTRATES"]


@dataclass(frozen=True)
class Substrate:
    """A way to run processes: a name and how to make it the one in use."""

    name: str
    activate: Callable[[], contextlib.AbstractContextManager[None]] = field(default=contextlib.nullcontext)
    available: Callable[[], bool] = field(default=lambda: True)
    description: str = ""


SUBSTRATES: dict[str, Substrate] = {}


def register(substrate: Substrate) -> None:
    """Make ``substrate`` selectable by name (replacing one of the same name)."""
    SUBSTRATES[substrate.name] = substrate


def _runtime_has(name: str) -> bool:
    return name in getattr(runtime, "SUBSTRATES", ("thread",))


def _default(name: str) -> Callable[[], contextlib.AbstractContextManager[None]]:
    @contextlib.contextmanager
    def activate() -> Iterator[None]:
        set_default = getattr(actors, "set_default_substrate", None)
        if set_default is None:  # a runtime with threads only
            yield
            return
        previous = set_default(name)
        try:
            yield
        finally:
            set_default(previous)

    return activate


register(
    Substrate(
        "thread",
        _default("thread"),
        lambda: _runtime_has("thread"),
        "a dedicated OS thread per process",
    )
)
register(
    Substrate(
        "pool",
        _default("pool"),
        lambda: _runtime_has("pool"),
        "the shared M:N scheduler (actors.substrates.pool)",
    )
)
register(
    Substrate(
        "loop",
        _default("loop"),
        lambda: _runtime_has("loop"),
        "callbacks on an asyncio event loop (actors.substrates.loop)",
    )
)

def available() -> list[str]:
    """Names of the substrates this runtime has, in registration order."""
    return [name for name, substrate in SUBSTRATES.items() if substrate.available()]


@contextlib.contextmanager
def using(name: str) -> Iterator[None]:
    """Run the block with processes started on substrate ``name``."""
    try:
        substrate = SUBSTRATES[name]
    except KeyError:
        raise ValueError(f"unknown substrate {name!r}; known: {sorted(SUBSTRATES)}") from None
    if not substrate.available():
        raise ValueError(f"substrate {name!r} is not available in this runtime")
    with substrate.activate():
        yield

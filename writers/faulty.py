"""A memory writer with one injectable fault, for tests, benchmarks and crash
drills.

Options (all optional):

``fault``
    ``None`` (behave like :class:`~writers.memory.MemoryWriter`), ``"raise"``
    (raise ``exception`` from ``write_chunk``), ``"error"`` (``write_chunk``
    returns ``("error", reason, state)``), ``"init_error"`` (``init`` returns
    ``("error", reason)``), ``"close_error"`` (``close`` returns ``("error",
    reason)``), ``"stall"`` (``write_chunk`` blocks, then proceeds normally) or
    ``"keyboard_interrupt"`` (raise :class:`KeyboardInterrupt`, a
    ``BaseException``, from ``write_chunk``).
``at_chunk``
    1-based index of the chunk hit by raise/error/stall/keyboard_interrupt
    (default 1). Only that chunk is affected.
``close_on``
    For close_error, the close reason that triggers it: ``"done"`` (default),
    ``"cancel"``, ``"error"`` (any ``("error", _)``) or ``"any"``.
``stall_seconds``
    How long a stall lasts (default 1.0). ``stall_event``: an optional
    :class:`threading.Event` to wait on instead of a fresh one, so a test can
    end the stall early by setting it.
``reason``
    The error reason / exception message (default ``"injected"``).
``exception``
    Exception class for ``"raise"`` (default :class:`FaultInjected`).
``journal``
    Any object with ``append`` (e.g. a list). Gets ``("init",)`` per init,
    ``("chunk", n)`` per ``write_chunk`` call (before any fault fires) and
    ``("close", reason)`` per close; with ``journal_release=True`` also
    ``("release",)`` per release. Lets crash drills check that close ran
    exactly once even when the writer's state died with its channel.

Invalid options raise :class:`ValueError` / :class:`TypeError` from ``init``:
a misconfigured drill is a bug, not an upload failure.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .behaviour import Chunk, CloseReason, CloseResult, InitResult, WriteResult
from .memory import MemoryState, MemoryWriter

__all__ = ["FAULTS", "CLOSE_ON", "FaultInjected", "FaultConfig", "FaultyState", "FaultyWriter"]

#: Accepted values of the ``fault`` option.
FAULTS = frozenset({None, "raise", "error", "init_error", "close_error", "stall", "keyboard_interrupt"})
#: Accepted values of the ``close_on`` option.
CLOSE_ON = frozenset({"done", "cancel", "error", "any"})


class FaultInjected(RuntimeError):
    """The default exception raised by ``fault="raise"``."""


@dataclass(frozen=True)
class FaultConfig:
    """Validated options of one :class:`FaultyWriter` upload."""

    fault: str | None = None
    at_chunk: int = 1
    close_on: str = "done"
    stall_seconds: float = 1.0
    stall_event: Any = None
    reason: Any = "injected"
    exception: type[BaseException] = FaultInjected
    journal: Any = None
    journal_release: bool = False

    @classmethod
    def from_opts(cls, opts: Mapping[str, Any] | None) -> FaultConfig:
        if opts is None:
            opts = {}
        if not isinstance(opts, Mapping):
            raise TypeError(f"FaultyWriter opts must be a mapping, got {opts!r}")
        unknown = set(opts) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown FaultyWriter options: {sorted(unknown)}")
        config = cls(**opts)
        if config.fault not in FAULTS:
            raise ValueError(f"fault must be one of {sorted(map(str, FAULTS))}, got {config.fault!r}")
        if isinstance(config.at_chunk, bool) or not isinstance(config.at_chunk, int) or config.at_chunk < 1:
            raise ValueError(f"at_chunk must be an int >= 1, got {config.at_chunk!r}")
        if config.close_on not in CLOSE_ON:
            raise ValueError(f"close_on must be one of {sorted(CLOSE_ON)}, got {config.close_on!r}")
        if (
            isinstance(config.stall_seconds, bool)
            or not isinstance(config.stall_seconds, (int, float))
            or config.stall_seconds < 0
        ):
            raise ValueError(f"stall_seconds must be a number >= 0, got {config.stall_seconds!r}")
        if config.stall_event is not None and not callable(getattr(config.stall_event, "wait", None)):
            raise TypeError(f"stall_event must have a wait(timeout) method, got {config.stall_event!r}")
        if not (isinstance(config.exception, type) and issubclass(config.exception, BaseException)):
            raise TypeError(f"exception must be an exception class, got {config.exception!r}")
        if config.journal is not None and not callable(getattr(config.journal, "append", None)):
            raise TypeError(f"journal must have an append method, got {config.journal!r}")
        return config

    def closes_with_error(self, reason: CloseReason) -> bool:
        """Whether close_error fires for this close *reason*."""
        if self.fault != "close_error":
            return False
        if self.close_on == "any":
            return True
        if self.close_on == "error":
            return isinstance(reason, tuple) and len(reason) == 2 and reason[0] == "error"
        return reason == self.close_on


@dataclass
class FaultyState(MemoryState):
    """Memory state plus the fault config and call counters."""

    config: FaultConfig = field(default_factory=FaultConfig)
    closes: int = 0
    close_reasons: list = field(default_factory=list)
    releases: int = 0
    stalls: int = 0


class FaultyWriter(MemoryWriter[FaultyState]):
    """A :class:`MemoryWriter` (``meta`` is ``{"data": bytes}``) with one
    configurable fault; see the module docstring for the options."""

    loop_safe = False  # it stalls on request: never on a server's loop

    def init(self, opts: Mapping[str, Any] | None = None) -> InitResult:
        config = FaultConfig.from_opts(opts)
        _record(config, ("init",))
        if config.fault == "init_error":
            return ("error", config.reason)
        return ("ok", FaultyState(config=config))

    def write_chunk(self, data: Chunk, state: FaultyState) -> WriteResult:
        config = state.config
        n = state.chunks + 1
        _record(config, ("chunk", n))
        if n == config.at_chunk:
            if config.fault == "raise":
                # State is left untouched: the channel closes with the last good state.
                raise config.exception(f"{config.reason} at chunk {n}")
            if config.fault == "keyboard_interrupt":
                raise KeyboardInterrupt(f"{config.reason} at chunk {n}")
            if config.fault == "error":
                state.chunks = n
                return ("error", config.reason, state)
            if config.fault == "stall":
                event = config.stall_event if config.stall_event is not None else threading.Event()
                event.wait(config.stall_seconds)
                state.stalls += 1
        return super().write_chunk(data, state)

    def close(self, state: FaultyState, reason: CloseReason) -> CloseResult:
        config = state.config
        _record(config, ("close", reason))
        state.closes += 1
        state.close_reasons.append(reason)
        if config.closes_with_error(reason):
            return ("error", config.reason)
        return ("ok", state)

    def release(self, state: FaultyState) -> None:
        if state.config.journal_release:
            _record(state.config, ("release",))
        state.releases += 1
        super().release(state)


def _record(config: FaultConfig, entry: tuple) -> None:
    if config.journal is not None:
        config.journal.append(entry)

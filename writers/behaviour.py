"""The upload-writer behaviour (Phoenix's ``Phoenix.LiveView.UploadWriter``).

A writer receives an upload entry's chunks inside the entry's channel and
decides where they go (a temp file, memory, another server...). The channel
owns the writer's *state* and threads it through every callback, exactly as
the Elixir channel process does; results are Elixir-style tuples:

=================  =====================================================
callback           result
=================  =====================================================
``init``           ``("ok", state)`` | ``("error", reason)``
``meta``           a ``dict`` handed to the consumer
``write_chunk``    ``("ok", state)`` | ``("error", reason, state)``
``close``          ``("ok", state)`` | ``("error", reason)``
``release``        ``None`` (Python-only hook, see :meth:`UploadWriter.release`)
=================  =====================================================

Close reasons: ``"done"`` (every expected byte arrived; the entry awaits
consumption), ``"cancel"`` (cancelled by the client or server, owner gone,
chunk timeout, size limit, crash) and ``("error", reason)`` (``write_chunk``
returned ``("error", reason, state)``).

**An extension, for writers that wait on the network** (no Elixir
counterpart): ``write_chunk`` and ``close(state, "done")`` may also return a
:class:`Pending`, "not finished yet: wait for this future, then call
``resume()``". The channel then answers the client's chunk only once the
future is done and ``resume()`` (run in the channel) has returned the real
result, and holds no thread meanwhile: a channel waiting on a shared, bounded
I/O pool costs no thread of its own, so a thousand uploads waiting on the
store need no thousand threads (with ``blocking = True`` each would hold one).
Ordinary writers never return one, and the contract above is unchanged for
them. See :class:`Pending` for what the channel promises while it waits.

A writer factory mirrors ``allow_upload(..., writer: fn name, entry, socket
-> {Writer, opts} end)``: a callable ``(name, entry, session) -> (writer,
opts)`` where *writer* is an :class:`UploadWriter` subclass or instance; see
:func:`instantiate`.
"""

from __future__ import annotations

import abc
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

__all__ = [
    "Chunk",
    "Pending",
    "UploadWriter",
    "Waitable",
    "WriterState",
    "Reason",
    "CloseReason",
    "InitResult",
    "WriteResult",
    "CloseResult",
    "WriterSpec",
    "WriterFactory",
    "instantiate",
    "settle",
]

#: Whatever a writer keeps between callbacks; opaque to the channel.
WriterState = Any
#: One chunk as :meth:`UploadWriter.write_chunk` gets it: bytes-like. From the
#: server it is a ``memoryview`` of the received frame (never copied on the
#: way): write it or slice it; ``bytes(data)`` keeps a copy past the call.
Chunk = bytes | bytearray | memoryview
#: Any term describing a failure (Elixir's ``reason :: term``).
Reason = Any

#: Why :meth:`UploadWriter.close` is called.
CloseReason = Literal["done"] | Literal["cancel"] | tuple[Literal["error"], Reason]
#: ``("ok", state)`` or ``("error", reason)``.
InitResult = tuple[Literal["ok"], WriterState] | tuple[Literal["error"], Reason]
#: ``("ok", state)`` or ``("error", reason, state)``.
WriteResult = (
    tuple[Literal["ok"], WriterState]
    | tuple[Literal["error"], Reason, WriterState]
)
#: ``("ok", state)`` or ``("error", reason)``.
CloseResult = tuple[Literal["ok"], WriterState] | tuple[Literal["error"], Reason]


class Waitable(Protocol):
    """What a :class:`Pending` waits for: a ``concurrent.futures.Future`` will do."""

    def add_done_callback(self, fn: Callable[[Any], Any], /) -> None: ...


@dataclass(frozen=True)
class Pending:
    """A writer's "not finished yet": the channel calls ``resume()`` once ``wait_for`` is done.

    Returned by ``write_chunk`` or by ``close(state, "done")`` (never by
    ``init``, ``close("cancel")``, ``close(("error", r))``, ``meta`` or
    ``release``, which stay synchronous). ``resume()`` runs in the channel,
    so it may read and change the writer's state, and returns what the
    callback would have: a ``WriteResult`` / ``CloseResult``, or another
    ``Pending``. ``wait_for``'s outcome is not read by the channel: ``resume``
    reads it (an exception there crashes the channel, as one in a callback does).

    What the channel does while it waits:

    - it answers the chunk being written only after ``resume()``'s result; a
      pipelined next chunk waits its turn (the client waits for each reply
      anyway); the chunk timeout does not run against the client meanwhile;
    - it still obeys a cancel, an exit signal, its owner's death, a kill: then
      ``resume()`` is never called. A pending ``write_chunk`` is followed by
      ``close(state, "cancel")`` as always (on a kill, by ``release`` alone); a
      pending ``close("done")`` by ``release`` only, so ``release`` must undo
      what that close may still do (a pending upload's object, say). Either
      may come while ``wait_for`` is not done, on any thread but the I/O's;
    - the asker of an answer that never comes gets ``ActorDeadError`` once the
      channel has exited.
    """

    wait_for: Waitable
    resume: Callable[[], Any]


_R = TypeVar("_R")


def settle(result: _R | Pending, timeout: float | None = None) -> _R:
    """The final result of a callback, waiting (blocking this thread) for every
    :class:`Pending` and running its ``resume``: for callers that drive a
    writer outside a channel (scripts, tests, benchmarks). ``TimeoutError`` if
    a wait is longer than *timeout*."""
    while isinstance(result, Pending):
        done = threading.Event()
        result.wait_for.add_done_callback(functools.partial(_set_event, done))
        if not done.wait(timeout):
            raise TimeoutError(f"a writer's pending result was not ready within {timeout} s")
        result = result.resume()
    return result


def _set_event(event: threading.Event, _done: Any) -> None:
    event.set()


class UploadWriter(abc.ABC):
    """Behaviour for writing an upload entry's chunks to a destination.

    Writers run inside the upload channel: blocking work blocks that channel
    and an exception crashes it (the channel then closes the writer with
    ``"cancel"`` and the last good state).

    Keep per-upload data in the *state*, never on ``self``: a writer
    instance returned by a factory may serve many uploads concurrently.

    Lifecycle, as driven by the channel::

        init(opts) -> write_chunk(...)* -> close(state, reason) -> release(state)

    ``close`` is called exactly once per successful ``init``. ``release`` is
    called exactly once when the channel ends, after ``close`` (only for a
    writer whose ``init`` succeeded).
    """

    blocking: bool = False
    """True if the callbacks may block for long (a network upload, a slow disk).

    The channel of such a writer runs on a dedicated thread instead of the shared
    scheduler's pool, so its waits never delay other processes. Brief blocking is
    fine either way: the scheduler hands a stuck worker's place on after a few
    milliseconds.
    """

    loop_safe: bool = False
    """True if no callback ever waits on anything slow: memory, writes that land
    in the page cache, or waits expressed as :class:`Pending`.

    A server then runs the channel on its event loop, where the ask of each
    chunk crosses no thread (``docs/runtime.md``). A writer that does not say
    so runs on the shared pool, so one that stalls holds only its own upload;
    on the loop it would hold every socket of the server.
    """

    @abc.abstractmethod
    def init(self, opts: Any) -> InitResult:
        """Start an upload: ``("ok", state)`` or ``("error", reason)``.

        An error fails the channel join with ``writer_error`` and the owner
        records the entry as failed with ``("writer_failure", reason)``.
        """

    @abc.abstractmethod
    def meta(self, state: WriterState) -> dict:
        """What the consumer receives once the upload is done (e.g. ``{"path": ...}``)."""

    @abc.abstractmethod
    def write_chunk(self, data: Chunk, state: WriterState) -> WriteResult | Pending:
        """Take one chunk: ``("ok", state)`` or ``("error", reason, state)``.

        ``data`` is bytes-like (:data:`Chunk`): from the server, a ``memoryview``
        of the frame, valid for the call; keep ``bytes(data)`` to hold it longer.

        An error makes the channel close the writer with ``("error", reason)``.
        A writer that waits on I/O may return a :class:`Pending` instead.
        """

    @abc.abstractmethod
    def close(self, state: WriterState, reason: CloseReason) -> CloseResult | Pending:
        """Finish the upload: ``("ok", state)`` or ``("error", reason)``.

        *reason* is ``"done"``, ``"cancel"`` or ``("error", reason)``. An
        error after ``"done"`` is reported like a write error. Only a
        ``"done"`` close may return a :class:`Pending`.
        """

    def release(self, state: WriterState) -> None:
        """Free what the writer kept for consumption. Default: no-op.

        Called exactly once when the upload's channel ends, after ``close``
        (whatever the close reason, and also after the entry was consumed).
        It has no Elixir counterpart: in Phoenix the temp file lives as long
        as the channel process and the VM deletes it when that process dies;
        here the channel calls ``release`` instead, and the temp-file writer
        deletes its file. It must not raise for cleanup failures and should
        be idempotent.
        """
        return None


#: ``(writer, opts)``: a writer class (instantiated with no arguments) or
#: instance, and the options given to its ``init``.
WriterSpec = tuple[type[UploadWriter] | UploadWriter, Any]
#: ``(name, entry, session) -> (writer, opts)``, as ``allow_upload``'s ``writer:``.
WriterFactory = Callable[[str, Any, Any], WriterSpec]


def instantiate(spec: Any) -> tuple[UploadWriter, Any]:
    """Turn a factory's ``(writer, opts)`` into ``(writer instance, opts)``.

    *writer* may be an :class:`UploadWriter` subclass (instantiated with no
    arguments) or an instance (returned as is). Anything else raises
    :class:`TypeError` naming what was received.
    """
    if not isinstance(spec, (tuple, list)) or len(spec) != 2:
        raise TypeError(
            "a writer factory must return a (writer, opts) 2-tuple, "
            f"got {spec!r}"
        )
    writer, opts = spec
    if isinstance(writer, type):
        if not issubclass(writer, UploadWriter):
            raise TypeError(
                f"writer class {writer.__qualname__} is not an UploadWriter subclass"
            )
        try:
            instance = writer()
        except TypeError as exc:
            raise TypeError(
                f"cannot instantiate writer class {writer.__qualname__} "
                f"with no arguments: {exc}"
            ) from exc
        return instance, opts
    if isinstance(writer, UploadWriter):
        return writer, opts
    raise TypeError(
        "writer must be an UploadWriter subclass or instance, "
        f"got {writer!r} of type {type(writer).__qualname__}"
    )

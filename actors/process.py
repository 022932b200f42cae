"""``Process``: a Pykka actor with BEAM semantics, and the exit signals between processes.

A process crashes on any exception it raises, whether the message came by
``tell``, ``ask`` or a proxy call; it exits with a reason; the processes linked
to it get an exit signal and its monitors a ``Down`` notice. The ref
(``ProcessRef``) is the process's identity, like a pid: it outlives the actor
object and keeps the exit reason, so ``await_exit`` works after the fact.

All link, monitor and alive-to-dead bookkeeping happens under one lock
(``table_lock``), which makes the races simple: a link or monitor made while
the target is dying either lands before its death (and fires) or after it (and
gets ``"noproc"``), never in between.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from itertools import count
from typing import Any, ClassVar, cast

import structlog
from pykka import ActorDeadError, ActorRef, ThreadingActor, Timeout

from actors import substrates
from actors._pykka import ActorStop, Envelope
from actors.current import current_process as _running_here
from actors.futures import ExitFlag, ProcessFuture
from actors.mailbox import Mailbox, reject
from actors.reasons import (
    KILL,
    KILLED,
    NOPROC,
    NORMAL,
    Down,
    Exit,
    ExitReason,
    MonitorRef,
)

__all__ = [
    "DeferredReply",
    "Process",
    "ProcessRef",
    "StartError",
    "await_exit",
    "current_process",
    "demonitor",
    "exit",
    "from_a_killed_process",
    "link",
    "monitor",
    "on_death",
    "processes",
    "require_process",
    "serve_timers",
    "table_lock",
    "unlink",
]

log = structlog.get_logger("liveupload.actors")

table_lock = threading.RLock()
"""Guards every process's links, monitors and its alive-to-dead transition."""

_live: set[ProcessRef] = set()
_death_hooks: list[Callable[[ProcessRef, ExitReason], None]] = []
_send_after: Callable[[ProcessRef, Any, float], Any] | None = None  # installed by actors.timers
_ALIVE: Any = object()
_serials = count(1)


class _Wake:
    """Mail that only wakes a process so it notices a pending exit signal."""


_WAKE = _Wake()


class StartError(Exception):
    """``start_link`` failed: the process's ``on_start`` raised ``reason``."""

    def __init__(self, process: str, reason: ExitReason) -> None:
        super().__init__(f"{process} failed to start: {reason!r}")
        self.reason = reason


class ProcessRef(ActorRef[Any]):
    """A pid: the identity of one process, valid before, during and after its life."""

    parent: ProcessRef | None = None
    """OTP's parent: the process that started this one with ``start_link``, or
    the supervisor that linked it as a child."""

    _zombie = False  # killed while its handler may still run: what that handler does is ignored

    def __init__(self, process: Process) -> None:
        super().__init__(process)
        self._process: Process | None = process
        self._exit_reason: ExitReason = _ALIVE
        self._links: set[ProcessRef] | None = None
        self._monitors: dict[MonitorRef, ActorRef[Any]] | None = None
        self._watching: set[MonitorRef] | None = None

    def is_alive(self) -> bool:
        """False from the instant the process dies (before its signals are out)."""
        return self._exit_reason is _ALIVE

    def tell(self, message: Any) -> None:
        """Send ``message``; ``ActorDeadError`` if the process is dead. Sent by a
        killed process's handler that is still running, it is dropped."""
        if from_a_killed_process():
            return
        super().tell(message)

    def ask(self, message: Any, *, block: bool = True, timeout: float | None = None) -> Any:
        """Pykka's ``ask``; from a killed process's handler it raises ``ActorDeadError``."""
        if from_a_killed_process():
            raise ActorDeadError(f"{_running_here()} was killed: it cannot ask {self}")
        return super().ask(message, block=block, timeout=timeout)

    @property
    def exit_reason(self) -> ExitReason | None:
        """The reason the process exited with, or ``None`` while it is alive."""
        reason = self._exit_reason
        return None if reason is _ALIVE else reason

    def __repr__(self) -> str:
        return f"<ProcessRef {self.actor_class.__name__} #{self.actor_urn.rsplit(':', 1)[-1]}>"


class Process(ThreadingActor):
    """A Pykka actor that lives and dies like a BEAM process.

    Override ``on_start``, ``on_receive`` (or plain methods called through a
    proxy) and ``terminate(reason)``. Set ``trap_exit = True`` to receive exit
    signals as ``Exit`` messages instead of dying with them. Pykka's
    ``on_stop``/``on_failure`` hooks are not used: ``terminate`` replaces both.
    """

    trap_exit: bool = False
    """Receive exit signals from links as ``Exit(sender, reason)`` messages."""

    substrate: ClassVar[str | None] = None
    """Where instances run, by name (``actors.substrates``): ``"pool"`` (the shared
    scheduler), ``"thread"`` (a dedicated OS thread), ``"loop"`` (an asyncio event
    loop), or ``None`` for the runtime's default (``"pool"`` unless
    ``set_default_substrate`` changed it)."""

    use_daemon_thread: ClassVar[bool] = False

    _actor_ref: ProcessRef
    # Pykka's ActorInbox also has get() and empty() for Pykka's own actor loop, which
    # a process never runs: its substrate drives the Mailbox (put/take) instead.
    actor_inbox: Mailbox  # type: ignore[assignment]  # not Pykka's ActorInbox: see above
    # Pykka's threading.Event, replaced by a flag that allocates a lock only on wait().
    actor_stopped: ExitFlag  # type: ignore[assignment]  # not a threading.Event: see above

    # Rarely used per-process state lives on the class until first set.
    _pending_exit: ExitReason | None = None
    _current: Envelope[Any] | None = None
    _stop_waiters: list[Any] | None = None
    _crash_phase: str | None = None  # where this process's own code raised, if it did
    _start_ack: ProcessFuture[Any] | None = None
    _deferred: set[DeferredReply] | None = None  # replies taken over by defer_reply, not yet sent

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        # Not pykka.Actor.__init__: a uuid4 and a threading.Event per process cost
        # microseconds and a kilobyte; a serial number and an ExitFlag do not.
        self.actor_urn = f"urn:liveupload:process:{next(_serials)}"
        self.actor_inbox = Mailbox()
        self.actor_stopped = ExitFlag()
        self._actor_ref = ProcessRef(self)

    @property
    def actor_ref(self) -> ProcessRef:
        return self._actor_ref

    # Pykka's extension points for actor runtimes.

    @staticmethod
    def _create_future() -> ProcessFuture[Any]:
        return ProcessFuture()

    def _start_actor_loop(self, on: str | None = None) -> None:
        substrates.get(on or self.substrate).spawn(self)

    # -- starting -----------------------------------------------------------

    @classmethod
    def start(cls, *args: Any, substrate: str | None = None, **kwargs: Any) -> ProcessRef:
        """Start a process and return its ref at once; ``on_start`` runs in it.

        ``substrate="thread"`` gives it a dedicated OS thread instead of the
        class's choice (``Process.substrate``) or the runtime's default pool.
        """
        substrates.check(substrate)
        process = cls(*args, **kwargs)
        return _spawn(process, link_to=None, wait=False, on=substrate)

    @classmethod
    def start_link(cls, *args: Any, substrate: str | None = None, **kwargs: Any) -> ProcessRef:
        """Start a process linked to the calling process, and wait for its ``on_start``.

        The link exists before the new process runs a line, so no exit of it can
        be missed. Raises ``StartError`` (the process has then exited) if
        ``on_start`` raised. Must be called from inside a process.
        """
        parent = _running_here()
        if parent is None:
            raise RuntimeError("start_link must be called from inside a process")
        substrates.check(substrate)
        process = cls(*args, **kwargs)
        return _spawn(process, link_to=parent, wait=True, on=substrate)

    # -- hooks ----------------------------------------------------------------

    def on_kill(self) -> None:  # an optional hook: empty by default
        """Release what the process holds outside itself after a kill.

        A kill runs no ``terminate`` (BEAM frees a killed process's resources
        for it; Python cannot), so this runs instead, once, in the killer's
        thread, after the process is dead to everyone. A handler of the
        process may still be running on its own thread: release nothing it
        is using until it returns. An exception here is logged, not raised.
        """

    def terminate(self, reason: ExitReason) -> None:  # an optional hook: empty by default
        """Clean up as the process exits with ``reason``, in its own context.

        Called on every exit except a kill: normal stop, exit signal, crash
        (``reason`` is the exception) and a failed ``on_start``. An exception
        raised here becomes the exit reason and is reported as a crash.
        """

    # -- convenience ----------------------------------------------------------

    def link(self, other: ActorRef[Any]) -> None:
        """Link this process with ``other``."""
        link(self._actor_ref, other)

    def unlink(self, other: ActorRef[Any]) -> None:
        unlink(self._actor_ref, other)

    def monitor(self, target: ActorRef[Any]) -> MonitorRef:
        """Monitor ``target``; a ``Down`` message arrives here when it exits."""
        return monitor(target, self._actor_ref)

    def send_after(self, message: Any, seconds: float) -> Any:
        """Send ``message`` to this process after ``seconds``; returns the timer
        (``actors.send_after`` to this process's ref)."""
        if _send_after is None:  # never once the package is imported: actors/__init__ loads actors.timers
            raise RuntimeError("actors.timers is not loaded")
        return _send_after(self._actor_ref, message, seconds)

    def exit(self, reason: ExitReason = NORMAL) -> None:
        """Exit with ``reason`` once the current message is handled (trapping or not)."""
        self._request_exit(reason)

    def defer_reply(self, envelope: Envelope[Any] | None = None) -> DeferredReply:
        """Take over the reply to the ask being handled (or to ``envelope``, one
        this process took from its mailbox without handling): OTP's ``{noreply, State}``.

        The handler's return value is then ignored; the process answers later,
        from any later handler, with ``DeferredReply.send`` (``GenServer.reply``).
        Meanwhile it handles other mail, so a process that waits for something
        outside itself (an I/O pool's future) holds no thread while it waits.
        If it exits first, however it exits (a kill too), the asker gets
        ``ActorDeadError``, as for mail it never handled.
        """
        envelope = envelope if envelope is not None else self._current
        if envelope is None:
            raise RuntimeError("defer_reply outside a message handler")
        reply = DeferredReply(self, envelope.reply_to)  # a tell's: sending it does nothing
        envelope.reply_to = None
        with table_lock:
            if self._deferred is None:
                self._deferred = set()
            self._deferred.add(reply)
        return reply

    # -- one message at a time: the ``Runnable`` interface a substrate drives -------

    def run_start(self) -> ExitReason | None:
        """Run ``on_start``; the exit reason if it failed, else ``None``."""
        if self._actor_ref._exit_reason is not _ALIVE:
            return KILLED  # killed while queued to start: it runs nothing
        try:
            self.on_start()
        except BaseException as exc:  # noqa: BLE001 - any failure ends only this process
            self._crash_phase = "on_start"
            return exc
        if self._start_ack is not None:
            self._start_ack.set(None)
        return None

    def run_envelope(self, envelope: Envelope[Any] | None) -> ExitReason | None:
        """Handle one envelope (``None``: the mailbox was closed by a kill).

        Returns the reason to exit with, or ``None`` to go on.
        """
        if envelope is None:
            return KILLED
        if self._pending_exit is not None:
            reject(envelope)
            return self._pending_exit
        message = envelope.message
        if message is _WAKE:
            return None
        if isinstance(message, ActorStop):
            self._add_stop_waiter(envelope.reply_to)
            return NORMAL
        self._current = envelope
        try:
            result = self._handle_receive(message)
        except BaseException as exc:  # noqa: BLE001 - crash this process only
            self._current = None
            if envelope.reply_to is not None:
                _answer_with_exception(envelope.reply_to, exc)
            self._crash_phase = "handle_message"
            return exc
        self._current = None
        if envelope.reply_to is not None:
            if self._actor_ref._exit_reason is _ALIVE:
                _answer(envelope.reply_to, result)
            else:
                reject(envelope)
        return self._pending_exit

    def run_finish(self, reason: ExitReason) -> None:
        """Exit with ``reason``: run ``terminate``, send out the exit signals, and
        answer whoever waits on the stop or on the start."""
        ref = self._actor_ref
        if ref._exit_reason is _ALIVE:
            crash = (reason, self._crash_phase) if self._crash_phase and isinstance(reason, BaseException) else None
            try:
                self.terminate(reason)
            except BaseException as exc:  # noqa: BLE001 - becomes the exit reason
                if crash is not None:
                    _report_crash(ref, *crash)
                crash = (exc, "terminate")
                reason = exc
            _die(ref, reason, crash)
        for waiter in self._stop_waiters or ():
            _answer(waiter, None)
        if self._start_ack is not None:  # on_start failed: start_link raises
            _answer(self._start_ack, ref._exit_reason)

    @property
    def exit_requested(self) -> bool:
        """Whether this process has asked to exit (``exit``, a ``stop()`` taken,
        an exit signal obeyed) and will once its current message is handled."""
        return self._pending_exit is not None

    def _add_stop_waiter(self, future: Any) -> None:
        if future is not None:
            if self._stop_waiters is None:
                self._stop_waiters = []
            self._stop_waiters.append(future)

    def _request_exit(self, reason: ExitReason) -> None:
        with table_lock:
            if self._pending_exit is None:
                self._pending_exit = reason
        self.actor_inbox.put(Envelope(_WAKE))


# -- the life and death of a process ------------------------------------------------


def _spawn(process: Process, *, link_to: ProcessRef | None, wait: bool, on: str | None) -> ProcessRef:
    if from_a_killed_process():  # its children would be orphans nobody stops
        raise ActorDeadError(f"{_running_here()} was killed: it cannot start {process.actor_urn}")
    ref = process.actor_ref
    start_ack: ProcessFuture[Any] | None = None
    if wait:
        process._start_ack = start_ack = ProcessFuture()
    with table_lock:
        _live.add(ref)
    if link_to is not None:
        ref.parent = link_to
        link(link_to, ref)
    try:
        process._start_actor_loop(on)
    except BaseException as exc:  # e.g. the kernel's thread limit: it never ran
        _die(ref, exc)
        if wait:
            raise StartError(str(ref), exc) from exc
        raise
    if start_ack is not None:
        outcome = start_ack.get()
        if outcome is not None:
            raise StartError(str(ref), outcome)
    return ref


def _die(
    ref: ProcessRef,
    reason: ExitReason,
    crash: tuple[BaseException, str] | None = None,
    *,
    killed: bool = False,
) -> bool:
    """Make ``ref`` dead with ``reason``, once, and send out its exit signals.

    Called by the process itself after ``terminate``, or by whoever kills it.
    A crash of the process's own code is reported once the signals are out, so
    rendering its traceback delays neither its links nor its supervisor.
    Returns False if the process was already dead.
    """
    with table_lock:
        if ref._exit_reason is not _ALIVE:
            return False
        ref._exit_reason = reason
        process, ref._process = ref._process, None
        deferred = list(process._deferred or ()) if process is not None else []
        links, ref._links = ref._links or (), None
        monitors, ref._monitors = ref._monitors or {}, None
        watching, ref._watching = ref._watching or (), None
        for peer in links:
            if peer._links is not None:
                peer._links.discard(ref)
        for mref in watching:
            target_monitors = _target(mref)._monitors
            if target_monitors is not None:
                target_monitors.pop(mref, None)
        for mref, watcher in monitors.items():
            if isinstance(watcher, ProcessRef) and watcher._watching is not None:
                watcher._watching.discard(mref)
        _live.discard(ref)
    if process is not None:
        for envelope in process.actor_inbox.close():
            reject(envelope)
    for reply in deferred:  # taken over by defer_reply and never sent: as mail never handled
        if reply.future is not None:
            reject(Envelope(None, reply.future))
    for hook in _death_hooks:
        hook(ref, reason)
    if killed and process is not None:
        try:
            process.on_kill()  # before the signals: whoever sees the death sees it released
        except Exception as exc:  # noqa: BLE001 - the killer must not fail for the victim's cleanup
            _report_crash(ref, exc, "on_kill")
    for peer in links:
        _deliver_exit_signal(peer, ref, reason)
    for mref, watcher in monitors.items():
        _send(watcher, Down(mref, ref, reason))
    if crash is not None:
        _report_crash(ref, *crash)
    ref.actor_stopped.set()  # last: await_exit returns once every signal is out and the crash is reported
    return True


def _kill(ref: ProcessRef) -> None:
    """End ``ref`` at once with ``"killed"``: dead to everyone from this instant,
    its mail discarded, its ``terminate`` not run. A handler still running on its
    thread finishes, but its reply is dropped and it handles nothing more."""
    with table_lock:
        process = ref._process
    if process is None or not _die(ref, KILLED, killed=True):
        return
    ref._zombie = True  # after its signals are out: from now on its handler acts on nothing
    current = process._current
    if current is not None and current.reply_to is not None:
        reject(current)


def _deliver_exit_signal(target: ActorRef[Any], sender: ActorRef[Any] | None, reason: ExitReason) -> None:
    """Apply BEAM's rules for an exit signal from ``sender`` to ``target``."""
    if not isinstance(target, ProcessRef):
        return
    with table_lock:
        process = target._process
    if process is None:
        return
    if reason == KILL:
        _kill(target)
    elif process.trap_exit:
        _send(target, Exit(sender, reason))
    elif reason == NORMAL and sender is not target:
        return
    else:
        process._request_exit(reason)


def _send(ref: ActorRef[Any], message: Any) -> None:
    """The runtime's own sends (exit signals, ``Down``): never dropped, even when
    they happen on the thread of a killed process (a killer that was killed)."""
    try:
        if isinstance(ref, ProcessRef):
            ActorRef.tell(ref, message)  # not ProcessRef.tell: no check of who is sending
        else:
            ref.tell(message)  # a watcher outside the runtime (anything with tell)
    except ActorDeadError:
        pass


class DeferredReply:
    """The reply to one ask, taken over by ``Process.defer_reply``: send it once."""

    __slots__ = ("future", "process")

    def __init__(self, process: Process, future: Any) -> None:
        self.process = process
        self.future = future

    def send(self, value: Any) -> None:
        """Answer the asker with ``value`` (ignored once answered, or from a killed process)."""
        with table_lock:
            if self.process._deferred is not None:
                self.process._deferred.discard(self)
        if self.future is not None and not from_a_killed_process():
            _answer(self.future, value)


def _answer(future: Any, value: Any) -> None:
    try:
        future.set(value)
    except queue.Full:  # already answered by a kill
        pass


def _answer_with_exception(future: Any, exc: BaseException) -> None:
    if not isinstance(exc, Exception):
        dead = ActorDeadError(f"process exited with {exc!r}")
        dead.__cause__ = exc
        exc = dead
    try:
        future.set_exception((type(exc), exc, exc.__traceback__))
    except queue.Full:  # already answered by a kill
        pass


def _report_crash(ref: ProcessRef, exc: BaseException, phase: str) -> None:
    log.error(
        "process_crashed",
        process=str(ref),
        phase=phase,
        reason=repr(exc),
        exc_info=(type(exc), exc, exc.__traceback__),
    )


# -- public functions -----------------------------------------------------------------


def current_process() -> ProcessRef | None:
    """The ref of the process whose code is running here, or ``None`` outside one."""
    return _running_here()


def from_a_killed_process() -> bool:
    """True in the handler of a killed process that is still running on its thread:
    what it does (send, link, register, start a timer) is ignored."""
    current = _running_here()
    return current is not None and current._zombie


def require_process(ref: Any) -> ProcessRef:
    """``ref`` itself if it is the ref of an ``actors.Process``, else ``TypeError``."""
    if not isinstance(ref, ProcessRef):
        raise TypeError(f"expected the ref of an actors.Process, got {ref!r}")
    return ref


def processes() -> list[ProcessRef]:
    """Refs of every process alive now."""
    with table_lock:
        return list(_live)


def on_death(hook: Callable[[ProcessRef, ExitReason], None]) -> None:
    """Call ``hook(ref, reason)`` after every process death, before its exit
    signals go out: extensions (names, timers) drop their state of ``ref`` there."""
    _death_hooks.append(hook)


def serve_timers(send_after: Callable[[ProcessRef, Any, float], Any]) -> None:
    """Have ``Process.send_after`` call ``send_after`` (``actors.timers``, which
    sits above this module and so installs itself here)."""
    global _send_after
    _send_after = send_after


def exit(ref: ActorRef[Any], reason: ExitReason) -> None:  # shadows the builtin: BEAM's name
    """Send an exit signal with ``reason`` to the process ``ref``.

    ``"kill"`` cannot be trapped and ends the process with ``"killed"`` at once.
    Any other reason arrives as an ``Exit`` message if the target traps exits;
    otherwise ``"normal"`` is ignored (unless a process sends it to itself) and
    every other reason makes the target exit with it once its current message
    is handled (its ``terminate`` runs). A dead target is ignored.
    """
    if from_a_killed_process():
        return
    _deliver_exit_signal(require_process(ref), current_process(), reason)


def link(a: ActorRef[Any], b: ActorRef[Any]) -> None:
    """Link two processes both ways. If one is already dead, the other gets an
    exit signal with ``"noproc"`` from it."""
    a, b = require_process(a), require_process(b)
    if a is b or from_a_killed_process():
        return
    with table_lock:
        a_alive = a._exit_reason is _ALIVE
        b_alive = b._exit_reason is _ALIVE
        if a_alive and b_alive:
            if a._links is None:
                a._links = set()
            if b._links is None:
                b._links = set()
            a._links.add(b)
            b._links.add(a)
            return
    if a_alive:
        _deliver_exit_signal(a, b, NOPROC)
    elif b_alive:
        _deliver_exit_signal(b, a, NOPROC)


def unlink(a: ActorRef[Any], b: ActorRef[Any]) -> None:
    """Remove the link between two processes, if any."""
    a, b = require_process(a), require_process(b)
    with table_lock:
        if a._links is not None:
            a._links.discard(b)
        if b._links is not None:
            b._links.discard(a)


def _target(mref: MonitorRef) -> ProcessRef:
    """The monitored process: ``monitor`` makes a ``MonitorRef`` only for a
    ``ProcessRef``, a type ``reasons`` (below this module) cannot name."""
    return cast(ProcessRef, mref.target)


def monitor(target: ActorRef[Any], watcher: ActorRef[Any]) -> MonitorRef:
    """Have ``watcher`` receive ``Down(mref, target, reason)`` once ``target`` exits;
    at once with ``"noproc"`` if it is already dead."""
    target = require_process(target)
    mref = MonitorRef(target, watcher)
    if from_a_killed_process():
        return mref  # never fires: the watcher is a killed process
    with table_lock:
        if target._exit_reason is _ALIVE:
            if target._monitors is None:
                target._monitors = {}
            target._monitors[mref] = watcher
            if isinstance(watcher, ProcessRef) and watcher._exit_reason is _ALIVE:
                if watcher._watching is None:
                    watcher._watching = set()
                watcher._watching.add(mref)
            return mref
    _send(watcher, Down(mref, target, NOPROC))
    return mref


def demonitor(mref: MonitorRef) -> bool:
    """Turn a monitor off. True if it was active (no ``Down`` will come from it)."""
    with table_lock:
        watcher = mref.watcher
        if isinstance(watcher, ProcessRef) and watcher._watching is not None:
            watcher._watching.discard(mref)
        monitors = _target(mref)._monitors
        return monitors is not None and monitors.pop(mref, None) is not None


def await_exit(ref: ActorRef[Any], timeout: float | None = None) -> ExitReason:
    """Wait until the process exits and return its reason (at once if it already has).

    For code outside any process: tests, servers, the command line. Raises
    ``pykka.Timeout`` if it is still alive after ``timeout`` seconds.
    """
    ref = require_process(ref)
    if not ref.actor_stopped.wait(timeout):  # set once its links, monitors and name are done
        raise Timeout(f"{ref} still alive after {timeout} seconds")
    return ref._exit_reason


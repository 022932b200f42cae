"""Executes a crash-drill plan and records what happened, as plain data.

The tree (see ``plan``) is started under a top-level ``Supervisor``; every
original session gets two upload configs (``files``, with a chunk timeout no
healthy upload comes near, and ``stalls``, with the plan's short one). One
client per session (a thread of a small pool) does what LiveView's JS client
does: preflight its entries, join each, then push chunks stop-and-wait, round
robin over its uploads so they are all in progress together, inject the
client-side faults (cancel, kill) at their planned points, fire its group's
session crashes after the planned round, and consume what completed. The
writer-side faults are injected by the writers the sessions' writer factory
hands out: ``FaultyWriter`` (memory) and a ``TmpFileWriter`` inside a
``JournalingWriter`` (a temp file), both keeping a ``writers.Journal`` of every
callback.

Nothing here sleeps to synchronise: a client waits on its replies, on
``actors.await_exit`` and on the journal (a condition), each with a deadline.

Logs: structlog events are recorded for the whole run by a processor put in
front of the configured chain (``LogRecorder``); by default they are then
dropped, so a drill's hundreds of expected crash reports do not flood the
terminal (the report summarises them).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog
from pykka import ActorDeadError, Timeout

import actors
from benchmarks.crashdrill.plan import Plan, SessionEvent, UploadSpec
from benchmarks.leaks import Baseline, as_text
from supervision import ChildSpec, Supervisor, which_children
from uploads import UploadSession
from uploads.inprocess import InProcessClient, entry_fields
from writers import FaultyWriter, Journal, journaling

__all__ = [
    "CRASH_MESSAGE",
    "INJECTED",
    "LogRecorder",
    "RunResult",
    "classify_exit",
    "run_plan",
]

DRILL_LEAKS = ("processes", "threads", "timers", "temp files", "file descriptors")
"""What the drill checks it left nothing of (a process is also a Pykka actor: once is enough)."""

WAIT = 30.0
"""Deadline of any single wait: a reply, an exit, a journal entry. Past it, the drill has hung."""

INJECTED = "drill"
"""The reason of every injected writer error (``("error", "drill")``)."""

CRASH_MESSAGE = ("crashdrill", "crash")
"""A message no session understands: handling it crashes the session (``ValueError``)."""


# -- logs -----------------------------------------------------------------------------------


_KEPT_FIELDS = ("event", "process", "phase", "reason", "supervisor", "context", "offender")


class LogRecorder:
    """A structlog processor that records every event (the fields the invariants
    read, never ``exc_info``: a traceback would keep a dead process's state, and
    its files, alive) and then drops it (``silence``) or passes it on."""

    def __init__(self, *, silence: bool = True) -> None:
        self.silence = silence
        self.events: list[dict[str, Any]] = []

    def __call__(
        self, _logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        item = {key: event_dict[key] for key in _KEPT_FIELDS if key in event_dict}
        if isinstance(item.get("offender"), dict):
            item["offender"] = dict(item["offender"])
        item["level"] = "error" if method_name in ("exception", "critical", "fatal") else method_name
        self.events.append(item)
        if self.silence:
            raise structlog.DropEvent
        return event_dict

    @contextlib.contextmanager
    def installed(self) -> Iterator[LogRecorder]:
        old = structlog.get_config()["processors"]
        structlog.configure(processors=[self, *old])
        try:
            yield self
        finally:
            structlog.configure(processors=old)


# -- records ----------------------------------------------------------------------------------


def classify_exit(reason: Any) -> str:
    """A channel's exit reason, as the invariants compare it."""
    if isinstance(reason, BaseException):
        return f"crash:{type(reason).__name__}"
    if reason == "killed":
        return "killed"
    if isinstance(reason, tuple) and len(reason) == 2 and reason[0] == "shutdown":
        why = reason[1]
        if why in ("consumed", "cancelled", "timeout", "file_size_limit_exceeded", "writer_error"):
            return why
        if why == "owner_down":
            return "owner"
        return f"other:{reason!r}"
    if reason == "shutdown":
        return "owner"  # its supervisor shut it down: the session went first
    return f"other:{reason!r}"


def _plain_error(error: Any) -> Any:
    """An entry error without live objects: an exception becomes its type's name."""
    if isinstance(error, tuple):
        return tuple(type(e).__name__ if isinstance(e, BaseException) else e for e in error)
    return error


def _plain_reply(reply: Any) -> Any:
    return reply if not isinstance(reply, BaseException) else ("raised", type(reply).__name__)


@dataclass
class UploadRecord:
    """What happened to one planned upload, as the client, its journal and its
    session saw it (plain data only)."""

    spec: UploadSpec
    journal: Journal = field(default_factory=Journal)
    stall_event: threading.Event = field(default_factory=threading.Event, repr=False)
    join: Any = None
    """``"ok"``, the join's error reply, or ``None`` if never attempted."""
    channel: str | None = None
    channel_supervisor: str | None = None
    """``str(ref)`` of the supervisor that started the channel (its session's
    ``DynamicSupervisor``): the one whose ``supervisor_report`` names it."""
    replies: list[Any] = field(default_factory=list)
    acked: int = 0
    action: str | None = None
    """``"cancel"`` or ``"kill"`` once the client did it."""
    action_reply: Any = None
    consumed: str | None = None
    """sha256 of what the consumer read."""
    exit: str | None = None
    """``classify_exit`` of the channel's exit reason, ``"alive"`` if it never exited, ``None`` if no channel."""
    exit_repr: str | None = None
    entry: Any = "unknown"
    """The session's entry at the end: ``"absent"``, ``"unknown"`` (its session died) or
    ``{"done", "cancelled", "errors"}``."""
    session_died: bool = False

    @property
    def done(self) -> bool:
        return self.acked == self.spec.chunks


@dataclass
class SessionRecord:
    group: int
    index: int
    label: str
    died: bool = False
    exit_repr: str | None = None
    lost: str | None = None
    """Where its client found it dead, if it did."""
    driver_error: str | None = None
    fired_in_progress: tuple[str, ...] | None = None
    """For the session that fires its group's crashes: its uploads still in
    progress (started, more to send) when it fired; ``()`` if none were."""
    fired_after_round: int | None = None


@dataclass
class CrashRecord:
    """One session crash the plan fired."""

    group: int
    session: int
    how: str
    label: str
    exit: str
    exit_repr: str
    restarted_session: bool
    """True if the crashed session was itself a restart (a burst wrapping around)."""


@dataclass
class GroupRecord:
    index: int
    name: str
    label: str
    scenario: str
    escalated: bool = False
    exit_repr: str | None = None
    end_label: str | None = None
    end_alive: bool = False
    end_sessions: dict[int, tuple[str | None, bool]] = field(default_factory=dict)
    """Session index -> (its label at the end, alive)."""
    original_sessions: dict[int, str] = field(default_factory=dict)


@dataclass
class RunResult:
    plan: Plan
    substrate: str
    elapsed: float
    uploads: list[UploadRecord]
    sessions: list[SessionRecord]
    crashes: list[CrashRecord]
    groups: list[GroupRecord]
    root_name: str
    root_exit: str | None
    events: list[dict[str, Any]]
    leaks: dict[str, list[str]]
    labels: dict[str, str]
    """``str(ref)`` of every process the drill knows -> what it was (``"channel of u3"``, ...)."""
    errors: list[str]
    """Failures of the drill itself (a client that raised, a hung wait)."""
    chunks: int = 0
    fds_measured: bool = True


# -- the drill ------------------------------------------------------------------------------------


class _SessionLost(Exception):
    """The client's session is dead: its remaining uploads are the session's victims."""


class Drill:
    def __init__(self, plan: Plan, *, clients: int | None, progress: Callable[[int], None] | None) -> None:
        self.plan = plan
        self.run_id = secrets.token_hex(3)
        self.records = [UploadRecord(spec) for spec in plan.uploads]
        self.clients = clients
        self.progress = progress or (lambda n: None)
        self.tmpdir = tempfile.mkdtemp(prefix="crashdrill-")
        self.lock = threading.Lock()
        self.labels: dict[str, str] = {}
        self.crashes: list[CrashRecord] = []
        self.errors: list[str] = []
        self.chunks = 0
        self.root: actors.ProcessRef | None = None
        self.root_name = f"crashdrill-{self.run_id}-root"
        self.group_refs: dict[int, actors.ProcessRef] = {}
        self.session_refs: dict[tuple[int, int], actors.ProcessRef] = {}
        self.groups = [GroupRecord(g, self.group_name(g), "", plan.scenarios[g]) for g in range(len(plan.groups))]
        self.sessions = [
            SessionRecord(g, s, "") for g, sessions in enumerate(plan.groups) for s in range(len(sessions))
        ]

    def group_name(self, g: int) -> str:
        return f"crashdrill-{self.run_id}-group-{g}"

    def label(self, ref: Any, what: str) -> str:
        text = str(ref)
        with self.lock:
            self.labels.setdefault(text, what)
        return text

    # -- the tree -----------------------------------------------------------------------

    def start_tree(self) -> None:
        cfg = self.plan.config
        specs = []
        for g, sessions in enumerate(self.plan.groups):
            children = [
                ChildSpec(
                    ("session", g, s),
                    (UploadSession, (), {"channel_shutdown": 5.0}),
                    restart="transient",
                    shutdown=10.0,
                )
                for s in range(len(sessions))
            ]
            specs.append(
                Supervisor.child_spec(
                    ("group", g),
                    children,
                    strategy="one_for_one",
                    max_restarts=cfg.max_restarts,
                    max_seconds=cfg.max_seconds,
                    name=self.group_name(g),
                )
            )
        self.root = Supervisor.start(
            specs,
            strategy="one_for_one",
            max_restarts=len(specs) + 1,  # every group may escalate once; the root itself never gives up
            max_seconds=cfg.max_seconds,
            name=self.root_name,
        )
        self.label(self.root, "root supervisor")
        for (_, g), gref, _type in which_children(self.root, timeout=WAIT):
            if gref is None:
                raise RuntimeError(f"group {g} supervisor is not running after the start")
            self.group_refs[g] = gref
            self.groups[g].label = self.label(gref, f"group {g} supervisor")
            for (_, _, s), sref, _ in which_children(gref, timeout=WAIT):
                if sref is None:
                    raise RuntimeError(f"session g{g}/s{s} is not running after the start")
                self.session_refs[(g, s)] = sref
                label = self.label(sref, f"session g{g}/s{s}")
                self.groups[g].original_sessions[s] = label
                self._session(g, s).label = label
        for ref in self.session_refs.values():
            proxy = ref.proxy()
            limit = cfg.max_chunks * cfg.chunk_size
            common = {
                "accept": "any",
                "max_entries": cfg.uploads_per_session,
                "max_file_size": limit,
                "chunk_size": cfg.chunk_size,
                "writer": self.writer_for,
            }
            proxy.allow_upload("files", chunk_timeout=cfg.chunk_timeout, **common).get(timeout=WAIT)
            proxy.allow_upload("stalls", chunk_timeout=cfg.stall_chunk_timeout, **common).get(timeout=WAIT)

    def _session(self, g: int, s: int) -> SessionRecord:
        return next(r for r in self.sessions if r.group == g and r.index == s)

    def writer_for(self, _name: str, entry: dict[str, Any], _session: Any) -> tuple[Any, dict[str, Any]]:
        """The sessions' writer factory: the planned writer and fault of an entry."""
        record = self.records[int(entry["ref"])]
        spec = record.spec
        if spec.writer == "tmpfile":
            return journaling(record.journal, opts={"dir": self.tmpdir})
        opts: dict[str, Any] = {"journal": record.journal, "journal_release": True, "reason": INJECTED}
        fault = spec.fault
        if fault in ("raise", "keyboard_interrupt", "error"):
            opts.update(fault=fault, at_chunk=spec.at_chunk)
        elif fault == "init_error":
            opts.update(fault="init_error")
        elif fault == "close_error":
            opts.update(fault="close_error", close_on="done")
        elif fault == "cancel_close_error":
            opts.update(fault="close_error", close_on="cancel")
        elif fault == "stall":
            opts.update(fault="stall", at_chunk=spec.at_chunk, stall_seconds=self.plan.config.stall_seconds)
        elif fault == "kill_busy":
            opts.update(fault="stall", at_chunk=spec.at_chunk, stall_seconds=WAIT, stall_event=record.stall_event)
        return (FaultyWriter, opts)

    # -- session crashes --------------------------------------------------------------------

    def crash_session(self, g: int, s: int, ref: actors.ProcessRef, how: str, restarted: bool) -> None:
        label = self.label(ref, f"session g{g}/s{s}" + (" (a restart)" if restarted else ""))
        try:
            if how == "kill":
                actors.exit(ref, actors.KILL)
            else:
                ref.tell(CRASH_MESSAGE)
        except ActorDeadError:
            pass  # already dead: recorded below by its exit reason
        reason = actors.await_exit(ref, WAIT)
        with self.lock:
            self.crashes.append(CrashRecord(g, s, how, label, classify_exit(reason), repr(reason), restarted))

    def fire(self, event: SessionEvent, own: actors.ProcessRef) -> None:
        """The planned crashes of ``event``'s group, from the client of its session."""
        g = event.group
        self.crash_session(g, event.targets[0], own, event.how[0], restarted=False)
        group = self.group_refs[g]
        for target, how in zip(event.targets[1:], event.how[1:], strict=True):
            current = {cid: ref for cid, ref, _ in which_children(group, timeout=WAIT)}
            ref = current.get(("session", g, target))
            if ref is None:
                raise RuntimeError(f"group {g} has no running session {target} to crash")
            self.crash_session(g, target, ref, how, restarted=ref is not self.session_refs[(g, target)])
        if event.kind == "burst":
            reason = actors.await_exit(group, WAIT)  # past its intensity: it gives up
            record = self.groups[g]
            record.escalated = True
            record.exit_repr = repr(reason)

    # -- the end ---------------------------------------------------------------------------

    def snapshot_tree(self) -> None:
        """Which groups and sessions run now, by ``which_children``, and which originals died."""
        assert self.root is not None
        for (_, g), gref, _ in which_children(self.root, timeout=WAIT):
            record = self.groups[g]
            if gref is None:
                continue
            record.end_label = self.label(gref, f"group {g} supervisor (a restart)")
            record.end_alive = gref.is_alive()
            try:
                children = which_children(gref, timeout=WAIT)
            except ActorDeadError:
                continue
            for (_, _, s), sref, _ in children:
                if sref is None:
                    record.end_sessions[s] = (None, False)
                else:
                    record.end_sessions[s] = (self.label(sref, f"session g{g}/s{s} (a restart)"), sref.is_alive())
        for (g, s), ref in self.session_refs.items():
            session = self._session(g, s)
            session.died = not ref.is_alive()
            session.exit_repr = None if not session.died else repr(ref.exit_reason)
        for record in self.records:
            record.session_died = self._session(record.spec.group, record.spec.session).died

    def stop_tree(self) -> str | None:
        if self.root is None:
            return None
        actors.exit(self.root, "shutdown")
        try:
            return repr(actors.await_exit(self.root, 4 * WAIT))
        except Timeout:
            self.errors.append(f"the root supervisor did not stop within {4 * WAIT:.0f} s")
            actors.exit(self.root, actors.KILL)
            return repr(actors.await_exit(self.root, WAIT))


class SessionClient:
    """The client of one session: drives its uploads round robin, stop-and-wait."""

    def __init__(self, drill: Drill, session: SessionRecord) -> None:
        self.drill = drill
        self.record = session
        self.ref = drill.session_refs[(session.group, session.index)]
        self.uploads = [drill.records[spec.index] for spec in drill.plan.uploads_of(session.group, session.index)]
        event = drill.plan.event_of(session.group)
        self.event = event if event is not None and event.session == session.index else None
        self.fired = False
        self.channels: dict[int, actors.ProcessRef] = {}
        self.data = {u.spec.index: u.spec.data() for u in self.uploads}

    def run(self) -> None:
        try:
            self._drive()
        except _SessionLost as lost:
            self.record.lost = str(lost)
        except Exception as exc:  # noqa: BLE001 - a failure of the drill, reported as such
            self.record.driver_error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            with self.drill.lock:
                self.drill.errors.append(
                    f"client of session g{self.record.group}/s{self.record.index}: "
                    + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=6))
                )
        finally:
            for upload in self.uploads:
                upload.stall_event.set()  # never leave a kill_busy writer stalled
            self._settle()
            self.drill.progress(len(self.uploads))

    # -- calls ----------------------------------------------------------------------------

    def call(self, method: str, *args: Any) -> Any:
        try:
            return self.client.call(method, *args)
        except ActorDeadError:
            if not self.ref.is_alive():
                raise _SessionLost(method) from None
            raise

    def _drive(self) -> None:
        try:
            self.client = InProcessClient(self.ref, timeout=WAIT)
        except ActorDeadError:
            raise _SessionLost("proxy") from None
        tokens: dict[str, str] = {}
        for config in ("files", "stalls"):
            entries = [_entry_fields(u.spec) for u in self.uploads if u.spec.config == config]
            if entries:
                reply = self.call("preflight", config, entries)
                if "entries" not in reply:
                    raise RuntimeError(f"preflight of {config} refused: {reply!r}")
                tokens.update(reply["entries"])
        for upload in self.uploads:
            reply = self.call("join", tokens[upload.spec.ref])
            if isinstance(reply, actors.ProcessRef):
                upload.join = "ok"
                self.channels[upload.spec.index] = reply
                upload.channel = self.drill.label(reply, f"channel of {upload.spec.label}")
                if reply.parent is not None:
                    where = f"g{self.record.group}/s{self.record.index}"
                    upload.channel_supervisor = self.drill.label(reply.parent, f"channel supervisor of session {where}")
            else:
                upload.join = reply
        active = [u for u in self.uploads if u.join == "ok"]
        round_ = 0
        while active:
            round_ += 1
            for upload in list(active):
                if not self.step(upload):
                    active.remove(upload)
            if self.event is not None and not self.fired and round_ >= self.event.after_round:
                self.fire(round_, active)
        if self.event is not None and not self.fired:
            self.fire(round_, active)  # the plan rules it out (its round is inside the uploads); checked
        for upload in self.uploads:
            if upload.done and upload.action is None:
                upload.consumed = self.call("consume_uploaded_entry", upload.spec.config, upload.spec.ref, _digest)

    def fire(self, round_: int, active: list[UploadRecord]) -> None:
        self.fired = True
        assert self.event is not None
        self.record.fired_after_round = round_
        self.record.fired_in_progress = tuple(u.spec.label for u in active if 0 < u.acked < u.spec.chunks)
        self.drill.fire(self.event, self.ref)
        raise _SessionLost(f"crashed by the plan ({self.event.kind})")

    def step(self, upload: UploadRecord) -> bool:
        """Do the upload's next step; False once it is over for the client."""
        spec = upload.spec
        channel = self.channels[spec.index]
        if spec.fault in ("cancel", "cancel_close_error") and upload.acked == spec.at_chunk:
            upload.action = "cancel"
            if spec.via == "session":
                upload.action_reply = self.call("cancel_upload", spec.config, spec.ref)
            else:
                try:
                    upload.action_reply = channel.ask("cancel", timeout=WAIT)
                except ActorDeadError:
                    upload.action_reply = ("raised", "ActorDeadError")
            return False
        if spec.fault == "kill" and upload.acked == spec.at_chunk:
            upload.action = "kill"
            actors.exit(channel, actors.KILL)
            self.call("uploads")  # its Down (sent by the kill) is handled: the session released the writer
            return False
        size = self.drill.plan.config.chunk_size
        chunk = self.data[spec.index][upload.acked * size : (upload.acked + 1) * size]
        with self.drill.lock:
            self.drill.chunks += 1
        if spec.fault == "kill_busy" and upload.acked + 1 == spec.at_chunk:
            return self.kill_busy(upload, channel, chunk)
        try:
            reply = self.client.push(channel, chunk)
        except Timeout:
            raise
        except Exception as exc:  # noqa: BLE001 - the writer's exception, or ActorDeadError
            upload.replies.append(_plain_reply(exc))
            return False
        upload.replies.append(reply)
        if reply != "ok":
            return False
        upload.acked += 1
        if spec.fault == "stall" and upload.acked == spec.at_chunk:
            # The writer stalled past the chunk timeout: the channel is stopping. A
            # client pushing on would race the timer; this one waits for the end.
            with contextlib.suppress(Timeout):
                actors.await_exit(channel, WAIT)
            return False
        return upload.acked < spec.chunks

    def kill_busy(self, upload: UploadRecord, channel: actors.ProcessRef, chunk: bytes) -> bool:
        """Kill the channel while its writer is inside ``write_chunk``: the chunk is
        sent, the journal says the writer has it, the kill lands, the stall ends."""
        future = channel.ask(("chunk", chunk), block=False)
        future.add_done_callback(lambda _: upload.journal.poke())
        got_it = ("chunk", upload.spec.at_chunk)
        upload.journal.wait(lambda items: got_it in items or future.done(), WAIT)
        if got_it not in upload.journal:
            if not future.done():
                raise RuntimeError(f"{upload.spec.label}: the writer never got chunk {upload.spec.at_chunk}")
            # The channel ended before the writer got the chunk (its session died): no kill.
            try:
                upload.replies.append(future.get(timeout=0))
            except Exception as exc:  # noqa: BLE001 - whatever ended the channel is the reply
                upload.replies.append(_plain_reply(exc))
            return False
        upload.action = "kill"
        actors.exit(channel, actors.KILL)
        upload.stall_event.set()
        try:
            upload.replies.append(future.get(timeout=WAIT))
        except Timeout:
            raise
        except Exception as exc:  # noqa: BLE001 - ActorDeadError expected
            upload.replies.append(_plain_reply(exc))
        # The reply failed at the kill, but the handler runs on: on the last chunk it
        # completes the upload and closes the writer "done". Wait for that close.
        if upload.spec.at_chunk == upload.spec.chunks and not upload.journal.wait(
            lambda items: ("close", "done") in items, WAIT
        ):
            raise RuntimeError(f"{upload.spec.label}: the killed handler never closed its writer")
        self.call("uploads")
        return False

    def _settle(self) -> None:
        """Wait for every channel to be gone, then read the session's entries."""
        wait = WAIT if self.record.driver_error is None else 1.0
        for upload in self.uploads:
            channel = self.channels.get(upload.spec.index)
            if channel is None:
                continue
            try:
                reason = actors.await_exit(channel, wait)
            except Timeout:
                upload.exit = "alive"
                continue
            upload.exit = classify_exit(reason)
            upload.exit_repr = repr(reason)
        self.channels.clear()
        if self.record.driver_error is not None or not self.ref.is_alive():
            return
        try:
            configs = self.client.call("uploads")
        except (ActorDeadError, Timeout):
            return
        for upload in self.uploads:
            entries = configs.get(upload.spec.config, {}).get("entries", [])
            found = [e for e in entries if e["ref"] == upload.spec.ref]
            upload.entry = (
                {
                    "done": found[0]["done"],
                    "cancelled": found[0]["cancelled"],
                    "errors": [_plain_error(e) for e in found[0]["errors"]],
                }
                if found
                else "absent"
            )


def _entry_fields(spec: UploadSpec) -> dict[str, Any]:
    return entry_fields(spec.ref, f"{spec.label}.bin", spec.size)


def _digest(meta: dict[str, Any]) -> tuple[str, str]:
    """The consume function (runs in the session): the sha256 of what was uploaded."""
    import hashlib

    if "data" in meta:
        return ("ok", hashlib.sha256(meta["data"]).hexdigest())
    with open(meta["path"], "rb") as f:
        return ("ok", hashlib.sha256(f.read()).hexdigest())


# -- the entry point ----------------------------------------------------------------------------------


def run_plan(
    plan: Plan,
    *,
    substrate: str | None = None,
    clients: int | None = None,
    progress: Callable[[int], None] | None = None,
    silence_logs: bool = True,
    leak_grace: float = 10.0,
) -> RunResult:
    """Run ``plan`` and return what happened (check it with ``invariants.check``).

    ``substrate``: where the drill's processes run (``"pool"``, ``"thread"``;
    default: the runtime's default). ``clients``: client threads (default: one
    per session, at most 64). ``progress(n)`` is called as ``n`` more uploads
    are over. ``leak_grace``: how long exiting threads get to end (the pool's
    spare workers park for 2 s before they leave).
    """
    old_substrate = actors.set_default_substrate(substrate) if substrate else None
    used_substrate = actors.default_substrate()
    recorder = LogRecorder(silence=silence_logs)
    drill = Drill(plan, clients=clients, progress=progress)
    # Nothing is exempt: the harness opens no descriptor that outlives the run (its
    # temp dir is a path, its client pool and log recorder hold none, the baseline is
    # taken before the drill starts and the check after the tree and every
    # process, thread and temp file of it are gone), so any new one is a leak. The
    # drill's temp-file writers write into its own folder, which must end empty.
    before = Baseline(temp_dir=drill.tmpdir, collect=True)
    started = time.monotonic()
    root_exit = None
    try:
        with recorder.installed():
            try:
                drill.start_tree()
                clients_ = [SessionClient(drill, session) for session in drill.sessions]
                workers = clients or min(64, len(clients_))
                with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="crashdrill-client") as pool:
                    for future in [pool.submit(client.run) for client in clients_]:
                        future.result()
                drill.snapshot_tree()
            except Exception as exc:  # noqa: BLE001 - the drill failed to run: report it
                drill.errors.append("".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=8)))
            finally:
                root_exit = drill.stop_tree()
        elapsed = time.monotonic() - started
        drill.group_refs.clear()
        drill.session_refs.clear()
        drill.root = None
        before.settle(leak_grace)
        leaks = as_text(before.leaks(DRILL_LEAKS))
        fds_measured = before.fds_measured
    finally:
        shutil.rmtree(drill.tmpdir, ignore_errors=True)
        if old_substrate is not None:
            actors.set_default_substrate(old_substrate)
    for record in drill.records:
        record.stall_event = threading.Event()  # nothing of the run stays reachable
    return RunResult(
        plan=plan,
        substrate=used_substrate,
        elapsed=elapsed,
        uploads=drill.records,
        sessions=drill.sessions,
        crashes=drill.crashes,
        groups=drill.groups,
        root_name=drill.root_name,
        root_exit=root_exit,
        events=recorder.events,
        leaks=leaks,
        labels=drill.labels,
        errors=drill.errors,
        chunks=drill.chunks,
        fds_measured=fds_measured,
    )

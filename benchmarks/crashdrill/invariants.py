"""The invariants a crash drill proves, checked on a ``RunResult``.

Each upload has a *fate*: what its planned fault implies, when its session
lives through the run (``own_fate``). An upload whose session died (a planned
session crash, a burst, the escalation that follows) may instead have met its
owner's end: its channel stopped with the session and closed its writer with
``"cancel"`` (or had already closed it with ``"done"``); which of the two it
met depends on thread timing, so both are accepted, but nothing else is.

The invariants (``INVARIANTS``):

``closed_once``
    Every writer whose ``init`` succeeded was closed exactly once, with the
    reason its fate implies (``"done"``, ``"cancel"``, ``("error", reason)``),
    and released exactly once; a writer whose ``init`` failed was neither.
    **A killed channel** runs nothing more, so its writer is closed *zero*
    times (``killed_closes``), with two exceptions, each a handler or a
    ``terminate`` the kill caught already running: a ``kill_busy`` on the last
    chunk, whose handler completes the upload (``"done"``, its own fate); and a
    channel whose session died, when the kill raced the channel's reaction to
    that death (the session's supervisor shutting it down, or its ``Down`` of
    the session): that closes ``"cancel"``, once. Never ``"done"`` otherwise,
    never twice. The runtime releases the writer at the kill (after the
    running handler returns): ``release`` exactly once, so a temp-file
    writer's file is still deleted.
``terminal``
    Every channel exited with the reason its fate implies; the session's entry
    ends as the fate says (absent once consumed or cancelled through the
    session; else ``cancelled`` / ``errors`` as Phoenix records them); the
    client saw the replies the fault implies.
``intact``
    Every consumed upload's sha256 is the sha256 of what the client sent.
``neighbours``
    Every upload without a fault in a session that lived was consumed intact,
    its writer closed ``"done"`` once, whatever its neighbours went through.
``no_leaks``
    No process, thread, timer, temp file or file descriptor is left once the
    tree is stopped.
``one_report``
    Every crash is reported as OTP reports it, once by each side. The process:
    a channel or session that crashed with an exception logs exactly one crash
    report (``process_crashed``, naming itself); a killed one runs nothing, so
    logs none. Its supervisor: a crashed or killed channel gets exactly one
    ``supervisor_report`` from its own supervisor, its session's
    ``DynamicSupervisor`` (``child_terminated``, or ``shutdown_error`` when it
    crashed while its session's shutdown stopped it; its child id names its
    entry); a crashed or killed session exactly one
    ``child_terminated`` from its group; an escalation one ``shutdown``
    (``reached_max_restart_intensity``) from the group and one
    ``child_terminated`` (info, ``"shutdown"``) from the root. So a channel
    that raised shows two reports, one of each kind. No other report, and no
    other error log.
``escalation``
    The tree followed OTP: a session crash within the intensity was restarted
    by its group; a burst past it made the group exit ``"shutdown"`` and the
    root restart it, fresh sessions included (read with ``which_children``);
    every other group and session is the original one, alive.
``drill``
    The drill itself ran to the end (no client raised, no wait hung), and ran
    its plan: every group's session crashes fired mid-upload, with at least one
    of the firing session's uploads started and not over.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmarks.crashdrill.plan import UploadSpec
from benchmarks.crashdrill.run import INJECTED, RunResult, UploadRecord

__all__ = [
    "INVARIANTS",
    "Fate",
    "Summary",
    "Violation",
    "check",
    "expected_digest",
    "killed_closes",
    "own_fate",
    "summarize",
]

INVARIANTS: dict[str, str] = {
    "closed_once": "every writer closed exactly once, with the reason its fault implies",
    "terminal": "every entry ends in the terminal state that matches what happened to it",
    "intact": "every successful upload's bytes are intact",
    "neighbours": "uploads without faults are untouched by their neighbours' faults",
    "no_leaks": "no actor, thread, timer, temp file or file descriptor is left behind",
    "one_report": "every crash: one process_crashed per exception, one supervisor_report from its supervisor",
    "escalation": "escalation follows OTP rules and the tree recovers at the level above",
    "drill": "the drill itself ran to the end, its session crashes mid-upload",
}


@dataclass(frozen=True)
class Violation:
    invariant: str
    subject: str
    detail: str
    entry: str | None = None
    """The planned upload it is about (``UploadSpec.describe()``), if any."""

    def line(self) -> str:
        return f"[{self.invariant}] {self.subject}: {self.detail}"


@dataclass(frozen=True)
class Fate:
    exit: str | None
    closes: tuple
    releases: int
    entry: Any
    consumed: bool


def _entry(cancelled: bool = False, errors: tuple = ()) -> dict[str, Any]:
    return {"done": False, "cancelled": cancelled, "errors": list(errors)}


def own_fate(spec: UploadSpec) -> Fate:
    """What ``spec``'s fault implies when its session lives."""
    fault = spec.fault
    failure = ("writer_failure", INJECTED)
    if fault is None:
        return Fate("consumed", ("done",), 1, "absent", True)
    if fault == "raise":
        return Fate("crash:FaultInjected", ("cancel",), 1, _entry(True, (("channel_crash", "FaultInjected"),)), False)
    if fault == "keyboard_interrupt":
        return Fate(
            "crash:KeyboardInterrupt", ("cancel",), 1, _entry(True, (("channel_crash", "KeyboardInterrupt"),)), False
        )
    if fault == "error":
        return Fate("writer_error", (("error", INJECTED),), 1, _entry(False, (failure,)), False)
    if fault == "init_error":
        return Fate(None, (), 0, _entry(False, (failure,)), False)
    if fault == "close_error":
        return Fate("writer_error", ("done",), 1, _entry(False, (failure,)), False)
    if fault == "stall":
        return Fate("timeout", ("cancel",), 1, _entry(False, ("timeout",)), False)
    if fault in ("cancel", "cancel_close_error"):
        return Fate("cancelled", ("cancel",), 1, "absent" if spec.via == "session" else _entry(True), False)
    if fault in ("kill", "kill_busy"):
        # Killed while writing the last chunk, the running handler still completes the
        # upload and closes the writer "done" (a kill does not interrupt a handler).
        closes = ("done",) if fault == "kill_busy" and spec.at_chunk == spec.chunks else ()
        return Fate("killed", closes, 1, _entry(True, (("channel_crash", "killed"),)), False)
    raise ValueError(f"unknown fault {fault!r}")


def killed_closes(spec: UploadSpec, session_died: bool) -> tuple[tuple, ...]:
    """Every close sequence a killed channel's writer may legitimately show.

    A kill runs nothing more in the channel, so nothing closes the writer
    (``()``), except a callback the kill caught already running: the handler of
    a ``kill_busy`` on the last chunk completes the upload (``("done",)``, its
    own fate, and then no other); and, when the channel's session died, the
    channel's reaction to that death (``terminate`` on its supervisor's
    shutdown, or its handler of the session's ``Down``) may have been closing
    the writer with ``"cancel"`` when the planned kill landed: ``("cancel",)``.
    Never ``"done"`` for an incomplete upload, never two closes.
    """
    own = own_fate(spec).closes
    if session_died and own == ():
        return ((), ("cancel",))
    return (own,)


WRITER_ERROR_REPLY = ("error", {"reason": "writer_error"})
DEAD = ("raised", "ActorDeadError")


def client_view_problem(record: UploadRecord) -> str | None:
    """What is wrong with what the client saw, for an upload whose session lived."""
    spec, replies, at = record.spec, record.replies, record.spec.at_chunk

    def ok(n: int) -> list[Any]:
        return ["ok"] * n

    fault = spec.fault
    if fault == "init_error":
        expected_join: Any = WRITER_ERROR_REPLY
    else:
        expected_join = "ok"
    if record.join != expected_join:
        return f"join answered {record.join!r}, expected {expected_join!r}"
    expected: list | None = None
    if fault is None:
        expected = ok(spec.chunks)
    elif fault == "raise":
        expected = [*ok(at - 1), ("raised", "FaultInjected")]
    elif fault in ("keyboard_interrupt", "kill_busy"):
        expected = [*ok(at - 1), DEAD]
    elif fault == "error":
        expected = [*ok(at - 1), WRITER_ERROR_REPLY]
    elif fault == "init_error":
        expected = []
    elif fault == "close_error":
        expected = [*ok(spec.chunks - 1), WRITER_ERROR_REPLY]
    elif fault in ("cancel", "cancel_close_error", "kill"):
        expected = ok(at)
    elif fault == "stall" and (
        # oks up to the stalled chunk (then the client waits for the timeout), or the
        # channel gone already if the timeout struck before the stall.
        len(replies) > at or any(r != "ok" for r in replies[:-1]) or (replies and replies[-1] not in ("ok", DEAD))
    ):
        return f"a stalled upload's chunks were answered {replies!r}: expected oks up to chunk {at}, then the timeout"
    if expected is not None and replies != expected:
        return f"chunks answered {replies!r}, expected {expected!r}"
    if fault in ("cancel", "cancel_close_error"):
        if spec.via == "session":
            want: Any = None
        else:
            want = "ok" if fault == "cancel" else ("error", INJECTED)
        if record.action_reply != want:
            return f"cancel via {spec.via} answered {record.action_reply!r}, expected {want!r}"
    return None


def expected_digest(spec: UploadSpec) -> str:
    return hashlib.sha256(spec.data()).hexdigest()


@dataclass
class Summary:
    """Counts the report prints beside the invariants."""

    fates: Counter = field(default_factory=Counter)
    """fault -> uploads that met their own fate (session alive)."""
    owner_fates: Counter = field(default_factory=Counter)
    """fault -> uploads whose session died (own fate or owner's)."""
    closes: Counter = field(default_factory=Counter)
    consumed: int = 0
    intact: int = 0
    neighbours: int = 0
    neighbours_ok: int = 0
    killed_writers: int = 0
    process_crashed: int = 0
    process_crashed_expected: int = 0
    supervisor_reports: Counter = field(default_factory=Counter)
    supervisor_reports_expected: int = 0
    checked: Counter = field(default_factory=Counter)
    """invariant -> subjects checked."""


def check(result: RunResult) -> list[Violation]:
    """Every violated invariant of ``result``; empty when the drill passed."""
    return summarize(result)[0]


def summarize(result: RunResult) -> tuple[list[Violation], Summary]:
    violations: list[Violation] = []
    summary = Summary()
    for message in result.errors:
        violations.append(
            Violation("drill", "run", message.strip().splitlines()[-1] if message.strip() else message, None)
        )
    for record in result.uploads:
        violations += _check_upload(record, summary)
    violations += _check_reports(result, summary)
    violations += _check_tree(result, summary)
    violations += _check_leaks(result, summary)
    return violations, summary


# -- uploads ------------------------------------------------------------------------------------


def _check_upload(record: UploadRecord, summary: Summary) -> list[Violation]:
    spec = record.spec
    fate = own_fate(spec)
    journal = record.journal
    closes = tuple(journal.closes())
    inits, releases = journal.count("init"), journal.count("release")
    for reason in closes:
        summary.closes[repr(reason)] += 1
    if record.exit == "killed":
        summary.killed_writers += 1
    out: list[Violation] = []
    neighbour = spec.fault is None and not record.session_died
    if neighbour:
        summary.neighbours += 1

    def bad(invariant: str, detail: str) -> None:
        if neighbour and invariant in ("closed_once", "terminal"):
            invariant = "neighbours"
        out.append(Violation(invariant, spec.label, detail, spec.describe()))

    summary.checked["closed_once"] += 1
    summary.checked["terminal"] += 1
    # The writer's life, whatever happened: one init, then one close and one release.
    init_ok = inits == 1 and spec.fault != "init_error"
    if inits > 1:
        bad("closed_once", f"init ran {inits} times")
    elif inits == 0 and (closes or releases):
        bad("closed_once", f"closed {list(closes)} / released {releases}x without an init")
    elif inits == 1 and not init_ok and (closes or releases):
        bad("closed_once", f"init failed, yet closed {list(closes)} / released {releases}x")
    elif init_ok:
        if record.exit == "killed":
            allowed = killed_closes(spec, record.session_died)
            if closes not in allowed:
                why = " or, as its session died, ['cancel'] once" if len(allowed) > 1 else ""
                bad(
                    "closed_once",
                    f"a killed channel's writer (a kill runs nothing more in the channel) closed "
                    f"{len(closes)} times {list(closes)}, expected {list(allowed[0])}{why}",
                )
        elif len(closes) != 1:
            bad("closed_once", f"closed {len(closes)} times {list(closes)}, expected 1")
        if releases != 1:
            bad(
                "closed_once",
                f"released {releases} times, expected once"
                + (" (by the runtime, at the kill)" if record.exit == "killed" else ""),
            )

    if record.exit == "alive":
        bad("terminal", "its channel was still alive after its client finished")
    if not record.session_died:
        if record.exit != fate.exit:
            bad("terminal", f"channel exited {record.exit_repr or record.exit!r} ({record.exit}), expected {fate.exit}")
        if closes != fate.closes and len(closes) == len(fate.closes) and record.exit != "killed":
            bad("closed_once", f"closed with {list(closes)}, expected {list(fate.closes)}")
        if releases != fate.releases and not init_ok:
            bad("closed_once", f"released {releases} times, expected {fate.releases}")
        if record.entry != fate.entry:
            bad("terminal", f"session entry is {record.entry!r}, expected {fate.entry!r}")
        problem = client_view_problem(record)
        if problem:
            bad("terminal", problem)
        if fate.consumed and record.consumed is None:
            bad("intact" if not neighbour else "neighbours", "completed but never consumed")
        if not out:
            summary.fates[spec.fault or "none"] += 1
    else:
        summary.owner_fates[spec.fault or "none"] += 1
        wrote_all = journal.count("chunk") >= spec.chunks
        if record.exit == fate.exit and record.exit is not None:
            # (a killed channel's closes were checked above, against ``killed_closes``)
            if closes != fate.closes and init_ok and record.exit != "killed":
                bad("closed_once", f"closed with {list(closes)}, expected {list(fate.closes)} (its own fault's)")
        elif record.exit == "owner":
            if closes not in (("cancel",),) + ((("done",),) if wrote_all else ()):
                bad(
                    "closed_once",
                    f"its session died: closed with {list(closes)}, expected ['cancel'] (or ['done'] once complete)",
                )
        elif record.exit is None:
            if record.join == "ok":
                bad("terminal", "joined but its channel's exit was never seen")
            elif closes not in ((), ("cancel",)):
                bad("closed_once", f"never joined (its session died), yet closed with {list(closes)}")
        elif record.exit != "alive":
            bad(
                "terminal",
                f"channel exited {record.exit_repr!r}: neither its fault's end ({fate.exit}) nor its session's",
            )

    if record.consumed is not None:
        summary.consumed += 1
        summary.checked["intact"] += 1
        want = expected_digest(spec)
        if record.consumed != want:
            out.append(
                Violation(
                    "intact", spec.label, f"consumed sha256 {record.consumed[:16]}…, sent {want[:16]}…", spec.describe()
                )
            )
        else:
            summary.intact += 1
    if neighbour:
        summary.checked["neighbours"] += 1
        if not any(v.invariant in ("neighbours", "intact") for v in out):
            summary.neighbours_ok += 1
    return out


# -- reports ---------------------------------------------------------------------------------------


def _check_reports(result: RunResult, summary: Summary) -> list[Violation]:
    out: list[Violation] = []
    labels = result.labels
    events = result.events

    def name(label: Any) -> str:
        return labels.get(label, str(label))

    # The process's side, OTP's crash report: exactly one process_crashed per process
    # that exited with an exception (a killed one runs nothing, so logs none).
    expected_crashes: dict[str, str] = {}
    for u in result.uploads:
        if u.channel and u.exit and u.exit.startswith("crash:"):
            expected_crashes[u.channel] = f"channel of {u.spec.label}"
    for c in result.crashes:
        if c.exit.startswith("crash:"):
            expected_crashes[c.label] = f"session g{c.group}/s{c.session}"
    crashed: Counter[Any] = Counter(e.get("process") for e in events if e["event"] == "process_crashed")
    summary.process_crashed = sum(crashed.values())
    summary.process_crashed_expected = len(expected_crashes)
    for label, what in expected_crashes.items():
        summary.checked["one_report"] += 1
        if crashed[label] != 1:
            out.append(
                _about(
                    result, label, "one_report", f"{what} crashed; {crashed[label]} process_crashed reports, expected 1"
                )
            )
    for label, n in crashed.items():
        if label not in expected_crashes:
            reasons = [e.get("reason") for e in events if e["event"] == "process_crashed" and e.get("process") == label]
            out.append(
                _about(
                    result, label, "one_report", f"unexpected process_crashed ({n}x) for {name(label)}: {reasons[0]}"
                )
            )

    # The supervisor's side, OTP's supervisor report: exactly one per crashed or killed
    # child, from that child's own supervisor. Keyed by the offender's ref (whichever
    # supervisor sent it, so a second report from anyone counts), or by the
    # supervisor for its own shutdown.
    reports: dict[Any, list[dict]] = {}
    for e in events:
        if e["event"] == "supervisor_report":
            offender = e.get("offender") or {}
            key = offender.get("ref") or ("shutdown", e.get("supervisor"))
            reports.setdefault(key, []).append(e)
            summary.supervisor_reports[e.get("context")] += 1
    # key -> (what, allowed contexts, {field: allowed values})
    expected: dict[Any, tuple[str, tuple[str, ...], dict[str, tuple]]] = {}
    for u in result.uploads:
        if u.channel and u.exit and (u.exit.startswith("crash:") or u.exit == "killed"):
            # A channel crashing while its session's shutdown stops it is that shutdown's error (OTP).
            contexts: tuple[str, ...] = (
                ("child_terminated", "shutdown_error") if u.session_died else ("child_terminated",)
            )
            fields: dict[str, tuple] = {"entry": (u.spec.ref,), "level": ("error",)}  # how it closed: closed_once
            if u.channel_supervisor is not None:
                fields["supervisor"] = (u.channel_supervisor,)  # its own: its session's DynamicSupervisor
            expected[u.channel] = (f"channel of {u.spec.label} ({u.exit})", contexts, fields)
    group_names = {g.index: g.name for g in result.groups}
    for c in result.crashes:
        expected[c.label] = (
            f"session g{c.group}/s{c.session} ({c.how})",
            ("child_terminated",),
            {"supervisor": (group_names[c.group],), "level": ("error",)},
        )
    for g in result.groups:
        if g.escalated:
            expected[("shutdown", g.name)] = (
                f"group {g.index} reaching its restart intensity",
                ("shutdown",),
                {"reason": ("reached_max_restart_intensity",), "level": ("error",)},
            )
            expected[g.label] = (
                f"group {g.index} exiting shutdown, restarted by the root",
                ("child_terminated",),
                {"supervisor": (result.root_name,), "reason": ("shutdown",), "level": ("info",)},
            )
    summary.supervisor_reports_expected = len(expected)
    for key, (what, contexts, wanted) in expected.items():
        summary.checked["one_report"] += 1
        found = reports.get(key, [])
        subject = key[1] if isinstance(key, tuple) else key
        if len(found) != 1:
            out.append(
                _about(
                    result,
                    subject,
                    "one_report",
                    f"{what}: {len(found)} supervisor_reports, expected 1 ({' or '.join(contexts)})",
                )
            )
            continue
        report = found[0]
        if report.get("context") not in contexts:
            out.append(
                _about(
                    result,
                    subject,
                    "one_report",
                    f"{what}: a {report.get('context')} report, expected {' or '.join(contexts)}",
                )
            )
        for field_name, allowed in wanted.items():
            got = _report_entry(report) if field_name == "entry" else report.get(field_name)
            if got not in allowed:
                if field_name == "supervisor":
                    got, allowed = name(got), tuple(name(a) for a in allowed)
                want = allowed[0] if len(allowed) == 1 else " or ".join(map(repr, allowed))
                out.append(
                    _about(result, subject, "one_report", f"{what}: report has {field_name}={got!r}, expected {want!r}")
                )
    for key, found in reports.items():
        if key not in expected:
            e = found[0]
            subject = key[1] if isinstance(key, tuple) else key
            out.append(
                _about(
                    result,
                    subject,
                    "one_report",
                    f"unexpected supervisor_report {e.get('context')} ({len(found)}x) about {name(subject)}: "
                    f"reason {e.get('reason')!r}",
                )
            )
    for e in events:
        if e["level"] == "error" and e["event"] not in ("process_crashed", "supervisor_report"):
            out.append(Violation("one_report", "run", f"unexpected error log {e['event']!r}: {e}"))
    return out


def _about(result: RunResult, label: Any, invariant: str, detail: str) -> Violation:
    """A violation about a process: named by its upload when it is a channel."""
    for u in result.uploads:
        if u.channel == label:
            return Violation(invariant, u.spec.label, detail, u.spec.describe())
    return Violation(invariant, result.labels.get(label, str(label)), detail)


# -- the tree -----------------------------------------------------------------------------------------


def _check_tree(result: RunResult, summary: Summary) -> list[Violation]:
    out: list[Violation] = []
    plan = result.plan

    def bad(subject: str, detail: str) -> None:
        out.append(Violation("escalation", subject, detail))

    for group in result.groups:
        summary.checked["escalation"] += 1
        event = plan.event_of(group.index)
        subject = f"group {group.index} ({group.scenario})"
        crashes = [c for c in result.crashes if c.group == group.index]
        planned = len(event.targets) if event else 0
        if len(crashes) != planned:
            bad(subject, f"{len(crashes)} session crashes fired, {planned} planned")
        for crash in crashes:
            want = "killed" if crash.how == "kill" else "crash:ValueError"
            if crash.exit != want:
                bad(
                    subject,
                    f"session s{crash.session} crashed by {crash.how} exited {crash.exit_repr}, expected {want}",
                )
        if not group.end_alive or group.end_label is None:
            bad(subject, "not running at the end: the tree did not recover")
            continue
        if group.scenario == "burst":
            if not group.escalated or group.exit_repr != repr("shutdown"):
                bad(
                    subject,
                    f"a burst of {planned} crashes (intensity {plan.config.max_restarts}) should make it exit "
                    f"'shutdown'; it exited {group.exit_repr}",
                )
            if group.end_label == group.label:
                bad(subject, "the root did not restart it after it gave up")
        elif group.end_label != group.label or group.escalated:
            bad(subject, f"restarted ({group.exit_repr}) though its crashes stayed within its restart intensity")
        sessions = len(plan.groups[group.index])
        for s in range(sessions):
            label, alive = group.end_sessions.get(s, (None, False))
            original = group.original_sessions.get(s)
            if not alive:
                bad(subject, f"session s{s} not running at the end")
                continue
            replaced = label != original
            should_be = group.scenario == "burst" or (event is not None and s in event.targets)
            if replaced != should_be:
                bad(
                    subject,
                    f"session s{s} {'was' if replaced else 'was not'} replaced by a restart, "
                    f"{'though' if replaced else 'yet'} the plan {'spared' if replaced else 'crashed'} it",
                )
    for event in plan.events:
        firer = next((r for r in result.sessions if r.group == event.group and r.index == event.session), None)
        if firer is None or firer.fired_after_round is None:
            continue  # never fired: reported above (crashes fired vs planned)
        summary.checked["drill"] += 1
        if not firer.fired_in_progress:
            out.append(
                Violation(
                    "drill",
                    f"group {event.group} ({event.kind})",
                    f"session s{event.session} fired its crashes after round {firer.fired_after_round} "
                    f"(planned {event.after_round}) with none of its uploads in progress: not mid-upload",
                )
            )
    dead_plan = plan.planned_dead_sessions()
    for session in result.sessions:
        key = (session.group, session.index)
        if session.died != (key in dead_plan):
            bad(
                f"session g{session.group}/s{session.index}",
                f"{'died' if session.died else 'survived'} ({session.exit_repr}), though the plan "
                f"{'spared' if session.died else 'ended'} it",
            )
    summary.checked["escalation"] += 1
    if result.root_exit != repr("shutdown"):
        bad("root supervisor", f"stopped with {result.root_exit}, expected 'shutdown'")
    return out


def _check_leaks(result: RunResult, summary: Summary) -> list[Violation]:
    out = []
    for kind, found in result.leaks.items():
        summary.checked["no_leaks"] += 1
        if found:
            shown = ", ".join(found[:8]) + (f" and {len(found) - 8} more" if len(found) > 8 else "")
            out.append(Violation("no_leaks", kind, f"{len(found)} left behind: {shown}"))
    return out


def _report_entry(report: dict) -> Any:
    """The entry a channel's supervisor report is about: the last element of
    its child id, ``("upload", config ref, entry ref)``."""
    child_id = (report.get("offender") or {}).get("id")
    return child_id[-1] if isinstance(child_id, (tuple, list)) and child_id else None

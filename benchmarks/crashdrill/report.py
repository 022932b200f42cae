"""The printed report of a crash drill (the command's product, on stdout).

Layout::

    liveupload crashtest · seed S · N uploads in K sessions, G groups · substrate pool
    reproduce: liveupload crashtest --uploads N --seed S

    plan       <faults by kind>
               <group scenarios, and each session event>
    outcomes   <per fault: uploads that met their own fate / whose session died>
    writers    closes by reason, killed writers (closed only by a callback the kill caught, released at the kill)
    bytes      consumed uploads whose sha256 matched
    reports    process_crashed (the crashed process's report) seen/expected, supervisor_report
               (its supervisor's) by context, seen/expected
    tree       session restarts, escalations, the tree at the end
    leaks      processes, threads, timers, temp files, file descriptors left
    time       elapsed, chunks, uploads/s

    invariants
      ok   closed_once  every writer closed exactly once, ...
      FAIL terminal     ...

then, on failure, every violation with the planned entry it is about, and the
seed and command again.
"""

from __future__ import annotations

from collections import Counter

from benchmarks.crashdrill.invariants import INVARIANTS, Summary, Violation, summarize
from benchmarks.crashdrill.plan import UPLOAD_FAULTS
from benchmarks.crashdrill.run import RunResult

__all__ = ["command", "render", "render_result"]

MAX_VIOLATIONS = 40


def command(result: RunResult) -> str:
    """The command that reruns this plan."""
    plan = result.plan
    return f"liveupload crashtest --uploads {len(plan.uploads)} --seed {plan.seed} --substrate {result.substrate}"


def render_result(result: RunResult) -> tuple[str, list[Violation]]:
    """Check ``result`` and render its report: ``(text, violations)``."""
    violations, summary = summarize(result)
    return render(result, violations, summary), violations


def render(result: RunResult, violations: list[Violation], summary: Summary | None = None) -> str:
    if summary is None:
        summary = summarize(result)[1]
    plan = result.plan
    lines: list[str] = []
    add = lines.append
    add(
        f"liveupload crashtest · seed {plan.seed} · {len(plan.uploads)} uploads in {plan.sessions} sessions, "
        f"{len(plan.groups)} supervisor groups · substrate {result.substrate}"
    )
    add(f"reproduce: {command(result)}")
    add("")

    faults = plan.fault_counts()
    order = ["none", *UPLOAD_FAULTS]
    add("plan       " + ", ".join(f"{k} {faults[k]}" for k in order if faults[k]))
    scenarios = Counter(plan.scenarios)
    add(
        "           groups: "
        + ", ".join(f"{k} {scenarios[k]}" for k in ("calm", "session_crash", "burst") if scenarios[k])
        + f" (restart intensity {plan.config.max_restarts} in {plan.config.max_seconds:g} s)"
    )
    for event in plan.events:
        add(f"           {event.describe()}")

    add(
        "outcomes   own fate (session lived): "
        + ", ".join(f"{k} {summary.fates[k]}" for k in order if summary.fates[k])
    )
    if summary.owner_fates:
        add(
            "           session died under them: "
            + ", ".join(f"{k} {summary.owner_fates[k]}" for k in order if summary.owner_fates[k])
        )
    add(
        "writers    closes: "
        + ", ".join(f"{k} {n}" for k, n in sorted(summary.closes.items(), key=lambda kv: -kv[1]))
        + f"; {summary.killed_writers} channels killed (a kill runs nothing more: their writers closed only by "
        f"a callback the kill caught running, released at the kill)"
    )
    add(f"bytes      {summary.intact}/{summary.consumed} consumed uploads intact (sha256); "
        f"fault-free uploads in surviving sessions untouched: {summary.neighbours_ok}/{summary.neighbours}")
    contexts = ", ".join(f"{k} {n}" for k, n in sorted(summary.supervisor_reports.items()))
    add(
        f"reports    process_crashed {summary.process_crashed} (expected {summary.process_crashed_expected}); "
        f"supervisor_report {sum(summary.supervisor_reports.values())} (expected {summary.supervisor_reports_expected}"
        + (f": {contexts})" if contexts else ")")
    )
    restarted = sum(1 for c in result.crashes)
    escalated = [g for g in result.groups if g.escalated]
    running = sum(1 for g in result.groups if g.end_alive)
    sessions_running = sum(1 for g in result.groups for _, alive in g.end_sessions.values() if alive)
    add(
        f"tree       {restarted} session crashes ({sum(1 for c in result.crashes if c.how == 'kill')} killed); "
        f"{len(escalated)} group(s) escalated (exited shutdown, restarted by the root); at the end "
        f"{running}/{len(result.groups)} groups and {sessions_running}/{plan.sessions} sessions running; "
        f"root stopped with {result.root_exit}"
    )
    leak_bits = ", ".join(f"{kind} {len(found)}" for kind, found in result.leaks.items())
    if not result.fds_measured:
        leak_bits += " (file descriptors not measured on this platform)"
    add(f"leaks      {leak_bits}")
    rate = len(plan.uploads) / result.elapsed if result.elapsed > 0 else 0.0
    add(f"time       {result.elapsed:.2f} s, {result.chunks} chunks sent, {rate:.0f} uploads/s")
    add("")

    failed = Counter(v.invariant for v in violations)
    add("invariants")
    width = max(len(k) for k in INVARIANTS)
    for key, text in INVARIANTS.items():
        status = "ok  " if not failed[key] else "FAIL"
        checked = summary.checked.get(key)
        tail = f" ({checked} checked)" if checked else ""
        if failed[key]:
            tail = f" ({failed[key]} violation{'s' if failed[key] > 1 else ''})"
        add(f"  {status} {key:<{width}}  {text}{tail}")
    add("")
    if not violations:
        add(f"PASSED: every invariant held (seed {plan.seed})")
        return "\n".join(lines)
    add(f"FAILED: {len(violations)} violation{'s' if len(violations) > 1 else ''} (seed {plan.seed})")
    for violation in violations[:MAX_VIOLATIONS]:
        add(f"  {violation.line()}")
        if violation.entry:
            add(f"      entry: {violation.entry}")
    if len(violations) > MAX_VIOLATIONS:
        add(f"  ... and {len(violations) - MAX_VIOLATIONS} more")
    add(f"seed {plan.seed}; reproduce: {command(result)}")
    return "\n".join(lines)

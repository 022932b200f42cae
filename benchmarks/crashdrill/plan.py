"""The fault plan of a crash drill, drawn up front from one seed.

Everything random about a drill is decided here, before anything runs, from
``random.Random(seed)``: how uploads are grouped into sessions and sessions
into supervisors, each upload's size, content, writer and fault, and which
sessions crash when. The same seed (and the same number of uploads and
``DrillConfig``) gives the same plan, so a failed drill is reproduced by its
seed. Only thread interleaving differs between two runs of one plan; the
invariants are written so that they hold whatever the interleaving.

The tree a plan runs on::

    root Supervisor (one_for_one)
     └─ group g: Supervisor (one_for_one, max_restarts=R), permanent
         └─ session s: UploadSession, transient
             └─ (its own DynamicSupervisor) ─ one UploadChannel per upload

Upload faults (one per upload, or none):

``raise``               ``write_chunk`` raises at chunk ``at_chunk``
``keyboard_interrupt``  ``write_chunk`` raises ``KeyboardInterrupt`` at ``at_chunk``
``error``               ``write_chunk`` returns ``("error", reason, state)`` at ``at_chunk``
``init_error``          ``init`` returns ``("error", reason)``
``close_error``         ``close("done")`` returns ``("error", reason)``
``stall``               ``write_chunk`` blocks past the chunk timeout at ``at_chunk``
``cancel``              the client cancels after ``at_chunk`` acknowledged chunks
                        (``via`` the session's ``cancel_upload`` or the channel's ``"cancel"``)
``cancel_close_error``  as ``cancel``, and the writer's ``close("cancel")`` fails
``kill``                the channel is killed (``"kill"``) after ``at_chunk`` chunks, while idle
``kill_busy``           the channel is killed while ``write_chunk`` of chunk ``at_chunk`` runs

Group scenarios (one per supervisor group): ``calm``; ``session_crash`` (one
session crashes mid-upload, by a crash message or a kill: within the group's
restart intensity, so the group restarts it); ``burst`` (R + 1 session crashes
in a row: past the intensity, so the group gives up, exits ``"shutdown"``, and
the root restarts it with fresh sessions).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass

__all__ = [
    "CHANNEL_KILLS",
    "DrillConfig",
    "GROUP_SCENARIOS",
    "Plan",
    "SessionEvent",
    "UPLOAD_FAULTS",
    "UploadSpec",
    "make_plan",
    "mid_upload_rounds",
]

UPLOAD_FAULTS: tuple[str, ...] = (
    "raise",
    "keyboard_interrupt",
    "error",
    "init_error",
    "close_error",
    "stall",
    "cancel",
    "cancel_close_error",
    "kill",
    "kill_busy",
)
"""Every upload fault, each planned at least once when there are enough uploads."""

FAULT_WEIGHTS: dict[str, float] = {
    "raise": 3,
    "keyboard_interrupt": 1,
    "error": 2,
    "init_error": 1,
    "close_error": 1,
    "stall": 1,
    "cancel": 2,
    "cancel_close_error": 1,
    "kill": 2,
    "kill_busy": 1,
}

CHANNEL_KILLS = frozenset({"kill", "kill_busy"})
FAULTY_ONLY = frozenset(UPLOAD_FAULTS) - {"cancel", "kill"}
"""Faults that need a ``FaultyWriter``; the others may run on a temp-file writer."""

GROUP_SCENARIOS: tuple[str, ...] = ("burst", "session_crash", "calm")
SCENARIO_WEIGHTS = (0.25, 0.35, 0.40)

CRASH_METHODS = ("message", "kill")


@dataclass(frozen=True)
class DrillConfig:
    """The shape and timing of a drill (the seed decides everything else)."""

    uploads_per_session: int = 4
    sessions_per_group: int = 4
    max_restarts: int = 2
    """The restart intensity of each group supervisor: a burst is ``max_restarts + 1`` crashes."""
    max_seconds: float = 3600.0
    """The intensity's window: longer than any drill, so every crash of a group counts."""
    chunk_size: int = 4096
    max_chunks: int = 5
    chunk_timeout: float = 10.0
    """Uploads without a stall: a healthy upload never comes near it."""
    stall_chunk_timeout: float = 0.1
    """The ``stalls`` upload config's chunk timeout (short, for drills)."""
    stall_seconds: float = 0.5
    """How long a ``stall`` blocks: well past ``stall_chunk_timeout``."""
    fault_share: float = 0.55
    tmpfile_share: float = 0.5
    """Share of uploads whose fault allows it that write to a temp file rather than memory."""

    def __post_init__(self) -> None:
        if self.uploads_per_session < 1 or self.sessions_per_group < 1 or self.max_chunks < 2:
            raise ValueError("uploads_per_session and sessions_per_group must be >= 1, max_chunks >= 2")
        if not self.stall_seconds > self.stall_chunk_timeout:
            raise ValueError("stall_seconds must exceed stall_chunk_timeout: a stall is past the chunk timeout")





@dataclass(frozen=True)
class UploadSpec:
    """One planned upload."""

    index: int
    group: int
    session: int
    size: int
    chunks: int
    writer: str  # "memory" (FaultyWriter) or "tmpfile" (a journaled TmpFileWriter)
    fault: str | None
    at_chunk: int
    via: str | None  # cancels: "session" or "channel"
    content_seed: int

    @property
    def ref(self) -> str:
        """The entry's ref in its session (unique in the whole drill)."""
        return str(self.index)

    @property
    def config(self) -> str:
        """The session's upload config it goes through: ``stalls`` has the short chunk timeout."""
        return "stalls" if self.fault == "stall" else "files"

    @property
    def label(self) -> str:
        return f"u{self.index}"

    def describe(self) -> str:
        fault = self.fault or "none"
        if self.fault in ("raise", "keyboard_interrupt", "error", "stall", "kill_busy"):
            fault += f" at chunk {self.at_chunk}"
        elif self.fault in ("cancel", "cancel_close_error", "kill"):
            fault += f" after {self.at_chunk} chunk(s)"
        if self.via:
            fault += f" via {self.via}"
        return (
            f"{self.label} (group {self.group}, session {self.session}, entry ref {self.ref}, fault {fault}, "
            f"writer {self.writer}, {self.size} bytes in {self.chunks} chunk(s))"
        )

    def data(self) -> bytes:
        """The upload's content, the same for a given plan."""
        return random.Random(self.content_seed).randbytes(self.size)


@dataclass(frozen=True)
class SessionEvent:
    """Session crashes planned in one group, fired by the client of ``session``
    after its ``after_round``-th round of chunks. The plan picks the round
    strictly inside that session's uploads (``mid_upload_rounds``): when it
    fires, at least one of them has sent ``after_round`` chunks and has more
    to send, so the crash is mid-upload, as its name says."""

    group: int
    session: int
    kind: str  # "session_crash" or "burst"
    after_round: int
    targets: tuple[int, ...]
    """Session indices crashed, in order: one for a session crash, R + 1 for a burst."""
    how: tuple[str, ...]
    """``"message"`` (a message the session cannot handle: it crashes) or ``"kill"``, per target."""

    def describe(self) -> str:
        crashes = ", ".join(f"s{t} by {h}" for t, h in zip(self.targets, self.how, strict=True))
        return f"group {self.group}: {self.kind} after round {self.after_round} of session {self.session} ({crashes})"


@dataclass(frozen=True)
class Plan:
    seed: int
    config: DrillConfig
    uploads: tuple[UploadSpec, ...]
    groups: tuple[tuple[int, ...], ...]
    """Per group, the number of uploads of each of its sessions."""
    scenarios: tuple[str, ...]
    events: tuple[SessionEvent, ...]

    @property
    def sessions(self) -> int:
        return sum(len(g) for g in self.groups)

    def uploads_of(self, group: int, session: int) -> list[UploadSpec]:
        return [u for u in self.uploads if u.group == group and u.session == session]

    def event_of(self, group: int) -> SessionEvent | None:
        for event in self.events:
            if event.group == group:
                return event
        return None

    def fault_counts(self) -> Counter:
        return Counter(u.fault or "none" for u in self.uploads)

    def killed_sessions(self) -> set[tuple[int, int]]:
        """Sessions the plan kills (an original session: the burst's later
        targets may be restarted ones when a group has fewer sessions than crashes)."""
        return {(e.group, t) for e in self.events for t, h in zip(e.targets, e.how, strict=True) if h == "kill"}

    def planned_dead_sessions(self) -> set[tuple[int, int]]:
        """Original sessions that must be dead by the end of the run."""
        dead = set()
        for event in self.events:
            if event.kind == "burst":
                dead |= {(event.group, s) for s in range(len(self.groups[event.group]))}
            else:
                dead |= {(event.group, t) for t in event.targets}
        return dead


def mid_upload_rounds(spec: UploadSpec) -> int:
    """The last client round after which ``spec`` is still in progress: started,
    with more to send (0: never, e.g. a one-chunk upload or an ``init`` error).

    A client's round ``r`` sends every active upload its ``r``-th chunk
    (``SessionClient``): an upload of ``n`` chunks is over in round ``n``; a
    fault at chunk ``k`` (``raise``, ``error``, ``stall``, ``kill_busy``...)
    ends it in round ``k``; a cancel or a kill after ``k`` chunks happens in
    round ``k + 1``, so it is in progress after rounds ``1..k``.
    """
    fault = spec.fault
    if fault == "init_error":
        return 0
    if fault in ("cancel", "cancel_close_error", "kill"):
        return spec.at_chunk
    if fault in ("raise", "keyboard_interrupt", "error", "stall", "kill_busy"):
        return spec.at_chunk - 1
    return spec.chunks - 1  # no fault, close_error: over with the last chunk


def make_plan(seed: int, uploads: int, config: DrillConfig | None = None) -> Plan:
    """The plan of a drill of ``uploads`` uploads, from ``random.Random(seed)`` alone."""
    if uploads < 1:
        raise ValueError(f"a drill needs at least one upload, got {uploads}")
    config = config or DrillConfig()
    rng = random.Random(seed)
    ups, spg = config.uploads_per_session, config.sessions_per_group

    n_sessions = math.ceil(uploads / ups)
    per_session = [ups] * (n_sessions - 1) + [uploads - ups * (n_sessions - 1)]
    groups = tuple(tuple(per_session[i : i + spg]) for i in range(0, n_sessions, spg))

    faulted = round(uploads * config.fault_share)
    kinds: list[str | None] = list(rng.sample(UPLOAD_FAULTS, min(faulted, len(UPLOAD_FAULTS))))
    weights = [FAULT_WEIGHTS[f] for f in UPLOAD_FAULTS]
    kinds += rng.choices(UPLOAD_FAULTS, weights, k=max(0, faulted - len(kinds)))
    kinds += [None] * (uploads - len(kinds))
    rng.shuffle(kinds)

    scenarios = list(rng.sample(GROUP_SCENARIOS, min(len(groups), len(GROUP_SCENARIOS))))
    scenarios += rng.choices(GROUP_SCENARIOS, SCENARIO_WEIGHTS, k=max(0, len(groups) - len(scenarios)))
    rng.shuffle(scenarios)

    # The events' draws come before the uploads' (the order of draws is the plan: a
    # seed must keep giving the same plan); their rounds are fitted to the uploads
    # once those are drawn.
    drawn = []
    for g, scenario in enumerate(scenarios):
        if scenario == "calm":
            continue
        s = rng.randrange(len(groups[g]))
        after_round = rng.randint(1, config.max_chunks - 1)
        crashes = 1 if scenario == "session_crash" else config.max_restarts + 1
        drawn.append((g, scenario, s, after_round, tuple(rng.choice(CRASH_METHODS) for _ in range(crashes))))

    specs: list[UploadSpec] = []
    index = 0
    for g, sessions in enumerate(groups):
        for s, count in enumerate(sessions):
            for _ in range(count):
                specs.append(_upload(rng, config, index, g, s, kinds[index]))
                index += 1

    events = []
    for g, scenario, s, after_round, how in drawn:
        s, last = _mid_upload_session(rng, config, specs, groups, g, s)
        if after_round > last:
            after_round = 1 + (after_round - 1) % last
        n = len(groups[g])
        events.append(
            SessionEvent(
                group=g,
                session=s,
                kind=scenario,
                after_round=after_round,
                targets=tuple((s + j) % n for j in range(len(how))),
                how=how,
            )
        )

    plan = Plan(
        seed=seed,
        config=config,
        uploads=tuple(specs),
        groups=groups,
        scenarios=tuple(scenarios),
        events=tuple(events),
    )
    return plan


def _mid_upload_session(
    rng: random.Random,
    config: DrillConfig,
    specs: list[UploadSpec],
    groups: tuple[tuple[int, ...], ...],
    g: int,
    s: int,
) -> tuple[int, int]:
    """The session of group ``g`` that fires its crash (the drawn ``s``, else the
    next one with an upload to crash in the middle of) and the last round it
    may fire after (``>= 1``). A group without any (a lone one-chunk upload, say)
    gets one: the firing session's first upload is redrawn without a fault,
    with ``max_chunks`` chunks (the rng is past every other draw by then, so no
    other part of the plan changes)."""
    n = len(groups[g])

    def last_round(session: int) -> int:
        return max((mid_upload_rounds(u) for u in specs if u.group == g and u.session == session), default=0)

    for j in range(n):
        last = last_round((s + j) % n)
        if last >= 1:
            return (s + j) % n, last
    first = next(i for i, u in enumerate(specs) if u.group == g and u.session == s)
    old = specs[first]
    cs = config.chunk_size
    specs[first] = UploadSpec(
        index=old.index,
        group=g,
        session=s,
        size=rng.randint((config.max_chunks - 1) * cs + 1, config.max_chunks * cs),
        chunks=config.max_chunks,
        writer=old.writer,
        fault=None,
        at_chunk=0,
        via=None,
        content_seed=rng.getrandbits(64),
    )
    return s, last_round(s)


def _upload(
    rng: random.Random, config: DrillConfig, index: int, group: int, session: int, fault: str | None
) -> UploadSpec:
    cs = config.chunk_size
    needs_two = fault in ("stall", "cancel", "cancel_close_error", "kill")
    chunks = rng.randint(2 if needs_two else 1, config.max_chunks)
    size = rng.randint((chunks - 1) * cs + 1, chunks * cs)
    at_chunk = 0
    via = None
    if fault in ("raise", "keyboard_interrupt", "error", "kill_busy"):
        at_chunk = rng.randint(1, chunks)
    elif fault == "stall":
        at_chunk = rng.randint(1, chunks - 1)  # a stall on the last chunk would simply complete
    elif fault in ("cancel", "cancel_close_error", "kill"):
        at_chunk = rng.randint(0, chunks - 1)
    if fault in ("cancel", "cancel_close_error"):
        via = rng.choice(("session", "channel"))
    writer = "memory"
    if fault not in FAULTY_ONLY and rng.random() < config.tmpfile_share:
        writer = "tmpfile"
    return UploadSpec(
        index=index,
        group=group,
        session=session,
        size=size,
        chunks=chunks,
        writer=writer,
        fault=fault,
        at_chunk=at_chunk,
        via=via,
        content_seed=rng.getrandbits(64),
    )

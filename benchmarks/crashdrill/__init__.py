"""The crash drill: many concurrent uploads with faults injected at random, under
a supervision tree, and the invariants that prove nothing was lost or leaked.

``liveupload crashtest [--uploads N] [--seed S] [--duration SECONDS]`` runs it
(``cli``). A run is three steps, one module each:

- ``plan.make_plan(seed, uploads)``: the fault plan, drawn up front from
  ``random.Random(seed)``, so a seed reproduces it;
- ``run.run_plan(plan)``: executes it (sessions under a top-level supervisor,
  client threads driving uploads stop-and-wait) and records what happened;
- ``invariants.check(result)`` then ``report.render(result, violations)``.
"""

from benchmarks.crashdrill.invariants import INVARIANTS, Violation, check
from benchmarks.crashdrill.plan import DrillConfig, Plan, SessionEvent, UploadSpec, make_plan
from benchmarks.crashdrill.report import render
from benchmarks.crashdrill.run import RunResult, run_plan

__all__ = [
    "INVARIANTS",
    "DrillConfig",
    "Plan",
    "RunResult",
    "SessionEvent",
    "UploadSpec",
    "Violation",
    "check",
    "make_plan",
    "render",
    "run_plan",
]

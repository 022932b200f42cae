"""The harness's scenarios, one idea per module.

Each scenario module has ``NAME``, ``steps(params) -> int`` (how many progress
ticks it will make), ``run(params, progress) -> dict`` (its JSON section:
``rows``, ``targets`` and whatever else it measured) and ``COLUMNS`` (how its
rows print as a table). ``baselines`` is not a scenario: it holds the
non-actor and plain-Pykka peers that ``channels`` and ``spawn`` run beside
ours in the same run.
"""

from __future__ import annotations

import importlib
from types import ModuleType

NAMES = ("channels", "spawn", "blocking", "crash", "server", "events", "wire", "s3")
"""The scenarios, in the order a run of several takes them."""

DEFAULT = tuple(name for name in NAMES if name != "s3")
"""What ``liveupload bench`` runs when no scenario is named: all but ``s3``,
which needs OpenStack Swift installed (``liveupload bench s3`` runs it)."""

__all__ = ["DEFAULT", "NAMES", "load"]


def load(name: str) -> ModuleType:
    """The module of scenario ``name``."""
    if name not in NAMES:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(NAMES)}")
    return importlib.import_module(f"benchmarks.scenarios.{name}")

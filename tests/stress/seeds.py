"""The crash drill's random seed: one per run, under a stable test id, replayed
while it fails.

Where the seed comes from, first match wins: ``--drill-seed S``, the
``LIVEUPLOAD_DRILL_SEED`` environment variable, the seed this test last failed
with (kept in pytest's cache, so ``--lf`` replays the failure), else a fresh
one from ``os.urandom``. A failing run records its seed; a passing one forgets
it, so the next run draws again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

OPTION = "--drill-seed"
ENV = "LIVEUPLOAD_DRILL_SEED"
CACHE_PREFIX = "liveupload/drill-seed/"


class Cache(Protocol):
    """What we use of ``pytest.Cache``."""

    def get(self, key: str, default: Any) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


def draw() -> int:
    return int.from_bytes(os.urandom(4), "big")


def cache_key(nodeid: str) -> str:
    return CACHE_PREFIX + nodeid


def choose_seed(
    option: str | None, env: str | None, cache: Cache | None, nodeid: str, fresh: Callable[[], int] = draw
) -> tuple[int, str]:
    """The seed of this run and where it came from."""
    if option:
        return int(option), OPTION
    if env:
        return int(env), ENV
    failed = cache.get(cache_key(nodeid), None) if cache is not None else None
    if failed is not None:
        return int(failed), "the seed this test last failed with (pytest's cache)"
    return fresh(), "drawn at random"


def remember(cache: Cache | None, nodeid: str, seed: int, failed: bool) -> None:
    """Keep ``seed`` for the next run if it failed; forget it if it passed."""
    if cache is not None:
        cache.set(cache_key(nodeid), seed if failed else None)

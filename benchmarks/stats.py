"""Summary statistics for the harness: percentiles and rates, no numpy needed.

Percentiles use linear interpolation between closest ranks (numpy's default
``linear`` method), so p50 of ``[1, 2]`` is 1.5 and p99 of 100 samples lies
between the 99th and the 100th. Latencies are kept in seconds inside the
harness and reported in milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["percentile", "latency_summary", "rate", "ratio"]


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``samples``; NaN if there are none."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q!r}")
    if not samples:
        return math.nan
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def latency_summary(seconds: Iterable[float]) -> dict[str, float | int]:
    """``{"n", "p50_ms", "p99_ms", "max_ms", "mean_ms"}`` of latencies given in seconds."""
    values = sorted(seconds)
    if not values:
        return {"n": 0, "p50_ms": math.nan, "p99_ms": math.nan, "max_ms": math.nan, "mean_ms": math.nan}
    return {
        "n": len(values),
        "p50_ms": percentile(values, 50) * 1e3,
        "p99_ms": percentile(values, 99) * 1e3,
        "max_ms": values[-1] * 1e3,
        "mean_ms": sum(values) / len(values) * 1e3,
    }


def rate(count: float, seconds: float) -> float:
    """``count`` per second over ``seconds``; NaN for an empty interval."""
    return count / seconds if seconds > 0 else math.nan


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when either is missing or the denominator is 0."""
    if numerator is None or denominator is None:
        return math.nan
    if not denominator or math.isnan(denominator) or math.isnan(numerator):
        return math.nan
    return numerator / denominator

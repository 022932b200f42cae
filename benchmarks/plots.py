"""PNG plots of the scaling runs (matplotlib, Agg backend: no display needed).

* ``channels.png``: chunks/s and p99 chunk latency against U, per writer, for
  ours (each substrate) and the baselines, log-log.
* ``spawn.png``: microseconds per spawn and resident memory against the
  number of live channels, per substrate.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["write_plots"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _label(row: dict[str, Any]) -> str:
    return f"ours ({row['substrate']})" if row["flavor"] == "ours" else row["flavor"]


def plot_channels(section: dict[str, Any], path: str) -> str:
    plt = _pyplot()
    writers = sorted({r["writer"] for r in section["rows"]}, key=["null", "tmpfile"].index)
    fig, axes = plt.subplots(2, len(writers), figsize=(6 * len(writers), 8), squeeze=False)
    for col, writer in enumerate(writers):
        rows = [r for r in section["rows"] if r["writer"] == writer]
        series: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            series.setdefault(_label(row), []).append(row)
        for label, points in series.items():
            points.sort(key=lambda r: r["uploads"])
            u = [r["uploads"] for r in points]
            axes[0][col].plot(u, [r["chunks_per_s"] for r in points], marker="o", label=label)
            axes[1][col].plot(u, [r["p99_ms"] for r in points], marker="o", label=label)
        for row, (quantity, unit) in enumerate([("chunks/s", ""), ("p99 chunk latency", "ms")]):
            ax = axes[row][col]
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("concurrent uploads U")
            ax.set_ylabel(f"{quantity} {unit}".strip())
            ax.set_title(f"{writer} writer: {quantity}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize="small")
    fig.suptitle(f"channels: {section['chunk_bytes']:,}-byte chunks, stop-and-wait")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_spawn(section: dict[str, Any], path: str) -> str:
    plt = _pyplot()
    fig, (cost, memory) = plt.subplots(1, 2, figsize=(12, 4.5))
    for substrate in sorted({p["substrate"] for p in section["curve"]}):
        points = [p for p in section["curve"] if p["substrate"] == substrate]
        live = [p["live"] for p in points]
        cost.plot(live, [p["us_per_spawn"] for p in points], marker="o", label=substrate)
        memory.plot(live, [p["rss_mb"] for p in points], marker="o", label=substrate)
    cost.set_title("µs per channel spawn (per batch)")
    cost.set_xlabel("live channels")
    cost.set_ylabel("µs / spawn")
    memory.set_title("resident memory")
    memory.set_xlabel("live channels")
    memory.set_ylabel("RSS MiB")
    for ax in (cost, memory):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_plots(results: dict[str, Any], directory: str) -> list[str]:
    """Plot every scaling section present in ``results``; the files written."""
    os.makedirs(directory, exist_ok=True)
    written = []
    scenarios = results["scenarios"]
    channels = scenarios.get("channels")
    if channels and channels.get("rows"):
        written.append(plot_channels(channels, os.path.join(directory, "channels.png")))
    spawn = scenarios.get("spawn")
    if spawn and spawn.get("curve"):
        written.append(plot_spawn(spawn, os.path.join(directory, "spawn.png")))
    return written

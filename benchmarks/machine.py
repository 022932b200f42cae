"""What machine a run was made on: the figures mean little without it."""

from __future__ import annotations

import os
import platform
import sys
import threading
from importlib import metadata
from typing import Any

__all__ = ["describe_machine"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="utf-8") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _load_average() -> list[float] | None:
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def describe_machine() -> dict[str, Any]:
    """CPU count and model, memory, OS, Python and the versions of the libraries
    measured, the limits that bound how many threads (processes today) fit,
    and the load average (1, 5, 15 minutes) as the run starts: how busy the
    machine already was."""
    import psutil

    memory = psutil.virtual_memory()
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_usable": affinity,
        "cpu_model": _cpu_model(),
        "memory_total_bytes": memory.total,
        "memory_available_bytes": memory.available,
        "load_average": _load_average(),
        "os": platform.platform(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "gil_enabled": getattr(sys, "_is_gil_enabled", lambda: True)(),
        "thread_stack_size": threading.stack_size() or None,
        "pid_max": _read_int("/proc/sys/kernel/pid_max"),
        "threads_max": _read_int("/proc/sys/kernel/threads-max"),
        "versions": {
            name: _version(name)
            for name in ("liveupload", "pykka", "structlog", "psutil", "matplotlib", "tqdm")
        },
    }

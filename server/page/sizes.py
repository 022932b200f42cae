"""File sizes in words a person reads at a glance: ``human_size(40000)`` is
``"39.1 KB"`` (units of 1024, one decimal), with the exact count kept for a
``title`` and for machine readers (``exact_size``)."""

from __future__ import annotations

__all__ = ["exact_size", "human_size"]

_UNITS = ("KB", "MB", "GB", "TB")


def human_size(size: int) -> str:
    """``size`` bytes in the largest unit of 1024 that keeps it at least 1:
    ``"0 bytes"``, ``"1 byte"``, ``"999 bytes"``, ``"39.1 KB"``, ``"7.6 MB"``."""
    if size < 1024:
        return exact_size(size)
    value, unit = size / 1024, _UNITS[0]
    for larger in _UNITS[1:]:
        if round(value, 1) < 1024:  # 1048575 bytes is "1.0 MB", not "1024.0 KB"
            break
        value, unit = value / 1024, larger
    return f"{value:.1f} {unit}"


def exact_size(size: int) -> str:
    """``"1 byte"`` or ``"<size> bytes"``."""
    return "1 byte" if size == 1 else f"{size} bytes"

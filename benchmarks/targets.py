"""The issue's targets as data: a figure, a bound, and whether the run met it."""

from __future__ import annotations

import math
import operator
from typing import Any

__all__ = ["target", "TableSpec"]

_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}

TableSpec = tuple[str, str, list[tuple[str, str, str]]]
"""``(rows key in the section, title, [(column key, header, format spec)])``."""


def target(name: str, value: float | None, op: str, limit: float, unit: str = "", detail: str = "") -> dict[str, Any]:
    """A target check: ``met`` is None when the figure could not be measured."""
    measured = value is not None and not (isinstance(value, float) and math.isnan(value))
    return {
        "name": name,
        "value": value if measured else None,
        "op": op,
        "limit": limit,
        "unit": unit,
        "met": bool(_OPS[op](value, limit)) if measured else None,
        "detail": detail,
    }

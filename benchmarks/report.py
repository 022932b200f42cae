"""Turning a run's results into what people read: tables, a JSON file, plots.

The results are one dict: ``machine``, ``params``, ``started``/``seconds``
and ``scenarios`` (name -> section). A section has ``rows`` and ``targets``,
plus whatever else its scenario measured; each scenario module's ``TABLES``
says which of its lists print as tables and with which columns. The JSON file
holds every figure (NaN written as ``null``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

from benchmarks.scenarios import load
from benchmarks.targets import TableSpec

__all__ = ["render", "render_table", "render_targets", "write_json", "json_safe"]


def _cell(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if spec and isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return format(value, spec)
        except ValueError:
            return str(value)
    return str(value)


def render_table(
    title: str, columns: Sequence[tuple[str, str, str]], rows: Iterable[dict[str, Any]], markdown: bool = False
) -> str:
    """A table with a title, numbers right-aligned; GitHub markdown if asked."""
    headers = [header for _, header, _ in columns]
    body = [[_cell(row.get(key), spec) for key, _, spec in columns] for row in rows]
    numeric = [bool(spec) for _, _, spec in columns]
    if markdown:
        lines = [f"**{title}**", "", "| " + " | ".join(headers) + " |"]
        lines.append("| " + " | ".join("---:" if n else "---" for n in numeric) + " |")
        lines.extend("| " + " | ".join(cells) + " |" for cells in body)
        return "\n".join(lines)
    widths = [max([len(h), *(len(cells[i]) for cells in body)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = (c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, numeric, strict=True))
        return "  ".join(padded).rstrip()

    out = [title, line(headers), line(["-" * w for w in widths])]
    out.extend(line(cells) for cells in body)
    return "\n".join(out)


TARGET_COLUMNS = [
    ("status", "", ""),
    ("name", "target", ""),
    ("measured", "measured", ""),
    ("bound", "bound", ""),
    ("detail", "detail", ""),
]


def _number(value: float) -> str:
    """Counts in full with thousands separators, other figures to 3 significant digits."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    return f"{value:.3g}"


def render_targets(targets: Iterable[dict[str, Any]], markdown: bool = False) -> str:
    rows = []
    for t in targets:
        status = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        value = t["value"]
        measured = "-" if value is None else f"{_number(value)} {t['unit']}".strip()
        rows.append(
            {
                "status": status,
                "name": t["name"],
                "measured": measured,
                "bound": f"{t['op']} {_number(t['limit'])} {t['unit']}".strip(),
                "detail": t["detail"],
            }
        )
    return render_table("targets", TARGET_COLUMNS, rows, markdown)


def _machine_line(machine: dict[str, Any]) -> str:
    versions = machine.get("versions", {})
    load = machine.get("load_average")
    busy = f", load average {load[0]:.1f} at the start" if load else ""
    return (
        f"machine: {machine.get('cpu_count')} x {machine.get('cpu_model')}, "
        f"{machine.get('memory_total_bytes', 0) / 2**30:.1f} GiB, {machine.get('os')}, "
        f"Python {machine.get('python')}, Pykka {versions.get('pykka')}{busy}"
    )


def render(results: dict[str, Any], markdown: bool = False) -> str:
    """Every scenario's tables, then the targets, as text (or markdown)."""
    parts = [_machine_line(results["machine"])]
    parts.append(
        f"preset {results['params']['preset']}, substrates {', '.join(results['params']['substrates'])}, "
        f"{results['seconds']:.1f} s"
    )
    targets: list[dict[str, Any]] = []
    for name, section in results["scenarios"].items():
        if section.get("skipped"):
            parts.append(f"{name}: skipped: {section['skipped']}")
        elif section.get("error"):
            parts.append(f"{name}: FAILED: {section['error']}")
        else:
            specs: list[TableSpec] = load(name).TABLES
            for key, title, columns in specs:
                if section.get(key):
                    parts.append(render_table(title, columns, section[key], markdown))
        targets.extend(section.get("targets", []))
    if targets:
        parts.append(render_targets(targets, markdown))
    return "\n\n".join(parts) + "\n"


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None`` and tuples as lists."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(results: dict[str, Any], path: str) -> str:
    """Write ``results`` to ``path`` (directories made as needed); returns the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(json_safe(results), f, indent=2, allow_nan=False, default=repr)
        f.write("\n")
    return path

"""``liveupload bench --markdown FILE``: a run's figures as a section of a
Markdown page (``docs/benchmarks.md``).

The section lies between two marker lines; everything outside them is
hand-written and kept as it is. A file without the markers gets them
appended; a missing file is created. The section is dated by the run itself
(its start time, duration, machine and preset), never by hand.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from benchmarks.report import render

__all__ = ["BEGIN", "END", "figures", "replace_section", "write_figures"]

BEGIN = "<!-- figures: begin (written by `liveupload bench --markdown FILE`; edits here are overwritten) -->"
END = "<!-- figures: end -->"


def figures(results: dict[str, Any], images: Sequence[str] = ()) -> str:
    """The run's figures as Markdown: when it ran (then the machine, preset and
    duration, as ``render`` prints them), its tables, then ``images``."""
    lines = [f"Run started {results['started']}.", "", render(results, markdown=True).rstrip("\n")]
    if images:
        lines.append("")
        lines.extend(f"![{os.path.splitext(os.path.basename(image))[0]}]({image})" for image in images)
    return "\n".join(lines) + "\n"


def replace_section(page: str, section: str) -> str:
    """``page`` with the text between its markers replaced by ``section``
    (the markers appended first if ``page`` has none)."""
    start = page.find(BEGIN)
    end = page.find(END, start + len(BEGIN)) if start >= 0 else -1
    if start < 0 or end < 0:
        separator = "" if not page or page.endswith("\n\n") else ("\n" if page.endswith("\n") else "\n\n")
        return f"{page}{separator}{BEGIN}\n\n{section}\n{END}\n"
    return f"{page[: start + len(BEGIN)]}\n\n{section}\n{page[end:]}"


def write_figures(path: str, results: dict[str, Any], plots: Sequence[str] = ()) -> str:
    """Write the run's figures into the page at ``path``; ``plots`` (files
    written by the run) are linked relative to the page. Returns ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    images = [os.path.relpath(os.path.abspath(plot), folder).replace(os.sep, "/") for plot in plots]
    page = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            page = f.read()
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(replace_section(page, figures(results, images)))
    return path

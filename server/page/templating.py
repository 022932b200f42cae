"""The Jinja2 environment of the page: ``templates/`` and ``static/``, shipped
as package data, autoescaped by markupsafe.

Templates under ``templates/live/`` make the LiveView tree, whose HTML must
carry no stray whitespace: there, a line break and the indentation after it
are not output, so the HTML can be laid out one element per line; a space
that matters is written inside a line (or as ``{{ " " }}``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined

__all__ = ["ENVIRONMENT", "STATIC_DIR", "TEMPLATES_DIR", "macros"]

_HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = _HERE / "templates"
STATIC_DIR = _HERE / "static"

_LINE_BREAK = re.compile(r"\n[ \t]*")


class _Loader(FileSystemLoader):
    """Files from ``templates/`` then ``static/``; ``live/*`` without line breaks."""

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        if template.startswith("live/"):
            source = _LINE_BREAK.sub("", source)
        return source, filename, uptodate


def _environment(loader: BaseLoader) -> Environment:
    return Environment(loader=loader, autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)


ENVIRONMENT = _environment(_Loader([TEMPLATES_DIR, STATIC_DIR]))


def macros(name: str) -> Any:
    """The macros of template ``name``, callable from Python (they return Markup)."""
    return ENVIRONMENT.get_template(name).module

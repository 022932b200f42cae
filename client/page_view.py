"""Reading the upload page as a client: the rendered tree and what it shows.

:class:`RenderedState` keeps a LiveView rendered tree as the client does
(``{"0": d0, ..., "s": statics}`` from the join, then diffs; nested trees
and keyed comprehensions as ``docs/protocol.md`` describes them). :func:`read_page` parses HTML
(the whole document of the dead render, or the LiveView root's content) into
a :class:`PageView`: what a client needs to join (the LiveView root's
attributes, the CSRF token, the socket path), the form's event names, the
live file inputs (with their ref lists and the limits the page states), the
entries with their state and errors, the saved files (each as ``name (N
bytes)``, N read exactly from the size's ``data-bytes``) and the notice. It is
the one parser of the page, for the client and the tests alike.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

__all__ = ["EntryView", "InputView", "PageView", "RenderedState", "read_page"]


class RenderedState:
    """A rendered tree, kept up to date with diffs as LiveView's client merges
    them (``rendered.js``): string dynamics, nested trees, and keyed
    comprehensions (``{"s", "k": {i: row, "kc": n}}``; in a diff a row may be
    its changed fields, its old index, or ``[old index, fields]`` when moved)."""

    def __init__(self, rendered: dict[str, Any]) -> None:
        self.tree: dict[str, Any] = {}
        self.replace(rendered)

    def replace(self, rendered: dict[str, Any]) -> None:
        statics = rendered.get("s")
        if not isinstance(statics, list) or not all(isinstance(s, str) for s in statics):
            raise ValueError("a rendered tree needs a list of string statics under 's'")
        self.tree = copy.deepcopy(rendered)

    def apply(self, diff: dict[str, Any]) -> None:
        """Apply a diff: what changed, or a whole new tree when it has ``s``."""
        if "s" in diff:
            self.replace(diff)
            return
        _merge(self.tree, copy.deepcopy(diff))

    def html(self) -> str:
        out: list[str] = []
        _to_html(self.tree, out)
        return "".join(out)


def _merge(target: dict[str, Any], source: dict[str, Any]) -> None:
    if "k" in source:
        _merge_keyed(target, source["k"])
        return
    for key, value in source.items():
        old = target.get(key)
        if isinstance(value, dict) and "s" not in value and isinstance(old, dict):
            _merge(old, value)
        elif isinstance(value, (str, dict)):
            target[key] = value
        else:
            raise ValueError(f"unsupported diff entry {key!r}: {type(value).__name__}")


def _merge_keyed(target: dict[str, Any], keyed: dict[str, Any]) -> None:
    rows = target.setdefault("k", {"kc": 0})
    before = copy.deepcopy(rows) if keyed.get("km") else rows
    for key, entry in keyed.items():
        if key in ("kc", "km"):
            continue
        if isinstance(entry, list):
            old, fields = entry
            rows[key] = copy.deepcopy(before[str(old)])
            _merge(rows[key], fields)
        elif isinstance(entry, int):
            rows[key] = copy.deepcopy(before[str(entry)])
        else:
            _merge(rows.setdefault(key, {}), entry)
    count = int(keyed["kc"])
    for i in range(count, int(rows.get("kc", 0))):
        rows.pop(str(i), None)
    rows["kc"] = count


def _to_html(node: dict[str, Any], out: list[str]) -> None:
    statics = node["s"]
    if "k" in node:
        rows = node["k"]
        for i in range(int(rows.get("kc", 0))):
            _fill(rows.get(str(i), {}), statics, out)
    else:
        _fill(node, statics, out)


def _fill(values: dict[str, Any], statics: list[str], out: list[str]) -> None:
    out.append(statics[0])
    for i, static in enumerate(statics[1:]):
        value = values.get(str(i), "")
        if isinstance(value, dict):
            _to_html(value, out)
        else:
            out.append(str(value))
        out.append(static)


@dataclass
class InputView:
    """A live file input and the limits its fieldset states."""

    attrs: dict[str, str]
    limits: dict[str, int] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return self.attrs.get("data-phx-upload-ref", "")

    @property
    def name(self) -> str:
        return self.attrs.get("name", "")

    @property
    def multiple(self) -> bool:
        return "multiple" in self.attrs

    def refs(self, kind: str) -> list[str]:
        """``active``, ``done``, ``preflighted`` or ``error`` entry refs."""
        value = self.attrs.get(f"data-phx-{kind}-refs", "")
        return [ref for ref in value.split(",") if ref]


@dataclass
class EntryView:
    """One entry's ``<li>``: its ref, state, errors and cancel button."""

    ref: str
    state: str
    errors: list[str] = field(default_factory=list)
    cancel: dict[str, str] = field(default_factory=dict)  # phx-click, phx-value-ref, phx-value-upload


@dataclass
class PageView:
    """What the page shows; ``root``, ``csrf`` and ``socket_path`` come from
    the document around the LiveView root (empty/default in a diff's HTML)."""

    root: dict[str, str] = field(default_factory=dict)  # id, data-phx-session, data-phx-static
    csrf: str = ""
    socket_path: str = "/live"
    form: dict[str, str] = field(default_factory=dict)
    inputs: list[InputView] = field(default_factory=list)
    entries: dict[str, EntryView] = field(default_factory=dict)
    upload_errors: list[str] = field(default_factory=list)
    saved: list[str] = field(default_factory=list)
    notice: str = ""


#: The socket path in the page's boot script: ``new LiveView.LiveSocket("/live", ...``.
_SOCKET_PATH = re.compile(r"new LiveView\.LiveSocket\((\"(?:[^\"\\]|\\.)*\")")


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.view = PageView()
        self._fieldset: dict[str, str] = {}
        self._entry: EntryView | None = None
        self._text_into: str | None = None  # "error", "saved", "upload_error", "notice"
        self._text: list[str] = []
        self._list: str | None = None  # id/class of the <ul> we are in
        self._script = False
        self._exact = False  # inside a size whose exact bytes were taken from data-bytes

    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: (v if v is not None else "") for k, v in attr_list}
        classes = attrs.get("class", "").split()
        self._script = tag == "script"
        if tag == "div" and "data-phx-main" in attrs and not self.view.root:
            self.view.root = attrs
        elif tag == "meta" and attrs.get("name") == "csrf-token":
            self.view.csrf = attrs.get("content", "")
        elif tag == "form" and "phx-submit" in attrs and not self.view.form:
            self.view.form = attrs
        elif tag == "fieldset":
            self._fieldset = attrs
        elif tag == "input" and attrs.get("type") == "file" and "data-phx-upload-ref" in attrs:
            limits = {}
            for key in ("max-entries", "max-file-size", "chunk-size"):
                value = self._fieldset.get(f"data-{key}", "")
                if value.isdigit():
                    limits[key.replace("-", "_")] = int(value)
            self.view.inputs.append(InputView(attrs, limits))
        elif tag == "ul":
            if attrs.get("id") == "saved":
                self._list = "saved"
            else:
                self._list = "upload-errors" if "upload-errors" in classes else None
        elif tag == "li" and "entry" in classes:
            self._entry = EntryView(attrs.get("data-ref", ""), attrs.get("data-state", ""))
            self.view.entries[self._entry.ref] = self._entry
        elif tag == "li" and self._list == "saved":
            self._start_text("saved")
        elif tag == "span" and self._text_into == "saved" and attrs.get("data-bytes", "").isdigit():
            self._text.append(f"{attrs['data-bytes']} bytes")  # the exact size, not the rounded words
            self._exact = True
        elif tag == "li" and self._list == "upload-errors":
            self._start_text("upload_error")
        elif tag == "span" and "error" in classes and self._entry is not None:
            self._start_text("error")
        elif tag == "button" and self._entry is not None and "phx-click" in attrs:
            self._entry.cancel = {k: v for k, v in attrs.items() if k.startswith("phx-")}
        elif tag == "p" and attrs.get("id") == "notice":
            self._start_text("notice")

    def handle_endtag(self, tag: str) -> None:
        self._script = False
        if tag == "span":
            self._exact = False
        if tag == "fieldset":
            self._fieldset = {}
        elif tag == "ul":
            self._list = None
        elif tag == "li" and self._text_into in ("saved", "upload_error"):
            self._end_text()
        elif tag == "li":
            self._entry = None
        elif (tag == "span" and self._text_into == "error") or (tag == "p" and self._text_into == "notice"):
            self._end_text()

    def handle_data(self, data: str) -> None:
        if self._script:
            match = _SOCKET_PATH.search(data)
            if match:
                self.view.socket_path = json.loads(match.group(1))
        if self._text_into is not None and not self._exact:
            self._text.append(data)

    def _start_text(self, into: str) -> None:
        self._text_into, self._text = into, []

    def _end_text(self) -> None:
        text = "".join(self._text).strip()
        into, self._text_into = self._text_into, None
        if into == "error" and self._entry is not None:
            self._entry.errors.append(text)
        elif into == "saved":
            self.view.saved.append(text)
        elif into == "upload_error":
            self.view.upload_errors.append(text)
        elif into == "notice":
            self.view.notice = text


def read_page(html: str) -> PageView:
    """What the page shows, read from its HTML."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.view

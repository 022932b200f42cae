"""Reading the upload page as a client: the rendered tree and what it shows.

:class:`RenderedState` (:class:`client.rendered.RenderedTree`) keeps a
LiveView rendered tree as Phoenix's client does, flat or nested, merging diffs
without rendering. :func:`read_page` parses HTML
(the whole document of the dead render, or the LiveView root's content) into
a :class:`PageView`: what a client needs to join (the LiveView root's
attributes, the CSRF token, the socket path), the form's event names, the
live file inputs (with their ref lists and the limits the page states), the
entries with their state and errors, the saved files (each as ``name (N
bytes)``, N read exactly from the size's ``data-bytes``) and the notice. It is
the one parser of the page, for the client and the tests alike.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from client.rendered import RenderedTree

__all__ = ["EntryView", "InputView", "PageView", "RenderedState", "read_page"]


RenderedState = RenderedTree
"""The rendered tree a page is kept in (:class:`client.rendered.RenderedTree`;
the old name, kept for the tests' wire client)."""


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

"""The HTML document for ``/``: ``templates/page.html.j2`` around the dead
render, with the stylesheet (``static/page.css``) and the boot script
(``templates/page.js.j2``) inline.

The boot script starts Phoenix's ``LiveSocket`` and fills the
``#connection-lost`` banner (``role="alert"``, outside the LiveView root)
while LiveView marks the root with ``phx-error`` (socket down), emptying it
when the root rejoins: a live region whose text changes is what screen
readers announce. While the root is marked, entries still uploading show a
real "failed" text (the stylesheet), not a decoration.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from server.session_token import PageSession

from .rendered import Rendered

__all__ = ["CONNECTION_LOST", "PAGE_CSS", "page_html"]

_HERE = Path(__file__).resolve().parent

#: The page's stylesheet. ``#connection-lost`` shows only while it has text;
#: entries still uploading then show their "failed" text.
PAGE_CSS = (_HERE / "static" / "page.css").read_text(encoding="utf-8")

#: What the ``#connection-lost`` alert says while the socket is down.
CONNECTION_LOST = "Connection lost: uploads in progress have failed. Reconnecting\u2026"

_TEMPLATES = Environment(
    loader=FileSystemLoader([_HERE / "templates", _HERE / "static"]),
    autoescape=True,
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def page_html(
    page: PageSession,
    rendered: Rendered,
    *,
    title: str = "liveupload",
    assets_path: str = "/assets",
    socket_path: str = "/live",
) -> str:
    """The document: the dead render inside the LiveView root, Phoenix's own
    scripts under ``assets_path``, and the boot script joining ``socket_path``."""
    return _TEMPLATES.get_template("page.html.j2").render(
        page=page,
        body=Markup(rendered.to_html()),
        title=title,
        assets=assets_path.rstrip("/"),
        socket_path=socket_path,
        connection_lost=CONNECTION_LOST,
    )

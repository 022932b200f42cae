"""The HTML document for ``/``: ``templates/page.html.j2`` around the dead
render, with the stylesheet (``static/page.css``), the icon
(``static/favicon.svg``) and the boot script (``templates/page.js.j2``) inline.

The boot script starts Phoenix's ``LiveSocket`` and fills the
``#connection-lost`` banner (``role="alert"``, outside the LiveView root)
while LiveView marks the root with ``phx-error`` (socket down), emptying it
when the root rejoins: a live region whose text changes is what screen
readers announce. While the root is marked, entries still uploading show a
real "failed" text (the stylesheet), not a decoration.
"""

from __future__ import annotations

import urllib.parse

from markupsafe import Markup

from server.session_token import PageSession

from .rendered import Rendered
from .templating import ENVIRONMENT, STATIC_DIR

__all__ = ["CONNECTION_LOST", "FAVICON_SVG", "PAGE_CSS", "page_html"]

#: The page's stylesheet. ``#connection-lost`` shows only while it has text;
#: entries still uploading then show their "failed" text.
PAGE_CSS = (STATIC_DIR / "page.css").read_text(encoding="utf-8")

#: The page's icon (an upward arrow), inline as a ``data:`` URL so that no
#: request for it can fail; the app also serves it at ``/favicon.ico``.
FAVICON_SVG = (STATIC_DIR / "favicon.svg").read_text(encoding="utf-8").strip()
_FAVICON_URL = "data:image/svg+xml," + urllib.parse.quote(FAVICON_SVG)

#: What the ``#connection-lost`` alert says while the socket is down.
CONNECTION_LOST = "Connection lost: uploads in progress have failed. Reconnecting\u2026"

_DOCUMENT = ENVIRONMENT.get_template("page.html.j2")


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
    return _DOCUMENT.render(
        page=page,
        body=Markup(rendered.to_html()),
        title=title,
        assets=assets_path.rstrip("/"),
        socket_path=socket_path,
        connection_lost=CONNECTION_LOST,
        favicon=_FAVICON_URL,
    )

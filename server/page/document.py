"""The HTML document for ``/``: ``templates/page.html.j2`` around the dead
render, with the stylesheet (``static/page.css``), the icon
(``static/favicon.svg``) and the boot script (``templates/page.js.j2``) inline.

The boot script starts Phoenix's ``LiveSocket`` and fills the
``#connection-lost`` banner (``role="alert"``, outside the LiveView root)
while LiveView marks the root with ``phx-error`` (socket down), emptying it
when the root rejoins: a live region whose text changes is what screen
readers announce. While the root is marked, every entry shows a real text
(the stylesheet): "failed" while uploading, "not saved" once at 100%, "not
sent" before it started. The files listed but not saved (and any that went just before without the
person's cancel or a save) are then said in the
``#lost-work`` warning (:data:`LOST_WORK`) once the page is back, whether
LiveView's client rejoined or, refused by a server restarted with another
secret, reloaded the page (the names wait in ``sessionStorage``). The script
also lists the empty files LiveView's client skips (``ul.skipped``, next to
their input) and, after a cancel or dismiss, moves focus to the next entry's
button or to the file input.
"""

from __future__ import annotations

import urllib.parse

from markupsafe import Markup

from server.session_token import PageSession

from .rendered import Rendered
from .templating import ENVIRONMENT, STATIC_DIR

__all__ = ["CONNECTION_LOST", "FAVICON_SVG", "LOST_WORK", "PAGE_CSS", "page_html"]

#: The page's stylesheet. ``#connection-lost`` shows only while it has text;
#: entries still uploading then show their "failed" text.
PAGE_CSS = (STATIC_DIR / "page.css").read_text(encoding="utf-8")

#: The page's icon (an upward arrow), inline as a ``data:`` URL so that no
#: request for it can fail; the app also serves it at ``/favicon.ico``.
FAVICON_SVG = (STATIC_DIR / "favicon.svg").read_text(encoding="utf-8").strip()
_FAVICON_URL = "data:image/svg+xml," + urllib.parse.quote(FAVICON_SVG)

#: What the ``#connection-lost`` alert says while the socket is down.
CONNECTION_LOST = "Connection lost: uploads in progress have failed. Reconnecting\u2026"

#: What the ``#lost-work`` warning says once the page is back after a lost
#: connection (rejoined, or reloaded by a server restarted with another
#: secret), if files were listed but not saved: ``{count}`` is "1 file" or
#: "N files", ``{names}`` their names.
LOST_WORK = ("The connection to the server was lost, and with it {count} not yet saved: {names}. "
             "Choose them again and press Upload.")

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
        lost_work=LOST_WORK,
        favicon=_FAVICON_URL,
    )

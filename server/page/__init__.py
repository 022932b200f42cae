"""The upload page as a tiny LiveView renderer.

* :mod:`server.page.rendered`: the rendered tree (statics, escaped
  dynamics, keyed comprehensions; its join form and diffs);
* :mod:`server.page.fragments`: the page's fragments from
  ``templates/live/`` (``slot()`` marks each dynamic; an entry is a row);
* :mod:`server.page.live`: the page as such a tree (``render_upload_page``),
  and ``LivePage``, which keeps it and renders only what changed;
* :mod:`server.page.error_text`: upload errors as codes and in words;
* :mod:`server.page.sizes`: file sizes in human units;
* :mod:`server.page.document`: the HTML document for ``/``
  (``templates/page.html.j2``, ``page.js.j2``, ``static/page.css``,
  ``static/favicon.svg``);
* :mod:`server.page.templating`: the Jinja2 environment (markupsafe escaping).

The page's signed session is :mod:`server.session_token`.
"""

from server.page.document import CONNECTION_LOST, FAVICON_SVG, LOST_WORK, PAGE_CSS, page_html
from server.page.error_text import explain_error, format_error
from server.page.fragments import LIVE_FILE_UPLOAD_HOOK, PageEvents, entry_refs
from server.page.live import LivePage, render_upload_page
from server.page.rendered import Comprehension, Rendered

__all__ = [
    "CONNECTION_LOST",
    "Comprehension",
    "FAVICON_SVG",
    "LIVE_FILE_UPLOAD_HOOK",
    "LivePage",
    "LOST_WORK",
    "PAGE_CSS",
    "PageEvents",
    "Rendered",
    "entry_refs",
    "explain_error",
    "format_error",
    "page_html",
    "render_upload_page",
]

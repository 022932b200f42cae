"""The upload page as a tiny LiveView renderer: no template engine, just static
strings interleaved with string dynamics, as LiveView's wire format wants.

* :class:`Rendered` holds ``statics`` (``len(dynamics) + 1`` literal HTML
  pieces) and ``dynamics``.  Its join form is ``{"0": d0, ..., "s": statics}``
  and :meth:`Rendered.diff` gives only the changed keys.  The client inserts
  string dynamics as raw HTML, so every dynamic is escaped: plain ``str``
  dynamics are escaped on construction and only :class:`Safe` strings (made
  by the helpers here, which escape every value they interpolate) pass as-is.
* :func:`render_upload_page` builds the page from plain data: upload configs
  (each with its ``entries``, the dicts ``UploadSession.uploads()`` returns)
  and the list of saved files.
* :class:`SessionSigner` signs the page's ``data-phx-session`` /
  ``data-phx-static`` tokens with a per-app secret and verifies them on join.
* :func:`page_html` is the full HTTP document for ``/``.
"""

from __future__ import annotations

import html
import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

__all__ = [
    "LIVE_FILE_UPLOAD_HOOK",
    "Safe",
    "escape",
    "safe_join",
    "Rendered",
    "PageEvents",
    "PageSession",
    "SessionSigner",
    "InvalidSession",
    "new_view_id",
    "format_error",
    "entry_refs",
    "file_input",
    "entry_html",
    "entries_html",
    "errors_html",
    "saved_html",
    "render_upload_page",
    "page_html",
]

LIVE_FILE_UPLOAD_HOOK = "Phoenix.LiveFileUpload"


# ------------------------------------------------------------------ escaping


class Safe(str):
    """A string of HTML that needs no more escaping (built by this module)."""

    __slots__ = ()


def escape(value: Any) -> Safe:
    """HTML-escape ``value`` (quotes included, so it is safe in attributes)."""
    if isinstance(value, Safe):
        return value
    return Safe(html.escape(str(value), quote=True))


def safe_join(parts: Iterable[Any], sep: str = "") -> Safe:
    """Join parts into :class:`Safe` HTML, escaping any part that is not Safe."""
    return Safe(escape(sep).join(escape(p) for p in parts))


# ------------------------------------------------------------------ rendered


@dataclass(frozen=True)
class Rendered:
    """A LiveView rendered tree with one level: statics and string dynamics.

    The HTML is ``s[0] + d[0] + s[1] + ... + d[n-1] + s[n]``.  Statics are
    trusted template text; dynamics are escaped unless :class:`Safe`.
    """

    statics: tuple[str, ...]
    dynamics: tuple[str, ...] = field(default=())

    def __init__(self, statics: Sequence[str], dynamics: Sequence[Any] = ()) -> None:
        statics = tuple(statics)
        if not all(isinstance(s, str) for s in statics):
            raise TypeError("statics must be strings")
        if len(statics) != len(dynamics) + 1:
            raise ValueError(
                f"need len(statics) == len(dynamics) + 1, got {len(statics)} statics "
                f"and {len(dynamics)} dynamics"
            )
        object.__setattr__(self, "statics", statics)
        object.__setattr__(self, "dynamics", tuple(str(escape(d)) for d in dynamics))

    def to_html(self) -> str:
        """The full HTML (what the client renders into the view's root)."""
        out = [self.statics[0]]
        for dyn, static in zip(self.dynamics, self.statics[1:]):
            out.append(dyn)
            out.append(static)
        return "".join(out)

    def to_json(self) -> dict[str, Any]:
        """The join form: ``{"0": d0, "1": d1, ..., "s": [statics]}``."""
        payload: dict[str, Any] = {str(i): d for i, d in enumerate(self.dynamics)}
        payload["s"] = list(self.statics)
        return payload

    def diff(self, previous: "Rendered | None") -> dict[str, Any]:
        """The keys whose dynamics changed since ``previous``.

        With no previous render or different statics, the whole tree (with
        ``"s"``), which the client takes as a replacement.
        """
        if previous is None or previous.statics != self.statics:
            return self.to_json()
        return {
            str(i): new
            for i, (old, new) in enumerate(zip(previous.dynamics, self.dynamics))
            if old != new
        }


# -------------------------------------------------------------- page pieces


@dataclass(frozen=True)
class PageEvents:
    """Event names the page binds (``phx-change``, ``phx-submit``, ``phx-click``)."""

    change: str = "validate"
    submit: str = "save"
    cancel: str = "cancel-upload"


def format_error(error: Any) -> str:
    """One entry/config error as text: ``"too_large"`` or
    ``("writer_failure", reason)`` -> ``"writer_failure: reason"``."""
    if isinstance(error, (tuple, list)):
        if len(error) == 2:
            return f"{error[0]}: {error[1]}"
        return ": ".join(str(e) for e in error)
    return str(error)


def _active(entry: Mapping[str, Any]) -> bool:
    return not entry.get("cancelled", False)


def _has_errors(entry: Mapping[str, Any]) -> bool:
    return bool(entry.get("errors")) or entry.get("valid", True) is False


def entry_refs(entries: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The comma-joined ref lists of a live file input.

    * ``active``: every entry not cancelled (a ref missing here is cancelled
      by the client);
    * ``done``: entries whose upload finished;
    * ``preflighted``: entries answered by ``allow_upload`` (the entry's
      ``preflighted`` flag; ``done`` implies it).  The client uploads only
      files not in this list and holds a submit while ``preflighted != done``;
    * ``error``: entries with errors (the client cancels a submit while any).
    """
    live = [e for e in entries if _active(e)]
    return {
        "active": ",".join(str(e["ref"]) for e in live),
        "done": ",".join(str(e["ref"]) for e in live if e.get("done")),
        "preflighted": ",".join(
            str(e["ref"]) for e in live if e.get("preflighted") or e.get("done")
        ),
        "error": ",".join(str(e["ref"]) for e in live if _has_errors(e)),
    }


def file_input(config: Mapping[str, Any]) -> tuple[list[Safe], list[str]]:
    """The live file input as statics around four ref-list slots.

    Returns ``(statics, slot_names)``: five static pieces and the names of the
    dynamics between them (``active``, ``done``, ``preflighted``, ``error``),
    in that order.  Static attributes come from ``config`` (escaped): ``ref``
    (the input's id and ``data-phx-upload-ref``), ``name``, ``accept``
    (``"any"`` or a list), ``max_entries`` (``multiple`` when > 1) and
    ``auto_upload``.
    """
    ref = escape(config["ref"])
    name = escape(config.get("name", config["ref"]))
    accept = config.get("accept", "any")
    attrs = [f'id="{ref}" type="file" name="{name}"']
    if accept not in (None, "any", ":any") and accept:
        if isinstance(accept, str):
            accept = [accept]
        attrs.append(f'accept="{safe_join(accept, ",")}"')
    if int(config.get("max_entries", 1)) > 1:
        attrs.append("multiple")
    attrs.append(f'data-phx-hook="{LIVE_FILE_UPLOAD_HOOK}" data-phx-upload-ref="{ref}"')
    if config.get("auto_upload"):
        attrs.append("data-phx-auto-upload")
    head = "<input " + " ".join(attrs) + ' data-phx-active-refs="'
    statics = [
        Safe(head),
        Safe('" data-phx-done-refs="'),
        Safe('" data-phx-preflighted-refs="'),
        Safe('" data-phx-error-refs="'),
        Safe('">'),
    ]
    return statics, ["active", "done", "preflighted", "error"]


def entry_html(
    config: Mapping[str, Any], entry: Mapping[str, Any], events: PageEvents = PageEvents()
) -> Safe:
    """One entry's ``<li>``: name, size, progress, state, errors, cancel button."""
    cref = escape(config["ref"])
    ref = escape(entry["ref"])
    upload = escape(config.get("name", config["ref"]))
    progress = int(entry.get("progress", 0) or 0)
    errors = [format_error(e) for e in entry.get("errors") or ()]
    if entry.get("cancelled"):
        state = "cancelled"
    elif errors or entry.get("valid", True) is False:
        state = "error"
    elif entry.get("done"):
        state = "done"
    else:
        state = "uploading" if progress > 0 else "pending"
    parts = [
        f'<li id="{cref}-entry-{ref}" class="entry" data-ref="{ref}" data-state="{state}">',
        f'<span class="name">{escape(entry.get("client_name", ""))}</span> ',
        f'<span class="size">{escape(entry.get("client_size", 0))} bytes</span> ',
        f'<progress value="{progress}" max="100">{progress}%</progress> ',
        f'<span class="percent">{progress}%</span>',
    ]
    if errors:
        parts.append(
            ' <span class="errors">'
            + "".join(f'<span class="error">{escape(e)}</span>' for e in errors)
            + "</span>"
        )
    if not entry.get("cancelled") and not entry.get("done"):
        parts.append(
            f' <button type="button" phx-click="{escape(events.cancel)}" '
            f'phx-value-ref="{ref}" phx-value-upload="{upload}" '
            f'aria-label="cancel {escape(entry.get("client_name", ""))}">cancel</button>'
        )
    parts.append("</li>")
    return Safe("".join(parts))


def entries_html(
    config: Mapping[str, Any], events: PageEvents = PageEvents()
) -> Safe:
    """The ``<li>`` of every entry of ``config["entries"]`` not cancelled."""
    return Safe(
        "".join(entry_html(config, e, events) for e in config.get("entries") or () if _active(e))
    )


def errors_html(errors: Iterable[Any]) -> Safe:
    """Config-level errors (e.g. ``too_many_files``) as ``<li>`` items."""
    return Safe("".join(f'<li class="error">{escape(format_error(e))}</li>' for e in errors))


def saved_html(saved: Iterable[Mapping[str, Any]]) -> Safe:
    """The saved files (dicts with ``name`` and ``size``, or ``error`` when the
    file could not be saved) as ``<li>`` items."""
    return Safe("".join(_saved_item(f) for f in saved))


def _saved_item(saved: Mapping[str, Any]) -> str:
    if saved.get("error"):
        return (
            f'<li class="saved error">{escape(saved["name"])}: not saved '
            f'({escape(saved["error"])})</li>'
        )
    return f'<li class="saved">{escape(saved["name"])} ({escape(saved.get("size", 0))} bytes)</li>'


def _limit_attrs(config: Mapping[str, Any]) -> str:
    """The config's limits as data attributes (read by ``liveupload send``)."""
    attrs = ""
    for key in ("max_entries", "max_file_size", "chunk_size"):
        if config.get(key) is not None:
            attrs += f' data-{key.replace("_", "-")}="{escape(config[key])}"'
    return attrs


def render_upload_page(
    configs: Sequence[Mapping[str, Any]],
    saved: Sequence[Mapping[str, Any]] = (),
    *,
    notice: str = "",
    events: PageEvents = PageEvents(),
    form_id: str = "upload-form",
) -> Rendered:
    """The upload page's content (the inside of the LiveView root element).

    ``configs``: one mapping per ``allow_upload`` config, with ``ref``,
    ``name``, ``accept``, ``max_entries``, ``auto_upload``, optional
    ``errors`` (config-level) and ``entries`` (entry dicts: ``ref``,
    ``client_name``, ``client_size``, ``client_type``, ``progress``, ``done``,
    ``cancelled``, ``valid``, ``errors``, ``preflighted``).  ``saved``: dicts
    with ``name`` and ``size``.  ``notice``: a status line (escaped).

    Dynamics, per config in order: active refs, done refs, preflighted refs,
    error refs, entries HTML, config errors HTML; then the saved list and the
    notice.  Statics depend only on the configs, so diffs between renders of
    the same configs carry dynamics only.
    """
    statics: list[str] = []
    dynamics: list[Any] = []
    pending = (
        f'<form id="{escape(form_id)}" phx-change="{escape(events.change)}" '
        f'phx-submit="{escape(events.submit)}">'
    )
    for config in configs:
        cref = escape(config["ref"])
        name = escape(config.get("name", config["ref"]))
        input_statics, slots = file_input(config)
        refs = entry_refs(config.get("entries") or ())
        pending += (
            f'<fieldset class="upload" id="{cref}-upload"'
            f'{_limit_attrs(config)}><legend>'
            f'<label for="{cref}">{name}</label></legend>' + input_statics[0]
        )
        for slot, static in zip(slots, input_statics[1:]):
            statics.append(pending)
            dynamics.append(escape(refs[slot]))
            pending = static
        pending += f'<ul class="entries" id="{cref}-entries">'
        statics.append(pending)
        dynamics.append(entries_html(config, events))
        pending = f'</ul><ul class="upload-errors" id="{cref}-errors">'
        statics.append(pending)
        dynamics.append(errors_html(config.get("errors") or ()))
        pending = "</ul></fieldset>"
    pending += (
        '<button type="submit">Upload</button></form>'
        '<h2>Saved files</h2><ul id="saved">'
    )
    statics.append(pending)
    dynamics.append(saved_html(saved))
    statics.append('</ul><p id="notice">')
    dynamics.append(escape(notice))
    statics.append("</p>")
    return Rendered(statics, dynamics)


# ----------------------------------------------------------------- sessions


class InvalidSession(ValueError):
    """A page token that fails verification; ``reason`` is what the join
    error reply should say: ``"stale"`` (expired) or ``"unauthorized"``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def new_view_id() -> str:
    """A fresh LiveView root id (``phx-`` + random, safe in CSS selectors)."""
    return "phx-" + secrets.token_urlsafe(12).replace("_", "A").replace("-", "B")


@dataclass(frozen=True)
class PageSession:
    """What one page render needs: the view id, CSRF token and signed tokens."""

    view_id: str
    csrf_token: str
    session_token: str
    static_token: str


class SessionSigner:
    """Signs and verifies the page's ``data-phx-session``/``data-phx-static``.

    Tokens are itsdangerous URL-safe timed signatures under the app's secret,
    salted separately so a static token never verifies as a session.  The
    session holds the view id and the page's CSRF token; :meth:`verify_join`
    checks both against the ``lv:`` topic and join params.
    """

    SESSION_SALT = "liveupload.page.session"
    STATIC_SALT = "liveupload.page.static"
    DEFAULT_MAX_AGE = 14 * 24 * 3600  # LiveView's own session token lifetime

    def __init__(self, secret: str | bytes, *, max_age: float | None = DEFAULT_MAX_AGE) -> None:
        if not secret:
            raise ValueError("SessionSigner needs a non-empty secret")
        self.max_age = max_age
        self._session = URLSafeTimedSerializer(secret, salt=self.SESSION_SALT)
        self._static = URLSafeTimedSerializer(secret, salt=self.STATIC_SALT)

    def new_page(self, **extra: Any) -> PageSession:
        """A new view id and CSRF token with their signed session/static tokens.

        ``extra`` goes into the session (JSON-serialisable values only).
        """
        view_id = new_view_id()
        csrf = secrets.token_urlsafe(24)
        session = {**extra, "id": view_id, "csrf": csrf}
        return PageSession(
            view_id=view_id,
            csrf_token=csrf,
            session_token=self.sign_session(session),
            static_token=self.sign_static({"id": view_id}),
        )

    def sign_session(self, data: Mapping[str, Any]) -> str:
        return self._session.dumps(dict(data))

    def sign_static(self, data: Mapping[str, Any]) -> str:
        return self._static.dumps(dict(data))

    def verify_session(self, token: Any) -> dict[str, Any]:
        """The session's data, or :class:`InvalidSession`."""
        return self._loads(self._session, token, "session")

    def verify_static(self, token: Any) -> dict[str, Any]:
        """The static token's data, or :class:`InvalidSession`."""
        return self._loads(self._static, token, "static")

    def verify_join(self, topic: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Check an ``lv:`` join payload and return the verified session.

        The session must verify, name the topic's view id, and carry the CSRF
        token the join sent in ``params._csrf_token``; a static token, when
        sent, must verify and name the same view.
        """
        if not isinstance(payload, Mapping):
            raise InvalidSession("unauthorized", "join payload is not an object")
        session = self.verify_session(payload.get("session"))
        view_id = topic[3:] if topic.startswith("lv:") else None
        if session.get("id") != view_id:
            raise InvalidSession("unauthorized", "session belongs to another view")
        params = payload.get("params")
        csrf = params.get("_csrf_token") if isinstance(params, Mapping) else None
        if not isinstance(csrf, str) or not secrets.compare_digest(
            csrf.encode(), str(session.get("csrf", "")).encode()
        ):
            raise InvalidSession("unauthorized", "CSRF token does not match the session")
        static = payload.get("static")
        if static is not None:
            if self.verify_static(static).get("id") != view_id:
                raise InvalidSession("unauthorized", "static token belongs to another view")
        return session

    def _loads(self, serializer: URLSafeTimedSerializer, token: Any, what: str) -> dict[str, Any]:
        if not isinstance(token, str) or not token:
            raise InvalidSession("unauthorized", f"{what} token missing")
        try:
            data = serializer.loads(token, max_age=self.max_age)
        except SignatureExpired:
            raise InvalidSession("stale", f"{what} token expired") from None
        except BadData:
            raise InvalidSession("unauthorized", f"{what} token does not verify") from None
        if not isinstance(data, dict):
            raise InvalidSession("unauthorized", f"{what} token holds no object")
        return data


# --------------------------------------------------------------- document


def page_html(
    page: PageSession,
    rendered: Rendered,
    *,
    title: str = "liveupload",
    assets_path: str = "/assets",
    socket_path: str = "/live",
) -> str:
    """The HTML document for ``/``: the dead render inside the LiveView root,
    Phoenix's own scripts, and the ``LiveSocket`` boot script."""
    assets = escape(assets_path.rstrip("/"))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="csrf-token" content="{escape(page.csrf_token)}">'
        f"<title>{escape(title)}</title></head>\n<body>\n"
        f'<div id="{escape(page.view_id)}" data-phx-main '
        f'data-phx-session="{escape(page.session_token)}" '
        f'data-phx-static="{escape(page.static_token)}">'
        f"{rendered.to_html()}</div>\n"
        f'<script src="{assets}/phoenix.min.js"></script>\n'
        f'<script src="{assets}/phoenix_live_view.min.js"></script>\n'
        "<script>\n"
        "(function () {\n"
        '  var csrf = document.querySelector("meta[name=\'csrf-token\']").getAttribute("content");\n'
        f"  var liveSocket = new LiveView.LiveSocket({_js_string(socket_path)}, Phoenix.Socket, "
        "{params: {_csrf_token: csrf}});\n"
        "  liveSocket.connect();\n"
        "  window.liveSocket = liveSocket;\n"
        "})();\n"
        "</script>\n</body></html>\n"
    )


def _js_string(value: str) -> str:
    """A JS string literal safe inside an HTML ``<script>`` element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")

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
  and the list of saved files. Per config: its options stated in words
  (:func:`options_html`), a drop zone (``phx-drop-target``) around the
  labelled file input, one ``<li>`` per entry (name, size, a labelled
  ``<progress>``, errors as codes plus :func:`explain_error`'s words, a
  cancel ``<button>``) and the config-level errors. An entry whose upload
  crashed on the server (cancelled with errors) stays listed as failed, with
  its error and a ``dismiss`` button, until removed.
* :func:`page_html` adds a ``#connection-lost`` banner (``role="alert"``,
  outside the LiveView root) that a few lines of script fill while LiveView
  marks the root with ``phx-error`` (socket down) and empty again when it
  rejoins: a live region whose text changes is what screen readers announce.
  While the root is marked, entries still uploading show a real "failed"
  text (CSS), not a decoration.
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

#: The environment variable that holds the secret signing the pages, when none is given.
SECRET_ENV = "LIVEUPLOAD_SECRET"

__all__ = [
    "CONNECTION_LOST",
    "LIVE_FILE_UPLOAD_HOOK",
    "Safe",
    "escape",
    "safe_join",
    "Rendered",
    "PageEvents",
    "PageSession",
    "SECRET_ENV",
    "SessionSigner",
    "InvalidSession",
    "new_view_id",
    "format_error",
    "entry_refs",
    "file_input",
    "entry_html",
    "entries_html",
    "errors_html",
    "explain_error",
    "options_html",
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


_WORDS = {
    "too_large": "the file is larger than the {max_file_size}-byte limit",
    "too_many_files": "more than {max_entries} file(s) selected: remove some",
    "not_accepted": "this type of file is not accepted (accepted: {accept})",
    "writer_failure": "the server could not write the file",
    "channel_crash": "the server could not write the file: its upload crashed",
    "external_client_failure": "the browser could not send the file",
    "lost_connection": "the connection was lost: select the file again",
    "invalid_token": "the upload was refused: reload the page",
    "file_size_limit_exceeded": "more bytes than announced were sent",
}


def explain_error(error: Any, config: Mapping[str, Any] | None = None) -> str:
    """One error in words for people: ``"too_large"`` -> ``"the file is
    larger than the 8000000-byte limit"``; a ``(code, reason)`` pair appends
    the reason; unknown codes are returned as text."""
    config = config or {}
    code, reason = error, None
    if isinstance(error, (tuple, list)) and error:
        code, reason = error[0], (": ".join(str(e) for e in error[1:]) or None)
    template = _WORDS.get(str(code))
    if template is None:
        return format_error(error)
    accept = config.get("accept", "any")
    if isinstance(accept, (list, tuple)):
        accept = ", ".join(str(a) for a in accept)
    words = template.format(max_file_size=config.get("max_file_size", 8_000_000),
                            max_entries=config.get("max_entries", 1), accept=accept)
    return f"{words} ({reason})" if reason else words


def _active(entry: Mapping[str, Any]) -> bool:
    return not entry.get("cancelled", False)


def _has_errors(entry: Mapping[str, Any]) -> bool:
    return bool(entry.get("errors")) or entry.get("valid", True) is False


def _failed(entry: Mapping[str, Any]) -> bool:
    """Ended by the server with an error: cancelled *with* errors (its upload
    channel crashed, e.g. a writer that raised). Shown with its error until
    dismissed, but not active: LiveView's client stops tracking its file."""
    return bool(entry.get("cancelled")) and bool(entry.get("errors"))


def _shown(entry: Mapping[str, Any]) -> bool:
    """Listed on the page: every entry but those cancelled without an error
    (cancelled by the person or the client: gone)."""
    return _active(entry) or _failed(entry)


def _entry_errors(entry: Mapping[str, Any]) -> list[Any]:
    """The entry's errors, without a bare code that an error with a reason
    already says (a crashed upload is reported by the server as
    ``("channel_crash", reason)`` and by the client as ``"channel_crash"``)."""
    errors = list(entry.get("errors") or ())
    detailed = {str(e[0]) for e in errors if isinstance(e, (tuple, list)) and len(e) > 1}
    return [e for e in errors if isinstance(e, (tuple, list)) or str(e) not in detailed]


def entry_refs(entries: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The comma-joined ref lists of a live file input.

    * ``active``: every entry not cancelled (a ref missing here is cancelled
      by the client; a failed entry, cancelled with errors, is shown but not
      active, so the client stops tracking it and a submit is not held);
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
    """One entry's ``<li>``: name, size, progress, state, errors, and a button
    that removes it through the session's cancel (``cancel`` while it is
    pending, uploading or done; ``dismiss`` once it has failed).

    ``data-state`` is ``pending``, ``uploading``, ``done``, ``error`` (a
    validation error, a writer failure or a crashed upload) or ``cancelled``.
    A hidden ``.lost`` text ("failed") is shown by the stylesheet on entries
    still uploading while the socket is down, so it is read out as well as seen.
    """
    cref = escape(config["ref"])
    ref = escape(entry["ref"])
    upload = escape(config.get("name", config["ref"]))
    progress = int(entry.get("progress", 0) or 0)
    raw = _entry_errors(entry)
    errors = [format_error(e) for e in raw]
    if _failed(entry):
        state = "error"
    elif entry.get("cancelled"):
        state = "cancelled"
    elif errors or entry.get("valid", True) is False:
        state = "error"
    elif entry.get("done"):
        state = "done"
    else:
        state = "uploading" if progress > 0 else "pending"
    name = escape(entry.get("client_name", ""))
    parts = [
        f'<li id="{cref}-entry-{ref}" class="entry" data-ref="{ref}" data-state="{state}">',
        f'<span class="name">{name}</span> ',
        f'<span class="size">{escape(entry.get("client_size", 0))} bytes</span> ',
        f'<label class="bar"><span class="sr-only">upload progress of {name}</span>',
        f'<progress value="{progress}" max="100">{progress}%</progress></label> ',
        f'<span class="percent"><span aria-hidden="true">{progress}%</span>'
        '<span class="lost"> failed</span></span>',
    ]
    if errors:
        parts.append(
            ' <span class="errors" role="alert">'
            + "".join(
                f'<span class="error">{escape(e)}</span>'
                f'<span class="why">: {escape(explain_error(r, config))}</span>'
                for e, r in zip(errors, raw)
            )
            + "</span>"
        )
    if _shown(entry):  # a finished entry too: it is dropped before the submit saves it
        action = "dismiss" if state == "error" else "cancel"
        parts.append(
            f' <button type="button" class="cancel" phx-click="{escape(events.cancel)}" '
            f'phx-value-ref="{ref}" phx-value-upload="{upload}" '
            f'aria-label="{action} {name}">{action}</button>'
        )
    parts.append("</li>")
    return Safe("".join(parts))


def entries_html(
    config: Mapping[str, Any], events: PageEvents = PageEvents()
) -> Safe:
    """The ``<li>`` of every entry of ``config["entries"]`` not cancelled, and
    of every failed one (cancelled with errors: shown until dismissed)."""
    return Safe(
        "".join(entry_html(config, e, events) for e in config.get("entries") or () if _shown(e))
    )


def errors_html(errors: Iterable[Any], config: Mapping[str, Any] | None = None) -> Safe:
    """Config-level errors (e.g. ``too_many_files``): a ``<ul class="upload-errors">``
    of ``<li class="error">`` codes, then the same errors in words."""
    errors = list(errors)
    if not errors:
        return Safe("")
    codes = "".join(f'<li class="error">{escape(format_error(e))}</li>' for e in errors)
    words = "; ".join(explain_error(e, config) for e in errors)
    return Safe(f'<ul class="upload-errors">{codes}</ul><p class="why">{escape(words)}</p>')


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


def options_html(config: Mapping[str, Any]) -> Safe:
    """The upload options stated in words (static: they do not change)."""
    accept = config.get("accept", "any")
    if accept in (None, "any", ":any") or not accept:
        accept_text = "any type of file"
    else:
        accept_text = ", ".join(accept) if isinstance(accept, (list, tuple)) else str(accept)
    items = [
        ("Accepted", accept_text),
        ("Files per upload", f'up to {config.get("max_entries", 1)}'),
        ("Largest file", f'{config.get("max_file_size", 8_000_000)} bytes'),
        ("Chunk size", f'{config.get("chunk_size", 64_000)} bytes'),
        ("Starts", "as soon as files are chosen" if config.get("auto_upload")
         else "when you press Upload"),
    ]
    body = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in items)
    return Safe(f'<dl class="options" id="{escape(config["ref"])}-options">{body}</dl>')


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
            f'{_limit_attrs(config)}><legend>{name}</legend>'
            f'{options_html(config)}'
            f'<div class="dropzone" phx-drop-target="{cref}">'
            f'<label for="{cref}">Choose files</label> ' + input_statics[0]
        )
        for slot, static in zip(slots, input_statics[1:]):
            statics.append(pending)
            dynamics.append(escape(refs[slot]))
            pending = static
        pending += (
            ' <span class="hint">or drop them here</span></div>'
            f'<ul class="entries" id="{cref}-entries" aria-label="selected files">'
        )
        statics.append(pending)
        dynamics.append(entries_html(config, events))
        pending = f'</ul><div class="upload-errors-box" id="{cref}-errors" role="alert">'
        statics.append(pending)
        dynamics.append(errors_html(config.get("errors") or (), config))
        pending = "</div></fieldset>"
    pending += (
        '<button type="submit">Upload</button></form>'
        '<h2>Saved files</h2><ul id="saved">'
    )
    statics.append(pending)
    dynamics.append(saved_html(saved))
    statics.append('</ul><div role="status" aria-live="polite"><p id="notice">')
    dynamics.append(escape(notice))
    statics.append("</p></div>")
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


#: The page's stylesheet. ``#connection-lost`` shows only while it has text
#: (the page's script fills it while LiveView marks the root as errored: socket
#: down); entries still uploading then show their "failed" text.
PAGE_CSS = """
body{font:16px/1.45 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:44rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.6rem;margin:0 0 1rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
fieldset.upload{background:#fff;border:1px solid #d5d9e0;border-radius:10px;padding:1rem 1.25rem;margin:0 0 1rem}
legend{font-weight:600;padding:0 .4rem}
dl.options{display:flex;flex-wrap:wrap;gap:.25rem 1.25rem;margin:0 0 .8rem;font-size:.85rem;color:#4b5363}
dl.options div{display:flex;gap:.3rem}dl.options dt{font-weight:600}dl.options dd{margin:0}
.dropzone{border:2px dashed #9aa4b5;border-radius:8px;padding:1.2rem;text-align:center;background:#fafbfc}
.dropzone.phx-drop-target-active{border-color:#2f6fde;background:#eef4ff}
.dropzone label{font-weight:600}.hint{color:#5d6575}
ul.entries{list-style:none;padding:0;margin:.8rem 0 0}
li.entry{display:grid;grid-template-columns:minmax(0,1fr) 6.5rem 9rem 3rem 5rem;gap:.6rem;align-items:center;
 padding:.45rem .2rem;border-bottom:1px solid #eceef2}
li.entry .name{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;font-weight:500}
li.entry .size{text-align:right}
li.entry .size,li.entry .percent{color:#5d6575;font-size:.85rem;font-variant-numeric:tabular-nums}
li.entry progress{width:100%}
li.entry .errors{grid-column:1/-1;color:#b42318;font-size:.9rem}
li.entry button.cancel{grid-column:5;grid-row:1}
li.entry .error{font-family:ui-monospace,monospace;font-weight:600}
li.entry[data-state=done] .percent{color:#157f3b;font-weight:600}
.upload-errors-box{color:#b42318}ul.upload-errors{margin:.6rem 0 0;padding-left:1.2rem}
ul.upload-errors .error{font-family:ui-monospace,monospace;font-weight:600}.upload-errors-box .why{margin:.2rem 0}
button{font:inherit;border-radius:6px;border:1px solid #9aa4b5;background:#fff;padding:.25rem .7rem;cursor:pointer}
button[type=submit]{background:#2f6fde;border-color:#2f6fde;color:#fff;padding:.45rem 1.4rem;font-weight:600}
button:focus-visible,input:focus-visible{outline:3px solid #f5a524;outline-offset:2px}
#saved{background:#fff;border:1px solid #d5d9e0;border-radius:10px;padding:.6rem 1rem .6rem 2rem;min-height:1.5rem}
#saved:empty::before{content:"nothing saved yet";color:#7a8292;margin-left:-1rem}
li.saved.error{color:#b42318}#notice{color:#157f3b;min-height:1.4rem}
#connection-lost{background:#fdecea;color:#8a1c12;border:1px solid #f3b8b0;border-radius:8px;padding:.6rem 1rem;margin:0 0 1rem}
#connection-lost:empty{display:none}
li.entry .lost{display:none;color:#b42318}
.phx-error li.entry[data-state=uploading] progress,.phx-error li.entry[data-state=pending] progress{opacity:.35}
.phx-error li.entry[data-state=uploading] .lost{display:inline}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
"""


#: What the ``#connection-lost`` alert says while the socket is down.
CONNECTION_LOST = "Connection lost: uploads in progress have failed. Reconnecting\u2026"


def page_html(
    page: PageSession,
    rendered: Rendered,
    *,
    title: str = "liveupload",
    assets_path: str = "/assets",
    socket_path: str = "/live",
) -> str:
    """The HTML document for ``/``: the dead render inside the LiveView root,
    Phoenix's own scripts, and the ``LiveSocket`` boot script, which also
    fills the ``#connection-lost`` alert while LiveView marks the root with
    ``phx-error`` (and empties it when the root rejoins)."""
    assets = escape(assets_path.rstrip("/"))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="csrf-token" content="{escape(page.csrf_token)}">'
        f"<title>{escape(title)}</title>\n<style>{PAGE_CSS}</style></head>\n<body>\n"
        f"<main><h1>{escape(title)}</h1>\n"
        '<p id="connection-lost" role="alert"></p>\n'
        f'<div id="{escape(page.view_id)}" data-phx-main '
        f'data-phx-session="{escape(page.session_token)}" '
        f'data-phx-static="{escape(page.static_token)}">'
        f"{rendered.to_html()}</div></main>\n"
        f'<script src="{assets}/phoenix.min.js"></script>\n'
        f'<script src="{assets}/phoenix_live_view.min.js"></script>\n'
        "<script>\n"
        "(function () {\n"
        '  var csrf = document.querySelector("meta[name=\'csrf-token\']").getAttribute("content");\n'
        f"  var liveSocket = new LiveView.LiveSocket({_js_string(socket_path)}, Phoenix.Socket, "
        "{params: {_csrf_token: csrf}});\n"
        "  liveSocket.connect();\n"
        "  window.liveSocket = liveSocket;\n"
        '  var root = document.querySelector("[data-phx-main]");\n'
        '  var banner = document.getElementById("connection-lost");\n'
        "  new MutationObserver(function () {\n"
        f'    var text = root.classList.contains("phx-error") ? {_js_string(CONNECTION_LOST)} : "";\n'
        "    if (banner.textContent !== text) banner.textContent = text;\n"
        '  }).observe(root, {attributes: true, attributeFilter: ["class"]});\n'
        "})();\n"
        "</script>\n</body></html>\n"
    )


def _js_string(value: str) -> str:
    """A JS string literal safe inside an HTML ``<script>`` element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")

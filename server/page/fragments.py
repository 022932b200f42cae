"""The upload page's content as a :class:`~server.page.rendered.Rendered` tree.

:func:`render_upload_page` builds it from plain data: upload configs (each
with its ``entries``, the dicts ``UploadSession.uploads()`` returns) and the
list of saved files. Per config: its options stated in words
(:func:`options_html`), a drop zone (``phx-drop-target``) around the
labelled file input, one ``<li>`` per entry (name, size, a labelled
``<progress>``, errors as codes plus :func:`explain_error`'s words, a cancel
``<button>``) and the config-level errors. An entry whose upload crashed on
the server (cancelled with errors) stays listed as failed, with its error
and a ``dismiss`` button, until removed. Every value is escaped by
markupsafe; the fragments are :class:`~markupsafe.Markup`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from markupsafe import Markup, escape

from .error_text import explain_error, format_error
from .rendered import Rendered

__all__ = [
    "LIVE_FILE_UPLOAD_HOOK",
    "PageEvents",
    "entries_html",
    "entry_html",
    "entry_refs",
    "errors_html",
    "file_input",
    "options_html",
    "render_upload_page",
    "saved_html",
]

LIVE_FILE_UPLOAD_HOOK = "Phoenix.LiveFileUpload"


@dataclass(frozen=True)
class PageEvents:
    """Event names the page binds (``phx-change``, ``phx-submit``, ``phx-click``)."""

    change: str = "validate"
    submit: str = "save"
    cancel: str = "cancel-upload"


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


def file_input(config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The live file input as statics around four ref-list slots.

    Returns ``(statics, slot_names)``: five static pieces and the names of the
    dynamics between them (``active``, ``done``, ``preflighted``, ``error``),
    in that order. The statics are plain ``str`` (trusted template text: a
    ``Markup`` would escape the ``str`` it is added to).  Static attributes
    come from ``config`` (escaped): ``ref``
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
        attrs.append(f'accept="{Markup(",").join(accept)}"')
    if int(config.get("max_entries", 1)) > 1:
        attrs.append("multiple")
    attrs.append(f'data-phx-hook="{LIVE_FILE_UPLOAD_HOOK}" data-phx-upload-ref="{ref}"')
    if config.get("auto_upload"):
        attrs.append("data-phx-auto-upload")
    head = "<input " + " ".join(attrs) + ' data-phx-active-refs="'
    statics = [head, '" data-phx-done-refs="', '" data-phx-preflighted-refs="', '" data-phx-error-refs="', '">']
    return statics, ["active", "done", "preflighted", "error"]


def entry_html(
    config: Mapping[str, Any], entry: Mapping[str, Any], events: PageEvents = PageEvents()
) -> Markup:
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
    return Markup("".join(parts))


def entries_html(
    config: Mapping[str, Any], events: PageEvents = PageEvents()
) -> Markup:
    """The ``<li>`` of every entry of ``config["entries"]`` not cancelled, and
    of every failed one (cancelled with errors: shown until dismissed)."""
    return Markup(
        "".join(entry_html(config, e, events) for e in config.get("entries") or () if _shown(e))
    )


def errors_html(errors: Iterable[Any], config: Mapping[str, Any] | None = None) -> Markup:
    """Config-level errors (e.g. ``too_many_files``): a ``<ul class="upload-errors">``
    of ``<li class="error">`` codes, then the same errors in words."""
    errors = list(errors)
    if not errors:
        return Markup("")
    codes = "".join(f'<li class="error">{escape(format_error(e))}</li>' for e in errors)
    words = "; ".join(explain_error(e, config) for e in errors)
    return Markup(f'<ul class="upload-errors">{codes}</ul><p class="why">{escape(words)}</p>')


def saved_html(saved: Iterable[Mapping[str, Any]]) -> Markup:
    """The saved files (dicts with ``name`` and ``size``, or ``error`` when the
    file could not be saved) as ``<li>`` items."""
    return Markup("".join(_saved_item(f) for f in saved))


def _saved_item(saved: Mapping[str, Any]) -> str:
    if saved.get("error"):
        return (
            f'<li class="saved error">{escape(saved["name"])}: not saved '
            f'({escape(saved["error"])})</li>'
        )
    return f'<li class="saved">{escape(saved["name"])} ({escape(saved.get("size", 0))} bytes)</li>'


def options_html(config: Mapping[str, Any]) -> Markup:
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
    return Markup(f'<dl class="options" id="{escape(config["ref"])}-options">{body}</dl>')


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

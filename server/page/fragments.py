"""The upload page's content as a :class:`~server.page.rendered.Rendered` tree.

:func:`render_upload_page` turns plain data (upload configs, each with its
``entries``, the dicts ``UploadSession.uploads()`` returns, and the list of
saved files) into what ``templates/live/content.html.j2`` shows: per config,
its options stated in words (sizes in human units, exact bytes in a ``title``),
a drop zone (``phx-drop-target``) around the labelled live file input and what
is chosen in words (:func:`selection_words`), the config-level errors right
under it, one ``<li>`` per entry (``live/fragments.html.j2``: name, size in
human units (exact bytes in its ``title`` and ``data-bytes``), a labelled
``<progress>``, errors as codes plus :func:`explain_error`'s words, a mark on
those past ``max_entries`` while ``too_many_files`` stands, a cancel
``<button>``), and a polite live region announcing progress at a few milestones
(:func:`progress_status`). An entry whose upload crashed on the server
(cancelled with errors) stays listed as failed, with its error and a
``dismiss`` button, until removed. The template marks each dynamic with
``slot(value)``; the text between the marks is the statics. Every value is
escaped by markupsafe.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from markupsafe import Markup, escape

from .error_text import explain_error, format_error
from .rendered import Rendered
from .sizes import exact_size, human_size
from .templating import ENVIRONMENT, macros

__all__ = [
    "LIVE_FILE_UPLOAD_HOOK",
    "MILESTONES",
    "ConfigView",
    "EntryView",
    "PageEvents",
    "SavedView",
    "config_view",
    "entries_html",
    "entry_refs",
    "entry_view",
    "errors_html",
    "progress_status",
    "render_upload_page",
    "saved_html",
    "selection_words",
]

LIVE_FILE_UPLOAD_HOOK = "Phoenix.LiveFileUpload"

_CONTENT = ENVIRONMENT.get_template("live/content.html.j2")
_FRAGMENTS = macros("live/fragments.html.j2")

#: What ``slot()`` writes in place of a dynamic: never in escaped text (``<``
#: is escaped) nor in the templates' own HTML.
_SLOT = "<slot>"

EntryState = Literal["pending", "uploading", "done", "error", "cancelled"]


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


@dataclass(frozen=True)
class EntryView:
    """One entry as ``live/fragments.html.j2``'s ``entry`` shows it.

    ``state`` is ``pending``, ``uploading``, ``done``, ``error`` (a validation
    error, a writer failure or a crashed upload) or ``cancelled``; ``errors``
    are ``(code, words)`` pairs; ``action`` is the button's word: ``cancel``
    while it is pending, uploading or done, ``dismiss`` once it has failed
    (``None``: no button); ``over_limit``: the config has ``too_many_files``
    and this entry is past its ``limit`` (``max_entries``), so it is marked.
    """

    config_ref: str
    ref: str
    upload: str
    name: str
    size: Any
    size_words: str
    size_exact: str
    progress: int
    state: EntryState
    errors: tuple[tuple[str, str], ...]
    action: Literal["cancel", "dismiss"] | None
    over_limit: bool = False
    limit: int = 1


@dataclass(frozen=True)
class ConfigView:
    """One upload config as ``live/content.html.j2`` shows it: its static
    attributes (``ref``: the input's id and ``data-phx-upload-ref``;
    ``accept``: ``None`` for any type; ``multiple`` when ``max_entries`` > 1;
    ``limits``: the data attributes ``liveupload send`` reads; ``options``:
    the options in words, ``(label, words, exact bytes or "")``) and its dynamics (``refs``, ``entries``, ``errors``,
    ``status``: :func:`progress_status`, ``selection``: :func:`selection_words`,
    what the file input's own "No file chosen" would get wrong)."""

    ref: str
    name: str
    limits: list[tuple[str, Any]]
    options: list[tuple[str, str, str]]
    accept: list[str] | None
    multiple: bool
    auto_upload: bool
    refs: dict[str, str]
    entries: Markup
    errors: Markup
    status: str
    selection: str = ""


@dataclass(frozen=True)
class SavedView:
    """One saved file: its name and size (raw, in human units, in bytes), or why it was not saved."""

    name: Any
    size: Any
    size_words: str
    size_exact: str
    error: Any


def entry_view(config: Mapping[str, Any], entry: Mapping[str, Any], *, over_limit: bool = False) -> EntryView:
    """One entry of ``config`` as the page shows it (``over_limit``: marked as
    one of the files past ``max_entries``)."""
    progress = int(entry.get("progress", 0) or 0)
    raw = _entry_errors(entry)
    state: EntryState
    if _failed(entry):
        state = "error"
    elif entry.get("cancelled"):
        state = "cancelled"
    elif raw or entry.get("valid", True) is False:
        state = "error"
    elif entry.get("done"):
        state = "done"
    else:
        state = "uploading" if progress > 0 else "pending"
    action: Literal["cancel", "dismiss"] | None = None
    if _shown(entry):  # a finished entry too: it is dropped before the submit saves it
        action = "dismiss" if state == "error" else "cancel"
    return EntryView(
        config_ref=config["ref"],
        ref=entry["ref"],
        upload=config.get("name", config["ref"]),
        name=entry.get("client_name", ""),
        size=entry.get("client_size", 0),
        size_words=_size_words(entry.get("client_size", 0)),
        size_exact=_size_exact(entry.get("client_size", 0)),
        progress=progress,
        state=state,
        errors=tuple((format_error(e), explain_error(e, config)) for e in raw),
        action=action,
        over_limit=over_limit,
        limit=int(config.get("max_entries", 1)),
    )


def _size_words(size: Any) -> str:
    return human_size(size) if isinstance(size, int) and size >= 0 else f"{size} bytes"


def _size_exact(size: Any) -> str:
    return exact_size(size) if isinstance(size, int) and size >= 0 else f"{size} bytes"


#: Percentages at which progress is announced (each once: the text changes only there).
MILESTONES = (25, 50, 75)


def progress_status(config: Mapping[str, Any]) -> str:
    """What the config's polite live region says: ``"Uploading 2 files: 50%"``
    at each of :data:`MILESTONES` of the bytes of its uploading entries, then
    ``"2 files uploaded"`` once all are done; empty while nothing has started
    (a screen reader announces the text only when it changes)."""
    entries = [e for e in config.get("entries") or () if _active(e) and not _has_errors(e)]
    started = [e for e in entries if e.get("done") or int(e.get("progress", 0) or 0) > 0]
    if not started:
        return ""
    files = f"{len(entries)} file" + ("" if len(entries) == 1 else "s")
    if all(e.get("done") for e in entries):
        return f"{files} uploaded"
    sent = sum(_weight(e) * (100 if e.get("done") else int(e.get("progress", 0) or 0)) for e in entries)
    percent = sent // sum(_weight(e) for e in entries)
    reached = max((m for m in MILESTONES if percent >= m), default=0)
    return f"Uploading {files}: {reached}%" if reached else f"Uploading {files}"


def _weight(entry: Mapping[str, Any]) -> int:
    """The entry's share of its config's progress: its size in bytes (at least 1)."""
    size = entry.get("client_size", 0)
    return size if isinstance(size, int) and size > 0 else 1


def entries_html(config: Mapping[str, Any], events: PageEvents = PageEvents()) -> Markup:
    """The ``<li>`` of every entry of ``config["entries"]`` not cancelled, and
    of every failed one (cancelled with errors: shown until dismissed)."""
    over = _over_limit(config)
    views = [entry_view(config, e, over_limit=e.get("ref") in over)
             for e in config.get("entries") or () if _shown(e)]
    return Markup("").join(_entry_html(view, events.cancel) for view in views)


def _over_limit(config: Mapping[str, Any]) -> set[Any]:
    """The refs of the entries past ``max_entries`` while the config has
    ``too_many_files``: the ones to mark next to that error."""
    if "too_many_files" not in [format_error(e) for e in config.get("errors") or ()]:
        return set()
    active = [e.get("ref") for e in config.get("entries") or () if _active(e)]
    return set(active[int(config.get("max_entries", 1)):])


def selection_words(config: Mapping[str, Any]) -> str:
    """What is chosen, in words, next to the file input (whose own "No file
    chosen" is wrong once LiveView's client holds the files): ``"No files
    chosen"``, ``"3 files chosen"``, ``"3 files chosen: 1 over the limit of 2"``."""
    active = [e for e in config.get("entries") or () if _active(e)]
    if not active:
        return "No files chosen"
    words = f"{len(active)} file{'' if len(active) == 1 else 's'} chosen"
    over = len(_over_limit(config))
    if over:
        limit = int(config.get("max_entries", 1))
        words += f": {over} over the limit of {limit}"
    return words


@functools.lru_cache(maxsize=4096)
def _entry_html(view: EntryView, cancel_event: str) -> Markup:
    """One entry's ``<li>``. A progress event changes one entry of a page, so
    the others come from here without escaping and templating them again."""
    return _FRAGMENTS.entries([view], cancel_event)


def errors_html(errors: Iterable[Any], config: Mapping[str, Any] | None = None) -> Markup:
    """Config-level errors (e.g. ``too_many_files``): a ``<ul class="upload-errors">``
    of ``<li class="error">`` codes, then the same errors in words."""
    errors = list(errors)
    return _FRAGMENTS.config_errors([format_error(e) for e in errors],
                                    "; ".join(explain_error(e, config) for e in errors))


def saved_html(saved: Iterable[Mapping[str, Any]]) -> Markup:
    """The saved files (dicts with ``name`` and ``size``, or ``error`` when the
    file could not be saved) as ``<li>`` items."""
    return _FRAGMENTS.saved(
        [SavedView(name=f["name"], size=f.get("size", 0), size_words=_size_words(f.get("size", 0)),
                   size_exact=_size_exact(f.get("size", 0)), error=f.get("error")) for f in saved]
    )


def _options(config: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The upload options stated in words, as ``(label, words, exact bytes)``
    (``""`` when not a size); static: they do not change."""
    accept = config.get("accept", "any")
    if accept in (None, "any", ":any") or not accept:
        accept_text = "any type of file"
    else:
        accept_text = ", ".join(accept) if isinstance(accept, (list, tuple)) else str(accept)
    largest, chunk = config.get("max_file_size", 8_000_000), config.get("chunk_size", 64_000)
    return [
        ("Accepted", accept_text, ""),
        ("Files per upload", f'up to {config.get("max_entries", 1)}', ""),
        ("Largest file", _size_words(largest), _size_exact(largest)),
        ("Chunk size", _size_words(chunk), _size_exact(chunk)),
        ("Starts", "as soon as files are chosen" if config.get("auto_upload") else "when you press Upload", ""),
    ]


def config_view(config: Mapping[str, Any], events: PageEvents = PageEvents()) -> ConfigView:
    """One config (``ref``, ``name``, ``accept``: ``"any"`` or a list,
    ``max_entries``, ``max_file_size``, ``chunk_size``, ``auto_upload``,
    ``entries``, ``errors``) as the page shows it."""
    accept = config.get("accept", "any")
    if accept in (None, "any", ":any") or not accept:
        accept = None
    elif isinstance(accept, str):
        accept = [accept]
    return ConfigView(
        ref=config["ref"],
        name=config.get("name", config["ref"]),
        limits=[(key.replace("_", "-"), config[key]) for key in ("max_entries", "max_file_size", "chunk_size")
                if config.get(key) is not None],
        options=_options(config),
        accept=accept,
        multiple=int(config.get("max_entries", 1)) > 1,
        auto_upload=bool(config.get("auto_upload")),
        refs=entry_refs(config.get("entries") or ()),
        entries=entries_html(config, events),
        errors=errors_html(config.get("errors") or (), config),
        status=progress_status(config),
        selection=selection_words(config),
    )


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
    error refs, selection words, config errors HTML, entries HTML, progress status; then the
    saved list and the notice.  Statics depend only on the configs, so diffs between renders of
    the same configs carry dynamics only.
    """
    dynamics: list[Markup] = []

    def slot(value: Any) -> Markup:
        dynamics.append(escape(value))
        return Markup(_SLOT)

    html = _CONTENT.render(
        configs=[config_view(c, events) for c in configs],
        saved=saved_html(saved),
        notice=notice,
        events=events,
        form_id=form_id,
        hook=LIVE_FILE_UPLOAD_HOOK,
        slot=slot,
    )
    return Rendered(html.split(_SLOT), dynamics)

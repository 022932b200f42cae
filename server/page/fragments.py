"""The upload page's fragments, from which :mod:`server.page.live` makes the
:class:`~server.page.rendered.Rendered` tree.

:func:`~server.page.live.render_upload_page` turns plain data (upload configs, each with its
``entries``, the dicts ``UploadSession.uploads()`` returns, and the list of
saved files) into what ``templates/live/content.html.j2`` shows: per config,
its options stated in words (sizes in human units, exact bytes in a ``title``),
a drop zone (``phx-drop-target``) around the labelled live file input and what
is chosen in words (:func:`selection_words`), the config-level errors right
under it, one ``<li>`` per entry (``live/fragments.html.j2``: name, size in
human units (exact bytes in its ``title`` and ``data-bytes``), a labelled
``<progress>``, errors as codes plus :func:`explain_error`'s words, a mark on
those past ``max_entries`` while ``too_many_files`` stands
(:func:`over_limit_refs`), a cancel ``<button>``), and a polite live region
announcing progress at a few milestones (:func:`progress_status`). An entry
whose upload crashed on the server (cancelled with errors) stays listed as
failed, with its error and a ``dismiss`` button, until removed. The templates
mark each dynamic with ``slot(value)``; the text between the marks is the
statics. The entries of a config are a keyed comprehension
(:func:`entries_tree`): one row of fields per entry (:func:`entry_row`,
cached per :class:`EntryView`) around statics shared by all
(:func:`entry_statics`). Every value is escaped by markupsafe.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from markupsafe import Markup, escape

from .error_text import explain_error, format_error
from .rendered import Comprehension
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
    "entries_tree",
    "entry_row",
    "entry_statics",
    "entry_refs",
    "entry_view",
    "errors_html",
    "progress_status",
    "row_with_progress",
    "status_share",
    "status_words",
    "saved_html",
    "has_too_many_files",
    "over_limit_refs",
    "selection_text",
    "selection_words",
    "SLOT",
    "CONTENT",
]

LIVE_FILE_UPLOAD_HOOK = "Phoenix.LiveFileUpload"

CONTENT = ENVIRONMENT.get_template("live/content.html.j2")
_FRAGMENTS = macros("live/fragments.html.j2")

#: The template of the LiveView root's content (``slot()`` marks each dynamic).
#: What ``slot()`` writes in place of a dynamic: never in escaped text (``<``
#: is escaped) nor in the templates' own HTML.
SLOT = "<slot>"

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
    entries: Comprehension
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
        name=_display_name(entry.get("client_name", "")),
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


_NAME_HEAD, _NAME_TAIL = 60, 20


def _display_name(name: Any) -> Any:
    """A client's file name as the page shows it: over 81 characters, its
    first 60 and last 20 (the extension) around an ellipsis, so a 60 KB name
    costs each reply 81 characters. Only the echo is cut: the name the session
    keeps, and the saved file's (``safe_filename``), are not."""
    if not isinstance(name, str) or len(name) <= _NAME_HEAD + 1 + _NAME_TAIL:
        return name
    return f"{name[:_NAME_HEAD]}…{name[-_NAME_TAIL:]}"


#: Percentages at which progress is announced (each once: the text changes only there).
MILESTONES = (25, 50, 75)


def progress_status(config: Mapping[str, Any]) -> str:
    """What the config's polite live region says: ``"Uploading 2 files: 50%"``
    at each of :data:`MILESTONES` of the bytes of its uploading entries, then
    ``"2 files uploaded"`` once all are done; empty while nothing has started
    (a screen reader announces the text only when it changes)."""
    totals = [0, 0, 0, 0, 0]
    for entry in config.get("entries") or ():
        for i, value in enumerate(status_share(entry)):
            totals[i] += value
    return status_words(*totals)


def status_share(entry: Mapping[str, Any]) -> tuple[int, int, int, int, int]:
    """What an entry adds to its config's :func:`progress_status`, as
    ``(counted, started, done, weighted percent, weight)``: sums of these
    over the entries give the status (:func:`status_words`), so a page can
    keep the sums and change one entry's share."""
    if not _active(entry) or _has_errors(entry):
        return (0, 0, 0, 0, 0)
    done = bool(entry.get("done"))
    progress = 100 if done else int(entry.get("progress", 0) or 0)
    weight = _weight(entry)
    return (1, int(done or progress > 0), int(done), weight * progress, weight)


def status_words(files: int, started: int, done: int, sent: int, weight: int) -> str:
    """:func:`progress_status` from the sums of :func:`status_share`."""
    if not started:
        return ""
    words = f"{files} file" + ("" if files == 1 else "s")
    if done == files:
        return f"{words} uploaded"
    percent = sent // weight
    reached = max((m for m in MILESTONES if percent >= m), default=0)
    return f"Uploading {words}: {reached}%" if reached else f"Uploading {words}"


def _weight(entry: Mapping[str, Any]) -> int:
    """The entry's share of its config's progress: its size in bytes (at least 1)."""
    size = entry.get("client_size", 0)
    return size if isinstance(size, int) and size > 0 else 1


def entries_tree(config: Mapping[str, Any], events: PageEvents = PageEvents()) -> Comprehension:
    """The entries of ``config["entries"]`` not cancelled, and every failed one
    (cancelled with errors: shown until dismissed), as a comprehension keyed
    by entry ref: one row of :data:`entry_statics` fields per entry."""
    shown = [e for e in config.get("entries") or () if _shown(e)]
    over = over_limit_refs(config)
    return Comprehension(
        entry_statics(),
        [entry_row(entry_view(config, e, over_limit=str(e["ref"]) in over), events.cancel) for e in shown],
        [str(e["ref"]) for e in shown],
    )


def entries_html(config: Mapping[str, Any], events: PageEvents = PageEvents()) -> Markup:
    """The ``<li>`` of every entry :func:`entries_tree` shows."""
    return Markup(entries_tree(config, events).to_html())


_entry_statics: tuple[str, ...] | None = None


def entry_statics() -> tuple[str, ...]:
    """The text around an entry's fields (``live/fragments.html.j2``'s
    ``entry``), the same for every entry: the comprehension's statics."""
    if _entry_statics is None:
        _render_row(_PROBE, "cancel")
    assert _entry_statics is not None
    return _entry_statics


def entry_row(view: EntryView, cancel_event: str) -> tuple[str, ...]:
    """One entry's fields (escaped), in the order of :func:`entry_statics`.

    A progress event changes one entry of a page: only its row is made again,
    and a diff carries only the fields that changed. Rows are rendered once
    per view with its progress at 0 (cached); the fields that show the
    percentage as it is (found by rendering a probe at a few percentages)
    are then filled in, so a progress step costs no template rendering.
    """
    row = row_with_progress(_render_row(replace(view, progress=0), cancel_event), view.progress)
    return row if row is not None else _render_row(view, cancel_event)


def row_with_progress(row: tuple[str, ...], progress: int) -> tuple[str, ...] | None:
    """``row`` showing ``progress`` instead, for an entry whose progress alone
    changed and stays above 0 (its state stays ``uploading``); ``None`` when
    the template shows progress otherwise than as the bare number."""
    places = _progress_places()
    if not places:
        return None
    new = list(row)
    percent = str(progress)
    for i in places:
        new[i] = percent
    return tuple(new)


_PROBE = EntryView(config_ref="c", ref="r", upload="u", name="n", size=0, size_words="0 bytes",
                   size_exact="0 bytes", progress=0, state="uploading", errors=(), action="cancel")
_places: tuple[int, ...] | None = None


def _progress_places() -> tuple[int, ...]:
    """Where an entry's row shows its progress as the bare number, if nothing
    else in the row depends on it (else ``()``: rows are rendered whole)."""
    global _places
    if _places is None:
        base = _render_row(_PROBE, "cancel")
        found: set[int] | None = None
        for percent in (1, 2, 50, 99, 100):
            row = _render_row(replace(_PROBE, progress=percent), "cancel")
            changed = {i for i, (a, b) in enumerate(zip(base, row, strict=True)) if a != b}
            if found is None:
                found = changed
            if changed != found or any(row[i] != str(percent) or base[i] != "0" for i in changed):
                found = set()
                break
        _places = tuple(sorted(found or ()))
    return _places


def over_limit_refs(config: Mapping[str, Any]) -> set[str]:
    """The refs of the entries past ``max_entries`` while the config has
    ``too_many_files``: the ones to mark next to that error."""
    if not has_too_many_files(config):
        return set()
    active = [str(e.get("ref")) for e in config.get("entries") or () if _active(e)]
    return set(active[int(config.get("max_entries", 1)):])


def has_too_many_files(config: Mapping[str, Any]) -> bool:
    """Whether the config's own errors (not its entries') say ``too_many_files``."""
    return "too_many_files" in [format_error(e) for e in config.get("errors") or ()]


def selection_words(config: Mapping[str, Any]) -> str:
    """What is chosen, in words, next to the file input (whose own "No file
    chosen" is wrong once LiveView's client holds the files): ``"No files
    chosen"``, ``"3 files chosen"``, ``"3 files chosen: 1 over the limit of 2"``."""
    active = sum(1 for e in config.get("entries") or () if _active(e))
    return selection_text(active, len(over_limit_refs(config)), int(config.get("max_entries", 1)))


def selection_text(active: int, over: int, limit: int) -> str:
    """:func:`selection_words` from the count of active entries, of those
    over the limit, and the limit (``max_entries``)."""
    if not active:
        return "No files chosen"
    words = f"{active} file{'' if active == 1 else 's'} chosen"
    if over:
        words += f": {over} over the limit of {limit}"
    return words


@functools.lru_cache(maxsize=4096)
def _render_row(view: EntryView, cancel_event: str) -> tuple[str, ...]:
    """The entry's row through ``live/fragments.html.j2``'s ``entry``."""
    global _entry_statics
    fields: list[str] = []

    def slot(value: Any) -> Markup:
        fields.append(str(escape(value)))
        return Markup(SLOT)

    statics = tuple(str(_FRAGMENTS.entry(view, cancel_event, slot)).split(SLOT))
    if _entry_statics is None:
        _entry_statics = statics
    elif statics != _entry_statics:
        raise ValueError("live/fragments.html.j2: an entry's text outside slot() differs between entries")
    return tuple(fields)


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
        [SavedView(name=_display_name(f["name"]), size=f.get("size", 0), size_words=_size_words(f.get("size", 0)),
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
        entries=entries_tree(config, events),
        errors=errors_html(config.get("errors") or (), config),
        status=progress_status(config),
        selection=selection_words(config),
    )

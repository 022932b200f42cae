"""The upload page as a LiveView keeps it: a model updated piece by piece,
rendering only what changed.

:class:`LivePage` holds the upload configs (each with its entries), the saved
files and the notice. :meth:`LivePage.put_entry` replaces one entry: only its
row is rendered again (cached per view), and its config's ref lists and
progress status only when what they read changed. :meth:`LivePage.diff` is
the diff since the tree the client last got; :meth:`LivePage.rendered` the
whole tree (for a join). The root content's statics depend only on the
configs' static parts and are made once per such layout
(``live/content.html.j2`` rendered with placeholders, each ``slot()`` telling
which dynamic goes where).

:func:`render_upload_page` is the same page from plain data in one call (the
dead render, tests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from markupsafe import Markup, escape

from .fragments import (
    CONTENT,
    LIVE_FILE_UPLOAD_HOOK,
    SLOT,
    ConfigView,
    PageEvents,
    _active,
    _has_errors,
    _shown,
    config_view,
    entry_refs,
    entry_row,
    entry_statics,
    entry_view,
    errors_html,
    has_too_many_files,
    over_limit_refs,
    row_with_progress,
    saved_html,
    selection_text,
    status_share,
    status_words,
)
from .rendered import Comprehension, Dynamic, Rendered

__all__ = ["LivePage", "render_upload_page"]


@dataclass(frozen=True)
class _Probe:
    """Stands for one dynamic while the layout is made: ``(config index, field)``
    or ``(None, "saved" | "notice")``."""

    config: int | None
    name: str

    def __html__(self) -> str:
        raise TypeError(f"live/content.html.j2 shows {self.name} outside slot()")

    def __str__(self) -> str:
        return self.__html__()


_REFS = ("active", "done", "preflighted", "error")
_EVENTS = PageEvents()


_LAYOUTS: dict[Any, tuple[tuple[str, ...], tuple[_Probe, ...]]] = {}
_MAX_LAYOUTS = 256


def _static_key(view: ConfigView) -> tuple[Any, ...]:
    return (view.ref, view.name, tuple(view.limits), tuple(view.options),
            None if view.accept is None else tuple(view.accept), view.multiple, view.auto_upload)


def _layout(static_keys: tuple[Any, ...], static_views: Sequence[ConfigView], events: PageEvents,
            form_id: str) -> tuple[tuple[str, ...], tuple[_Probe, ...]]:
    """The root content's statics and which dynamic fills each gap, for configs
    whose static parts are ``static_views`` (their dynamic fields unused;
    ``static_keys`` their :func:`_static_key`); made once per layout (the
    statics are then the same object, which makes diffing them free)."""
    key = (static_keys, events, form_id)
    layout = _LAYOUTS.get(key)
    if layout is None:
        if len(_LAYOUTS) >= _MAX_LAYOUTS:
            _LAYOUTS.clear()
        layout = _LAYOUTS[key] = _make_layout(static_views, events, form_id)
    return layout


def _make_layout(static_views: Sequence[ConfigView], events: PageEvents,
                 form_id: str) -> tuple[tuple[str, ...], tuple[_Probe, ...]]:
    probes = [
        ConfigView(**{
            **view.__dict__,
            "refs": {kind: _Probe(i, kind) for kind in _REFS},
            "entries": cast(Any, _Probe(i, "entries")),
            "errors": cast(Any, _Probe(i, "errors")),
            "status": cast(Any, _Probe(i, "status")),
            "selection": cast(Any, _Probe(i, "selection")),
        })
        for i, view in enumerate(static_views)
    ]
    order: list[_Probe] = []

    def slot(value: Any) -> Markup:
        if not isinstance(value, _Probe):
            raise TypeError(f"live/content.html.j2: slot() of {value!r}, not one of the page's dynamics")
        order.append(value)
        return Markup(SLOT)

    html = CONTENT.render(configs=probes, saved=_Probe(None, "saved"), notice=_Probe(None, "notice"),
                          events=events, form_id=form_id, hook=LIVE_FILE_UPLOAD_HOOK, slot=slot)
    return tuple(html.split(SLOT)), tuple(order)


class _Entry:
    """One entry of a config as the page has it: its data, its row if shown
    (``over``: marked as past ``max_entries``), and what the config's ref
    lists and progress status read of it."""

    __slots__ = ("data", "flags", "over", "ref", "row", "share")

    def __init__(self, config: Mapping[str, Any], data: Mapping[str, Any], events: PageEvents,
                 over: bool = False) -> None:
        self.data = data
        self.ref = str(data["ref"])
        self.over = over
        self.row = entry_row(entry_view(config, data, over_limit=over), events.cancel) if _shown(data) else None
        self.flags = (_active(data), bool(data.get("done")), bool(data.get("preflighted")), _has_errors(data))
        self.share = status_share(data)

    def progressed(self, data: Mapping[str, Any]) -> _Entry | None:
        """This entry with ``data``, if only its progress changed (both above
        0): its row with the new percentage, without making its view again."""
        old = self.data
        progress = data.get("progress")
        if (self.row is None or not isinstance(progress, int) or progress <= 0 or not old.get("progress")
                or len(old) != len(data) or any(v != data.get(k) for k, v in old.items() if k != "progress")):
            return None
        row = row_with_progress(self.row, progress)
        if row is None:
            return None
        new = object.__new__(_Entry)
        new.data, new.ref, new.row, new.flags, new.share = data, self.ref, row, self.flags, status_share(data)
        new.over = self.over  # its place among the active entries is the same
        return new


class _Config:
    """One upload config: its static view, its entries in order, and its
    dynamics, each made again only when what it reads changed: a progress
    event replaces one row of the entries and one share of the status; an
    entry added, cancelled or failed (the active ones change) makes the
    selection words again and, while the config has ``too_many_files``, the
    rows of the entries whose over-the-limit mark changes. The config's own
    errors change only with the whole config (:meth:`LivePage.put_config`)."""

    def __init__(self, config: Mapping[str, Any], events: PageEvents) -> None:
        self.config = {k: v for k, v in config.items() if k != "entries"}
        self.events = events
        view = config_view({**self.config, "entries": []}, events)
        self.static_view = ConfigView(**{**view.__dict__, "refs": {}, "entries": Comprehension(("",)),
                                         "errors": Markup(""), "status": "", "selection": ""})
        self.static_key = _static_key(self.static_view)
        self.errors = str(errors_html(self.config.get("errors") or (), self.config))
        self.too_many = has_too_many_files(self.config)
        self.limit = int(self.config.get("max_entries", 1))
        self._over = over_limit_refs(config)  # refs of the entries marked over the limit
        self.entries: dict[str, _Entry] = {}
        for data in config.get("entries") or ():
            entry = _Entry(self.config, data, events, str(data["ref"]) in self._over)
            self.entries[entry.ref] = entry
        self._active = sum(1 for e in self.entries.values() if e.flags[0])
        self._selection: str | None = None
        self._tree: Comprehension | None = None
        self._place: dict[str, int] = {}  # ref -> index of its row in the tree
        self._refs: dict[str, str] | None = None
        self._totals = [sum(values) for values in zip((0, 0, 0, 0, 0), *(e.share for e in self.entries.values()),
                                                      strict=True)]
        self._status: str | None = None

    def put_entry(self, data: Mapping[str, Any]) -> None:
        old = self.entries.get(str(data["ref"]))
        entry = ((old.progressed(data) if old is not None else None)
                 or _Entry(self.config, data, self.events, str(data["ref"]) in self._over))
        self.entries[entry.ref] = entry
        tree = self._tree
        if tree is not None and old is not None and old.row is not entry.row:
            place = self._place.get(entry.ref)
            if place is not None and entry.row is not None:  # the same rows, one changed
                rows = list(tree.rows)
                rows[place] = entry.row
                self._tree = Comprehension.of_rows(tree.statics, tuple(rows), tree.keys)
            else:  # shown or hidden now
                self._tree = None
        elif old is None:
            self._tree = None
        if old is None or old.flags != entry.flags:
            self._refs = None
            active = entry.flags[0] - (old.flags[0] if old is not None else 0)
            if old is None or active:  # the active entries changed
                self._active += active
                self._selection = None
                if self.too_many:
                    self._mark_over()
        previous = old.share if old is not None else (0, 0, 0, 0, 0)
        if previous != entry.share:
            self._totals = [t - a + b for t, a, b in zip(self._totals, previous, entry.share, strict=True)]
            self._status = None

    def _mark_over(self) -> None:
        """Mark the active entries past ``max_entries`` (and no other): the
        rows whose mark changes are made again."""
        active = [e.ref for e in self.entries.values() if e.flags[0]]
        over = set(active[self.limit:])
        changed = [e for e in self.entries.values() if e.over != (e.ref in over)]
        for old in changed:
            entry = self.entries[old.ref] = _Entry(self.config, old.data, self.events, old.ref in over)
            if entry.row is not None or old.row is not None:
                self._tree = None
        self._over = over

    def selection(self) -> str:
        if self._selection is None:
            self._selection = str(escape(selection_text(self._active, len(self._over), self.limit)))
        return self._selection

    def tree(self) -> Comprehension:
        if self._tree is None:
            shown = [e for e in self.entries.values() if e.row is not None]
            keys = tuple(e.ref for e in shown)
            self._place = {key: i for i, key in enumerate(keys)}
            self._tree = Comprehension.of_rows(entry_statics(), tuple(cast(tuple, e.row) for e in shown), keys)
        return self._tree

    def refs(self) -> dict[str, str]:
        """The ref lists, escaped (refs come from the client)."""
        if self._refs is None:
            refs = entry_refs([e.data for e in self.entries.values()])
            self._refs = {kind: str(escape(value)) for kind, value in refs.items()}
        return self._refs

    def status(self) -> str:
        if self._status is None:
            self._status = str(escape(status_words(*self._totals)))
        return self._status

    def value(self, name: str) -> Dynamic:
        if name == "entries":
            return self.tree()
        if name == "errors":
            return self.errors
        if name == "status":
            return self.status()
        if name == "selection":
            return self.selection()
        return self.refs()[name]


class LivePage:
    """The upload page kept up to date by changes, rendering only what changed.

    Configs are the page's form of ``UploadSession``'s (``errors``: the
    config-level errors only), keyed by upload name, in the order first put.
    """

    def __init__(self, *, events: PageEvents = _EVENTS, form_id: str = "upload-form") -> None:
        self.events = events
        self.form_id = form_id
        self.renders = 0  # trees made (each join, reply with a diff, or push)
        self._configs: dict[str, _Config] = {}
        # The layout of the configs as they are: made again when one is put or removed.
        self._layout: tuple[tuple[str, ...], tuple[_Probe, ...]] | None = None
        self._saved = str(saved_html(()))
        self._notice_text = ""
        self._notice = ""  # escaped
        self._sent: Rendered | None = None

    @property
    def notice(self) -> str:
        """The status line under the form (escaped when shown)."""
        return self._notice_text

    @notice.setter
    def notice(self, text: str) -> None:
        self._notice_text = text
        self._notice = str(escape(text))

    # -- changes -----------------------------------------------------------

    def put_config(self, config: Mapping[str, Any]) -> None:
        """Add or replace a whole config (with its ``entries``)."""
        self._configs[str(config.get("name", config["ref"]))] = _Config(config, self.events)
        self._layout = None

    def remove_config(self, name: str) -> None:
        self._configs.pop(name, None)
        self._layout = None

    def put_entry(self, name: str, entry: Mapping[str, Any]) -> None:
        """Replace (or add, at the end) one entry of config ``name``."""
        config = self._configs.get(name)
        if config is not None:
            config.put_entry(entry)

    def set_saved(self, saved: Sequence[Mapping[str, Any]]) -> None:
        """The saved files (dicts with ``name`` and ``size``, or ``error``)."""
        self._saved = str(saved_html(saved))

    # -- rendering ---------------------------------------------------------

    def render(self) -> Rendered:
        """The whole tree as it is now (unchanged parts are the same objects)."""
        self.renders += 1
        configs = list(self._configs.values())
        if self._layout is None:
            self._layout = _layout(tuple(c.static_key for c in configs), [c.static_view for c in configs],
                                   self.events, self.form_id)
        statics, order = self._layout
        dynamics: list[Dynamic] = []
        for probe in order:
            if probe.config is not None:
                dynamics.append(configs[probe.config].value(probe.name))
            elif probe.name == "saved":
                dynamics.append(self._saved)
            else:
                dynamics.append(self._notice)
        return Rendered.of_parts(statics, tuple(dynamics))  # every part escaped where it was made

    def rendered(self) -> Rendered:
        """The whole tree, now what the client has (a join's ``rendered``)."""
        self._sent = self.render()
        return self._sent

    def diff(self) -> dict[str, Any]:
        """What changed since the tree the client last got (``{}``: nothing)."""
        new = self.render()
        diff = new.diff(self._sent)
        self._sent = new
        return diff


def render_upload_page(
    configs: Sequence[Mapping[str, Any]],
    saved: Sequence[Mapping[str, Any]] = (),
    *,
    notice: str = "",
    events: PageEvents = _EVENTS,
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
    error refs, selection words, config errors HTML, the entries (a keyed
    comprehension, one row per entry), progress status; then the saved list
    and the notice.
    Statics depend only on the configs, so diffs between renders of the same
    configs carry dynamics only.
    """
    page = LivePage(events=events, form_id=form_id)
    for i, config in enumerate(configs):
        page._configs[f"{i}:{config.get('name', config['ref'])}"] = _Config(config, events)
    page.set_saved(saved)
    page.notice = notice
    return page.render()

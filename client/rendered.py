"""A LiveView rendered tree kept as Phoenix's client keeps it (``rendered.js``):
diffs are merged into the tree, and HTML is produced only when someone asks.

The tree is LiveView's general format, so the client reads both the flat tree
this server has rendered so far (``{"0": "...", "1": "...", "s": [...]}``) and
nested ones:

* a dynamic is a string (HTML, already escaped by the server), a nested
  rendered dict, or an integer (a component id, rendered from ``"c"``);
* ``"s"``: the statics, a list of strings (or an integer naming a template of
  the nearest ``"p"``; in a component, a negative or positive cid whose
  statics it shares);
* ``"d"``: a comprehension's rows, each a list of dynamics rendered with the
  comprehension's statics; a diff's ``"d"`` replaces the rows;
* ``"k"``: a keyed comprehension (LiveView 1.1+): ``{"kc": count, "0": entry,
  ...}``, each entry a dict of dynamics (or ``[old_index, diff]`` /
  ``old_index`` when an entry moved);
* ``"p"``: templates shared by the comprehensions below it;
* ``"c"``: components by cid, merged key-wise like the tree.

Merging follows ``Rendered.mutableMerge``: a diff dict with ``"s"`` replaces
the subtree it lands on; any other dict is merged key by key into a dict
already there; everything else (strings, ints, ``"d"`` lists) replaces. A diff's
top-level ``"e"`` (events), ``"t"`` (title) and ``"r"`` (reply) are not part
of the tree: :meth:`RenderedTree.apply` strips them.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["RenderedTree"]

STATIC, DYNAMICS, KEYED, KEYED_COUNT, KEYED_MOVED = "s", "d", "k", "kc", "km"
COMPONENTS, TEMPLATES, STREAM, ROOT = "c", "p", "stream", "r"
_NOT_TREE = ("e", "t", "r")  # events, title, reply: carried by a diff, not kept


class RenderedTree:
    """A rendered tree kept up to date with diffs (nothing is rendered on apply).

    ``version`` counts the diffs applied, so a reader can tell whether what it
    derived from :meth:`html` is still current."""

    def __init__(self, rendered: dict[str, Any]) -> None:
        self.tree: dict[str, Any] = {}
        self.components: dict[str, Any] = {}
        self.version = 0
        self.replace(rendered)

    def replace(self, rendered: dict[str, Any]) -> None:
        """Start again from a whole tree (a join's ``rendered``)."""
        rendered = _strip(rendered)
        if STATIC not in rendered:
            raise ValueError("a rendered tree needs its statics under 's'")
        _check_statics(rendered[STATIC])
        self.components = {}
        self.tree = {}
        self.apply(rendered)

    def apply(self, diff: dict[str, Any]) -> None:
        """Merge ``diff`` into the tree: changed dynamics, nested subtrees,
        comprehensions and components, or a whole new tree when it has ``s``."""
        if not isinstance(diff, dict):
            raise ValueError(f"a diff is a dict, got {type(diff).__name__}")
        diff = _strip(diff)
        components = diff.pop(COMPONENTS, None)
        if STATIC in diff:
            _check_statics(diff[STATIC])
        self.tree = _merge(self.tree, diff)
        if components:
            if not isinstance(components, dict):
                raise ValueError("a diff's components ('c') are a dict by cid")
            for cid, cdiff in components.items():
                self.components[str(cid)] = self._component(str(cid), cdiff, components)
        self.version += 1

    def _component(self, cid: str, cdiff: Any, new: dict[str, Any]) -> Any:
        """A component's merged tree; ``"s"`` as an int shares another cid's
        statics (positive: from this diff, negative: from the tree)."""
        if not isinstance(cdiff, dict):
            return cdiff
        shared = cdiff.get(STATIC)
        if isinstance(shared, int) and not isinstance(shared, bool):
            source = new.get(str(shared)) if shared > 0 else self.components.get(str(-shared))
            if shared > 0 and isinstance(source, dict):
                source = self._component(str(shared), source, new)
            if not isinstance(source, dict):
                raise ValueError(f"component {cid} shares the statics of unknown component {shared}")
            base = copy.deepcopy({k: v for k, v in source.items() if k != STATIC})
            merged = _merge(base, {k: v for k, v in cdiff.items() if k != STATIC})
            merged[STATIC] = source[STATIC]
            return merged
        old = self.components.get(cid)
        if STATIC in cdiff or not isinstance(old, dict):
            return cdiff
        return _merge(old, cdiff)

    def html(self) -> str:
        """The tree rendered to HTML (as ``Rendered.toString`` without the
        change-tracking attributes)."""
        out: list[str] = []
        self._render(self.tree, None, out)
        return "".join(out)

    def _render(self, node: Any, templates: Any, out: list[str]) -> None:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, bool) or node is None:
            return
        elif isinstance(node, int):
            component = self.components.get(str(node))
            if component is None:
                raise ValueError(f"no component for cid {node}")
            self._render(component, None, out)
        elif isinstance(node, dict):
            if TEMPLATES in node:
                templates = node[TEMPLATES]
            statics = _statics(node.get(STATIC), templates)
            if KEYED in node:
                keyed = node[KEYED]
                for i in range(int(keyed.get(KEYED_COUNT, 0))):
                    self._row(keyed.get(str(i), {}), statics, templates, out)
            elif DYNAMICS in node:
                for row in node[DYNAMICS] or []:
                    self._row({str(j): v for j, v in enumerate(row)}, statics, templates, out)
            else:
                self._row(node, statics, templates, out)
        else:
            out.append(str(node))

    def _row(self, node: dict[str, Any], statics: list[str], templates: Any, out: list[str]) -> None:
        for i, static in enumerate(statics[:-1]):
            out.append(static)
            self._render(node.get(str(i), ""), templates, out)
        if statics:
            out.append(statics[-1])


def _strip(diff: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of ``diff`` without what is not part of the tree."""
    return {k: v for k, v in diff.items() if k not in _NOT_TREE}


def _check_statics(statics: Any) -> None:
    if isinstance(statics, int) and not isinstance(statics, bool):
        return  # a template reference
    if not isinstance(statics, list) or not all(isinstance(s, str) for s in statics):
        raise ValueError("statics ('s') are a list of strings or a template index")


def _statics(statics: Any, templates: Any) -> list[str]:
    if isinstance(statics, int) and not isinstance(statics, bool):
        if not isinstance(templates, dict) or str(statics) not in templates:
            raise ValueError(f"statics name template {statics}, which no 'p' above defines")
        return list(templates[str(statics)])
    if not isinstance(statics, list):
        raise ValueError("a rendered node without statics ('s')")
    return statics


def _merge(target: Any, source: Any) -> Any:
    """``source`` merged into ``target`` (mutated when both are dicts), as
    ``Rendered.mutableMerge``: a dict with ``s`` replaces, other dicts merge
    key-wise, anything else replaces."""
    if not isinstance(source, dict) or STATIC in source or not isinstance(target, dict):
        return _own(source)
    if KEYED in source and isinstance(source[KEYED], dict):
        _merge_keyed(target, source)
        return target
    for key, value in source.items():
        if isinstance(value, dict) and STATIC not in value and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = _own(value)
    return target


def _own(value: Any) -> Any:
    """A diff's subtree adopted into the tree: a copy, so later merges never
    change a dict the caller still holds."""
    if isinstance(value, dict):
        return {k: _own(v) for k, v in value.items()}
    return value


def _merge_keyed(target: dict[str, Any], source: dict[str, Any]) -> None:
    entries = source[KEYED]
    old = target.get(KEYED)
    if not isinstance(old, dict):
        old = target[KEYED] = {KEYED_COUNT: 0}
    before = copy.deepcopy(old) if entries.get(KEYED_MOVED) else old
    for i, entry in entries.items():
        if i in (KEYED_COUNT, KEYED_MOVED):
            continue
        if isinstance(entry, list):  # [old index, diff]: moved and changed
            moved = copy.deepcopy(before.get(str(entry[0]), {}))
            old[i] = _merge(moved, entry[1])
        elif isinstance(entry, int) and not isinstance(entry, bool):  # moved unchanged
            old[i] = copy.deepcopy(before.get(str(entry), {}))
        elif isinstance(entry, dict):
            old[i] = _merge(old.get(i) if isinstance(old.get(i), dict) else {}, entry)
    count = int(entries.get(KEYED_COUNT, old.get(KEYED_COUNT, 0)))
    for i in range(count, int(old.get(KEYED_COUNT, 0))):
        old.pop(str(i), None)
    old[KEYED_COUNT] = count
    for key in (STREAM, TEMPLATES):
        if key in source:
            target[key] = source[key]
    for key, value in source.items():  # statics of the comprehension may come with it
        if key not in (KEYED, STREAM, TEMPLATES):
            target[key] = _merge(target.get(key), value) if isinstance(value, dict) else _own(value)

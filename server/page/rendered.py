"""A LiveView rendered tree: statics, escaped string dynamics, and nested
trees and keyed comprehensions as LiveView's client reads them.

* :class:`Rendered`: ``{"0": d0, ..., "s": statics}``; a dynamic is a string
  (escaped by markupsafe unless :class:`markupsafe.Markup`), a nested
  :class:`Rendered` or a :class:`Comprehension`.
* :class:`Comprehension`: rows sharing one list of statics, each row a tuple
  of escaped strings, keyed (entry refs): ``{"s": statics, "k": {"0": {"0":
  f0, ...}, ..., "kc": count}}``.

:meth:`Rendered.diff` gives only what changed: the changed keys of a tree,
recursively; in a comprehension only the changed fields of the rows that
changed (``{"k": {"3": {"9": "42"}, "kc": 10}}``), a row that moved as its old
index (``{"k": {"2": 3, "km": 1, "kc": 9}}``, or ``[3, {fields}]`` when it
changed too), a new row in full. The wire format is described in
``docs/protocol.md`` ("The rendered tree").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import is_not
from typing import Any, Union

from markupsafe import Markup, escape

__all__ = ["Comprehension", "Dynamic", "Rendered"]


@dataclass(frozen=True, eq=False)
class Comprehension:
    """Rows sharing ``statics``: the HTML of a row is ``s[0] + f0 + s[1] + ... + s[n]``.

    ``rows`` are tuples of already escaped strings (``len(statics) - 1``
    each); ``keys`` name the rows (unique), so a diff can say a row moved.
    """

    statics: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...] = ()
    keys: tuple[str, ...] = ()

    def __init__(self, statics: Sequence[str], rows: Sequence[tuple[str, ...]] = (),
                 keys: Sequence[str] | None = None) -> None:
        statics = statics if isinstance(statics, tuple) else tuple(statics)
        rows = rows if isinstance(rows, tuple) else tuple(rows)
        keys = tuple(str(i) for i in range(len(rows))) if keys is None else tuple(keys)
        if len(keys) != len(rows):
            raise ValueError(f"need one key per row, got {len(keys)} keys for {len(rows)} rows")
        width = len(statics) - 1
        for row in rows:
            if len(row) != width:
                raise ValueError(f"a row needs {width} fields, got {len(row)}")
        object.__setattr__(self, "statics", statics)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "keys", keys)

    @classmethod
    def of_rows(cls, statics: tuple[str, ...], rows: tuple[tuple[str, ...], ...],
                keys: tuple[str, ...]) -> Comprehension:
        """A comprehension from parts already checked (no copy, no check): a
        page that changes one row keeps the others and the keys as they are."""
        self = object.__new__(cls)
        object.__setattr__(self, "statics", statics)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "keys", keys)
        return self

    def to_html(self) -> str:
        statics = self.statics
        out: list[str] = []
        for row in self.rows:
            out.append(statics[0])
            for value, static in zip(row, statics[1:], strict=True):
                out.append(value)
                out.append(static)
        return "".join(out)

    def to_json(self) -> dict[str, Any]:
        keyed: dict[str, Any] = {str(i): _row_json(row) for i, row in enumerate(self.rows)}
        keyed["kc"] = len(self.rows)
        return {"s": list(self.statics), "k": keyed}

    def diff(self, previous: Dynamic | None) -> dict[str, Any]:
        """What changed since ``previous`` (all of it with ``"s"`` if its statics differ)."""
        if not isinstance(previous, Comprehension) or (
            previous.statics is not self.statics and previous.statics != self.statics
        ):
            return self.to_json()
        if previous.rows is self.rows and previous.keys is self.keys:
            return {}
        old_rows, old_keys = previous.rows, previous.keys
        if old_keys is self.keys or old_keys == self.keys:  # the same rows in the same places
            same: dict[str, Any] = {}
            rows = self.rows
            for i in compress(range(len(rows)), map(is_not, old_rows, rows)):  # rows replaced (in C)
                fields = _changed_fields(old_rows[i], rows[i])
                if fields:
                    same[str(i)] = fields
            if not same:
                return {}
            same["kc"] = len(self.rows)
            return {"k": same}
        was = {key: i for i, key in enumerate(old_keys)}
        keyed: dict[str, Any] = {}
        moved = False
        for i, (key, row) in enumerate(zip(self.keys, self.rows, strict=True)):
            j = was.get(key)
            if j is None:
                keyed[str(i)] = _row_json(row)
                continue
            old = old_rows[j]
            fields = {} if old is row else _changed_fields(old, row)
            if j == i:
                if fields:
                    keyed[str(i)] = fields
            else:
                moved = True
                keyed[str(i)] = [j, fields] if fields else j
        if not keyed and len(self.rows) == len(old_rows):
            return {}
        if moved:
            keyed["km"] = 1
        keyed["kc"] = len(self.rows)
        return {"k": keyed}


def _changed_fields(old: tuple[str, ...], new: tuple[str, ...]) -> dict[str, str]:
    """A row's fields that differ, by index: what a diff carries of a row that stayed."""
    return {str(n): b for n, (a, b) in enumerate(zip(old, new, strict=True)) if a != b}


def _row_json(row: tuple[str, ...]) -> dict[str, str]:
    return {str(n): value for n, value in enumerate(row)}


Dynamic = Union[str, "Rendered", Comprehension]


@dataclass(frozen=True, eq=False)
class Rendered:
    """A LiveView rendered tree: statics and dynamics.

    The HTML is ``s[0] + d[0] + s[1] + ... + d[n-1] + s[n]``.  Statics are
    trusted template text; string dynamics are escaped unless
    :class:`~markupsafe.Markup`; a dynamic may also be a nested
    :class:`Rendered` or a :class:`Comprehension`.
    """

    statics: tuple[str, ...]
    dynamics: tuple[Dynamic, ...] = field(default=())

    def __init__(self, statics: Sequence[str], dynamics: Sequence[Any] = ()) -> None:
        statics = statics if isinstance(statics, tuple) else tuple(statics)
        if not all(isinstance(s, str) for s in statics):
            raise TypeError("statics must be strings")
        if len(statics) != len(dynamics) + 1:
            raise ValueError(
                f"need len(statics) == len(dynamics) + 1, got {len(statics)} statics "
                f"and {len(dynamics)} dynamics"
            )
        object.__setattr__(self, "statics", statics)
        object.__setattr__(self, "dynamics", tuple(
            str(d) if type(d) is Markup else d if isinstance(d, (Rendered, Comprehension)) else str(escape(d))
            for d in dynamics
        ))

    @classmethod
    def of_parts(cls, statics: tuple[str, ...], dynamics: tuple[Dynamic, ...]) -> Rendered:
        """A tree from parts already checked and escaped (no copy, no check)."""
        self = object.__new__(cls)
        object.__setattr__(self, "statics", statics)
        object.__setattr__(self, "dynamics", dynamics)
        return self

    def to_html(self) -> str:
        """The full HTML (what the client renders into the view's root)."""
        out = [self.statics[0]]
        for dyn, static in zip(self.dynamics, self.statics[1:], strict=True):
            out.append(dyn if isinstance(dyn, str) else dyn.to_html())
            out.append(static)
        return "".join(out)

    def to_json(self) -> dict[str, Any]:
        """The join form: ``{"0": d0, "1": d1, ..., "s": [statics]}``."""
        payload: dict[str, Any] = {
            str(i): d if isinstance(d, str) else d.to_json() for i, d in enumerate(self.dynamics)
        }
        payload["s"] = list(self.statics)
        return payload

    def diff(self, previous: Dynamic | None) -> dict[str, Any]:
        """The keys whose dynamics changed since ``previous``, nested trees and
        comprehensions as their own diffs.

        With no previous render or different statics, the whole tree (with
        ``"s"``), which the client takes as a replacement.
        """
        if not isinstance(previous, Rendered) or (
            previous.statics is not self.statics and previous.statics != self.statics
        ):
            return self.to_json()
        out: dict[str, Any] = {}
        for i, (old, new) in enumerate(zip(previous.dynamics, self.dynamics, strict=True)):
            if old is new:
                continue
            if isinstance(new, str):
                if old != new:
                    out[str(i)] = new
            else:
                sub = new.diff(old)
                if sub:
                    out[str(i)] = sub
        return out

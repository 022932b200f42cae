"""A LiveView rendered tree with one level: statics and string dynamics.

Its join form is ``{"0": d0, ..., "s": statics}`` and :meth:`Rendered.diff`
gives only the changed keys. The client inserts string dynamics as raw HTML,
so every dynamic is escaped (markupsafe): only :class:`markupsafe.Markup`
strings, which the page's fragments build, pass as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import escape

__all__ = ["Rendered"]


@dataclass(frozen=True)
class Rendered:
    """A LiveView rendered tree with one level: statics and string dynamics.

    The HTML is ``s[0] + d[0] + s[1] + ... + d[n-1] + s[n]``.  Statics are
    trusted template text; dynamics are escaped unless :class:`~markupsafe.Markup`.
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
        for dyn, static in zip(self.dynamics, self.statics[1:], strict=True):
            out.append(dyn)
            out.append(static)
        return "".join(out)

    def to_json(self) -> dict[str, Any]:
        """The join form: ``{"0": d0, "1": d1, ..., "s": [statics]}``."""
        payload: dict[str, Any] = {str(i): d for i, d in enumerate(self.dynamics)}
        payload["s"] = list(self.statics)
        return payload

    def diff(self, previous: Rendered | None) -> dict[str, Any]:
        """The keys whose dynamics changed since ``previous``.

        With no previous render or different statics, the whole tree (with
        ``"s"``), which the client takes as a replacement.
        """
        if previous is None or previous.statics != self.statics:
            return self.to_json()
        return {
            str(i): new
            for i, (old, new) in enumerate(zip(previous.dynamics, self.dynamics, strict=True))
            if old != new
        }

"""Per-socket budgets of the ``lv:`` and ``lvu:`` handlers: pages, and topics
of both kinds, joined at once on one socket.

A join takes a unit (:meth:`SocketBudgets.take`) before it starts anything
and gives it back when its topic ends (or the join fails). Past a budget the
join is refused with Phoenix's error reply, ``{"reason": "too_many_pages"}``
or ``{"reason": "too_many_topics"}``; nothing else on the socket is touched.
Only sockets with something joined are kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["DEFAULT_MAX_PAGES_PER_SOCKET", "Refusal", "Slot", "SocketBudgets"]

#: Pages (``lv:`` topics) one socket may have joined at once. LiveView's
#: client joins one per tab and socket (more with nested live views).
DEFAULT_MAX_PAGES_PER_SOCKET = 10

Refusal = Literal["too_many_pages", "too_many_topics"]


@dataclass
class SocketBudgets:
    """How many pages and topics each socket has joined, against the budgets."""

    max_pages: int = DEFAULT_MAX_PAGES_PER_SOCKET
    max_topics: int = DEFAULT_MAX_PAGES_PER_SOCKET * 2
    _pages: dict[Hashable, int] = field(default_factory=dict, repr=False)
    _topics: dict[Hashable, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for name in ("max_pages", "max_topics"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    @classmethod
    def for_configs(cls, configs: Mapping[str, Mapping[str, Any]], *, max_pages: int = DEFAULT_MAX_PAGES_PER_SOCKET,
                    max_topics: int | None = None) -> SocketBudgets:
        """Budgets for an app's upload configs: by default, room for every
        page to upload all it may at once (``max_pages * (1 + the sum of
        max_entries)``), so a budget only ever stops a client that is not
        LiveView's."""
        if max_topics is None:
            max_topics = max_pages * (1 + sum(int(c.get("max_entries", 1)) for c in configs.values()))
        return cls(max_pages=max_pages, max_topics=max_topics)

    def take(self, socket: Hashable, *, page: bool) -> Refusal | None:
        """Count a join on ``socket`` (a page or an upload); the refusal if
        over a budget, and then nothing is counted."""
        if self._topics.get(socket, 0) >= self.max_topics:
            return "too_many_topics"
        if page and self._pages.get(socket, 0) >= self.max_pages:
            return "too_many_pages"
        self._topics[socket] = self._topics.get(socket, 0) + 1
        if page:
            self._pages[socket] = self._pages.get(socket, 0) + 1
        return None

    def give_back(self, socket: Hashable, *, page: bool) -> None:
        """Uncount a join :meth:`take` counted: its topic ended, or its join failed."""
        _decrement(self._topics, socket)
        if page:
            _decrement(self._pages, socket)

    def counts(self, socket: Hashable) -> tuple[int, int]:
        """``(pages, topics)`` joined on ``socket``."""
        return self._pages.get(socket, 0), self._topics.get(socket, 0)

    def sockets(self) -> int:
        """How many sockets have anything joined."""
        return len(self._topics)

    def limit(self, refusal: Refusal) -> int:
        return self.max_pages if refusal == "too_many_pages" else self.max_topics


def _decrement(counts: dict[Hashable, int], socket: Hashable) -> None:
    left = counts.get(socket, 0) - 1
    if left > 0:
        counts[socket] = left
    else:
        counts.pop(socket, None)


class Slot:
    """One join's unit of a socket's budgets: taken once, given back once."""

    def __init__(self, budgets: SocketBudgets, socket: Hashable, *, page: bool) -> None:
        self.budgets = budgets
        self.socket = socket
        self.page = page
        self.held = False

    def take(self) -> Refusal | None:
        refusal = self.budgets.take(self.socket, page=self.page)
        self.held = refusal is None
        return refusal

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self.budgets.give_back(self.socket, page=self.page)

    async def join_within(
        self, join: Callable[[], Awaitable[tuple[str, Any]]], logger: Any, event: str
    ) -> tuple[str, Any]:
        """Run ``join`` holding this slot, given back unless the join succeeds;
        past the budget refuse it with Phoenix's error reply and one ``event``
        log line, starting nothing."""
        refusal = self.take()
        if refusal is not None:
            budget = "pages" if refusal == "too_many_pages" else "topics"
            logger.warning(event, budget=budget, limit=self.budgets.limit(refusal))
            return "error", {"reason": refusal}
        try:
            reply = await join()
        except BaseException:
            self.give_back()
            raise
        if reply[0] != "ok":
            self.give_back()
        return reply

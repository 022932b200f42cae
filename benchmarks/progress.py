"""A progress bar on stderr (tqdm) that scenarios tick once per measured point."""

from __future__ import annotations

import sys
from typing import Any, Protocol

__all__ = ["Progress", "ProgressBar", "NoProgress"]


class Progress(Protocol):
    def tick(self, label: str) -> None:
        """One step is done; ``label`` says which is next or what was done."""

    def note(self, label: str) -> None:
        """Say what is running now, without counting a step."""


class NoProgress:
    """Progress that shows nothing (tests, ``--no-progress``)."""

    def tick(self, label: str) -> None:
        pass

    def note(self, label: str) -> None:
        pass

    def close(self) -> None:
        pass


class ProgressBar:
    """A tqdm bar of ``total`` steps on stderr; hidden when stderr is not a terminal
    unless ``force`` is set."""

    def __init__(self, total: int, *, force: bool = False) -> None:
        from tqdm import tqdm

        tqdm.monitor_interval = 0  # no monitor thread: the bar is ticked often, and nothing outlives the run
        self._bar: Any = tqdm(
            total=total,
            file=sys.stderr,
            disable=None if not force else False,
            unit="step",
            dynamic_ncols=True,
            leave=False,
        )

    def tick(self, label: str) -> None:
        self._bar.set_description_str(label, refresh=False)
        self._bar.update(1)

    def note(self, label: str) -> None:
        self._bar.set_description_str(label)

    def close(self) -> None:
        self._bar.close()

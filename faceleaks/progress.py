"""Progress bars (Rich) for long stages; silent when disabled or not on a terminal-less CI log."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["track"]

T = TypeVar("T")
_ENABLED = [True]


def set_enabled(enabled: bool) -> None:
    """Turn all progress bars on or off (the CLI's ``--no-progress``)."""
    _ENABLED[0] = bool(enabled)


def track(items: Iterable[T], description: str, *, total: int | None = None) -> Iterator[T]:
    """Yield from ``items`` while drawing a Rich progress bar labelled ``description``."""
    if not _ENABLED[0]:
        yield from items
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        yield from progress.track(items, total=total, description=description)

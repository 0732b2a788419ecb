"""What every task shares: the console, expected failures as messages, fetch progress, the Kit."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from invoke import Exit
from rich.console import Console

from labkit.cache import fetch as cache_fetch
from labkit.cluster.kit import Kit
from labkit.errors import KitError

console = Console(highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


def say(line: str) -> None:
    console.print(line, markup=False, soft_wrap=True)


def friendly(fn: F) -> F:
    """Expected failures end with the message and exit 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KitError as exc:
            raise Exit(f"✗ {exc}", code=1) from None
        except KeyboardInterrupt:
            raise Exit("✗ interrupted; run the same command again to continue (every step is idempotent)", code=130) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def _progress(items: Sequence[Any]) -> Iterator[Any]:
    """A rich progress display of a fetch: one bar per artifact with bytes, rate and ETA."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        tasks = {item.key: bar.add_task(item.key, total=None, visible=False) for item in items}

        class Bars(cache_fetch.Reporter):
            def start(self, item: Any, total: int | None) -> None:
                bar.update(tasks[item.key], total=total, visible=True)

            def advance(self, item: Any, n: int) -> None:
                bar.advance(tasks[item.key], n)

            def done(self, item: Any, outcome: str) -> None:
                if item.key in tasks and outcome != "present":
                    task = bar.tasks[tasks[item.key]]
                    bar.update(tasks[item.key], description=f"{item.key}: {outcome}", total=task.completed or 1, completed=task.completed or 1, visible=True)

        yield Bars()


def kit() -> Kit:
    return Kit(say=say, reporter=_progress)

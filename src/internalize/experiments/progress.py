"""Progress display for the runner: a rich progress bar per unit with environment steps per second."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


class _Bar:
    def __init__(self, progress, task):
        self._progress, self._task = progress, task

    def advance(self, n: float) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)


class Progress:
    """``with progress.task(name, total, completed) as bar: bar.advance(n)``; silent when disabled or not a TTY."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and sys.stderr.isatty()

    @contextmanager
    def task(self, name: str, total: float, completed: float = 0) -> Iterator[_Bar]:
        if not self.enabled:
            yield _Bar(None, None)
            return
        from rich.progress import (
            BarColumn, Progress as RichProgress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        )

        class _Rate(RichProgress):
            def advance(self, task_id, advance=1.0):  # show env steps/s next to the bar
                super().advance(task_id, advance)
                task = self._tasks[task_id]
                speed = task.finished_speed or task.speed
                self.update(task_id, rate=f"{speed:,.0f} steps/s" if speed else "")

        with _Rate(*columns, transient=False) as progress:
            task = progress.add_task(name, total=total, completed=completed, rate="")
            yield _Bar(progress, task)

"""Progress display for the runner: a rich progress bar per unit with environment steps per second, or, when
stderr is not a terminal (a log file, CI), a plain line at most every :data:`PLAIN_EVERY_S` seconds."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

PLAIN_EVERY_S = 10.0


class _Bar:
    def __init__(self, progress, task):
        self._progress, self._task = progress, task

    def advance(self, n: float) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)


class _PlainBar:
    """Progress as plain lines: ``name: 45% (44,032/98,304 steps), 1,234 steps/s, 36 s``, at most every
    ``every`` seconds, and one when the task ends (unless the last line already said where it ended)."""

    def __init__(self, name: str, total: float, completed: float, write: Callable[[str], None], every: float,
                 unit: str = "steps"):
        self.name, self.total, self.done, self.write, self.every, self.unit = name, total, completed, write, every, unit
        self.start_done, self.start = completed, time.perf_counter()
        self.last = self.start
        self.written: float | None = None  # ``done`` when the last line was written

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = (self.done - self.start_done) / elapsed if elapsed > 0 else 0.0
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return (f"{self.name}: {pct:.0f}% ({self.done:,.0f}/{self.total:,.0f} {self.unit}), {rate:,.0f} "
                f"{self.unit}/s, {elapsed:.0f} s")

    def advance(self, n: float) -> None:
        self.done += n
        if time.perf_counter() - self.last >= self.every:
            self.last = time.perf_counter()
            self.write_line()

    def write_line(self) -> None:
        self.written = self.done
        self.write(self.line())


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Progress:
    """``with progress.task(name, total, completed) as bar: bar.advance(n)``: a rich bar on a terminal, plain
    lines (at most every ``every`` seconds, to ``write``) otherwise, nothing when disabled."""

    def __init__(self, enabled: bool = True, *, every: float = PLAIN_EVERY_S,
                 write: Callable[[str], None] = _stderr_line, terminal: bool | None = None):
        self.enabled = enabled
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.every, self.write = every, write

    @contextmanager
    def task(self, name: str, total: float, completed: float = 0,
             unit: str = "steps") -> Iterator[_Bar | _PlainBar]:
        """``unit``: what ``total`` counts (environment ``steps``; an ISR's ``updates``)."""
        if not self.enabled:
            yield _Bar(None, None)
            return
        if not self.terminal:
            bar = _PlainBar(name, total, completed, self.write, self.every, unit)
            yield bar
            if bar.written != bar.done:
                bar.write_line()
            return
        from rich.progress import (
            BarColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import (
            Progress as RichProgress,
        )

        columns = (
            TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        )

        class _Rate(RichProgress):
            def advance(self, task_id, advance=1.0):  # show env steps/s (or updates/s) next to the bar
                super().advance(task_id, advance)
                task = self._tasks[task_id]
                speed = task.finished_speed or task.speed
                self.update(task_id, rate=f"{speed:,.0f} {unit}/s" if speed else "")

        with _Rate(*columns, transient=False) as progress:
            task = progress.add_task(name, total=total, completed=completed, rate="")
            yield _Bar(progress, task)

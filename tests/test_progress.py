"""Progress where no terminal shows a bar (a log file, CI): plain lines, at most one per interval, and one at the
end of each task with its steps per second."""

from __future__ import annotations

import re

from internalize.experiments.progress import Progress


def test_without_a_terminal_progress_is_plain_lines_at_most_every_interval():
    lines: list[str] = []
    progress = Progress(every=3600.0, write=lines.append, terminal=False)
    with progress.task("fig4a/socialization", total=1000, completed=200) as bar:
        for _ in range(8):
            bar.advance(100)
    assert len(lines) == 1, lines  # nothing within the interval, one line when the task ends
    assert re.fullmatch(r"fig4a/socialization: 100% \(1,000/1,000 steps\), [\d,]+ steps/s, \d+ s", lines[0]), lines
    lines.clear()
    with Progress(every=0.0, write=lines.append, terminal=False).task("u", total=10) as bar:
        bar.advance(5)
        bar.advance(5)
    # The line written at 100% is the task's last: not written again when it ends (a one-step unit, such as an
    # ISR training in one call, printed its line twice).
    assert [line.split(",")[0] for line in lines] == ["u: 50% (5/10 steps)", "u: 100% (10/10 steps)"]


def test_an_isr_counts_updates_not_steps():
    lines: list[str] = []
    progress = Progress(every=3600.0, write=lines.append, terminal=False)
    with progress.task("fig4a/isr (isr)", 1383, unit="updates") as bar:
        bar.advance(1383)
    assert re.fullmatch(r"fig4a/isr \(isr\): 100% \(1,383/1,383 updates\), [\d,]+ updates/s, \d+ s", lines[0]), lines


def test_disabled_progress_writes_nothing():
    lines: list[str] = []
    with Progress(enabled=False, write=lines.append, terminal=False).task("u", total=10) as bar:
        bar.advance(10)
    assert lines == []

"""Progress for long work: a rich bar per file (frames, fps, ETA) and a summary line per file.

When stderr is not a terminal (a log file, a CI job) a bar cannot be drawn: a plain line every
PLAIN_EVERY_S seconds says how far the file is instead, so a long scan is not minutes of
silence."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class FpsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if task.fields.get("unit", "frames") != "frames":  # seconds of sound a second
            return Text(f"{speed:5.1f}x real time" if speed else "  --- x real time", style="cyan")
        return Text(f"{speed:5.1f} fps" if speed else "  --- fps", style="cyan")


PLAIN_EVERY_S = 10.0


class PlainProgress:
    """Progress as plain lines, at most one every `every` seconds (and none for a file done
    sooner): `NAME: 1200/5400 frames (22 %), 31.5 fps, about 2:13 left`; in another `unit`
    (seconds of sound), its rate as a multiple of real time."""

    def __init__(self, name: str, total: int | None, every: float | None = None, unit: str = "frames") -> None:
        self.name, self.total, self.unit = name, total, unit
        self.every = PLAIN_EVERY_S if every is None else every
        self.done = 0
        self.started = self.last = time.monotonic()

    def advance(self, frames: int) -> None:
        self.done += frames
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            print(self.line(now - self.started), file=sys.stderr, flush=True)

    def line(self, elapsed: float) -> str:
        fps = self.done / elapsed if elapsed > 0 else 0.0
        text = f"{self.name}: {self.done}"
        if self.total:
            text += f"/{self.total} {self.unit} ({100 * self.done / self.total:.0f} %)"
        else:
            text += f" {self.unit}"
        text += f", {fps:.1f} fps" if self.unit == "frames" else f", {fps:.1f}x real time"
        if self.total and fps > 0 and self.done < self.total:
            left = int((self.total - self.done) / fps)
            text += f", about {left // 60}:{left % 60:02d} left"
        return text


class Reporter:
    """What the pipeline tells the user. Quiet mode prints errors only."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.console = Console(stderr=True, highlight=False)
        self.progress: Progress | None = None
        self.plain: PlainProgress | None = None
        self.task: Any = None

    def start_file(self, name: str, total: int | None, unit: str = "frames") -> None:
        if self.quiet:
            return
        if not self.console.is_terminal:
            self.plain = PlainProgress(name, total, unit=unit)
            return
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            FpsColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            disable=not self.console.is_terminal,
        )
        self.progress.start()
        self.task = self.progress.add_task(name, total=total or None, unit=unit)

    def advance(self, frames: int = 1) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, frames)
        elif self.plain is not None:
            self.plain.advance(frames)

    def end_file(self) -> None:
        self.plain = None
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    @contextmanager
    def measured(self, name: str, unit: str) -> Iterator[Callable[[float, float], None]]:
        """Progress of a step counted in `unit` rather than frames (seconds of sound heard): the
        callback takes (done, total), and the bar or plain lines start at its first call."""
        shown = 0
        started = False

        def update(done: float, total: float) -> None:
            nonlocal shown, started
            if not started:
                started = True
                self.start_file(name, max(1, round(total)), unit)
            step = round(done) - shown  # the total is rounded too: the last call reaches it
            if step > 0:
                shown += step
                self.advance(step)

        try:
            yield update
        finally:
            if started:
                self.end_file()

    def info(self, line: str) -> None:
        if not self.quiet:
            self.console.print(line, soft_wrap=True)

    def error(self, line: str) -> None:
        # Errors always reach the user, as one plain line on stderr.
        print(f"veil: error: {line}", file=sys.stderr, flush=True)

    def warn(self, line: str) -> None:
        if not self.quiet:
            print(f"veil: warning: {line}", file=sys.stderr, flush=True)

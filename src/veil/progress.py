"""Progress for long work: a rich bar per file (frames, fps, ETA) and a summary line per file.

When stderr is not a terminal (a log file, a CI job) a bar cannot be drawn: a plain line every
PLAIN_EVERY_S seconds says how far the file is instead, so a long scan is not minutes of
silence."""

from __future__ import annotations

import sys
import time
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
        return Text(f"{speed:5.1f} fps" if speed else "  --- fps", style="cyan")


PLAIN_EVERY_S = 10.0


class PlainProgress:
    """Progress as plain lines, at most one every `every` seconds (and none for a file done
    sooner): `NAME: 1200/5400 frames (22 %), 31.5 fps, about 2:13 left`."""

    def __init__(self, name: str, total: int | None, every: float | None = None) -> None:
        self.name, self.total = name, total
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
            text += f"/{self.total} frames ({100 * self.done / self.total:.0f} %)"
        else:
            text += " frames"
        text += f", {fps:.1f} fps"
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

    def start_file(self, name: str, total: int | None) -> None:
        if self.quiet:
            return
        if not self.console.is_terminal:
            self.plain = PlainProgress(name, total)
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
        self.task = self.progress.add_task(name, total=total or None)

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

    def info(self, line: str) -> None:
        if not self.quiet:
            self.console.print(line, soft_wrap=True)

    def error(self, line: str) -> None:
        # Errors always reach the user, as one plain line on stderr.
        print(f"veil: error: {line}", file=sys.stderr, flush=True)

    def warn(self, line: str) -> None:
        if not self.quiet:
            print(f"veil: warning: {line}", file=sys.stderr, flush=True)

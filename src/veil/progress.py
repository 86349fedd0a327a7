"""Progress for long work: a rich bar per file (frames, fps, ETA) and a summary line per file."""

from __future__ import annotations

import sys
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


class Reporter:
    """What the pipeline tells the user. Quiet mode prints errors only."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.console = Console(stderr=True, highlight=False)
        self.progress: Progress | None = None
        self.task: Any = None

    def start_file(self, name: str, total: int | None) -> None:
        if self.quiet:
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

    def end_file(self) -> None:
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

"""Time ranges: process and write only part of a long recording (`--start`, `--end`).

A subject-access request is usually about one time window of hours of CCTV. The source seeks
to the keyframe before `start`, decodes from there, drops frames and audio packets before
`start`, and stops at `end`; the output's clock starts at `start` (its first frame is at 0 s
when a frame falls exactly on `start`), video and audio shifted by the same amount so they
stay in sync. The report records the range in the input's time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from veil.errors import VeilError

_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")


def parse_time(text: str, option: str = "time") -> float:
    """Seconds from '90', '90.5', '1:30' (m:s) or '1:02:03.5' (h:m:s)."""
    value = text.strip()
    match = _CLOCK.match(value)
    if match:
        hours, minutes, secs = match.groups()
        try:
            if (hours is not None and int(minutes) >= 60) or float(secs) >= 60:
                raise VeilError(f"{option}: bad time {text!r}; minutes and seconds must be under 60")
            seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)
        except (ValueError, OverflowError):  # more digits than Python converts, or than a float holds
            raise VeilError(f"{option}: time must be 0 or more, got {text[:40]!r}") from None
    else:
        try:
            seconds = float(value)
        except (ValueError, OverflowError):
            raise VeilError(f"{option}: bad time {text!r}; use seconds (90.5) or [h:]mm:ss[.s]") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise VeilError(f"{option}: time must be 0 or more, got {text!r}")
    return seconds


@dataclass(frozen=True)
class TimeRange:
    """[start, end) in seconds of the input; `end` None: to the end of the file."""

    start: float = 0.0
    end: float | None = None

    def __post_init__(self) -> None:
        # Library callers and plans come here without parse_time's checks.
        for name, value in (("--start", self.start), ("--end", self.end)):
            if value is None and name == "--end":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise VeilError(f"{name}: time must be a finite number of seconds, 0 or more, got {value!r}")
        if self.end is not None and self.end <= self.start:
            raise VeilError(f"--end ({self.end:g} s) must be after --start ({self.start:g} s)")

    @classmethod
    def from_options(cls, start: str | None, end: str | None) -> TimeRange | None:
        """The range asked for on the command line, or None for the whole file."""
        if start is None and end is None:
            return None
        return cls(parse_time(start, "--start") if start else 0.0, parse_time(end, "--end") if end else None)

    def offset(self, time_base: Fraction) -> int:
        """`start` in ticks of `time_base` (what every kept timestamp is shifted back by)."""
        return int(round(Fraction(self.start).limit_denominator(1_000_000) / time_base))

    def before(self, seconds: float) -> bool:
        # Half a millisecond of slack: a frame stamped at exactly `start` in a coarse time base
        # must not be dropped for a rounding error.
        return seconds < self.start - 5e-4

    def after(self, seconds: float) -> bool:
        return self.end is not None and seconds >= self.end - 5e-4

    def to_json(self) -> dict[str, Any]:
        return {"start_s": self.start, "end_s": self.end}

"""Hand freed memory back to the system while a long video or a stream runs.

Video frames are a few MB each (2.6 MiB at 720p), far above glibc's starting threshold for
serving a block from its own mmap, but glibc raises that threshold each time such a block is
freed, so soon every frame lives in the heaps. There, frames held for the tracker's look-ahead
interleave with the decoder's, detector's and encoder's short-lived buffers, and the freed gaps
are never returned: a one-shot run of a 720p clip grew from 880 to 1,230 MiB in two minutes and
kept growing, while scan alone and render alone stayed flat. `malloc_trim` gives every whole
free page in every heap back (glibc >= 2.8), which keeps the process flat; asking every few
hundred frames costs a few milliseconds each time. Serving every frame from mmap instead
(a fixed `M_MMAP_THRESHOLD`) was as flat but about 15 % slower: each frame's pages are then
faulted in and zeroed again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

# About ten seconds of 30 fps video: often enough that what accumulates in between is a few
# hundred MB at most, rarely enough that the trims cost well under 0.1 % of the run.
TRIM_EVERY_FRAMES = 256


def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl and other C libraries have no malloc_trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


class MemoryRelease:
    """Counts frames and gives freed heap memory back every `every` of them (a no-op where the
    C library has no `malloc_trim`)."""

    def __init__(self, every: int = TRIM_EVERY_FRAMES) -> None:
        self.every = every
        self.frames = 0
        self.trims = 0

    def frame_done(self) -> None:
        self.frames += 1
        if self.frames % self.every == 0 and _TRIM is not None:
            _TRIM(0)
            self.trims += 1

    @staticmethod
    def available() -> bool:
        return _TRIM is not None

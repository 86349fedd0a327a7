"""Tracking within one clip: decide what to mask in each frame from the detections around it.

The tracker only links boxes inside one video to cover frames the detector missed; it never
compares people across files. It is a stage with a bounded look-ahead: `push` takes a frame
and its detections (None when the detector skipped that frame) and returns the frames that
are final, so memory is bounded by the window, not by the video.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

import numpy as np

from veil.types import Detections, Frame


class Tracker(Protocol):
    def push(self, frame: Frame, detections: Detections | None) -> list[tuple[Frame, Detections]]: ...

    def flush(self) -> list[tuple[Frame, Detections]]: ...

    def summary(self) -> list[dict[str, Any]]:
        """Per-track records for the report (first/last frame, frames detected vs filled)."""
        ...


class WindowTracker:
    """Masks in every frame the union of the detections within `radius` frames of it.

    A face found in frame t is therefore also covered in frames t-radius..t+radius, which
    fills detector flicker of up to 2*radius frames, and a frame the detector skipped
    (detection stride) is covered by its neighbours' boxes.
    """

    def __init__(self, radius: int = 2) -> None:
        self.radius = radius
        self.pending: deque[Frame] = deque()
        # Detections of the last 2*radius+1 frames, by frame index.
        self.recent: deque[tuple[int, Detections]] = deque()

    def push(self, frame: Frame, detections: Detections | None) -> list[tuple[Frame, Detections]]:
        self.pending.append(frame)
        self.recent.append((frame.index, detections if detections is not None else Detections.empty()))
        ready = []
        while self.pending and self.pending[0].index + self.radius <= frame.index:
            ready.append(self._emit(self.pending.popleft()))
        while self.recent and self.pending and self.recent[0][0] < self.pending[0].index - self.radius:
            self.recent.popleft()
        return ready

    def flush(self) -> list[tuple[Frame, Detections]]:
        out = [self._emit(f) for f in self.pending]
        self.pending.clear()
        self.recent.clear()
        return out

    def _emit(self, frame: Frame) -> tuple[Frame, Detections]:
        parts = []
        for index, dets in self.recent:
            if abs(index - frame.index) <= self.radius and len(dets):
                if index != frame.index:
                    dets = Detections(dets.xyxy, dets.confidence, dets.label, dets.track_id, filled=None)
                    dets.filled = np.ones(len(dets), dtype=bool)
                parts.append(dets)
        return frame, Detections.merge(parts)

    def summary(self) -> list[dict[str, Any]]:
        return []

"""The typed values that flow between veil's stages.

`source` yields `Frame`s, a detector turns a frame into `Detections`, the tracker turns
detections into the final boxes to mask, `redact` paints them, and `sink` writes frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np


@dataclass
class Detections:
    """Boxes found in one frame, in pixels of that frame.

    Every array has one row per box. `xyxy` is float32 (x1, y1, x2, y2); `confidence` is the
    detector's score (1.0 for boxes the tracker filled in); `label` names the class ("face",
    "plate", "text", ...); `track_id` is -1 until a tracker assigns one; `filled` marks boxes
    that no detector found in this frame but the tracker inferred from neighbouring frames.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    label: np.ndarray
    track_id: np.ndarray = field(default=None)  # type: ignore[assignment]
    filled: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(n, 4)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(n)
        self.label = np.asarray(self.label, dtype=object).reshape(n)
        if self.track_id is None:
            self.track_id = np.full(n, -1, dtype=np.int64)
        if self.filled is None:
            self.filled = np.zeros(n, dtype=bool)
        self.track_id = np.asarray(self.track_id, dtype=np.int64).reshape(n)
        self.filled = np.asarray(self.filled, dtype=bool).reshape(n)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=object))

    @classmethod
    def from_boxes(cls, xyxy: np.ndarray, confidence: np.ndarray, label: str) -> Detections:
        n = len(xyxy)
        return cls(xyxy, confidence, np.full(n, label, dtype=object))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> Detections:
        return Detections(
            self.xyxy[index],
            self.confidence[index],
            self.label[index],
            self.track_id[index],
            self.filled[index],
        )

    @staticmethod
    def merge(parts: list[Detections]) -> Detections:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Detections.empty()
        return Detections(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.confidence for p in parts]),
            np.concatenate([p.label for p in parts]),
            np.concatenate([p.track_id for p in parts]),
            np.concatenate([p.filled for p in parts]),
        )

    @property
    def heights(self) -> np.ndarray:
        return self.xyxy[:, 3] - self.xyxy[:, 1]

    def to_records(self) -> list[dict[str, Any]]:
        """Plain values for the JSON report."""
        out = []
        for i in range(len(self)):
            x1, y1, x2, y2 = (round(float(v), 1) for v in self.xyxy[i])
            rec: dict[str, Any] = {
                "label": str(self.label[i]),
                "box": [x1, y1, x2, y2],
                "score": round(float(self.confidence[i]), 3),
            }
            if self.track_id[i] >= 0:
                rec["track"] = int(self.track_id[i])
            if self.filled[i]:
                rec["filled"] = True
            out.append(rec)
        return out


@dataclass
class Frame:
    """One decoded picture. `image` is H x W x 3 uint8 RGB, owned by the pipeline (may be
    modified in place by `redact`). `pts`/`time_base` are the decoder's timestamp, kept so
    the output has the input's timing; both are None for still images."""

    image: np.ndarray
    index: int
    pts: int | None = None
    time_base: Fraction | None = None

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

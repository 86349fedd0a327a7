"""Scoring for the benchmark: pure functions on annotations and before/after pixel arrays.

A tool is judged only by what it did to the pixels, never by what it says it found:

* a ground-truth face counts as *redacted* when at least `REDACTED_FRACTION` (70 %) of the
  pixels of its box changed between the input and the tool's output;
* *over-redaction* is the share of pixels far from every annotated face (outside each face or
  ignore box grown to twice its width and height about its centre) that changed.

Recall is reported per face-height bucket. Faces inside `ignore` boxes (WIDER FACE's
"invalid" faces) are neither counted for recall nor as over-redaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REDACTED_FRACTION = 0.70
FAR_GROWTH = 2.0
# (name, lowest height included, highest height excluded)
BUCKETS: list[tuple[str, float, float]] = [
    ("<16", 0.0, 16.0),
    ("16-32", 16.0, 32.0),
    ("32-64", 32.0, 64.0),
    (">=64", 64.0, float("inf")),
    ("all>=16", 16.0, float("inf")),
    ("all", 0.0, float("inf")),
]


@dataclass
class Annotation:
    """One annotated image: boxes are float arrays of `[x, y, w, h]` rows, in pixels."""

    image: Path
    boxes: np.ndarray
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.float64))

    @property
    def heights(self) -> np.ndarray:
        return self.boxes[:, 3]


def _as_boxes(rows: Any) -> np.ndarray:
    arr = np.asarray(rows if rows is not None else [], dtype=np.float64)
    return arr.reshape(-1, 4)


def load_annotations(path: Path) -> list[Annotation]:
    """Read a `faces.json`: a list of `{"image", "boxes", "ignore"?}`; image paths are relative
    to the JSON file's folder."""
    path = Path(path)
    entries = json.loads(path.read_text())
    out = []
    for entry in entries:
        out.append(
            Annotation(
                image=(path.parent / entry["image"]).resolve(),
                boxes=_as_boxes(entry.get("boxes")),
                ignore=_as_boxes(entry.get("ignore")),
            )
        )
    return out


def box_pixels(xywh: np.ndarray, width: int, height: int) -> np.ndarray:
    """Integer pixel boxes `(x1, y1, x2, y2)`, end exclusive, rounded to the nearest pixel edge,
    at least one pixel each way, clipped to the image."""
    xywh = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    x1 = np.round(xywh[:, 0])
    y1 = np.round(xywh[:, 1])
    x2 = np.maximum(np.round(xywh[:, 0] + xywh[:, 2]), x1 + 1)
    y2 = np.maximum(np.round(xywh[:, 1] + xywh[:, 3]), y1 + 1)
    out = np.stack([x1, y1, x2, y2], axis=1).astype(np.int64)
    out[:, 0::2] = np.clip(out[:, 0::2], 0, width)
    out[:, 1::2] = np.clip(out[:, 1::2], 0, height)
    return out


def grow_about_centre(xywh: np.ndarray, factor: float) -> np.ndarray:
    """Scale each `[x, y, w, h]` box's width and height by `factor`, keeping its centre."""
    xywh = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    cx = xywh[:, 0] + xywh[:, 2] / 2
    cy = xywh[:, 1] + xywh[:, 3] / 2
    w = xywh[:, 2] * factor
    h = xywh[:, 3] * factor
    return np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)


def changed_pixels(before: np.ndarray, after: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """H x W bool: pixels where any channel differs by more than `tolerance`."""
    if before.shape != after.shape:
        raise ValueError(f"output shape {after.shape} differs from input shape {before.shape}")
    diff = np.abs(before.astype(np.int16) - after.astype(np.int16))
    if diff.ndim == 3:
        diff = diff.max(axis=2)
    return diff > tolerance


def face_redacted(changed: np.ndarray, boxes_xywh: np.ndarray) -> np.ndarray:
    """Per box: did at least `REDACTED_FRACTION` of its pixels change?"""
    height, width = changed.shape
    px = box_pixels(boxes_xywh, width, height)
    out = np.zeros(len(px), dtype=bool)
    for i, (x1, y1, x2, y2) in enumerate(px):
        area = (x2 - x1) * (y2 - y1)
        if area <= 0:
            continue  # box entirely outside the image: cannot be shown, cannot be redacted
        out[i] = changed[y1:y2, x1:x2].mean() >= REDACTED_FRACTION
    return out


def far_mask(shape: tuple[int, int], boxes_xywh: np.ndarray, ignore_xywh: np.ndarray) -> np.ndarray:
    """H x W bool: pixels outside every face and ignore box grown `FAR_GROWTH` times."""
    height, width = shape
    far = np.ones((height, width), dtype=bool)
    both = np.concatenate([np.reshape(boxes_xywh, (-1, 4)), np.reshape(ignore_xywh, (-1, 4))])
    grown = grow_about_centre(both, FAR_GROWTH)
    for x1, y1, x2, y2 in box_pixels(grown, width, height):
        far[y1:y2, x1:x2] = False
    return far


@dataclass
class ImageScore:
    """Per-image result: which faces were redacted, and far-pixel counts."""

    heights: np.ndarray
    redacted: np.ndarray
    far_changed: int
    far_total: int


def score_image(before: np.ndarray, after: np.ndarray, ann: Annotation, tolerance: int = 0) -> ImageScore:
    changed = changed_pixels(before, after, tolerance)
    far = far_mask(changed.shape, ann.boxes, ann.ignore)
    return ImageScore(
        heights=ann.heights.copy(),
        redacted=face_redacted(changed, ann.boxes),
        far_changed=int(np.count_nonzero(changed & far)),
        far_total=int(np.count_nonzero(far)),
    )


def missed_image_score(ann: Annotation, shape: tuple[int, int]) -> ImageScore:
    """Score for an image the tool produced no output for: every face counts as missed."""
    far = far_mask(shape, ann.boxes, ann.ignore)
    return ImageScore(ann.heights.copy(), np.zeros(len(ann.boxes), dtype=bool), 0, int(far.sum()))


def recall_by_bucket(heights: np.ndarray, redacted: np.ndarray) -> dict[str, dict[str, Any]]:
    """`{bucket: {"faces": n, "redacted": k, "recall": k / n or None}}`."""
    heights = np.asarray(heights, dtype=np.float64)
    redacted = np.asarray(redacted, dtype=bool)
    out: dict[str, dict[str, Any]] = {}
    for name, lo, hi in BUCKETS:
        sel = (heights >= lo) & (heights < hi)
        n = int(sel.sum())
        k = int(redacted[sel].sum())
        out[name] = {"faces": n, "redacted": k, "recall": (k / n) if n else None}
    return out


def summarize(scores: list[ImageScore]) -> dict[str, Any]:
    """Pool per-image scores: recall per bucket and pixel-weighted over-redaction."""
    if scores:
        heights = np.concatenate([s.heights for s in scores])
        redacted = np.concatenate([s.redacted for s in scores])
    else:
        heights = np.zeros(0)
        redacted = np.zeros(0, dtype=bool)
    far_changed = sum(s.far_changed for s in scores)
    far_total = sum(s.far_total for s in scores)
    return {
        "recall": recall_by_bucket(heights, redacted),
        "over_redaction": (far_changed / far_total) if far_total else 0.0,
        "far_pixels": far_total,
    }

"""Box arithmetic shared by detectors, the tracker and masks. Boxes are float (x1, y1, x2, y2)."""

from __future__ import annotations

import numpy as np


def rows(arrays: list[np.ndarray]) -> np.ndarray:
    """Equal-length 1-D arrays as the rows of one array: `np.stack`'s result, at a third of its
    cost on the hundreds of boxes and motions a crowded frame stacks."""
    return np.concatenate(arrays).reshape(len(arrays), -1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in `a` with every box in `b` (len(a) x len(b))."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-6)


def inside_matrix(xyxy: np.ndarray) -> np.ndarray:
    """Share of each box's area that lies inside each other box (n x n; [i, j]: box i in box j),
    in the boxes' own precision."""
    box = np.asarray(xyxy).reshape(-1, 4)
    area = np.maximum((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]), 1e-6)
    lo = np.maximum(box[:, None, :2], box[None, :, :2])
    hi = np.minimum(box[:, None, 2:], box[None, :, 2:])
    return np.clip(hi - lo, 0, None).prod(axis=2) / area[:, None]


def nms(xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while len(order):
        best = int(order[0])
        keep.append(best)
        if len(order) == 1:
            break
        overlap = iou_matrix(xyxy[best : best + 1], xyxy[order[1:]])[0]
        order = order[1:][overlap < iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def grow(xyxy: np.ndarray, margin: float | np.ndarray, isotropic: bool | np.ndarray = False) -> np.ndarray:
    """Grow each box by `margin` times its width (height) on the left and right (top and bottom).

    With `isotropic`, every side grows by `margin` times the box's shorter side instead: a
    line of text grows by a fraction of its height, not of its (much larger) length.
    `margin` and `isotropic` may be per-box arrays.
    """
    xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    w = (xyxy[:, 2] - xyxy[:, 0])[:, None]
    h = (xyxy[:, 3] - xyxy[:, 1])[:, None]
    iso = np.broadcast_to(np.asarray(isotropic, dtype=bool), (len(xyxy),))[:, None]
    short = np.minimum(w, h)
    w, h = np.where(iso, short, w), np.where(iso, short, h)
    m = np.broadcast_to(np.asarray(margin, dtype=np.float32), (len(xyxy),))[:, None]
    delta = np.hstack([-w, -h, w, h]) * m
    return xyxy + delta


def to_pixels(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Integer pixel boxes clipped to the image, rounded outwards so a box never shrinks."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    out = np.empty((len(xyxy), 4), dtype=np.int64)
    out[:, 0] = np.floor(xyxy[:, 0])
    out[:, 1] = np.floor(xyxy[:, 1])
    out[:, 2] = np.ceil(xyxy[:, 2])
    out[:, 3] = np.ceil(xyxy[:, 3])
    out[:, 0::2] = np.clip(out[:, 0::2], 0, width)
    out[:, 1::2] = np.clip(out[:, 1::2], 0, height)
    return out


def tiles(width: int, height: int, size: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Equal overlapping tiles of at most `size` px a side covering the image (one if it fits).

    Tiles are made as small as the tile count allows rather than `size` wide, so a 1920 x 1080
    frame costs 4 tiles of 1024 x 604 (+19 % pixels), not 4 of 1024 x 1024 (+100 %).
    """

    def spans(length: int) -> list[tuple[int, int]]:
        if length <= size:
            return [(0, length)]
        n = -(-(length - overlap) // (size - overlap))
        tile = min(size, -(-(length + (n - 1) * overlap) // n))
        return [(s, s + tile) for s in (round(i * (length - tile) / (n - 1)) for i in range(n))]

    return [(x0, y0, x1, y1) for y0, y1 in spans(height) for x0, x1 in spans(width)]

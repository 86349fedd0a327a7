"""A reviewer's box, followed forward and backward through the video by template matching.

The reviewer draws a box around something veil missed; the page asks for it to be followed so
the box is not one frame long. The box's pixels in its own frame become a template that is
looked for in each next frame, near where it was last (normalised cross-correlation on a
greyscale copy at most `WORK_WIDTH` wide). Following stops where the match gets weak (the
object left, was covered, or the shot changed) or after `max_frames`. Between the reviewer's
own keyframes nothing is followed: the plan interpolates them.

It compares the object with itself, frame to frame, within one clip; it never identifies it.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

WORK_WIDTH = 640
# Below this correlation the match is no longer the same patch of picture.
MIN_SCORE = 0.55


def _grey(image: np.ndarray, scale: float) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if scale != 1.0:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return grey


def follow(
    frame_at: Callable[[int], np.ndarray],
    start: int,
    box: np.ndarray,
    step: int,
    limit: int,
    total: int,
) -> list[tuple[int, np.ndarray]]:
    """(frame, box) for frames start+step, start+2*step, ... while the template is found, at most
    `limit` frames and never past the clip's ends. `step` is +1 or -1."""
    first = frame_at(start)
    h, w = first.shape[:2]
    scale = min(1.0, WORK_WIDTH / w)
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = x2 - x1, y2 - y1
    grey = _grey(first, scale)
    tx1, ty1 = max(0, int(round(x1 * scale))), max(0, int(round(y1 * scale)))
    tx2, ty2 = min(grey.shape[1], int(round(x2 * scale))), min(grey.shape[0], int(round(y2 * scale)))
    if tx2 - tx1 < 4 or ty2 - ty1 < 4:
        return []
    template = grey[ty1:ty2, tx1:tx2].astype(np.float32)
    out: list[tuple[int, np.ndarray]] = []
    cx, cy = tx1, ty1
    tw, th = tx2 - tx1, ty2 - ty1
    frame = start
    for _ in range(limit):
        frame += step
        if not 0 <= frame < total:
            break
        grey = _grey(frame_at(frame), scale).astype(np.float32)
        pad_x, pad_y = max(tw, 16), max(th, 16)
        sx1, sy1 = max(0, cx - pad_x), max(0, cy - pad_y)
        sx2, sy2 = min(grey.shape[1], cx + tw + pad_x), min(grey.shape[0], cy + th + pad_y)
        window = grey[sy1:sy2, sx1:sx2]
        if window.shape[0] < th or window.shape[1] < tw:
            break
        scores = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (mx, my) = cv2.minMaxLoc(scores)
        if not np.isfinite(best) or best < MIN_SCORE:
            break
        cx, cy = sx1 + mx, sy1 + my
        # A slowly refreshed template follows gradual change (turning, lighting) without drifting
        # onto the background at the first bad match.
        template = 0.85 * template + 0.15 * grey[cy : cy + th, cx : cx + tw]
        fx1, fy1 = cx / scale, cy / scale
        out.append((frame, np.array([fx1, fy1, fx1 + bw, fy1 + bh], dtype=np.float64)))
        if fx1 + bw <= 0 or fy1 + bh <= 0 or fx1 >= w or fy1 >= h:
            break
    return out

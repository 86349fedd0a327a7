"""Camera motion between consecutive frames, so the tracker can tell a face's own motion from the
camera's.

Handheld, body-worn and dashboard cameras pan, shake and zoom. Seen in frame coordinates, a
face that stands still then moves with the camera, and a track that loses its detections for a
few frames is carried along the wrong path. `CameraMotion` estimates how the background moved
(a similarity transform: shift, zoom, small rotation) by following corner points of a small
greyscale copy of the frame with pyramidal Lucas-Kanade flow and fitting the transform with
RANSAC, so that people moving across the picture (a minority of its corners) do not pull it.
When too few points agree (a blank wall, a flash, heavy blur) it reports no motion, which is
what the tracker assumed before; the tracker's margins cover the error either way.

On a fixed camera over a plain background most corners can lie on the people, and RANSAC with
its one-pixel tolerance then takes two or three walkers and the background near one point for
a zoom about that point (2-4 % a frame; on 5 of 12 generated CCTV clips, 116 of 1,788 frame pairs).
The tracker's scene coordinates then jump, a walker's track breaks at such frames, and the
motion cue restarts its background model as if the camera had moved. So a fitted move is
checked against a still camera first (`_still`).

It only measures the picture's motion; it never looks at who is in it.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

IDENTITY = np.eye(3, dtype=np.float64)

# A still camera (`CameraMotion._still`): at least STILL_MIN tracked corners moved under STILL_PX
# at the working width (0.15 px of 160: 0.6 px of a 640 px frame, about Lucas-Kanade's error on
# a textured corner under sensor noise and H.264), and the moving corners share no motion of the
# whole picture: theirs gathers under half of all the corners followed, or spreads over fewer
# cells of a STILL_GRID x STILL_GRID grid than the still ones.
STILL_PX = 0.15
STILL_MIN = 5
STILL_GRID = 4
# A camera that held still (`CameraMotion.held`): its estimate moved the frame's corners at most
# HELD_PX in at least HELD_SHARE of the last HELD_FRAMES frames. A zoom leaves the centre in
# place and moves the corners (the bundled sample: over 1 px in every frame, median 2.4), and a
# handheld camera holds still for a frame now and then (20 % of a walking 720p clip's frames by
# the centre alone, 15 % by the corners); on the fixed mall camera the corners' estimated shift
# stays under 1 px in 98 % of frames (largest 1.3 px). The motion cue runs the person network
# only then (persons.py); and a camera that held still is taken to move only when the moving
# corners' motion spreads over at least HELD_CELLS more cells than the still corners: a few
# walkers' corners that happen to fit a zoom are likelier than a fixed camera starting to zoom
# with part of its picture standing still.
HELD_PX = 1.0
HELD_FRAMES = 10
HELD_SHARE = 0.8
HELD_CELLS = 2


class CameraMotion:
    """`__call__(image)` returns the 3x3 transform taking pixel coordinates of the previous frame
    to those of this one (identity for the first frame, after `reset`, or when unsure)."""

    def __init__(self, width: int = 160, max_corners: int = 100, min_inliers: int = 12) -> None:
        self.width = width
        self.max_corners = max_corners
        self.min_inliers = min_inliers
        self._prev: np.ndarray | None = None
        self._scale = 1.0
        # Whether each of the last HELD_FRAMES estimates held still (`held`).
        self._recent: deque[bool] = deque(maxlen=HELD_FRAMES)

    def reset(self) -> None:
        """Forget the previous frame (at a scene cut: the next frame starts a new shot)."""
        self._prev = None
        self._recent.clear()

    def held(self) -> bool:
        """Whether the camera held still in at least HELD_SHARE of the last HELD_FRAMES frames
        (unknown until that many frames were compared: no)."""
        return len(self._recent) == HELD_FRAMES and sum(self._recent) >= HELD_SHARE * HELD_FRAMES

    def _grey(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        # A strided view to about twice the working width first (cheap on a large frame), then
        # a proper area average down to it, so noise and fine texture do not alias.
        step = max(1, w // (2 * self.width))
        grey = cv2.cvtColor(np.ascontiguousarray(image[::step, ::step]), cv2.COLOR_RGB2GRAY)
        target = min(self.width, grey.shape[1])
        self._scale = target / w
        size = (target, max(1, round(h * self._scale)))
        if (grey.shape[1], grey.shape[0]) != size:
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        return grey

    def __call__(self, image: np.ndarray) -> np.ndarray:
        step = self._estimate(image)
        h, w = image.shape[:2]
        corners = np.asarray([[0.0, 0.0, 1.0], [w, 0.0, 1.0], [0.0, h, 1.0], [w, h, 1.0]])
        moved = np.hypot(*((corners @ step.T)[:, :2] - corners[:, :2]).T).max()
        self._recent.append(bool(moved <= HELD_PX))
        return step

    def _estimate(self, image: np.ndarray) -> np.ndarray:
        grey = self._grey(image)
        prev, self._prev = self._prev, grey
        if prev is None or prev.shape != grey.shape:
            return IDENTITY.copy()
        pts = cv2.goodFeaturesToTrack(prev, self.max_corners, 0.01, 6, blockSize=5)
        if pts is None or len(pts) < self.min_inliers:
            return IDENTITY.copy()
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(prev, grey, pts, None, winSize=(11, 11), maxLevel=2)
        ok = status.ravel() == 1
        if ok.sum() < self.min_inliers:
            return IDENTITY.copy()
        matrix, inliers = cv2.estimateAffinePartial2D(
            pts[ok], nxt[ok], method=cv2.RANSAC, ransacReprojThreshold=1.0, maxIters=500
        )
        if matrix is None or inliers is None or int(inliers.sum()) < self.min_inliers:
            return IDENTITY.copy()
        if self._still(pts[ok].reshape(-1, 2), nxt[ok].reshape(-1, 2), grey.shape):
            return IDENTITY.copy()
        # Back to full-resolution pixels: x_full = x_small / scale.
        out = IDENTITY.copy()
        out[:2, :2] = matrix[:, :2]
        out[:2, 2] = matrix[:, 2] / self._scale
        return out

    def _still(self, before: np.ndarray, after: np.ndarray, shape: tuple[int, ...]) -> bool:
        """Whether a still camera explains the corners' flow (working-size points, N x 2) rather
        than the fitted move. A camera that moves carries its whole background along: most of
        the corners followed share its motion, spread over the picture, and few stand still.
        People moving in front of a still camera each move their own way; the most one motion
        gathers is a person or two in part of the picture, while the background's corners stand
        still. With fewer than STILL_MIN corners standing still (a moving camera; a dashboard
        camera's bonnet or a burned-in clock are a few) the fitted move stands. A camera that has
        held still (`held`) must show its move over HELD_CELLS more cells than stand still."""
        still = np.linalg.norm(after - before, axis=1) <= STILL_PX
        if int(still.sum()) < STILL_MIN:
            return False
        moving = ~still
        if int(moving.sum()) < self.min_inliers:
            return True
        matrix, inliers = cv2.estimateAffinePartial2D(
            before[moving], after[moving], method=cv2.RANSAC, ransacReprojThreshold=1.0, maxIters=500
        )
        if matrix is None or inliers is None:
            return True
        shared = inliers.ravel() == 1
        if int(shared.sum()) < max(self.min_inliers, len(before) / 2):
            return True
        margin = HELD_CELLS if self.held() else 0
        return _cells(before[moving][shared], shape) < _cells(before[still], shape) + margin


def _cells(points: np.ndarray, shape: tuple[int, ...]) -> int:
    """How many cells of a STILL_GRID x STILL_GRID grid over a picture of `shape` hold points."""
    height, width = shape[:2]
    rows = np.clip((points[:, 1] * STILL_GRID / height).astype(np.int64), 0, STILL_GRID - 1)
    cols = np.clip((points[:, 0] * STILL_GRID / width).astype(np.int64), 0, STILL_GRID - 1)
    return len(set((rows * STILL_GRID + cols).tolist()))


def transform_boxes(matrix: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    """Boxes `(x1, y1, x2, y2)` mapped through a 3x3 similarity transform: the axis-aligned box
    around the four mapped corners (never smaller than the mapped box)."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    if not len(xyxy):
        return xyxy.astype(np.float32)
    corners = np.stack([xyxy[:, [0, 1]], xyxy[:, [2, 1]], xyxy[:, [0, 3]], xyxy[:, [2, 3]]], axis=1)  # N x 4 x 2
    mapped = corners @ matrix[:2, :2].T + matrix[:2, 2]
    return np.concatenate([mapped.min(axis=1), mapped.max(axis=1)], axis=1).astype(np.float32)

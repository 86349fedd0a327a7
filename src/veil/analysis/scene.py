"""Scene coordinates: undo the camera's own motion so tracks describe where things are.

`CameraMotion` (motion.py) measures how the picture moved between consecutive frames. Chained
from the first frame of a shot, that gives each frame a transform into the shot's *scene*
coordinates: a face standing still while the camera pans is a track standing still there, and a
box carried over frames the detector missed follows the picture. `SceneFrames` keeps one
transform and one camera speed per frame the tracker still holds, and forgets each when its
frame is painted.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from veil.analysis.motion import IDENTITY, CameraMotion, transform_boxes
from veil.types import Detections


class SceneFrames:
    """`camera` None: frame coordinates are used as they are (no camera following)."""

    def __init__(self, camera: CameraMotion | None) -> None:
        self.camera = camera
        # Per held frame: 3x3 transform from its pixels to its shot's scene coordinates; and that
        # of the last frame observed, which the next frame's transform chains from.
        self._scene: dict[int, np.ndarray] = {}
        self._last_scene = IDENTITY
        # Per held frame: how far the picture moved since the previous frame (px, at its centre).
        self._speed: dict[int, float] = {}
        # The fastest of those, while the frames held stay the same (`fixed` is asked for every
        # box carried past its detections: hundreds a frame in a crowd).
        self._fastest: float | None = None

    def __len__(self) -> int:
        return len(self._scene)

    def observe(self, index: int, image: np.ndarray, new_shot: bool) -> None:
        if self.camera is None:
            return
        if new_shot:
            self.camera.reset()
            self.camera(image)
            self._scene[index] = self._last_scene = IDENTITY.copy()
            self._speed[index] = 0.0
            self._fastest = None
            return
        step = self.camera(image)  # previous frame's pixels -> this frame's pixels
        self._scene[index] = self._last_scene = self._last_scene @ np.linalg.inv(step)
        h, w = image.shape[:2]
        centre = np.asarray([w / 2, h / 2, 1.0])
        self._speed[index] = float(np.hypot(*((step @ centre)[:2] - centre[:2])))
        self._fastest = None

    def to_scene(self, index: int, dets: Detections) -> Detections:
        if self.camera is None or not len(dets):
            return dets
        return replace(dets, xyxy=transform_boxes(self._scene[index], dets.xyxy))

    def to_frame(self, index: int, boxes: np.ndarray) -> np.ndarray:
        """Scene boxes (N x 4) in frame `index`'s pixels."""
        if self.camera is None or not len(boxes):
            return boxes
        return transform_boxes(np.linalg.inv(self._scene[index]), boxes)

    def speed(self, index: int) -> float:
        return self._speed.get(index, 0.0)

    def fixed(self, below: float) -> bool:
        """The camera has not moved (less than `below` px a frame) over the frames held now."""
        if self.camera is None or not self._speed:
            return False
        if self._fastest is None:
            self._fastest = max(self._speed.values())
        return self._fastest < below

    def release(self, index: int) -> None:
        """Frame `index` was painted: its transform is no longer needed."""
        self._scene.pop(index, None)
        if self._speed.pop(index, None) is not None:
            self._fastest = None

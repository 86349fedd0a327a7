"""Paint masks over a frame: privacy zones first, then whole-frame ranges, then every box grown
by its class's margin."""

from __future__ import annotations

import cv2
import numpy as np

from veil.boxes import grow, to_pixels
from veil.classes import BY_LABEL
from veil.masks import RedactionMask
from veil.types import Detections

# A fill for what must never be seen at all (privacy zones, whole-frame ranges): opaque,
# whatever mask the boxes use, because blur and pixelate leave signal behind.
DEFAULT_FILL = (0, 0, 0)


class Redactor:
    def __init__(
        self,
        mask: RedactionMask,
        margin: float,
        zones: list[np.ndarray] | None = None,
        fill: tuple[int, int, int] = DEFAULT_FILL,
    ) -> None:
        self.mask = mask
        self.margin = margin
        # Polygons (N x 2 float, pixels of the upright frame) masked in every frame.
        self.zones = [np.asarray(z, dtype=np.float64).reshape(-1, 2) for z in zones or []]
        self.fill = fill

    def mask_boxes(self, detections: Detections, width: int, height: int) -> np.ndarray:
        """The integer pixel boxes that will be painted (grown by the margin, clipped)."""
        classes = [BY_LABEL.get(str(label)) for label in detections.label]
        margins = [c.margin if c is not None and c.margin is not None else self.margin for c in classes]
        iso = np.asarray([c is not None and c.isotropic for c in classes], dtype=bool)
        return to_pixels(grow(detections.xyxy, np.asarray(margins, dtype=np.float32), iso), width, height)

    def zone_mask(self, height: int, width: int) -> np.ndarray:
        """H x W bool: the pixels the privacy zones cover."""
        canvas = np.zeros((height, width), np.uint8)
        if self.zones:
            cv2.fillPoly(canvas, [np.round(z).astype(np.int32) for z in self.zones], 255)
        return canvas > 0

    def paint_zones(self, image: np.ndarray) -> None:
        if self.zones:
            # Rounded outwards by one pixel is not needed: fillPoly covers every pixel the
            # polygon's edges touch.
            cv2.fillPoly(image, [np.round(z).astype(np.int32) for z in self.zones], self.fill)

    def __call__(self, image: np.ndarray, detections: Detections, whole_frame: bool = False) -> np.ndarray:
        """Paint `image` in place; return the pixel boxes painted for `detections`."""
        self.paint_zones(image)
        if whole_frame:
            image[:] = self.fill
        boxes = self.mask_boxes(detections, image.shape[1], image.shape[0])
        if not whole_frame:
            for x1, y1, x2, y2 in boxes:
                self.mask.apply(image, (int(x1), int(y1), int(x2), int(y2)))
        return boxes

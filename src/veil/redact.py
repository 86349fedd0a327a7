"""Paint the mask over every box of a frame, grown by the margin."""

from __future__ import annotations

import numpy as np

from veil.boxes import grow, to_pixels
from veil.masks import RedactionMask
from veil.types import Detections

# Plate boxes already include the plate's frame (see detectors/plates.py), so they need only a
# little slack; a face margin would double the masked area for nothing.
LABEL_MARGIN = {"plate": 0.1}
# Text lines grow by a fraction of their height on every side, not of their length.
ISOTROPIC = {"text", "plate"}


class Redactor:
    def __init__(self, mask: RedactionMask, margin: float) -> None:
        self.mask = mask
        self.margin = margin

    def mask_boxes(self, detections: Detections, width: int, height: int) -> np.ndarray:
        """The integer pixel boxes that will be painted (grown by the margin, clipped)."""
        labels = [str(label) for label in detections.label]
        margins = np.asarray([LABEL_MARGIN.get(label, self.margin) for label in labels], dtype=np.float32)
        iso = np.asarray([label in ISOTROPIC for label in labels], dtype=bool)
        return to_pixels(grow(detections.xyxy, margins, iso), width, height)

    def __call__(self, image: np.ndarray, detections: Detections) -> np.ndarray:
        boxes = self.mask_boxes(detections, image.shape[1], image.shape[0])
        for x1, y1, x2, y2 in boxes:
            self.mask.apply(image, (int(x1), int(y1), int(x2), int(y2)))
        return boxes

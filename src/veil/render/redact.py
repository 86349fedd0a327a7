"""Paint masks over a frame: privacy zones first, then whole-frame ranges, then every box grown
by its class's margin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from veil.analysis.boxes import grow, to_pixels
from veil.analysis.classes import BY_LABEL
from veil.analysis.zones import Zone, ZonePainter
from veil.render.masks import RedactionMask
from veil.render.masks.solid import parse_color
from veil.types import Detections

if TYPE_CHECKING:
    from veil.config import Settings

# A fill for what must never be seen at all (privacy zones, whole-frame ranges): opaque,
# whatever mask the boxes use, because blur and pixelate leave signal behind.
DEFAULT_FILL = (0, 0, 0)


def in_paint_order(detections: Detections) -> Detections:
    """Boxes in the plan's track order: overlapping blurs then come out the same from a plan as
    from the run that wrote it, and verify repaints them the same way."""
    if len(detections) > 1:
        return detections[np.argsort(detections.track_id, kind="stable")]
    return detections


def redactor_for(settings: Settings, zones: list[Zone] | None = None) -> Redactor:
    """The redactor a render paints with: the settings' mask and margin, and zones and whole
    frames filled opaquely in the solid mask's colour (black for blur and pixelate)."""
    from veil.render.masks import create

    fill = parse_color(settings.mask_color or "black") if settings.mask == "solid" else DEFAULT_FILL
    return Redactor(create(settings.mask, **settings.mask_options()), float(settings.margin or 0.0), zones, fill)


class Redactor:
    def __init__(
        self,
        mask: RedactionMask,
        margin: float,
        zones: list[Zone] | None = None,
        fill: tuple[int, int, int] = DEFAULT_FILL,
    ) -> None:
        self.mask = mask
        self.margin = margin
        # Privacy zones (zones.py), masked in every frame; rasterised once per frame size.
        self.zones = ZonePainter(list(zones or []), fill)
        self.fill = fill

    def mask_boxes(self, detections: Detections, width: int, height: int) -> np.ndarray:
        """The integer pixel boxes that will be painted (grown by the margin, clipped)."""
        classes = [BY_LABEL.get(str(label)) for label in detections.label]
        margins = [c.margin if c is not None and c.margin is not None else self.margin for c in classes]
        iso = np.asarray([c is not None and c.isotropic for c in classes], dtype=bool)
        return to_pixels(grow(detections.xyxy, np.asarray(margins, dtype=np.float32), iso), width, height)

    def zone_mask(self, height: int, width: int) -> np.ndarray:
        """H x W bool: the pixels the privacy zones cover."""
        if not self.zones:
            return np.zeros((height, width), bool)
        return self.zones.mask(width, height)

    def paint_zones(self, image: np.ndarray) -> None:
        self.zones.paint(image)

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

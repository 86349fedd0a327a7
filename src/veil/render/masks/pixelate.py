"""Coarse mosaic. Weaker than a solid fill: pixelated faces can still be matched by machines."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from veil.render.masks import register


@register("pixelate")
class PixelateMask:
    name = "pixelate"
    irreversible = False

    def __init__(self, blocks: int = 6) -> None:
        # Blocks across the box's larger side; few blocks leave little to match.
        self.blocks = blocks

    def apply(self, image: np.ndarray, box: tuple[int, int, int, int]) -> None:
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        if w <= 0 or h <= 0:
            return
        cell = max(1, max(w, h) // self.blocks)
        small = cv2.resize(image[y1:y2, x1:x2], (max(1, w // cell), max(1, h // cell)), interpolation=cv2.INTER_AREA)
        image[y1:y2, x1:x2] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)

    def settings(self) -> dict[str, Any]:
        return {"blocks": self.blocks}

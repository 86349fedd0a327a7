"""Heavy blur. Weaker than a solid fill: blurred faces can still be matched by machines."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from veil.render.masks import register


@register("blur")
class BlurMask:
    name = "blur"
    irreversible = False

    def __init__(self, strength: float = 0.5) -> None:
        # Kernel size as a fraction of the box's larger side: at 0.5 nothing finer than half
        # the face survives, far stronger than a cosmetic blur.
        self.strength = strength

    def apply(self, image: np.ndarray, box: tuple[int, int, int, int]) -> None:
        x1, y1, x2, y2 = box
        if x2 <= x1 or y2 <= y1:
            return
        region = image[y1:y2, x1:x2]
        k = max(3, int(max(x2 - x1, y2 - y1) * self.strength) | 1)
        # Downscale first so the blur cost does not grow with the face size, and blur twice so
        # the result carries no sharp edge of the original.
        small = cv2.resize(region, (max(1, (x2 - x1) // 4), max(1, (y2 - y1) // 4)), interpolation=cv2.INTER_AREA)
        ks = max(3, (k // 4) | 1)
        small = cv2.GaussianBlur(small, (ks, ks), 0)
        small = cv2.GaussianBlur(small, (ks, ks), 0)
        region[:] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)

    def settings(self) -> dict[str, Any]:
        return {"strength": self.strength}

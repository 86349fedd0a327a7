"""Opaque fill: the default, and the only mask that leaves nothing of the face to recover."""

from __future__ import annotations

from typing import Any

import numpy as np

from veil.errors import VeilError
from veil.render.masks import register


def parse_color(text: str) -> tuple[int, int, int]:
    """'black', '#rrggbb' or 'r,g,b' to an RGB triple."""
    named = {"black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128), "grey": (128, 128, 128)}
    value = text.strip().lower()
    if value in named:
        return named[value]
    try:
        if value.startswith("#") and len(value) == 7:
            return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))
        parts = [int(p) for p in value.split(",")]
        if len(parts) == 3 and all(0 <= p <= 255 for p in parts):
            return (parts[0], parts[1], parts[2])
    except ValueError:
        pass
    raise VeilError(f"bad --mask-color {text!r}: use a name (black, white, gray), #rrggbb or r,g,b")


@register("solid")
class SolidMask:
    name = "solid"
    irreversible = True

    def __init__(self, color: str | tuple[int, int, int] = (0, 0, 0)) -> None:
        self.color = parse_color(color) if isinstance(color, str) else tuple(color)

    def apply(self, image: np.ndarray, box: tuple[int, int, int, int]) -> None:
        x1, y1, x2, y2 = box
        image[y1:y2, x1:x2] = self.color

    def settings(self) -> dict[str, Any]:
        return {"color": "#{:02x}{:02x}{:02x}".format(*self.color)}

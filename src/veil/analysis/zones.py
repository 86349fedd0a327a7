"""Privacy zones: fixed areas of the picture (a neighbour's window, a garden) that are never shown.

CCTV codes of practice ask that such areas are blanked in every frame, whatever is or is not
detected there. A zone file is JSON:

    {"zones": [{"name": "garden", "polygon": [[x, y], [x, y], [x, y], ...]}, ...]}

with x and y in pixels of the upright frame (as a viewer sees it), or as fractions of its width
and height when every coordinate in the file is at most 1 (so one file fits every resolution of
the same camera). Zones are rasterised once per frame size and painted with an opaque fill on
every frame before detection, so nothing downstream (detector, tracker, report thumbnails) ever
sees those pixels, and no mask type (blur, pixelate) weakens them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from veil.errors import VeilError
from veil.jsonfile import read_json

# cv2.fillPoly's fixed-point precision: vertices are given in 1/16 px.
_SHIFT = 4


@dataclass(frozen=True)
class Zone:
    """A privacy zone: the one type every reader (zone file, plan, review page, live) makes."""

    name: str
    polygon: tuple[tuple[float, float], ...]
    # True: coordinates are fractions of the frame's width and height; False: upright pixels.
    fractional: bool = False

    def pixels(self, width: int, height: int) -> np.ndarray:
        """Vertices in pixels of a `width` x `height` upright frame (N x 2 float)."""
        pts = np.asarray(self.polygon, dtype=np.float64)
        if self.fractional:
            pts = pts * np.asarray([width, height], dtype=np.float64)
        return pts

    def in_pixels(self, width: int, height: int) -> Zone:
        """This zone in pixels of a `width` x `height` frame (as a plan stores it)."""
        if not self.fractional:
            return self
        return Zone(self.name, tuple((float(x), float(y)) for x, y in self.pixels(width, height)))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "polygon": [[x, y] for x, y in self.polygon]}


def parse_zones(data: Any, source: str = "zones", allow_empty: bool = False) -> list[Zone]:
    """Zones from a decoded zone file; every problem is a one-line VeilError naming `source`.

    The file is `{"zones": [...]}` (or the bare list), each entry `{"name", "polygon"}` or the
    bare polygon `[[x, y], ...]` (the form `veil live` read). What a valid entry is lives in
    `schema.ZoneIn`, shared with the plan's zones."""
    from pydantic import ValidationError

    from veil.schema import ZoneIn, one_line

    entries = data.get("zones") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise VeilError(f'{source}: expected {{"zones": [{{"name": ..., "polygon": [[x, y], ...]}}, ...]}}')
    if not entries and not allow_empty:
        raise VeilError(f"{source}: no zones in the file")
    raw: list[tuple[str, list[tuple[float, float]]]] = []
    for i, entry in enumerate(entries):
        where = f"{source}: zone {i + 1}"
        if isinstance(entry, list):
            entry = {"polygon": entry}
        if not isinstance(entry, dict):
            raise VeilError(f"{where}: expected an object with name and polygon")
        name = entry.get("name")
        if isinstance(name, str) and name.strip():
            where = f"{source}: zone {i + 1} ({name!r})"
        try:
            zone = ZoneIn.model_validate(entry)
        except ValidationError as exc:
            raise VeilError(one_line(exc, where)) from None
        raw.append((zone.name or f"zone {i + 1}", zone.polygon))
    # One rule for the whole file: fractions only when no value can be a pixel beyond the first.
    fractional = bool(raw) and all(v <= 1.0 for _, pts in raw for p in pts for v in p)
    return [Zone(name, tuple(pts), fractional) for name, pts in raw]


def load_zones(path: str | Path) -> list[Zone]:
    """Read and validate a zone file (`--zones FILE.json`): veil's only zone-file reader."""
    path = Path(path)
    data = read_json(path, "zone file")
    return parse_zones(data, str(path))


def to_json(zones: list[Zone]) -> dict[str, Any]:
    """The zones as a zone file's JSON object (for the plan and report; `from_json` reads it back)."""
    return {
        "zones": [z.to_json() for z in zones],
        "units": "fractions" if zones and zones[0].fractional else "pixels",
    }


def from_json(data: Any) -> list[Zone]:
    zones = parse_zones(data, "zones")
    units = data.get("units") if isinstance(data, dict) else None
    if units in ("fractions", "pixels"):
        # Recorded units win over the <= 1 rule: a pixel zone near the origin stays in pixels.
        zones = [Zone(z.name, z.polygon, units == "fractions") for z in zones]
    return zones


def rasterise(zones: list[Zone], width: int, height: int) -> np.ndarray:
    """H x W bool mask of every pixel a zone touches.

    Filled polygons plus their outlines: fillPoly alone leaves out pixels the edge only grazes,
    and a zone is a promise that nothing inside it shows.
    """
    mask = np.zeros((height, width), dtype=np.uint8)
    for zone in zones:
        pts = np.round(zone.pixels(width, height) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_8, shift=_SHIFT)
        cv2.polylines(mask, [pts], True, 255, thickness=1, lineType=cv2.LINE_8, shift=_SHIFT)
    return mask > 0


class ZonePainter:
    """Paints the zones opaquely on frames; the mask is made once per frame size."""

    def __init__(self, zones: list[Zone], color: tuple[int, int, int] = (0, 0, 0)) -> None:
        self.zones = list(zones)
        self.color = np.asarray(color, dtype=np.uint8)
        self._masks: dict[tuple[int, int], np.ndarray] = {}

    def __bool__(self) -> bool:
        return bool(self.zones)

    def mask(self, width: int, height: int) -> np.ndarray:
        key = (width, height)
        if key not in self._masks:
            from veil.schema import zone_problem

            for zone in self.zones:
                # Checked before painting: a vertex far beyond the frame wraps around in cv2's
                # int32 fixed point and blanks the wrong part of the picture.
                problem = zone_problem([(float(x), float(y)) for x, y in zone.pixels(width, height)], width, height)
                if problem:
                    raise VeilError(f"zone {zone.name!r} {problem}")
            mask = rasterise(self.zones, width, height)
            for zone in self.zones:
                if not rasterise([zone], width, height).any():
                    # Drawn for another resolution or camera: blanking nothing would show the area.
                    raise VeilError(f"zone {zone.name!r} lies outside the {width}x{height} frame")
            self._masks[key] = mask
        return self._masks[key]

    def paint(self, image: np.ndarray) -> None:
        """Fill every zone pixel of `image` (H x W x 3, upright) in place."""
        if self.zones:
            image[self.mask(image.shape[1], image.shape[0])] = self.color

"""Verify: prove from an output's pixels that every mask its plan asks for is there.

For each frame of the output, every region the plan masks (boxes grown by their margin, whole
frames, privacy zones) is compared with what the mask must look like there. A solid mask must
show its colour; a blur or pixelate mask must match the input's region painted again with the
same mask, which needs the input too. Lossy outputs (H.264, JPEG) are allowed their coding
error: a region passes when nearly all of its inner pixels are within a tolerance, which a
face left unmasked is not. A frame or region that fails is listed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from veil.config import Settings
from veil.errors import VeilError
from veil.plan import FrameBoxes, Plan, plan_time_range, plan_zones
from veil.render.redact import Redactor, in_paint_order, redactor_for
from veil.types import Frame

LOSSLESS = {".png", ".tif", ".tiff", ".bmp"}
# Lossy outputs are compared on brightness (4:2:0 video keeps one colour sample per 2x2 pixels,
# so colour bleeds across a mask's edge while brightness stays sharp): a pixel matches when its
# grey level is within TOLERANCE of the expected one, and a region passes when MIN_SHARE of its
# pixels, EDGE pixels in from its border, match; a region too small to leave an inner part is
# compared whole, with the looser MIN_SHARE_SMALL. A face left unmasked differs by far more.
TOLERANCE = 40
MIN_SHARE = 0.9
MIN_SHARE_SMALL = 0.75
EDGE = 2
GREY = np.asarray([0.299, 0.587, 0.114])
MAX_LISTED = 100


@dataclass
class VerifyResult:
    ok: bool = True
    frames_checked: int = 0
    regions_checked: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    failed_regions: int = 0
    seconds: float = 0.0

    def fail(self, entry: dict[str, Any]) -> None:
        self.ok = False
        self.failed_regions += 1
        if len(self.failures) < MAX_LISTED:
            self.failures.append(entry)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "frames_checked": self.frames_checked,
            "regions_checked": self.regions_checked,
            "regions_failed": self.failed_regions,
            "failures": self.failures,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        if self.ok:
            return f"verified: {self.regions_checked} masked regions in {self.frames_checked} frames all present"
        first = self.failures[0] if self.failures else {}
        return (
            f"verify FAILED: {self.failed_regions} of {self.regions_checked} masked regions missing "
            f"(first: frame {first.get('frame')}, {first.get('what')})"
        )


def verify(plan: Plan, output: Path, settings: Settings, source_path: Path | None = None) -> VerifyResult:
    """Check `output` against `plan`; `source_path` (the plan's input) is read only for blur or
    pixelate masks, whose expected pixels depend on the picture under them."""
    started = time.monotonic()
    result = VerifyResult()
    lossless = output.suffix.lower() in LOSSLESS
    solid = settings.mask == "solid"
    redactor = redactor_for(settings, plan_zones(plan))
    color = np.asarray(redactor.fill, dtype=np.int16)
    boxes = FrameBoxes(plan)
    originals = None
    if not solid:
        if source_path is None:
            raise VeilError("verify: blur and pixelate masks need the plan's input to check against")
        originals = _frames(source_path, plan_time_range(plan))
    expected_frames = plan.frames
    n = 0
    read: dict[str, bool] = {}
    for frame in _frames(output, None, read):
        n += 1
        original = next(originals) if originals is not None else None
        # A 16-bit or float output is seen through its 8-bit copy: a weak mask painted at full
        # depth rounds differently from one painted in 8 bits, so it is compared as lossy.
        exact = lossless and not (read.get("deep") and not solid)
        _check_frame(frame, original, boxes, redactor, color, exact, result)
    if n != expected_frames:
        result.fail({"frame": min(n, expected_frames), "what": f"output has {n} frames, the plan {expected_frames}"})
    result.frames_checked = n
    result.seconds = time.monotonic() - started
    return result


def _frames(path: Path, time_range: Any = None, read: dict[str, bool] | None = None) -> Any:
    """Every frame (page) of `path`, upright 8-bit RGB, read the way veil reads inputs
    (`time_range`: only that part of a video, as the render read it)."""
    from veil.media.animation import stream_classes
    from veil.media.source import media_kind, read_image

    kind = media_kind(path)
    if kind == "image":
        pages = read_image(path).pages
        if read is not None:
            read["deep"] = any(page.full is not None for page in pages)
        for page in pages:
            yield page.frame
        return
    source_class, _ = stream_classes(kind, path)
    extra = {"time_range": time_range} if time_range is not None and kind == "video" else {}
    with source_class(path, with_audio=False, **extra) as source:
        yield from source.items()


def _check_frame(
    frame: Frame,
    original: Frame | None,
    boxes: FrameBoxes,
    redactor: Redactor,
    color: np.ndarray,
    lossless: bool,
    result: VerifyResult,
) -> None:
    index = frame.index
    masked, _kept = boxes.at(index)
    whole = boxes.whole_frame(index) is not None
    h, w = frame.height, frame.width
    if whole or redactor.zones:
        expected = np.ones((h, w), dtype=bool) if whole else redactor.zone_mask(h, w)
        result.regions_checked += 1
        got = _distance(frame.image, color, lossless)
        share = float((got[expected] <= (0 if lossless else TOLERANCE)).mean()) if expected.any() else 1.0
        if share < (1.0 if lossless else MIN_SHARE):
            what = "whole frame not masked" if whole else "privacy zone not masked"
            result.fail({"frame": index, "what": what, "share_masked": round(share, 3)})
        if whole:
            return
    if not len(masked):
        return
    masked = in_paint_order(masked)
    pixel_boxes = redactor.mask_boxes(masked, w, h)
    reference = None
    if original is not None:
        # What the render painted: the input's frame through the same redactor.
        reference = original.image[:h, :w].copy()
        redactor(reference, masked)
    for i, (x1, y1, x2, y2) in enumerate(pixel_boxes.tolist()):
        if x2 <= x1 or y2 <= y1:
            continue  # wholly outside the picture
        result.regions_checked += 1
        small = min(x2 - x1, y2 - y1) <= 2 * EDGE + 2
        e = 0 if lossless or small else EDGE
        region = frame.image[y1 + e : y2 - e, x1 + e : x2 - e]
        want = color if reference is None else reference[y1 + e : y2 - e, x1 + e : x2 - e].astype(np.int16)
        diff = _distance(region, want, lossless)
        share = float((diff <= (0 if lossless else TOLERANCE)).mean())
        if share < (1.0 if lossless else MIN_SHARE_SMALL if small else MIN_SHARE):
            result.fail(
                {
                    "frame": index,
                    "track": int(masked.track_id[i]),
                    "label": str(masked.label[i]),
                    "mask": [x1, y1, x2, y2],
                    "what": f"{masked.label[i]} mask of track {int(masked.track_id[i])} missing",
                    "share_masked": round(share, 3),
                }
            )


def _distance(image: np.ndarray, expected: np.ndarray, lossless: bool) -> np.ndarray:
    """Per pixel: the largest channel difference (lossless), or the grey-level difference."""
    diff = image.astype(np.int16) - expected
    if lossless:
        return np.abs(diff).max(axis=-1)
    return np.abs(diff @ GREY)

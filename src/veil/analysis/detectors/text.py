"""Text detector: PP-OCRv4 text detection (DB, ONNX, Apache-2.0; see models/README.md).

veil only finds *where* text is; it never reads it. The network is PaddleOCR's PP-OCRv4
"det" model as shipped in the `rapidocr_onnxruntime` wheel; the pre- and post-processing are
re-implemented here with numpy and cv2 so that neither rapidocr nor shapely/pyclipper is needed.

Resolution. A licence plate 60 px wide carries characters 9-14 px high (EU plates are the
thinnest), which this model still finds at native resolution (synthetic EU plates: 12/12 at 45
to 80 px wide, 10/12 at 40; CCPD plates scaled to 60 px: 6/6). Downscaling, which is what OCR
front-ends do to save time (rapidocr resizes the short side to 736), loses exactly those plates
(at `scale=0.75` CCPD plates of 60 px drop to 5/6), and a fixed long-side limit would lose
them in 4K frames. So the image is run at `scale` times its native size (1.0 by default: plates
of 60 px are seen at 60 px), never at a size derived from the image's dimensions:

* up to `tile_size` (2048 px) on the long side the scaled image is one network run, padded
  (not stretched) to a multiple of 32 (1080p and 1440p frames are one run, ~1.4 GB at most);
* a larger image is cut into equal overlapping tiles of at most `tile_size` (`overlap` 128 px,
  more than the height of any plate that matters), plus one coarse whole-image run with the
  long side at `coarse_side` (640 px) so that text too tall for the overlap is found whole.
  A 4K frame is 4 tiles of 1984 x 1144 (+9 % pixels) plus the coarse run.

Cost (bench/plates_bench.py, 2 CPU cores, best of 5): 0.24 s for a 720 x 1160 image and 0.6 s
for a 1920 x 1080 frame, about twice CenterFace's 0.15 s and 0.31 s on the same images; the plate
step on top of it costs 2-3 ms.

Normalisation is rapidocr's: BGR channel order (PaddleOCR was trained on cv2-decoded images),
pixel / 255, mean 0.5, std 0.5. Post-processing is PaddleOCR's DBPostProcess: probability >
`thresh`, 2x2 dilation, external contours, each contour's minimum-area rectangle scored by the
mean probability inside it (`box_thresh`), then "unclipped". pyclipper's unclip offsets the
rectangle's outline by d = area * unclip_ratio / perimeter with round joins; the minimum-area
rectangle of that offset polygon, which is what PaddleOCR keeps, is the rectangle grown by d on
every side, so growing the rectangle directly is exact, not an approximation. One addition: a
blob whose rectangle fails `box_thresh` is eroded and retried part by part (see db_postprocess),
which recovers plates DB had joined to a neighbouring blob.

Two results come out of one run: `regions()` gives the rotated rectangles (4 corners each),
which the plate detector needs, and `detect()` gives their axis-aligned boxes. The last
`regions()` result is cached keyed on the image's content (shape + CRC32 of its bytes, ~2 ms
for a 1080p frame), so `detect()` followed by `PlateDetector.detect()` on the same frame runs the
network once.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from veil.analysis.boxes import nms, tiles
from veil.analysis.detectors import MODELS_DIR, onnx_session, register, sha256_of
from veil.types import Detections

MODEL_PATH = MODELS_DIR / "ppocrv4_det.onnx"
INPUT = "x"


@dataclass
class TextRegions:
    """Text regions of one image: `quads` is N x 4 x 2 float32 corners (clockwise from the
    top-left as seen by cv2.boxPoints), `scores` the mean text probability inside each."""

    quads: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.quads)

    @classmethod
    def empty(cls) -> TextRegions:
        return cls(np.zeros((0, 4, 2), dtype=np.float32), np.zeros(0, dtype=np.float32))

    def xyxy(self) -> np.ndarray:
        """Axis-aligned bounding box of each region (N x 4 float32)."""
        if not len(self):
            return np.zeros((0, 4), dtype=np.float32)
        return np.concatenate([self.quads.min(axis=1), self.quads.max(axis=1)], axis=1).astype(np.float32)


@register("text")
class TextDetector:
    name = "text"
    label = "text"

    def __init__(
        self,
        scale: float = 1.0,
        thresh: float = 0.3,
        box_thresh: float = 0.5,
        unclip_ratio: float = 1.6,
        min_size: float = 3.0,
        tile_size: int = 2048,
        overlap: int = 128,
        coarse_side: int = 640,
        threads: int = 0,
    ) -> None:
        self.scale = scale
        self.thresh = thresh
        self.box_thresh = box_thresh
        self.unclip_ratio = unclip_ratio
        self.min_size = min_size
        self.tile_size = tile_size
        self.overlap = overlap
        self.coarse_side = coarse_side
        self.session = onnx_session(MODEL_PATH, threads)
        self._lock = threading.Lock()
        self._cache_key: tuple[Any, ...] | None = None
        self._cache: TextRegions | None = None

    def settings(self) -> dict[str, Any]:
        return {
            "model": MODEL_PATH.name,
            "model_sha256": sha256_of(MODEL_PATH),
            "scale": self.scale,
            "thresh": self.thresh,
            "box_thresh": self.box_thresh,
            "unclip_ratio": self.unclip_ratio,
            "tile_size": self.tile_size,
            "overlap": self.overlap,
            "coarse_side": self.coarse_side,
            "providers": self.session.get_providers(),
        }

    def detect(self, image: np.ndarray) -> Detections:
        regions = self.regions(image)
        return Detections.from_boxes(regions.xyxy(), regions.scores, self.label)

    def regions(self, image: np.ndarray) -> TextRegions:
        """Rotated text rectangles in pixels of `image`; cached for the last image seen."""
        key = _content_key(image)
        # One lock around the whole run: a second detector asking for the same frame from
        # another thread waits for the first run instead of starting its own.
        with self._lock:
            if key == self._cache_key and self._cache is not None:
                return self._cache
            result = self._regions(image)
            self._cache_key, self._cache = key, result
            return result

    def clear_cache(self) -> None:
        """Forget the last result (benchmarks use this to time the network on the same image)."""
        with self._lock:
            self._cache_key, self._cache = None, None

    def _regions(self, image: np.ndarray) -> TextRegions:
        height, width = image.shape[:2]
        sw, sh = max(1, round(width * self.scale)), max(1, round(height * self.scale))
        interp = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR
        scaled = image if (sw, sh) == (width, height) else cv2.resize(image, (sw, sh), interpolation=interp)
        quads, scores = [], []
        for x0, y0, x1, y1 in tiles(sw, sh, self.tile_size, self.overlap):
            q, s = self._run(scaled[y0:y1, x0:x1])
            q[:, :, 0] += x0
            q[:, :, 1] += y0
            quads.append(q / self.scale)
            scores.append(s)
        tiled = max(sw, sh) > self.tile_size
        if tiled and self.coarse_side:
            # Text taller than the overlap may be cut by every tile; one coarse whole-image pass
            # finds it whole (128 px text at 1/6 scale is still 21 px high).
            coarse = self.coarse_side / max(width, height)
            cw, ch = max(1, round(width * coarse)), max(1, round(height * coarse))
            q, s = self._run(cv2.resize(image, (cw, ch), interpolation=cv2.INTER_AREA))
            quads.append(q / coarse)
            scores.append(s)
        q = np.concatenate(quads).astype(np.float32)
        s = np.concatenate(scores).astype(np.float32)
        q[:, :, 0] = np.clip(q[:, :, 0], 0, width)
        q[:, :, 1] = np.clip(q[:, :, 1], 0, height)
        if len(q) and tiled:
            # Tiles overlap, so the same line can come out twice; keep the best of near-copies.
            regions = TextRegions(q, s)
            keep = nms(regions.xyxy(), s, 0.5)
            q, s = q[keep], s[keep]
        return TextRegions(q, s)

    def _run(self, tile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = tile.shape[:2]
        # Pad (never stretch) to the network's stride of 32, so text keeps its shape.
        ph, pw = max(32, -(-h // 32) * 32), max(32, -(-w // 32) * 32)
        blob = np.zeros((1, 3, ph, pw), dtype=np.float32)
        # RGB -> BGR, then (x / 255 - 0.5) / 0.5, as rapidocr feeds the model.
        blob[0, :, :h, :w] = tile[:, :, ::-1].transpose(2, 0, 1)
        blob[0, :, :h, :w] *= 2 / 255
        blob[0, :, :h, :w] -= 1
        prob = self.session.run(None, {INPUT: blob})[0][0, 0, :h, :w]
        return db_postprocess(prob, self.thresh, self.box_thresh, self.unclip_ratio, self.min_size)


def db_postprocess(
    prob: np.ndarray, thresh: float, box_thresh: float, unclip_ratio: float, min_size: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """PaddleOCR's DBPostProcess ("fast" score, dilation on) without shapely/pyclipper.

    One addition: a blob whose rectangle scores below `box_thresh` is not dropped at once but
    eroded and tried again part by part. DB joins a line of text to a neighbouring blob (a plate
    touching a bright bumper edge) by a thin bridge; the joint rectangle is then mostly
    background and PaddleOCR drops the plate with it.

    Returns N x 4 x 2 corners in pixels of `prob` (which has the input's size) and N scores.
    """
    mask = cv2.dilate((prob > thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    h, w = prob.shape
    quads: list[np.ndarray] = []
    scores: list[float] = []
    for contour in contours[:1000]:
        if not _add_box(prob, contour, box_thresh, unclip_ratio, min_size, quads, scores):
            x, y, cw, ch = cv2.boundingRect(contour)
            blob = np.zeros((ch, cw), np.uint8)
            cv2.drawContours(blob, [contour - [x, y]], -1, 1, -1, offset=(0, 0))
            blob *= mask[y : y + ch, x : x + cw]
            # Erode a pixel at a time: the bridge breaks before a thin line of text vanishes.
            for depth in range(1, 5):
                eroded = cv2.erode(blob, np.ones((3, 3), np.uint8), iterations=depth)
                parts, _ = cv2.findContours(eroded, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
                if len(parts) < 2:
                    continue
                before = len(quads)
                for part in parts[:100]:
                    # The erosion took `depth` px off every side; grow them back first.
                    _add_box(prob, part + [x, y], box_thresh, unclip_ratio, min_size, quads, scores, grow=depth)
                if len(quads) > before:
                    break
    if not quads:
        return np.zeros((0, 4, 2), dtype=np.float32), np.zeros(0, dtype=np.float32)
    q = np.stack(quads).astype(np.float32)
    q[:, :, 0] = np.clip(q[:, :, 0], 0, w)
    q[:, :, 1] = np.clip(q[:, :, 1], 0, h)
    return q, np.asarray(scores, dtype=np.float32)


def _add_box(
    prob: np.ndarray,
    contour: np.ndarray,
    box_thresh: float,
    unclip_ratio: float,
    min_size: float,
    quads: list[np.ndarray],
    scores: list[float],
    grow: float = 0.0,
) -> bool:
    """Score one contour's minimum-area rectangle; if it passes, append it unclipped."""
    (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
    rw, rh = rw + 2 * grow, rh + 2 * grow
    if min(rw, rh) < min_size:
        return True  # too small to be text: nothing to retry
    score = _mean_inside(prob, cv2.boxPoints(((cx, cy), (rw, rh), angle)))
    if score < box_thresh:
        return False
    d = rw * rh * unclip_ratio / (2 * (rw + rh))
    rw, rh = rw + 2 * d, rh + 2 * d
    if min(rw, rh) >= min_size + 2:
        quads.append(cv2.boxPoints(((cx, cy), (rw, rh), angle)))
        scores.append(score)
    return True


def _mean_inside(prob: np.ndarray, polygon: np.ndarray) -> float:
    h, w = prob.shape
    x0 = int(np.clip(np.floor(polygon[:, 0].min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(polygon[:, 0].max()), 0, w - 1))
    y0 = int(np.clip(np.floor(polygon[:, 1].min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(polygon[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(polygon - [x0, y0]).astype(np.int32)], 1)
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def _content_key(image: np.ndarray) -> tuple[Any, ...]:
    # Content, not id(): a decoder may hand out a new frame in the same buffer.
    return (image.shape, str(image.dtype), zlib.crc32(np.ascontiguousarray(image).data))

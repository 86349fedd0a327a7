"""MediaPipe BlazeFace full-range face detector (ONNX; Apache-2.0 weights, see models/README.md).

A second face model for the ensemble (`ensemble.py`). It was trained by Google on its own data,
not on WIDER FACE like CenterFace, so its mistakes differ from CenterFace's: it keeps faces that
are turned, partly hidden or cut by the frame edge, which CenterFace scores low.

The network sees one 192 x 192 square and finds faces from about 8-10 % of that square (about
16-20 px) up to the whole square. veil therefore runs it on *windows*: each entry of `windows`
is a window side in image pixels (0 = the whole image); the image is cut into overlapping
windows of that side, each letterboxed into 192 x 192. A window of 192 px sees the image at its
own scale; 384 px at half scale, and so on. All windows of an image run as one batch.

Boxes are scaled about their centre by `box_scale` (width) and `box_height_scale` (height):
BlazeFace boxes are tight squares over brows, eyes and mouth, smaller than the head boxes
CenterFace and WIDER FACE annotations draw, and the mask margin is tuned for the latter.
"""

from __future__ import annotations

import copy
from typing import Any

import cv2
import numpy as np

from veil.analysis.boxes import nms, tiles
from veil.analysis.detectors import MODELS_DIR, onnx_session, register, sha256_of
from veil.types import Detections

MODEL_PATH = MODELS_DIR / "blazeface_full_range.onnx"
INPUT = 192
# Scores come as logits; mediapipe clips them before the sigmoid so float32 never overflows.
RAW_SCORE_LIMIT = 80.0


def anchors() -> np.ndarray:
    """Centres (x, y) of the 48 x 48 anchor grid of the full-range model, in 0-1 units
    (mediapipe's ssd_anchors_calculator with one layer of stride 4 and one anchor per cell)."""
    grid = INPUT // 4
    ys, xs = np.mgrid[0:grid, 0:grid]
    return np.stack([(xs.ravel() + 0.5) / grid, (ys.ravel() + 0.5) / grid], axis=1).astype(np.float32)


ANCHORS = anchors()


@register("blazeface")
class BlazeFaceDetector:
    name = "blazeface"
    label = "face"

    def __init__(
        self,
        threshold: float = 0.5,
        windows: tuple[int, ...] | list[int] = (0, 384),
        overlap: float = 0.3,
        box_scale: float = 1.0,
        box_height_scale: float = 1.0,
        batch: int = 32,
        threads: int = 0,
    ) -> None:
        self.threshold = threshold
        self.windows = tuple(int(w) for w in windows)
        self.overlap = overlap
        self.box_scale = box_scale
        self.box_height_scale = box_height_scale
        self.batch = batch
        self.session = onnx_session(MODEL_PATH, threads)
        self.input_name = self.session.get_inputs()[0].name

    def with_options(self, **options: Any) -> BlazeFaceDetector:
        """A detector sharing this one's network session, with other scan options."""
        clone = copy.copy(self)
        for key, value in options.items():
            if key in ("session", "input_name") or not hasattr(clone, key):
                raise TypeError(f"unknown BlazeFace option {key!r}")
            setattr(clone, key, tuple(value) if key == "windows" else value)
        return clone

    def settings(self) -> dict[str, Any]:
        return {
            "model": MODEL_PATH.name,
            "model_sha256": sha256_of(MODEL_PATH),
            "threshold": self.threshold,
            "windows": list(self.windows),
            "overlap": self.overlap,
            "box_scale": self.box_scale,
            "box_height_scale": self.box_height_scale,
            "providers": self.session.get_providers(),
        }

    def window_boxes(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """Every window (x0, y0, x1, y1) the image is cut into, for all window sizes."""
        out: list[tuple[int, int, int, int]] = []
        for side in self.windows:
            if side <= 0 or side >= max(width, height):
                out.append((0, 0, width, height))
            else:
                out.extend(tiles(width, height, side, int(side * self.overlap)))
        # A window size larger than the image repeats the whole-image pass; run it once.
        return list(dict.fromkeys(out))

    def detect(self, image: np.ndarray) -> Detections:
        xyxy, scores = self.raw(image, self.threshold)
        return Detections.from_boxes(xyxy, scores, self.label)

    def raw(self, image: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (scaled by `box_scale`, NMS applied) scoring at least `threshold`."""
        height, width = image.shape[:2]
        windows = self.window_boxes(width, height)
        blobs = np.empty((len(windows), 3, INPUT, INPUT), dtype=np.float32)
        places = []
        for i, (x0, y0, x1, y1) in enumerate(windows):
            blobs[i], place = letterbox(image[y0:y1, x0:x1])
            places.append((x0, y0, *place))
        boxes, confs = [], []
        for start in range(0, len(windows), max(1, self.batch)):
            regress, logits = self.session.run(None, {self.input_name: blobs[start : start + self.batch]})
            for k in range(len(regress)):
                b, s = decode(regress[k], logits[k], threshold)
                x0, y0, scale, pad_x, pad_y = places[start + k]
                b[:, 0::2] = (b[:, 0::2] * INPUT - pad_x) / scale + x0
                b[:, 1::2] = (b[:, 1::2] * INPUT - pad_y) / scale + y0
                boxes.append(b)
                confs.append(s)
        xyxy = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
        conf = np.concatenate(confs) if confs else np.zeros(0, np.float32)
        if len(xyxy):
            keep = nms(xyxy, conf, 0.3)
            xyxy, conf = xyxy[keep], conf[keep]
            xyxy = rescale(xyxy, self.box_scale, self.box_height_scale)
            xyxy[:, 0::2] = np.clip(xyxy[:, 0::2], 0, width)
            xyxy[:, 1::2] = np.clip(xyxy[:, 1::2], 0, height)
            valid = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
            xyxy, conf = xyxy[valid], conf[valid]
        return xyxy.astype(np.float32), conf.astype(np.float32)


def letterbox(window: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The window resized (aspect kept) into INPUT x INPUT, padded black, as a CHW blob in
    [-1, 1] (mediapipe's input range); and (scale, pad_x, pad_y) to map boxes back."""
    h, w = window.shape[:2]
    scale = INPUT / max(h, w)
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(window, (sw, sh), interpolation=interp)
    pad_x, pad_y = (INPUT - sw) // 2, (INPUT - sh) // 2
    canvas = np.zeros((INPUT, INPUT, 3), dtype=np.uint8)
    canvas[pad_y : pad_y + sh, pad_x : pad_x + sw] = resized
    blob = canvas.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0
    # Boxes come back in 0-1 units of the square; map with the true (rounded) scale.
    return blob, (sw / w, float(pad_x), float(pad_y))


def decode(regress: np.ndarray, logits: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One window's 2304 anchors to boxes (x1, y1, x2, y2 in 0-1 units of the square) and
    scores, keeping those at or above `threshold` (mediapipe's tensors_to_detections)."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits[:, 0], -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
    keep = np.nonzero(scores >= threshold)[0]
    r = regress[keep, :4] / INPUT
    cx = r[:, 0] + ANCHORS[keep, 0]
    cy = r[:, 1] + ANCHORS[keep, 1]
    half_w, half_h = r[:, 2] / 2, r[:, 3] / 2
    xyxy = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    return xyxy.astype(np.float32), scores[keep].astype(np.float32)


def rescale(xyxy: np.ndarray, width_scale: float, height_scale: float) -> np.ndarray:
    """Boxes scaled about their centres."""
    if width_scale == 1.0 and height_scale == 1.0:
        return xyxy
    cx, cy = (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2
    hw = (xyxy[:, 2] - xyxy[:, 0]) / 2 * width_scale
    hh = (xyxy[:, 3] - xyxy[:, 1]) / 2 * height_scale
    return np.stack([cx - hw, cy - hh, cx + hw, cy + hh], axis=1)

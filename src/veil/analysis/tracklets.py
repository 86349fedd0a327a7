"""Linking: which detection in a frame continues which track (within one clip only).

A `Tracklet` holds the detections linked so far (in scene coordinates, see scene.py) and fits
their motion; the `Linker` matches each frame's detections to the live tracks of the shot by
overlap and centre distance against each track's predicted box, same label only, greedily by
cost, and starts a track for every detection left over. It never compares anything across
files or shots.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from itertools import chain

import numpy as np

from veil.analysis.boxes import inside_matrix, iou_matrix, rows
from veil.types import Detections

# A track's motion is fitted to at most MOTION_SPAN of its detections at one end, those within
# MOTION_REACH frames of the frame asked about (`Tracklet.motion`, `TrackArrays.runs`).
MOTION_SPAN = 8
MOTION_REACH = 15


@dataclass
class Tracklet:
    id: int
    label: str
    shot: int
    # Detection history, frame indices ascending; old entries are pruned as frames leave.
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    # The same boxes as centre, width and height (`cxcywh`), computed once: the box policy, the
    # motion fit and continuation read them for every frame a track is on screen.
    centres: list[np.ndarray] = field(default_factory=list)
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
    # The boxes and centres as two arrays (`stacked`), until the detections change.
    _stacked: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def add(self, index: int, box: np.ndarray, score: float) -> None:
        if not self.frames:
            self.first_det = index
        self._stacked = None
        self.frames.append(index)
        self.boxes.append(box.astype(np.float32))
        self.centres.append(cxcywh(self.boxes[-1]))
        self.scores.append(score)
        self.last_det = index

    def forget_before(self, cut: int) -> None:
        """Drop the first `cut` detections (too old for any frame still to be emitted)."""
        del self.frames[:cut], self.boxes[:cut], self.centres[:cut], self.scores[:cut]
        self._stacked = None

    def stacked(self) -> tuple[np.ndarray, np.ndarray]:
        """The boxes and the centres, each as one array (n x 4): every emitted frame reads a
        crowd's tracks so (`TrackArrays`), and most tracks gained no detection since the last."""
        if self._stacked is None:
            self._stacked = (rows(self.boxes), rows(self.centres))
        return self._stacked

    def motion(self, at: int, forward: bool, span: int = MOTION_SPAN, reach: int = MOTION_REACH) -> np.ndarray | None:
        """(dcx, dcy, dw, dh) per frame fitted to the detections nearest one end of the track
        (`forward`: the last ones before `at`; else the first ones after `at`), or None with
        fewer than two."""
        # Frames are ascending, so the detections within `reach` of `at` on one side of it are
        # one run of the list, found by bisection (a crowd asks this a million times a clip).
        frames = self.frames
        if forward:
            hi = bisect.bisect_right(frames, at)
            lo = max(hi - span, bisect.bisect_left(frames, at - reach))
        else:
            lo = bisect.bisect_left(frames, at)
            hi = min(lo + span, bisect.bisect_right(frames, at + reach))
        if hi - lo < 2:
            return None
        key = (frames[lo], frames[hi - 1], hi - lo)
        cache = self.motion_cache
        if key not in cache:
            if len(cache) > 256:
                cache.clear()  # bounded on long tracks; old runs are not asked again
            cache[key] = self._fit(lo, hi)
        return cache[key]

    def _fit(self, lo: int, hi: int) -> np.ndarray | None:
        """The least-squares motion of detections `lo` to `hi` (at least two frames apart), in
        plain floats: a few microseconds, where numpy's calls on eight rows cost tens. The sums
        run in frame order, as `fit_motions` runs them for many runs at once, so the two give
        the same motion bit for bit (and the numpy fit this replaced: its sums of eight frames
        are exact, of fewer run in the same order)."""
        t = self.frames[lo:hi]
        b = self.centres[lo:hi]
        n = len(t)
        mean_t = sum(t) / n
        dt = [f - mean_t for f in t]
        denom = 0.0
        for d in dt:
            denom += d * d
        if denom <= 0:
            return None
        out = []
        for k in range(4):
            column = [float(c[k]) for c in b]
            total = 0.0
            for v in column:
                total += v
            mean = total / n
            num = 0.0
            for d, v in zip(dt, column, strict=True):
                num += d * (v - mean)
            out.append(num / denom)
        return np.asarray(out, dtype=np.float32)


def fit_motions(frames: np.ndarray, centres: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """`Tracklet._fit` for many runs of detections at once: row i's first `counts[i]` frames
    (float64, K x S) and centres (float64, K x S x 4) give its motion (float32, K x 4). Every
    sum runs over the columns in order from 0.0, padding adding exact zeros, so each row is
    bit for bit what `_fit` gives for that run."""
    k, span = frames.shape
    valid = np.arange(span)[None, :] < counts[:, None]
    n = counts.astype(np.float64)
    total = np.zeros(k)
    for j in range(span):
        total += np.where(valid[:, j], frames[:, j], 0.0)
    dt = np.where(valid, frames - (total / n)[:, None], 0.0)
    denom = np.zeros(k)
    for j in range(span):
        denom += dt[:, j] * dt[:, j]
    sums = np.zeros((k, 4))
    for j in range(span):
        sums += np.where(valid[:, j, None], centres[:, j], 0.0)
    db = np.where(valid[:, :, None], centres - (sums / n[:, None])[:, None, :], 0.0)
    num = np.zeros((k, 4))
    for j in range(span):
        num += dt[:, j, None] * db[:, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        return (num / denom[:, None]).astype(np.float32)


class TrackArrays:
    """Many tracks' detections as flat arrays, one track after another: frames (int64), boxes
    and centres (float32, as the tracks hold them), and where each track starts and how many it
    has. What is asked of every track of a frame at once (`BoxPolicy.boxes_at`, `ShotMotions`)
    reads these; each answer is bit for bit what the same question asked of one `Tracklet` gives."""

    # Added x the track's row to its frames, so the frames are ascending throughout and one
    # `searchsorted` bisects every track at once; far beyond any frame index asked about.
    KEY = 1 << 40

    def __init__(self, tracks: list[Tracklet]) -> None:
        self.tracks = tracks
        self.counts = np.asarray([len(t.frames) for t in tracks], dtype=np.int64)
        self.starts = np.cumsum(self.counts) - self.counts
        self.ends = self.starts + self.counts - 1  # where each track's last detection is
        total = int(self.counts.sum())
        self.frames = np.fromiter(chain.from_iterable(t.frames for t in tracks), np.int64, total)
        stacked = [t.stacked() for t in tracks]
        self.boxes = np.concatenate([b for b, _ in stacked]) if tracks else np.zeros((0, 4), dtype=np.float32)
        self.centres = np.concatenate([c for _, c in stacked]) if tracks else np.zeros((0, 4), dtype=np.float32)
        self._base = np.arange(len(tracks), dtype=np.int64) * self.KEY
        self._keys = self.frames + np.repeat(self._base, self.counts)

    def __len__(self) -> int:
        return len(self.tracks)

    def bisect(self, values: np.ndarray | int, side: str) -> np.ndarray:
        """bisect_left ("left") or bisect_right ("right") of `values` in each track's frames:
        `values` broadcasts against the tracks (a scalar, a row per track, or a column of
        several frames: frame x track)."""
        keys = np.asarray(values) + self._base
        return np.searchsorted(self._keys, keys.ravel(), side=side).reshape(keys.shape) - self.starts  # type: ignore[call-overload]

    def runs(
        self, at: np.ndarray | int, forward: np.ndarray, span: int = MOTION_SPAN, reach: int = MOTION_REACH
    ) -> tuple[np.ndarray, np.ndarray]:
        """`Tracklet.motion`'s run of detections (lo, hi) for every track (broadcast as in
        `bisect`): the last ones up to `at` when `forward`, else the first ones from `at`."""
        after, before = self.bisect(at, "right"), self.bisect(at, "left")
        hi = np.where(forward, after, np.minimum(before + span, self.bisect(np.asarray(at) + reach, "right")))
        lo = np.where(forward, np.maximum(after - span, self.bisect(np.asarray(at) - reach, "left")), before)
        return lo, hi

    def fits(self, track: np.ndarray, lo: np.ndarray, hi: np.ndarray, span: int = MOTION_SPAN) -> np.ndarray:
        """The fitted motion (float32, one row each) of track `track[i]`'s detections
        `lo[i]:hi[i]`; NaN where fewer than two. A run asked for several times is fitted once."""
        out = np.full((len(track), 4), np.nan, dtype=np.float32)
        some = hi - lo >= 2
        if not some.any():
            return out
        start, n = self.starts[track[some]] + lo[some], (hi - lo)[some]
        runs, run_of = np.unique(start * (span + 1) + n, return_inverse=True)
        run_start, run_n = runs // (span + 1), runs % (span + 1)
        cols = np.minimum(run_start[:, None] + np.arange(span)[None, :], len(self.frames) - 1)
        fitted = fit_motions(self.frames[cols].astype(np.float64), self.centres[cols].astype(np.float64), run_n)
        out[some] = fitted[run_of.ravel()]
        return out


def cxcywh(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = box
    return np.asarray([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dtype=np.float32)


def xyxy_rows(c: np.ndarray) -> np.ndarray:
    """Each row of `c` (centre x, y, width, height; float32) as x1, y1, x2, y2, each side at
    least 1 px: each half size is max(w, 1) / 2 in float64, rounded to float32 before it meets
    the centre, as numpy rounds a Python float meeting a float32."""
    half = (np.maximum(c[:, 2:].astype(np.float64), 1.0) / 2).astype(np.float32)
    return np.concatenate([c[:, :2] - half, c[:, :2] + half], axis=1)


def union_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The box around each row of `a` and the same row of `b`."""
    return np.concatenate([np.minimum(a[:, :2], b[:, :2]), np.maximum(a[:, 2:], b[:, 2:])], axis=1).astype(np.float32)


# Cost added per frame since a track was last detected (see `Linker._gate`).
LOST_PENALTY = 0.05
# The linking gate's reach for a track seen in the last frame, in box sizes (it widens with the
# frames since, see `Linker._gate`).
GATE = 0.6
# Walking pace in face (head) heights a second: 1.4 m/s over a 0.23 m face; and the most a gate
# is widened for it (`Linker._gate`).
WALK_SIZES_PER_S = 1.4 / 0.23
WALK_CAP = 1.0
# A track seen once may also take a box a walk away over up to this many seconds, when the box
# is about its size (at most WALK_RATIO times either way): distant walkers are found only by the
# person network's tiles, which run every 0.4 s at 10 fps (every 4th run; 0.32 s at 25 fps),
# and each find started a person of its own. A walker's head changes size by a few per cent in
# that time. On the generated CCTV clips (replayed): persons per walker 2.96 -> 2.88 (seeds 1-4,
# where the ratio was chosen among 2, 1.5 and 1.25) and 3.69 -> 3.06 (seeds 5-8), boxes wrongly
# linked 6.8 -> 7.0 % and 6.6 -> 5.9 %, no leak more (docs/cctv.md).
WALK_GAP_S = 0.4
WALK_RATIO = 1.25
# A weak box left over starts no track when it lies this far within a stronger box of its label
# or of a label that covers it (`_covered`).
COVERED_BELOW = 0.5
COVERED_INSIDE = 0.75
COVERS: dict[str, tuple[str, ...]] = {"face": ("head",)}


class Linker:
    """Assigns each frame's detections to tracks; `match_iou`: the overlap that links a detection
    to a track's predicted box whatever their centres' distance.

    ByteTrack's order: detections scoring at least `high` are matched first, against every live
    track; the others then get the tracks left, so a weak box (a face detector's guess on a
    shirt) never takes a track from a strong one nearby. Unlike ByteTrack, a weak box left
    over still starts a track: recall first. A box overlapping a stronger one of its label by
    half (two detectors, or two scales, on one face) waits for the second round too, else it
    takes the track of a neighbour whose own box is weak. Among tracks near a detection, the one seen most
    recently is preferred (`LOST_PENALTY`), so a walker passing where someone else stands unseen
    stays on their own track. (Looking for a lost track anywhere between where it was last seen
    and where its motion carries it, as continuation does in person_ids.py, linked more wrongly
    on the mall clip: 87.6 % of head points covered against 88.9 %.)"""

    def __init__(self, match_iou: float = 0.15, high: float = 0.5, fps: float | None = None, stride: int = 1) -> None:
        self.match_iou = match_iou
        self.high = high
        # How far (in box sizes) a person may walk between two frames: a track with no motion
        # of its own yet, seen on the last detection pass (`stride` frames apart), may take a
        # box that far beyond its gate.
        self.walk = WALK_SIZES_PER_S / fps if fps and fps > 0 else 0.0
        self.stride = max(1, stride)
        # The most frames over which a track seen once may take a box of about its size a walk
        # away (WALK_GAP_S), and never fewer than the frames between two detection passes.
        self.walk_gap = max(float(self.stride), WALK_GAP_S * fps) if fps and fps > 0 else float(self.stride)
        self._next_id = 0
        # The track each detection of the last `link` call joined (or started), in order; None
        # for a weak box covered by a stronger one (`_covered`), which starts none.
        self.assigned: list[Tracklet | None] = []

    @staticmethod
    def _predict(live: TrackArrays, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Where each track's box is in frame `index`, carried from its last detection along its
        fitted motion (its last box where it has none), and whether it has none."""
        last = live.ends
        last_det = live.frames[last]
        v = live.fits(np.arange(len(live)), *live.runs(last_det, np.ones(len(live), dtype=bool)))
        unknown = ~np.isfinite(v).all(axis=1)
        # A float32 motion times a Python int, as one track's `centres[-1] + v * gap` was.
        gap = (index - last_det).astype(np.float32)[:, None]
        carried = xyxy_rows(live.centres[last] + np.where(unknown[:, None], 0, v) * gap)
        return np.where(unknown[:, None], live.boxes[last], carried), unknown

    def link(self, tracks: list[Tracklet], index: int, dets: Detections, shot: int, reach: int) -> list[Tracklet]:
        """Add `dets` (frame `index`, scene coordinates) to `tracks` of `shot` last detected at
        most `reach` frames ago; return the new tracks started by detections left over."""
        live = [t for t in tracks if t.shot == shot and 0 < index - t.last_det <= reach]
        joined: dict[int, Tracklet] = {}
        covered = _covered(dets)
        if live and len(dets):
            ok, cost, walked = self._gate(live, index, dets)
            strong = (dets.confidence >= self.high) & ~_duplicates(dets)
            used_t: set[int] = set()
            for stage in (strong, ~strong):
                pairs = sorted(zip(*np.nonzero(ok & stage[None, :]), strict=True), key=lambda p: cost[p])
                for ti, di in pairs:
                    if ti in used_t or di in joined:
                        continue
                    used_t.add(ti)
                    joined[di] = live[ti]
                    live[ti].add(index, dets.xyxy[di], float(dets.confidence[di]))
            # Last, a track with no speed yet and a box left over that only a walk from it
            # reaches: linked when each is the other's only candidate (in a crowd, a walk's reach
            # covers a neighbour: then the box starts a track, as before).
            free_t = np.asarray([ti not in used_t for ti in range(len(live))])
            free_d = np.asarray([di not in joined and not covered[di] for di in range(len(dets))])
            walked &= free_t[:, None] & free_d[None, :]
            for ti, di in zip(*np.nonzero(walked), strict=True):
                if walked[ti].sum() == 1 and walked[:, di].sum() == 1:
                    joined[di] = live[ti]
                    live[ti].add(index, dets.xyxy[di], float(dets.confidence[di]))
        new = []
        for di in range(len(dets)):
            if di in joined or covered[di]:
                continue
            track = Tracklet(self._next_id, str(dets.label[di]), shot)
            self._next_id += 1
            track.add(index, dets.xyxy[di], float(dets.confidence[di]))
            new.append(track)
            joined[di] = track
        self.assigned = [joined.get(di) for di in range(len(dets))]
        return new

    def _gate(self, live: list[Tracklet], index: int, dets: Detections) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(may track t take detection d, the cost of it, could a track with no speed yet have
        walked to d) for every pair."""
        pred, unknown = self._predict(TrackArrays(live), index)
        iou = iou_matrix(pred, dets.xyxy)
        pc = (pred[:, :2] + pred[:, 2:]) / 2
        dc = (dets.xyxy[:, :2] + dets.xyxy[:, 2:]) / 2
        dist = np.linalg.norm(pc[:, None, :] - dc[None, :, :], axis=2)
        psize = np.maximum(pred[:, 2] - pred[:, 0], pred[:, 3] - pred[:, 1])
        dsize = np.maximum(dets.xyxy[:, 2] - dets.xyxy[:, 0], dets.xyxy[:, 3] - dets.xyxy[:, 1])
        scale = np.maximum(psize[:, None], dsize[None, :])
        ratio = scale / np.maximum(np.minimum(psize[:, None], dsize[None, :]), 1)
        gaps = np.asarray([index - t.last_det for t in live], dtype=np.float32)[:, None]
        gate = np.minimum(GATE + 0.15 * gaps, 1.5)
        labels = np.asarray([t.label for t in live], dtype=object)
        same = (labels[:, None] == dets.label[None, :]) & (ratio <= 2.0)
        ok = ((iou >= self.match_iou) | (dist <= gate * scale)) & same
        # A track seen once has no speed to predict with: where it is now is anywhere a walker
        # reaches in the gap, give or take the gate's own error (at 10 fps a walker moves 0.6
        # face heights a frame, beyond the gate; at 25 fps a quarter of that, within it). From
        # the last detection pass; from an earlier one only within `walk_gap` frames and for a
        # box of about its size (the passes between may not have seen a distant walker at all:
        # the person network's tiles). A box seen once, then missed for longer, could have
        # gone anywhere.
        walked = np.zeros_like(ok)
        if self.walk:
            unknown = unknown[:, None]
            reach = np.minimum(np.maximum(gate, GATE + self.walk * gaps), gate + WALK_CAP) * scale
            when = (gaps <= self.stride) | ((gaps <= self.walk_gap) & (ratio <= WALK_RATIO))
            walked = unknown & when & same & ~ok & (dist <= reach)
        # A track seen in the previous frames comes before one lost for a while: a walker passing
        # where someone else stands unseen stays on their own track.
        return ok, dist / np.maximum(scale, 1) - iou + LOST_PENALTY * (gaps - 1), walked


def _covered(dets: Detections) -> np.ndarray:
    """Per detection: weak (scoring below COVERED_BELOW, the linker's `high`) and lying at least
    COVERED_INSIDE of its area within a stronger box of this frame, of its label or an outer one
    (a face in a head box). Left over, such a box starts no track: its pixels are masked by the
    box it lies in, and a track started from it would be a guess carried for a second each way,
    a person of its own in the review's list and more of the frame masked for nothing."""
    n = len(dets)
    out = np.zeros(n, dtype=bool)
    if n < 2:
        return out
    weak = dets.confidence < COVERED_BELOW
    if not weak.any():
        return out
    inside = inside_matrix(dets.xyxy.astype(np.float64))
    labels = dets.label
    outer = labels[:, None] == labels[None, :]
    for inner, covers in COVERS.items():
        outer |= (labels == inner)[:, None] & np.isin(labels, covers)[None, :]
    stronger = dets.confidence[None, :] > dets.confidence[:, None]
    np.fill_diagonal(inside, 0.0)
    return weak & ((inside >= COVERED_INSIDE) & outer & stronger).any(axis=1)


def _duplicates(dets: Detections) -> np.ndarray:
    """Per detection: another of its label scoring higher overlaps it by IoU >= 0.5."""
    iou = iou_matrix(dets.xyxy, dets.xyxy)
    same = dets.label[:, None] == dets.label[None, :]
    stronger = dets.confidence[None, :] > dets.confidence[:, None]
    return ((iou >= 0.5) & same & stronger).any(axis=1)

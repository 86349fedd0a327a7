"""Which tracks of one clip are one person: the plan's `person` field (docs/plan.md).

A person in a video is many tracks: a head track from the head cue, face tracks each time the
face detector finds the face, new tracks after a stop, an occlusion or a crossing. For the
reviewer (and a subject-access request) they are one person. `PersonIds` groups the tracker's
tracks (a union-find over their ids) from two kinds of evidence, both within one clip and one
shot, both from positions and motion only (never from what anyone looks like):

* **containment**: a face box inside a head box (a head box inside a body box) in a frame where
  both were detected, when that pairing is the only one on both sides (a head box over two
  faces is a crowd, not a person);
* **continuation**: a track that starts where a lost track of the same label would be by now
  (`stitch`, from the tracker): on the segment from where it was last seen to where its
  fitted motion carries it, so a person who stopped, or walked on behind something, both fit.

A wrong link is worse than a missing one: `show_only` shows a person's regions, and a
stranger's face grouped with the subject would be shown. So a link is refused whenever it would
put two tracks of the same label that were detected at the same time (two heads at once are
two people) into one person, and each track continues at most one earlier track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from veil.analysis.tracklets import Tracklet, cxcywh, segment_distance

# Labels that belong to people, and what each can sit inside: (outer label, the smallest share
# of the outer box's area the inner box must have). A face is 0.3-0.5 of a head box (1.4 heads
# square); a head about 0.03-0.1 of a standing body's box.
PART_OF: dict[str, tuple[tuple[str, float], ...]] = {
    "face": (("head", 0.12), ("person", 0.005)),
    "head": (("person", 0.02),),
}
PERSON_LABELS = frozenset({"face", "head", "person"})
# Share of the inner box's area that must lie inside the outer box.
INSIDE = 0.75
# Continuation: how far (in box sizes) the later track may start from the earlier one's path,
# growing with the frames between them, and at most; and how much the two boxes' sizes may differ.
CONTINUE_GATE = 0.6
CONTINUE_GROWTH = 0.1
CONTINUE_CAP = 2.0
MAX_SIZE_RATIO = 2.0


@dataclass
class _Span:
    label: str
    first: int
    last: int


class PersonIds:
    """Groups of track ids; `person(tid)` is a group's key (a member's id). Plain dicts of ints,
    a few per track: a clip with many thousands of tracks costs well under a megabyte."""

    def __init__(self) -> None:
        self._parent: dict[int, int] = {}
        self._members: dict[int, list[int]] = {}  # root -> member ids
        self._span: dict[int, _Span] = {}  # id -> label and first/last detected frame
        self._continued: set[int] = set()  # ids an earlier track already continues
        self.links = {"containment": 0, "continuation": 0, "refused": 0}

    def __contains__(self, tid: int) -> bool:
        return tid in self._parent

    def track(self, tid: int, label: str, first: int, last: int) -> None:
        """Record (or update) a track's detected span; tracks of other labels are ignored."""
        if label not in PERSON_LABELS:
            return
        span = self._span.get(tid)
        if span is None:
            self._span[tid] = _Span(label, first, last)
            self._parent[tid] = tid
            self._members[tid] = [tid]
        else:
            span.first, span.last = first, last

    def find(self, tid: int) -> int:
        root = tid
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[tid] != root:  # path compression
            self._parent[tid], tid = root, self._parent[tid]
        return root

    def person(self, tid: int) -> int | None:
        """The group key of track `tid`, or None for a track that is not a person's."""
        return self.find(tid) if tid in self._parent else None

    def compatible(self, a: int, b: int) -> bool:
        """Whether the groups of `a` and `b` could be one person: no two tracks of one label,
        one from each, were detected in a common frame."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        for x in self._members[ra]:
            sx = self._span[x]
            for y in self._members[rb]:
                sy = self._span[y]
                if sx.label == sy.label and sx.first <= sy.last and sy.first <= sx.last:
                    return False
        return True

    def union(self, a: int, b: int, why: str) -> bool:
        """Put the tracks `a` and `b` in one group unless that is refused (see `compatible`)."""
        if a not in self._parent or b not in self._parent:
            return False
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if not self.compatible(ra, rb):
            self.links["refused"] += 1
            return False
        # The older track's id (the smaller) stays the key.
        if rb < ra:
            ra, rb = rb, ra
        self._parent[rb] = ra
        self._members[ra] += self._members.pop(rb)
        self.links[why] += 1
        return True

    def continues(self, later: int, earlier: int) -> bool:
        """`later` continues `earlier` (same label, after it): each earlier track at most once."""
        if earlier in self._continued:
            return False
        if self.union(later, earlier, "continuation"):
            self._continued.add(earlier)
            return True
        return False

    def contain(self, tids: list[int], labels: np.ndarray, xyxy: np.ndarray) -> None:
        """One frame's detections (`tids[i]`: the track detection i joined; scene coordinates):
        link each inner box to the one outer box it sits inside, where that pairing is unique."""
        n = len(tids)
        if n < 2:
            return
        area = np.maximum((xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1]), 1e-6)
        lo = np.maximum(xyxy[:, None, :2], xyxy[None, :, :2])
        hi = np.minimum(xyxy[:, None, 2:], xyxy[None, :, 2:])
        inside = np.clip(hi - lo, 0, None).prod(axis=2) / area[:, None]  # share of box i inside box j
        for inner_label, outers in PART_OF.items():
            inner = [i for i in range(n) if labels[i] == inner_label]
            for outer_label, min_share in outers:
                outer = [j for j in range(n) if labels[j] == outer_label]
                if not inner or not outer:
                    continue
                fits = {
                    (i, j) for i in inner for j in outer if inside[i, j] >= INSIDE and area[i] >= min_share * area[j]
                }
                # A box touching two outer boxes, or an outer box over two inner ones, is a
                # crowd: no link from this frame.
                for i, j in fits:
                    if (
                        sum(1 for k in outer if inside[i, k] > 0.25) == 1
                        and sum(1 for k in inner if inside[k, j] > 0.25) == 1
                    ):
                        self.union(tids[i], tids[j], "containment")

    def numbering(self, keys: list[int]) -> dict[int, int]:
        """Compact person numbers 0, 1, ... for group keys, in the order given (callers list
        them by first appearance)."""
        out: dict[int, int] = {}
        for key in keys:
            root = self.find(key)
            if root not in out:
                out[root] = len(out)
        return out


def continuation_cost(earlier: Tracklet, later: Tracklet) -> float | None:
    """How well `later` (a track of the same label that started after `earlier` was last
    detected) continues `earlier`, in box sizes (lower is better), or None when it cannot.

    Scene coordinates, so the camera's own motion is out. Either end may explain the gap: the
    later track's first centre lies on the segment from where the earlier one was last seen to
    where its fitted motion carries it over the gap (it stopped somewhere on the way, or walked
    on), or the earlier track's last centre lies on the later one's motion carried back."""
    gap = later.first_det - earlier.last_det
    if gap <= 0 or earlier.label != later.label or earlier.shot != later.shot:
        return None
    a, b = cxcywh(earlier.boxes[-1]), cxcywh(later.boxes[0])
    size_a, size_b = float(max(a[2], a[3])), float(max(b[2], b[3]))
    size = max(size_a, size_b, 1.0)
    if size / max(min(size_a, size_b), 1.0) > MAX_SIZE_RATIO:
        return None
    v = earlier.motion(earlier.last_det, forward=True)
    u = later.motion(later.first_det, forward=False)
    ends = []
    for start, vel, point in ((a, v, b), (b, u, a)):
        step = np.zeros(2) if vel is None else vel[:2] * gap * (1 if start is a else -1)
        ends.append(float(segment_distance(start[None, :2], (start[:2] + step)[None, :], point[None, :2])[0, 0]))
    cost = min(ends) / size
    return cost if cost <= min(CONTINUE_GATE + CONTINUE_GROWTH * gap, CONTINUE_CAP) else None

"""Which tracks of one clip are one person: the plan's `person` field (docs/plan.md).

A person in a video is many tracks: a head track from the head cue, face tracks each time the
face detector finds the face, new tracks after a stop, an occlusion or a crossing. For the
reviewer (and a subject-access request) they are one person. `PersonIds` groups the tracker's
tracks (a union-find over their ids) from two kinds of evidence, both within one clip and one
shot, both from positions and motion only (never from what anyone looks like):

* **containment**: a face box inside a head box (a head box inside a body box) in a frame where
  both were detected, when that pairing is the only one on both sides (a head box over two
  faces is a crowd, not a person), is a vote; when the inner track ends it joins the outer
  track it sat in clearly most often (`contain`, `settle`);
* **continuation**: a track that starts where a lost track of the same label would be by now
  (`continuation_costs`, asked by the tracker): on the segment from where it was last seen to
  where its fitted motion carries it, so a person who stopped, or walked on behind something,
  both fit (`continues`). Continuations are joined last, once the clip is done, so that the
  links from boxes seen together decide first.

A wrong link is worse than a missing one: `show_only` shows a person's regions, and a
stranger's face grouped with the subject would be shown. So a link is refused whenever it would
put two tracks of the same label that were found apart by two detection passes (two heads at
once are two people) into one person, and each track continues at most one earlier track.
"""

from __future__ import annotations

import bisect
from array import array
from dataclasses import dataclass

import numpy as np

from veil.analysis.boxes import inside_matrix
from veil.analysis.tracklets import Tracklet

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
# The path already follows the lost track's motion, so the cap is only the error around it: at
# 2 box sizes, a quarter of the continuations between walkers on the generated CCTV clips joined
# two different walkers (docs/tracking.md).
CONTINUE_GATE = 0.6
CONTINUE_GROWTH = 0.1
CONTINUE_CAP = 1.0
MAX_SIZE_RATIO = 2.0
# A track detected once may be continued within this share of the reach (one look-ahead
# window), and only within CONTINUE_GATE box sizes.
ONCE_SHARE = 3
# Satellites: which labels' boxes a stray box may sit on (a second box on a face, a weak face
# guess on a head, a second head box from another pass of the network). Body boxes are left out:
# in a crowd they overlap several people.
HOSTS: dict[str, frozenset[str]] = {
    "face": frozenset({"face", "head"}),
    "head": frozenset({"head"}),
    "person": frozenset({"person"}),
}
# A box lying on another track's box by at least HOSTED of its own area sits on it; touching
# one by more than TOUCH is near it (ambiguous unless every such box is one person's).
HOSTED = 0.5
TOUCH = 0.25
# Two tracks of one label are one person's boxes when they overlapped in at least this share of
# the detection passes that found both (`PersonIds._doubles`).
DOUBLES = 0.5
# ... and when they were apart (their boxes not meeting at all) in at most this share of those
# passes, or in one: two boxes of one head jitter but meet, while a track that drifts between
# two neighbours' heads (a seated group) lies apart from either now and then. One pass is
# allowed whatever the count: a single stray box of a track seen together 6 times was apart in
# a sixth of them.
APART = 0.1
# Two tracks of one label are two people when the same detection passes found both, apart, at
# least this often. Once is no evidence: a detector's stray guess beside a face (on the hair, a
# shoulder) or a second pass's box beside a head turns up in one pass now and then, while two
# people in view together are found together again. On the generated CCTV clips a single such
# pass kept a walker's face track out of their person about once a walker: persons per walker
# 3.54 -> 3.15 on seeds 1-4 and 4.48 -> 3.71 on held-out seeds 5-8, with the share of boxes
# wrongly linked the same (8.5 %, 7.7 -> 7.5 %); docs/cctv.md.
TWICE = 2
# A track of its own detected in at most this many frames is slight: a stray touching it is not
# thereby near a second person.
SLIGHT = 2


@dataclass
class _Span:
    label: str
    first: int
    last: int


@dataclass
class _Seat:
    """Where a track's boxes sat, for `satellites`: in how many frames it was detected, in how
    many of them it had a host (a box of another track it lay at least HOSTED within), and the
    tracks whose boxes it touched (by more than TOUCH of its area) in those frames."""

    frames: int = 0
    hosted: int = 0
    near: set[int] | None = None


class PersonIds:
    """Groups of track ids; `person(tid)` is a group's key (a member's id). A few hundred bytes
    per track, 4 per detection and one entry per pair of same-label boxes that ever met, kept
    until the clip's plan is written (the mall clip's 1,000 frames: 12,619 tracks, 58,697
    detections, 17,027 pairs; a few MB);
    a live stream, which writes no plan, does without (`LookaheadTracker(group_persons=False)`)."""

    def __init__(self) -> None:
        self._parent: dict[int, int] = {}
        self._members: dict[int, list[int]] = {}  # root -> member ids
        self._span: dict[int, _Span] = {}  # id -> label and first/last detected frame
        self._continued: set[int] = set()  # ids an earlier track already continues
        self._continuations: list[tuple[int, int]] = []  # (later, earlier), joined at the end
        # Inner track id -> {outer track id: frames it was seen inside it}, until it ends.
        self._votes: dict[int, dict[int, int]] = {}
        self._seats: dict[int, _Seat] = {}  # id -> where its boxes sat, for `satellites`
        # (id, id) of one label, smaller first -> [passes their boxes overlapped by more than TOUCH,
        # passes their boxes met at all] (`_doubles`); pairs whose boxes never met are not kept.
        self._overlaps: dict[tuple[int, int], list[int]] = {}
        # Id -> the detection passes (calls of `contain`) it was detected in, for `_doubles` and
        # `compatible` (4 bytes a detection).
        self._passes: dict[int, array[int]] = {}
        self._pass = 0
        self.links = {"containment": 0, "continuation": 0, "double": 0, "satellite": 0, "refused": 0}

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

    def members(self, tid: int) -> list[int]:
        """The ids of the tracks grouped with `tid` (itself included)."""
        return list(self._members[self.find(tid)]) if tid in self._parent else [tid]

    def person(self, tid: int) -> int | None:
        """The group key of track `tid`, or None for a track that is not a person's."""
        return self.find(tid) if tid in self._parent else None

    def compatible(self, a: int, b: int) -> bool:
        """Whether the groups of `a` and `b` could be one person: no two tracks of one label,
        one from each, were detected in TWICE or more common detection passes (unless they are
        `_doubles`).
        Tracks of one label whose spans overlap but that were never detected at once (a face
        found in alternate frames) are no evidence of two people."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        for x in self._members[ra]:
            sx = self._span[x]
            for y in self._members[rb]:
                sy = self._span[y]
                if sx.label == sy.label and sx.first <= sy.last and sy.first <= sx.last and self._two_people(x, y):
                    return False
        return True

    def _two_people(self, x: int, y: int) -> bool:
        """Whether tracks `x` and `y` (one label) were found together by TWICE passes or more
        and are not doubles."""
        both = self._seen_together(x, y)
        return both >= TWICE and not self._doubles(x, y, both)

    def _doubles(self, x: int, y: int, both: int | None = None) -> bool:
        """Whether tracks `x` and `y` (one label, seen in a common span) are two boxes on one
        person rather than two people: their boxes overlapped (one by more than TOUCH of its
        area) in at least half the detection passes that found both. Two faces or two heads of
        different people overlap that much only while one hides the other, and a hidden face or
        head is not found. Passes that found only one of them say nothing either way: counting
        them (the whole common span, as before) kept a face found in every other frame beside a
        second box on it from ever counting as one person's. Boxes of one head always meet: a
        pair apart in more than APART of those passes (and more than one) is a track drifting
        between neighbours (docs/tracking.md)."""
        touched, met = self._overlaps.get((min(x, y), max(x, y)), (0, 0))
        both = self._seen_together(x, y) if both is None else both  # `_two_people` has counted it
        return both > 0 and touched >= DOUBLES * both and both - met <= max(1.0, APART * both)

    def _seen_together(self, x: int, y: int) -> int:
        """In how many detection passes both `x` and `y` were detected."""
        a, b = self._passes.get(x, ()), self._passes.get(y, ())
        if not a or not b or a[-1] < b[0] or b[-1] < a[0]:
            return 0
        return len(set(a).intersection(b))

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
        self._join(ra, rb, why)
        return True

    def continues(self, later: int, earlier: int) -> bool:
        """`later` continues `earlier` (same label, after it): each earlier track at most once.
        Taken now when the two groups could be one person, but joined only once the clip is done
        (`satellites`), after the links from boxes seen together. A continuation is a guess
        across a gap; a face seen inside a head, or two boxes on one head pass after pass, are
        seen. Joined at once, a continuation onto the wrong track (a neighbour's, a false box)
        made the person's later containment and double links look like two people and be
        refused: on the generated CCTV clips deferring it took the boxes wrongly linked from
        8.5 to 6.9 % and persons per walker from 3.15 to 2.96 (held-out seeds: 7.5 to 6.6 %,
        3.71 to 3.69; docs/cctv.md)."""
        if earlier in self._continued or later not in self._parent or earlier not in self._parent:
            return False
        if not self.compatible(later, earlier):
            self.links["refused"] += 1
            return False
        self._continuations.append((later, earlier))
        self._continued.add(earlier)
        return True

    def contain(self, tids: list[int], labels: np.ndarray, xyxy: np.ndarray) -> None:
        """One frame's detections (`tids[i]`: the track detection i joined; scene coordinates):
        count, for each inner box, the one outer box it sits inside, where that pairing is
        unique; `settle` links the tracks when the inner one ends."""
        n = len(tids)
        self._pass += 1
        for tid in set(tids):
            self._passes.setdefault(tid, array("i")).append(self._pass)
        if n < 2:
            for i in range(n):
                if labels[i] in HOSTS:
                    self._seats.setdefault(tids[i], _Seat()).frames += 1
            return
        area = np.maximum((xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1]), 1e-6)
        inside = inside_matrix(xyxy)  # share of box i inside box j
        share = np.maximum(inside, inside.T)
        near = share > TOUCH
        self._seat(tids, labels, inside)
        for i, j in zip(*np.nonzero(np.triu(share > 0, 1)), strict=True):
            if labels[i] == labels[j] and tids[i] != tids[j]:
                counts = self._overlaps.setdefault((min(tids[i], tids[j]), max(tids[i], tids[j])), [0, 0])
                counts[0] += int(near[i, j])
                counts[1] += 1
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
                # crowd: no vote from this frame. Boxes that overlap each other count once (two
                # boxes on one face, two head boxes on one head).
                for i, j in fits:
                    if (
                        sum(1 for k in outer if inside[i, k] > TOUCH and (k == j or not near[k, j])) == 1
                        and sum(1 for k in inner if inside[k, j] > TOUCH and (k == i or not near[k, i])) == 1
                    ):
                        votes = self._votes.setdefault(tids[i], {})
                        votes[tids[j]] = votes.get(tids[j], 0) + 1

    def _seat(self, tids: list[int], labels: np.ndarray, inside: np.ndarray) -> None:
        """Record, for each box of this frame, whether it lies on another track's box (a host)
        and which other tracks' boxes it touches."""
        for i, label in enumerate(labels):
            hosts = HOSTS.get(label)
            if hosts is None:
                continue
            seat = self._seats.setdefault(tids[i], _Seat())
            seat.frames += 1
            touched = [
                j for j in range(len(tids)) if tids[j] != tids[i] and labels[j] in hosts and inside[i, j] > TOUCH
            ]
            if any(inside[i, j] >= HOSTED for j in touched):
                seat.hosted += 1
                seat.near = (seat.near or set()) | {tids[j] for j in touched}

    def satellites(self) -> None:
        """Once the clip is done, in this order: the doubles (below), the continuations the
        tracker proposed (`continues`), then the strays. A stray track, a person of its own whose
        every detected box lay at least half on another track's box, joins the one person whose
        boxes it touched. These are a second box on a face, weak face guesses around a small
        head, a second head box from another pass of the network: each would otherwise be a
        person of its own in the review's list. Strays that touched only each other are one
        person (boxes that overlap at one moment are one thing). A stray that touched two persons
        stays alone. Decided last, so it moves no other link, and not bound by the
        one-label-at-once rule: the boxes overlapped, so they were not two people side by side."""
        # Two tracks of one label that are `_doubles` (the rule that keeps them from counting as
        # two people at once) are two boxes on one person: a head box of one pass on a walker's
        # head track, two small boxes a few pixels apart on one small face (docs/cctv.md,
        # "Linking on the passes that found both").
        for x, y in self._overlaps:
            if x in self._parent and y in self._parent and self._doubles(x, y):
                self.union(x, y, "double")
        for later, earlier in self._continuations:  # taken in the tracker's order (`continues`)
            self.union(later, earlier, "continuation")
        self._continuations.clear()

        def alone(tid: int) -> bool:
            return len(self._members[self.find(tid)]) == 1

        strays = {tid for tid, seat in self._seats.items() if seat.near and seat.hosted == seat.frames and alone(tid)}
        # Tracks that count as a person when a stray touches them: not a box or two of their own
        # (those are strays, or guesses that are masked whatever they join).
        slight = {tid for tid, seat in self._seats.items() if seat.frames <= SLIGHT and alone(tid)}
        for tid in strays:
            near = [j for j in self._seats[tid].near or () if j in self._parent]
            persons = {self.find(j) for j in near if j not in slight}
            if len(persons) > 1:
                continue
            for other in persons or {self.find(j) for j in near}:
                self._join(tid, other, "satellite")
        self._seats.clear()
        self._overlaps.clear()
        self._passes.clear()

    def _join(self, a: int, b: int, why: str) -> None:
        """Merge the groups of `a` and `b`, unchecked; the older id (the smaller) stays the key."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        keep, gone = min(ra, rb), max(ra, rb)
        self._parent[gone] = keep
        self._members[keep] += self._members.pop(gone)
        self.links[why] += 1

    def settle(self, tid: int) -> None:
        """Track `tid` has ended: link it to the outer track it sat inside most often, when
        that is clear (two frames or more, twice as often as any other; a track seen once or
        twice may link on one frame). Deciding at the end, not on the first frame, keeps a face
        that passed in front of someone else's head box from joining that person."""
        votes = self._votes.pop(tid, None)
        if not votes:
            return
        ranked = sorted(votes.values(), reverse=True)
        best = max(votes, key=votes.__getitem__)
        second = ranked[1] if len(ranked) > 1 else 0
        span = self._span.get(tid)
        short = span is not None and span.last - span.first <= 2
        if (ranked[0] >= 2 or short) and ranked[0] >= 2 * second:
            self.union(tid, best, "containment")

    def numbering(self, keys: list[int]) -> dict[int, int]:
        """Compact person numbers 0, 1, ... for group keys, in the order given (callers list
        them by first appearance). Called once the clip is done: satellites join first."""
        self.satellites()
        out: dict[int, int] = {}
        for key in keys:
            root = self.find(key)
            if root not in out:
                out[root] = len(out)
        return out


LostRow = tuple[str, int, int, bool, float, float, float, float, float]


def lost_row(track: Tracklet) -> LostRow:
    """What continuation needs of a track's end: label, shot, last detection, seen twice, centre
    x and y, size, velocity x and y. It changes only when the track is found again (the fit
    reads detections up to its last), so the tracker keeps it until then."""
    cx, cy, w, h = (float(x) for x in track.centres[-1])
    v = track.motion(track.last_det, forward=True)
    vx, vy = (0.0, 0.0) if v is None else (float(v[0]), float(v[1]))
    # A track detected once is often a second box on someone's face or a detector's guess,
    # with no motion to follow: it is continued only soon after and close by.
    return (track.label, track.shot, track.last_det, len(track.frames) >= 2, cx, cy, max(w, h), vx, vy)


class Lost:
    """The ends of the tracks a new track may continue, as arrays, built once per batch from
    each track's `lost_row`."""

    def __init__(self, tracks: list[Tracklet], rows: list[LostRow] | None = None) -> None:
        self.tracks = tracks
        rows = [lost_row(t) for t in tracks] if rows is None else rows
        n = len(tracks)
        label, shot, last, twice = zip(*(row[:4] for row in rows), strict=True) if n else ((),) * 4
        self.label = np.asarray(label, dtype=object)
        self.shot = np.asarray(shot, dtype=np.int64)
        self.last = np.asarray(last, dtype=np.int64)
        self.seen_twice = np.asarray(twice, dtype=bool)
        ends = np.asarray([row[4:] for row in rows], dtype=np.float64).reshape(n, 5)  # cx, cy, size, vx, vy
        self.centre, self.size, self.velocity = ends[:, :2], ends[:, 2], ends[:, 3:]


def continuation_costs(lost: Lost, later: Tracklet, reach: int) -> np.ndarray:
    """How well `later` continues each of `lost`'s tracks (same label and shot, last detected
    1 to `reach` frames before `later` started), in box sizes, lower is better; inf where it
    cannot.

    Scene coordinates, so the camera's own motion is out. Either end may explain the gap: the
    later track's first centre lies on the segment from where the earlier one was last seen to
    where its fitted motion carries it over the gap (it stopped somewhere on the way, or walked
    on), or the earlier track's last centre lies on the later one's motion carried back."""
    gap = (later.first_det - lost.last).astype(np.float64)
    # A track seen once (no motion of its own) is continued only soon after and close by.
    near = lost.seen_twice | (gap <= reach / ONCE_SHARE)
    ok = (gap > 0) & (gap <= reach) & (lost.label == later.label) & (lost.shot == later.shot) & near
    out = np.full(len(lost.tracks), np.inf)
    if not ok.any():
        return out
    first = later.centres[0].astype(np.float64)
    size_b = float(max(first[2], first[3]))
    size = np.maximum(np.maximum(lost.size, size_b), 1.0)
    ok &= size / np.maximum(np.minimum(lost.size, size_b), 1.0) <= MAX_SIZE_RATIO
    u = later.motion(later.first_det, forward=False)
    back = np.zeros(2) if u is None else u[:2].astype(np.float64)
    g = gap[:, None]
    forward = _to_segment(lost.centre, lost.centre + lost.velocity * g, first[None, :2])
    backward = _to_segment(np.broadcast_to(first[:2], lost.centre.shape), first[:2] - back * g, lost.centre)
    cost = np.minimum(forward, backward) / size
    gate = np.minimum(CONTINUE_GATE + CONTINUE_GROWTH * gap, CONTINUE_CAP)
    gate = np.where(lost.seen_twice, gate, CONTINUE_GATE)
    ok &= cost <= gate
    out[ok] = cost[ok]
    return out


def off_its_person(later: Tracklet, group: list[Tracklet]) -> bool:
    """Whether `later`'s first box lies off the person it would continue: a track of that person
    that `later` sits in (a head for a face, a body for a head; PART_OF) was found in the same
    frame and `later`'s box touches none of its boxes there (by more than TOUCH of its area). A
    person whose head is still found has their face in it; a face box beside the head is someone
    or something else, however well it fits the lost face's path. No such outer box found then:
    no evidence, and the continuation is judged on its path alone."""
    outer = {label for label, _ in PART_OF.get(later.label, ())}
    start = later.first_det
    box = np.asarray(later.boxes[0], dtype=np.float64)
    found = []
    for track in group:
        if track.label not in outer:
            continue
        at = bisect.bisect_left(track.frames, start)
        if at < len(track.frames) and track.frames[at] == start:
            found.append(track.boxes[at])
    if not found:
        return False
    shares = inside_matrix(np.vstack([box[None, :4], np.asarray(found, dtype=np.float64)[:, :4]]))[0, 1:]
    return bool((shares <= TOUCH).all())


def _to_segment(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Row-wise distance from points `p` to segments `a`-`b` (all N x 2, or p 1 x 2)."""
    ab, ap = b - a, p - a
    t = np.clip((ap * ab).sum(axis=1) / np.maximum((ab * ab).sum(axis=1), 1e-9), 0.0, 1.0)
    return np.linalg.norm(ap - t[:, None] * ab, axis=1)

"""Render: paint a plan's masks onto the input's frames and write the output.

The same `FrameRenderer` paints for `veil render` (boxes from a plan file, `plan.FrameBoxes`)
and for the one-shot `veil INPUT` (boxes from the tracker as they are emitted, already passed
through `plan.PlanBuilder`, so they are exactly the boxes the plan written beside it holds).
No detector runs here.
"""

from __future__ import annotations

import numpy as np

from veil.analysis.boxes import to_pixels
from veil.analysis.classes import finds_people
from veil.analysis.zones import Zone
from veil.config import Settings
from veil.plan import Plan
from veil.render.redact import ShownRegion, in_paint_order, redactor_for, shown_mask
from veil.review.log import ReviewLog, ThumbnailSampler
from veil.types import Detections, Frame

# A second opinion on the output (detectors/ensemble.py `second_opinion`): a face detector that
# did not drive the redaction looks at the painted frame for faces outside every mask. Once every
# this many video frames (every photo and page): about one look per third of a second at 30 fps.
SECOND_OPINION_EVERY = 10


class SecondOpinion:
    """Detectors that did not drive the redaction look at a frame (every SECOND_OPINION_EVERY-th)
    for what is still visible outside the given covered boxes: face-like regions (kind `second`)
    and, when `heads` (the user asked for heads: fixed cameras), people whose head no mask covers
    (kind `nohead`; the person detector's heads, at a stricter bar than when it redacts, so a
    flag is a person, not clutter). Each is a (kind, reason) pair for the worth-a-look list."""

    def __init__(self, heads: bool = False) -> None:
        self.heads = heads
        self._detector: object | None = None
        self._people: object | None = None
        self.checked = 0
        self.flagged = 0

    def look(self, index: int, image: np.ndarray, covered: np.ndarray, heads: bool = True) -> list[tuple[str, str]]:
        """`heads=False`: this frame's heads are not looked at (a subject-access render shows
        the subject's head on purpose)."""
        if index % SECOND_OPINION_EVERY:
            return []
        from veil.analysis.detectors.ensemble import second_opinion

        if self._detector is None:
            from veil.analysis.detectors import create

            self._detector = create("blazeface", threshold=0.5)
        reasons: list[tuple[str, str]] = []
        found = second_opinion(image, covered, detector=self._detector)
        if len(found):
            reasons.append(("second", _where("face-like region", "face-like regions", found)))
        if self.heads and heads and not index % HEAD_OPINION_EVERY:
            uncovered = self._uncovered_heads(image, covered)
            if len(uncovered):
                reasons.append(
                    ("nohead", _where("person with no mask on the head", "people with no mask on the head", uncovered))
                )
        self.checked += 1
        self.flagged += bool(reasons)
        return reasons

    def _uncovered_heads(self, image: np.ndarray, covered: np.ndarray) -> np.ndarray:
        from veil.analysis.detectors import create
        from veil.analysis.detectors.ensemble import second_opinion

        if self._people is None:
            # The person detector's head boxes: the network on every call, whole frame, no motion.
            self._people = create(
                "people", mode="head", motion=False, tiles=1, every=1, threshold=HEAD_SECOND_THRESHOLD
            )
        return second_opinion(image, covered, detector=self._people)


# People are looked for on every third of those frames, whole frame only (one network pass, not
# the tiles): about 1 % of a default run's time for a check that names the frames where a
# person, large enough for the whole-frame pass to see, walks by with no mask on the head.
HEAD_OPINION_EVERY = 3 * SECOND_OPINION_EVERY
# The person detector redacts from 0.2 (recall first); a second opinion that flags a frame for a
# person asks more, so the list names people, not shop signs.
HEAD_SECOND_THRESHOLD = 0.4


def _where(one: str, many: str, boxes: np.ndarray) -> str:
    n = len(boxes)
    where = ", ".join(f"({int(x1)},{int(y1)})" for x1, y1, _, _ in boxes[:3].tolist())
    return f"second opinion: {n} {one if n == 1 else many} outside every mask, at x,y {where}"


def masked_area(boxes: np.ndarray, width: int, height: int) -> int:
    """Pixels under the union of integer pixel `boxes` (clipped to the picture), counted exactly:
    a bit per pixel of the frame, about 0.5 ms a 1080p frame."""
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    return int(np.count_nonzero(shown_mask(boxes, height, width))) if len(boxes) else 0


def zone_boxes(zones: list[Zone], frame: Frame) -> np.ndarray:
    """The bounding boxes of privacy zones (opaque fills) in `frame`'s pixels."""
    boxes = []
    for zone in zones:
        pts = zone.pixels(frame.width, frame.height)
        boxes.append([*np.floor(pts.min(axis=0)), *np.ceil(pts.max(axis=0))])
    return np.asarray(boxes, dtype=np.int64).reshape(-1, 4)


class FrameRenderer:
    """Paints frames in place and keeps what the report needs (bounded), frame by frame."""

    def __init__(
        self,
        settings: Settings,
        zones: list[Zone] | None = None,
        thumbnails: bool = False,
        second_opinion: bool = False,
        plan: Plan | None = None,
    ) -> None:
        """`plan`: the plan being rendered, for its `show_only` (frames in increasing order)."""
        self.settings = settings
        self.redactor = redactor_for(settings, zones, plan)
        self.show = ShownRegion(plan) if plan is not None and plan.show_only is not None else None
        self.frames_subject_absent = 0
        self.last_shown = np.zeros((0, 4), np.int64)
        self.review = ReviewLog()
        self.sampler = ThumbnailSampler() if thumbnails else None
        self.regions = 0
        self.regions_inferred = 0
        self.frames_with_regions = 0
        self.frames_whole = 0
        self.frames = 0
        # The share of the picture under masks (boxes and whole frames; zones and a subject-access
        # request's outside not counted): summed pixels, so segments add up, and the worst frame.
        self.masked_pixels = 0
        self.frame_pixels = 0
        self.masked_max_permille = 0
        self.second_opinion = second_opinion
        # People with no mask on the head are looked for when the user asked for heads or people.
        self._second = SecondOpinion(heads=finds_people(settings.classes))
        self.second_checked = 0
        self.second_flagged = 0

    def paint(self, frame: Frame, masked: Detections, kept: Detections | None = None, whole: bool = False) -> None:
        masked = in_paint_order(masked)
        shown = self.show.at(frame.index, frame.width, frame.height) if self.show is not None else None
        self.last_shown = shown if shown is not None else np.zeros((0, 4), np.int64)
        if shown is not None and not len(shown) and not whole:
            self.frames_subject_absent += 1
        seen = self.show.seen(frame.index, frame.width, frame.height) if self.show is not None else None
        duplicates = self.show.duplicates if self.show is not None else frozenset()
        painted = self.redactor(frame.image, masked, whole_frame=whole, shown=shown, seen=seen, duplicates=duplicates)
        self.frames += 1
        area = frame.width * frame.height
        covered = area if whole else masked_area(painted, frame.width, frame.height)
        self.masked_pixels += covered
        self.frame_pixels += area
        self.masked_max_permille = max(self.masked_max_permille, round(1000 * covered / max(area, 1)))
        self.regions += len(masked)
        self.regions_inferred += int(masked.filled.sum())
        self.frames_with_regions += bool(len(masked)) or whole
        self.frames_whole += whole
        doubts = self._second_look(frame, painted, kept) if not whole else []
        priority, reasons = self.review.offer(frame.index, masked, doubts)
        if self.sampler is not None:
            hidden = (
                to_pixels(kept.xyxy, frame.width, frame.height)
                if kept is not None and len(kept)
                else np.zeros((0, 4), np.int64)
            )
            self.sampler.offer(frame.image, frame.index, masked, painted, hidden, priority, reasons)

    def _second_look(self, frame: Frame, painted: np.ndarray, kept: Detections | None) -> list[tuple[str, str]]:
        """Face-like regions a second detector finds outside every mask (and every face a
        reviewer kept visible), as review reasons; [] on frames it does not look at."""
        if not self.second_opinion:
            return []
        covered = painted
        if kept is not None and len(kept):
            covered = np.vstack([painted.reshape(-1, 4), to_pixels(kept.xyxy, frame.width, frame.height)])
        if self.redactor.zones:
            covered = np.vstack([covered.reshape(-1, 4), zone_boxes(self.redactor.zones.zones, frame)])
        if self.show is not None and self.redactor.outside is None:
            # show_only: everything outside the subject is filled; only the subject is looked at.
            h, w = frame.height, frame.width
            outside = ~shown_mask(self.last_shown, h, w)
            if outside.all():
                return []
        reasons = self._second.look(frame.index, frame.image, covered, heads=self.show is None)
        self.second_checked, self.second_flagged = self._second.checked, self._second.flagged
        return reasons

    def counts(self) -> dict[str, int]:
        return {
            "regions": self.regions,
            "regions_inferred": self.regions_inferred,
            "frames_with_regions": self.frames_with_regions,
            "frames_fully_masked": self.frames_whole,
            "masked_pixels": self.masked_pixels,
            "frame_pixels": self.frame_pixels,
            "masked_max_permille": self.masked_max_permille,
            "second_opinion_frames_checked": self.second_checked,
            "second_opinion_frames_flagged": self.second_flagged,
            **({"frames_without_subject": self.frames_subject_absent} if self.show is not None else {}),
        }

"""Render: paint a plan's masks onto the input's frames and write the output.

The same `FrameRenderer` paints for `veil render` (boxes from a plan file, `plan.FrameBoxes`)
and for the one-shot `veil INPUT` (boxes from the tracker as they are emitted, already passed
through `plan.PlanBuilder`, so they are exactly the boxes the plan written beside it holds).
No detector runs here.
"""

from __future__ import annotations

import numpy as np

from veil.boxes import to_pixels
from veil.config import Settings
from veil.plan import Plan
from veil.redact import ShownRegion, in_paint_order, redactor_for
from veil.review import ReviewLog, ThumbnailSampler
from veil.types import Detections, Frame
from veil.zones import Zone

# A second opinion on the output (detectors/ensemble.py `second_opinion`): a face detector that
# did not drive the redaction looks at the painted frame for faces outside every mask. Once every
# this many video frames (every photo and page): about one look per third of a second at 30 fps.
SECOND_OPINION_EVERY = 10


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
        self.second_opinion = second_opinion
        self._second: object | None = None
        self.second_checked = 0
        self.second_flagged = 0

    def paint(self, frame: Frame, masked: Detections, kept: Detections | None = None, whole: bool = False) -> None:
        masked = in_paint_order(masked)
        shown = self.show.at(frame.index, frame.width, frame.height) if self.show is not None else None
        self.last_shown = shown if shown is not None else np.zeros((0, 4), np.int64)
        if shown is not None and not len(shown) and not whole:
            self.frames_subject_absent += 1
        painted = self.redactor(frame.image, masked, whole_frame=whole, shown=shown)
        self.frames += 1
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

    def _second_look(self, frame: Frame, painted: np.ndarray, kept: Detections | None) -> list[str]:
        """Face-like regions a second detector finds outside every mask (and every face a
        reviewer kept visible), as review reasons; [] on frames it does not look at."""
        if not self.second_opinion or frame.index % SECOND_OPINION_EVERY:
            return []
        from veil.detectors.ensemble import second_opinion

        if self._second is None:
            from veil.detectors import create

            self._second = create("blazeface", threshold=0.5)
        covered = painted
        if kept is not None and len(kept):
            covered = np.vstack([painted.reshape(-1, 4), to_pixels(kept.xyxy, frame.width, frame.height)])
        if self.redactor.zones:
            # Zones are opaque fills: treat their bounding boxes as covered.
            boxes = []
            for zone in self.redactor.zones.zones:
                pts = zone.pixels(frame.width, frame.height)
                boxes.append([*np.floor(pts.min(axis=0)), *np.ceil(pts.max(axis=0))])
            covered = np.vstack([covered.reshape(-1, 4), np.asarray(boxes, dtype=np.int64)])
        found = second_opinion(frame.image, covered, detector=self._second)
        self.second_checked += 1
        if not len(found):
            return []
        self.second_flagged += 1
        n = len(found)
        return [f"second opinion: {n} face-like region{'s' * (n != 1)} outside every mask"]

    def counts(self) -> dict[str, int]:
        return {
            "regions": self.regions,
            "regions_inferred": self.regions_inferred,
            "frames_with_regions": self.frames_with_regions,
            "frames_fully_masked": self.frames_whole,
            "second_opinion_frames_checked": self.second_checked,
            "second_opinion_frames_flagged": self.second_flagged,
            **({"frames_without_subject": self.frames_subject_absent} if self.show is not None else {}),
        }

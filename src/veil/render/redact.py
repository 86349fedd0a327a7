"""Paint masks over a frame: privacy zones first, then whole-frame ranges, then every box grown
by its class's margin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from veil.analysis.boxes import grow, iou_matrix, to_pixels
from veil.analysis.classes import BY_LABEL
from veil.analysis.zones import Zone, ZonePainter
from veil.render.masks import RedactionMask
from veil.render.masks.solid import parse_color
from veil.types import Detections

if TYPE_CHECKING:
    from veil.config import Settings
    from veil.plan import Plan

# A fill for what must never be seen at all (privacy zones, whole-frame ranges): opaque,
# whatever mask the boxes use, because blur and pixelate leave signal behind.
DEFAULT_FILL = (0, 0, 0)


def in_paint_order(detections: Detections) -> Detections:
    """Boxes in the plan's track order: overlapping blurs then come out the same from a plan as
    from the run that wrote it, and verify repaints them the same way."""
    if len(detections) > 1:
        return detections[np.argsort(detections.track_id, kind="stable")]
    return detections


def redactor_for(settings: Settings, zones: list[Zone] | None = None, plan: Plan | None = None) -> Redactor:
    """The redactor a render paints with: the settings' mask and margin, and zones and whole
    frames filled opaquely in the solid mask's colour (black for blur and pixelate); with a
    `plan` that has `show_only`, everything outside its subject is masked too."""
    from veil.render.masks import create

    fill = parse_color(settings.mask_color or "black") if settings.mask == "solid" else DEFAULT_FILL
    mask = create(settings.mask, **settings.mask_options())
    redactor = Redactor(mask, float(settings.margin or 0.0), zones, fill)
    if plan is not None and plan.show_only is not None:
        redactor.outside = create("blur") if plan.show_only.mask == "blur" else None
        redactor.show_only = True
    return redactor


class ShownRegion:
    """A plan's `show_only` subject, frame by frame: the integer pixel boxes (each track's box
    grown by the request's margin, clipped) whose union is all an output may show.

    Frames must be asked for in increasing order (as `plan.FrameBoxes`), except by a fresh
    instance for one frame (the review page's preview)."""

    def __init__(self, plan: Plan) -> None:
        from veil.plan import FrameBoxes

        assert plan.show_only is not None
        self.spec = plan.show_only
        self._boxes = FrameBoxes(plan, only=set(plan.show_only.tracks))
        # The subject's boxes kept visible in the last frame asked for (`seen` reads them).
        self._last: tuple[int, Detections] | None = None
        self.duplicates = duplicate_faces(plan, set(plan.show_only.tracks))

    def at(self, frame: int, width: int, height: int) -> np.ndarray:
        masked, kept = self._boxes.at(frame)
        self._last = (frame, kept)
        xyxy = np.concatenate([masked.xyxy, kept.xyxy]).reshape(-1, 4)
        return to_pixels(grow(xyxy, np.float32(self.spec.margin)), width, height)

    def seen(self, frame: int, width: int, height: int) -> np.ndarray:
        """The subject as a detector found them in `frame` (pixel boxes of their tracks kept
        visible; a subject track left `redact: true` stays masked): their detected faces, as
        planned, and the head inside each of their detected head boxes that holds one head
        (`people.head_within`, `people.one_head`): there the picture shows the subject's own
        face or head. Another track's head or body box over it is most likely the subject's own
        head or body that the scan did not link to them, or a neighbour's head box (1.4 heads
        wide) reaching over the subject's head, and masking it hides the very person the request
        is about; another face there stays masked (`sparable`). Heads are taken at the head the
        box was drawn around, not the whole box, so a neighbour's head beside the subject's
        stays under its own mask."""
        from veil.analysis.detectors.people import head_within, one_head

        if self._last is None or self._last[0] != frame:
            self.at(frame, width, height)
        assert self._last is not None
        boxes = self._last[1]
        if not len(boxes):
            return np.zeros((0, 4), np.int64)
        detected = ~boxes.filled
        faces = boxes.xyxy[(boxes.label == "face") & detected]
        heads = boxes.xyxy[(boxes.label == "head") & detected]
        heads = head_within(heads[one_head(heads)]).astype(np.float32)
        return to_pixels(np.concatenate([faces, heads]).reshape(-1, 4), width, height)


# Box labels a subject's detected face or head is shown through (ShownRegion.seen): coarse person
# evidence, not another face, plate or text.
SPARED_UNDER = frozenset({"head", "person"})
# A face track outside the subject seen once, this close to a detection of the subject's face in
# the same frame, is a second detection of that face (duplicate_faces).
DUPLICATE_IOU = 0.5


def duplicate_faces(plan: Plan, shown: set[int]) -> frozenset[int]:
    """Face tracks outside `shown` detected once, in a frame where a `shown` track's detected face
    box coincides with it (IoU >= DUPLICATE_IOU): the detector found the subject's face twice and
    the tracker kept the second box apart, then carried it on (inferred, a look-ahead window each
    way) as a still box the subject walks through. It is not another face, so the subject's
    detected face shows through it as through a head box; its boxes elsewhere stay masked. A face
    track detected more than once stays another face, however close (tests/test_subject.py)."""
    subject: dict[int, list[list[float]]] = {}
    for t in plan.tracks:
        if t.id in shown and t.label == "face":
            for b in t.boxes:
                if b.detected:
                    subject.setdefault(b.frame, []).append(list(map(float, b.box)))
    out = set()
    for t in plan.tracks:
        if t.id in shown or t.label != "face" or not subject:
            continue
        once = None
        for b in t.boxes:  # stops at a second detection: most tracks have many
            if b.detected:
                if once is not None:
                    once = None
                    break
                once = b
        if once is None or once.frame not in subject:
            continue
        one = np.asarray([once.box], np.float64)
        if float(iou_matrix(one, np.asarray(subject[once.frame], np.float64)).max()) >= DUPLICATE_IOU:
            out.add(t.id)
    return frozenset(out)


def sparable(detections: Detections, duplicates: frozenset[int] = frozenset()) -> np.ndarray:
    """Per box of `detections`: may the subject's detected face or head show through it
    (another track's head or body box, or a duplicate of the subject's own face,
    `duplicate_faces`)."""
    return np.asarray(
        [
            str(label) in SPARED_UNDER or int(track) in duplicates
            for label, track in zip(detections.label, detections.track_id, strict=True)
        ],
        dtype=bool,
    )


def spared_mask(seen: np.ndarray, boxes: np.ndarray, spare: np.ndarray, height: int, width: int) -> np.ndarray:
    """H x W bool: the pixels of the subject's detected face and head (`seen`,
    `ShownRegion.seen`) that no masked box (`boxes`, pixel xyxy) covers other than those
    `spare` marks (`sparable`): shown, not painted."""
    keep = shown_mask(seen, height, width)
    if not keep.any():
        return keep
    for (x1, y1, x2, y2), ok in zip(np.asarray(boxes).reshape(-1, 4).tolist(), spare, strict=True):
        if not ok:
            keep[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = False
    return keep


def shown_mask(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """H x W bool: the pixels inside any of `boxes` (the shown region; all False: nothing)."""
    keep = np.zeros((height, width), bool)
    for x1, y1, x2, y2 in np.asarray(boxes).reshape(-1, 4).tolist():
        keep[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = True
    return keep


class Redactor:
    def __init__(
        self,
        mask: RedactionMask,
        margin: float,
        zones: list[Zone] | None = None,
        fill: tuple[int, int, int] = DEFAULT_FILL,
    ) -> None:
        self.mask = mask
        self.margin = margin
        # Privacy zones (zones.py), masked in every frame; rasterised once per frame size.
        self.zones = ZonePainter(list(zones or []), fill)
        self.fill = fill
        # show_only (a subject-access request): outside the shown region every pixel is filled
        # (`outside` None) or blurred with `outside` (a reversible mask, warned about).
        self.show_only = False
        self.outside: RedactionMask | None = None

    def mask_boxes(self, detections: Detections, width: int, height: int) -> np.ndarray:
        """The integer pixel boxes that will be painted (grown by the margin, clipped)."""
        classes = [BY_LABEL.get(str(label)) for label in detections.label]
        margins = [c.margin if c is not None and c.margin is not None else self.margin for c in classes]
        iso = np.asarray([c is not None and c.isotropic for c in classes], dtype=bool)
        return to_pixels(grow(detections.xyxy, np.asarray(margins, dtype=np.float32), iso), width, height)

    def zone_mask(self, height: int, width: int) -> np.ndarray:
        """H x W bool: the pixels the privacy zones cover."""
        if not self.zones:
            return np.zeros((height, width), bool)
        return self.zones.mask(width, height)

    def paint_zones(self, image: np.ndarray) -> None:
        self.zones.paint(image)

    def __call__(
        self,
        image: np.ndarray,
        detections: Detections,
        whole_frame: bool = False,
        shown: np.ndarray | None = None,
        seen: np.ndarray | None = None,
        duplicates: frozenset[int] = frozenset(),
    ) -> np.ndarray:
        """Paint `image` in place; return the pixel boxes painted for `detections`. `shown`:
        with show_only, the pixel boxes of the subject (`ShownRegion.at`); everything outside
        them is masked after the boxes, so a bystander's box inside the subject stays masked,
        except a head or body box, or a `duplicates` track (`ShownRegion.duplicates`), over the
        subject's detected face or head (`seen`, `ShownRegion.seen`): those pixels keep the
        subject (`spared_mask`)."""
        self.paint_zones(image)
        if whole_frame:
            image[:] = self.fill
        boxes = self.mask_boxes(detections, image.shape[1], image.shape[0])
        if not whole_frame:
            h, w = image.shape[:2]
            spared = (
                spared_mask(seen, boxes, sparable(detections, duplicates), h, w)
                if self.show_only and seen is not None and len(seen) and len(boxes)
                else None
            )
            before = image[spared] if spared is not None and spared.any() else None
            for x1, y1, x2, y2 in boxes:
                self.mask.apply(image, (int(x1), int(y1), int(x2), int(y2)))
            if before is not None:
                image[spared] = before
            if self.show_only:
                self.paint_outside(image, shown if shown is not None else np.zeros((0, 4), np.int64))
        return boxes

    def paint_outside(self, image: np.ndarray, shown: np.ndarray) -> np.ndarray:
        """Mask every pixel of `image` outside the boxes `shown`; return that H x W bool mask."""
        h, w = image.shape[:2]
        outside = ~shown_mask(shown, h, w)
        if self.outside is None:
            image[outside] = self.fill
        else:
            blurred = image.copy()
            self.outside.apply(blurred, (0, 0, w, h))
            image[outside] = blurred[outside]
        return outside

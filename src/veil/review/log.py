"""What a human should look at, and the small pictures the HTML report shows.

Worth a look (`ReviewLog`): a few dozen items at most, ranked, each with its reason: a
face-like region a second detector finds outside every mask, a person whose head no mask covers
(on fixed cameras), and, up to 5 % of the clip's frames, a gap inside a track that the tracker
filled or a stretch of low-confidence detections. The sampler
keeps a bounded number of downscaled output frames during the run: evenly spaced ones for
the contact sheet plus the most-worth-reviewing ones, so memory does not grow with the video.
"""

from __future__ import annotations

import base64
import heapq
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from veil.types import Detections

LOW_CONFIDENCE = 0.4  # centerface scores; the recall-first threshold is 0.15-0.2
SMALL_FACE_PX = 20
CROWD = 8
THUMB_WIDTH = 320
# Worth a look: at most this many items, ranked. A list that names every frame (as the first
# version did: 795 of 795 on a fixed-camera clip) is one nobody reads.
MAX_ITEMS = 30
# A track the detector lost for at least this many frames in a row, then found again (the
# tracker filled the frames between): where a face is most likely to have slipped out.
GAP_FRAMES = 8
# A track whose detections stay under LOW_CONFIDENCE for at least this many frames in a row.
LOW_FRAMES = 8
# At most this many items of each kind but the second opinion's, so one kind (on a crowded clip:
# hundreds of short gaps) cannot push the others off the list.
MAX_PER_KIND = 12
# Items that are doubts about the tracker (gaps, weak stretches), not something a second look
# found visible, fill the list up to this share of the clip's frames (at least one item): a
# 150-frame cut of a crowded clip listed 27 stretches, 18 % of its frames, which is a list of the
# whole clip again. What a second opinion found outside every mask is always listed.
SHARE_OF_FRAMES = 0.05
# The kinds that are always listed (up to `limit`): something a second opinion saw left visible.
SEEN_KINDS = ("second", "nohead")
# Priorities: a face-like region left visible first, then a person with no head covered, then
# the longest gaps, then low stretches.
SECOND_PRIORITY = 100.0
NOHEAD_PRIORITY = 50.0
GAP_PRIORITY = 10.0
LOW_PRIORITY = 5.0


KINDS = {
    "second": "face-like regions outside every mask (second opinion)",
    "nohead": "people with no mask on the head (second opinion)",
    "gap": "gaps inside a track filled in by the tracker",
    "low": "low-confidence stretches",
}


def frame_reasons(masked: Detections) -> tuple[float, list[tuple[str, str]]]:
    """Priority and (kind, reason) pairs describing one frame's masked boxes, for a thumbnail's
    caption (what is doubtful in it); the worth-a-look list itself is made by `ReviewLog`."""
    reasons: list[tuple[str, str]] = []
    priority = 0.0
    detected = ~masked.filled
    low = masked.confidence[detected & (masked.confidence < LOW_CONFIDENCE)]
    if len(low):
        lowest = float(low.min())
        reasons.append(("low", f"{len(low)} low-confidence detection{'s' * (len(low) != 1)} (min {lowest:.2f})"))
        priority += 2.0 + (LOW_CONFIDENCE - lowest) * 5
    n_filled = int(masked.filled.sum())
    if n_filled:
        reasons.append(("filled", f"{n_filled} box{'es' * (n_filled != 1)} filled in by the tracker"))
        priority += 1.0 + 0.2 * n_filled
    n_small = int(((masked.label == "face") & (masked.heights < SMALL_FACE_PX)).sum())
    if n_small:
        text = f"{n_small} tiny face{'s' * (n_small != 1)} (< {SMALL_FACE_PX} px): others may be missed"
        reasons.append(("small", text))
        priority += 1.5
    if len(masked) >= CROWD:
        reasons.append(("crowd", f"crowded: {len(masked)} regions"))
        priority += 1.0 + 0.05 * len(masked)
    return priority, reasons


@dataclass
class _TrackWatch:
    """What `ReviewLog` remembers of one track on screen (bounded: tracks on screen only)."""

    label: str
    detected_seen: bool = False
    gap_start: int | None = None  # first frame of the current run of filled-in boxes
    low_start: int | None = None  # first frame of the current run of low-confidence detections
    low_min: float = 1.0
    low_flagged: bool = False
    last_box: tuple[float, float, float, float] | None = None  # the track's box in the previous frame


def _jump(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Distance between the centres of boxes `a` and `b` in units of `b`'s larger side."""
    size = max(b[2] - b[0], b[3] - b[1], 1e-6)
    return float(np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)) / size


class ReviewLog:
    """Worth a human look: at most `limit` items, ranked, each with its reason, gathered as
    frames are offered (bounded memory: the items and the tracks on screen).

    Items: a face-like region a second detector finds outside every mask (`doubts`), a track
    the detector lost for GAP_FRAMES or more and found again (the tracker filled the gap), a
    track detected under LOW_CONFIDENCE for LOW_FRAMES or more in a row. Each names its frame
    (where to look), the frames it spans and the track. Frames that merely have filled-in or
    small boxes are not items: on video that is most frames."""

    def __init__(self, limit: int = MAX_ITEMS) -> None:
        self.limit = limit
        # Per kind, a min-heap of (priority, -frame, -seq, item): the best `limit` (or MAX_PER_KIND).
        self._top: dict[str, list[tuple[float, int, int, dict[str, Any]]]] = {}
        self._seq = 0
        self._kinds: dict[str, list[int]] = {}  # kind -> [count, first frame]
        self._tracks: dict[int, _TrackWatch] = {}
        self._frame_items: list[dict[str, Any]] = []
        self.frames = 0  # frames offered: the list's length follows the clip's

    def offer(
        self, frame: int, masked: Detections, doubts: list[tuple[str, str]] | None = None
    ) -> tuple[float, list[str]]:
        """`masked`: the frame's boxes with their plan track ids; `doubts`: (kind, reason) pairs
        found elsewhere (a second opinion's look at the output: kind `second` or `nohead`).
        Returns this frame's priority and reasons, for the report's thumbnails."""
        self._frame_items = []
        self.frames += 1
        for kind, base in (("second", SECOND_PRIORITY), ("nohead", NOHEAD_PRIORITY)):
            texts = [text for k, text in doubts or [] if k == kind]
            if texts:
                # One item per frame and kind; the more doubts, the higher.
                self._add(kind, frame, (frame, frame), None, base + len(texts), *texts)
        present: set[int] = set()
        for i in range(len(masked)):
            tid = int(masked.track_id[i])
            if tid < 0:
                continue
            present.add(tid)
            watch = self._tracks.get(tid)
            if watch is None:
                watch = self._tracks[tid] = _TrackWatch(str(masked.label[i]))
            box = tuple(float(v) for v in masked.xyxy[i])
            last, watch.last_box = watch.last_box, box  # type: ignore[assignment]
            if bool(masked.filled[i]):
                if watch.detected_seen and watch.gap_start is None:
                    watch.gap_start = frame
                continue
            if watch.gap_start is not None:
                length = frame - watch.gap_start
                if length >= GAP_FRAMES:
                    # How far the found box is from where the filled-in box was a frame before, in
                    # box sizes: a jump means the mask was off the person during the gap.
                    jump = _jump(last, box) if last is not None else 0.0
                    text = (
                        f"{watch.label} track {tid} lost for {length} frames ({watch.gap_start}-{frame - 1}), "
                        f"filled in by the tracker; found again {jump:.1f} box sizes away: check the mask "
                        "stayed on the person"
                    )
                    priority = GAP_PRIORITY + min(jump, 5.0) + min(length, 100) / 100
                    self._add("gap", frame, (watch.gap_start, frame - 1), tid, priority, text)
                watch.gap_start = None
            watch.detected_seen = True
            score = float(masked.confidence[i])
            if score < LOW_CONFIDENCE:
                if watch.low_start is None:
                    watch.low_start, watch.low_min, watch.low_flagged = frame, score, False
                watch.low_min = min(watch.low_min, score)
                if not watch.low_flagged and frame - watch.low_start + 1 >= LOW_FRAMES:
                    text = (
                        f"{watch.label} track {tid} detected only weakly for {LOW_FRAMES}+ frames from "
                        f"{watch.low_start} (score {watch.low_min:.2f}): a face near it may be missed"
                    )
                    priority = LOW_PRIORITY + (LOW_CONFIDENCE - watch.low_min) * 10
                    self._add("low", frame, (watch.low_start, frame), tid, priority, text)
                    watch.low_flagged = True
            else:
                watch.low_start = None
        for tid in [t for t in self._tracks if t not in present]:
            del self._tracks[tid]
        if not self._frame_items:
            return 0.0, []
        return max(it["priority"] for it in self._frame_items), [r for it in self._frame_items for r in it["reasons"]]

    def _add(
        self, kind: str, frame: int, span: tuple[int, int], track: int | None, priority: float, *texts: str
    ) -> None:
        seen = self._kinds.setdefault(kind, [0, frame])
        seen[0] += 1
        item = {
            "frame": frame,
            "frames": list(span),
            "kind": kind,
            "track": track,
            "priority": round(priority, 2),
            "reasons": list(texts),
        }
        self._frame_items.append(item)
        self._seq += 1
        entry = (item["priority"], -frame, -self._seq, item)
        heap = self._top.setdefault(kind, [])
        cap = self.limit if kind in SEEN_KINDS else min(self.limit, MAX_PER_KIND)
        if len(heap) < cap:
            heapq.heappush(heap, entry)
        elif entry[:3] > heap[0][:3]:
            heapq.heapreplace(heap, entry)

    def flags(self) -> list[dict[str, Any]]:
        """The items, most worth a look first: everything a second opinion saw left visible, then
        the tracker's doubts up to SHARE_OF_FRAMES of the frames offered; at most `limit`."""

        def ranked(seen: bool) -> list[tuple[float, int, int, dict[str, Any]]]:
            entries = [e for kind, heap in self._top.items() if (kind in SEEN_KINDS) == seen for e in heap]
            return sorted(entries, key=lambda e: (-e[0], -e[1], -e[2]))

        seen = ranked(True)
        room = max(1, int(SHARE_OF_FRAMES * self.frames)) - len(seen)
        chosen = seen + ranked(False)[: max(0, room)]
        return [e[3] for e in sorted(chosen, key=lambda e: (-e[0], -e[1], -e[2]))[: self.limit]]

    def warnings(self) -> list[str]:
        """One summary line per kind of item, for the report's warnings."""
        shown: dict[str, int] = {}
        for item in self.flags():
            shown[item["kind"]] = shown.get(item["kind"], 0) + 1
        out = []
        for kind, (n, first) in self._kinds.items():
            kept = shown.get(kind, 0)
            listed = "" if kept == n else f"; the {kept} most worth it are listed" if kept else "; none listed"
            out.append(f"worth a human look: {KINDS[kind]}: {n} found, first at frame {first}{listed}")
        return out


@dataclass(order=True)
class _Held:
    priority: float
    frame: int
    thumb: dict[str, Any] = field(compare=False)


class ThumbnailSampler:
    """Keeps at most `even` evenly spaced and `flagged` most-worth-reviewing output frames.

    Even spacing without knowing the length: keep every `step`-th frame; when more than
    `even` are held, drop every other one and double `step`.
    """

    def __init__(self, even: int = 12, flagged: int = 8, width: int = THUMB_WIDTH) -> None:
        self.even_cap, self.flagged_cap, self.width = even, flagged, width
        self.step = 1
        self.even: list[dict[str, Any]] = []
        self.flagged: list[_Held] = []  # min-heap on priority

    def offer(
        self,
        image: np.ndarray,
        frame: int,
        masked: Detections,
        painted: np.ndarray,
        hidden: np.ndarray,
        priority: float = 0.0,
        reasons: list[str] | None = None,
    ) -> None:
        """`image`: the output frame; `painted`: its masks' pixel boxes (one per `masked` box);
        `hidden`: pixel boxes of faces left visible in the output (kept by a reviewer), which a
        thumbnail must not show either."""
        reasons = reasons or []
        take_even = frame % self.step == 0
        take_flag = bool(reasons) and (len(self.flagged) < self.flagged_cap or priority > self.flagged[0].priority)
        if not (take_even or take_flag):
            return
        thumb = self._thumb(image, frame, masked, painted, hidden, reasons if take_flag else [])
        if take_even:
            self.even.append(thumb)
            if len(self.even) > self.even_cap:
                self.step *= 2
                self.even = [t for t in self.even if t["frame"] % self.step == 0]
        if take_flag:
            if len(self.flagged) < self.flagged_cap:
                heapq.heappush(self.flagged, _Held(priority, -frame, thumb))
            else:
                heapq.heapreplace(self.flagged, _Held(priority, -frame, thumb))

    def _thumb(
        self,
        image: np.ndarray,
        frame: int,
        masked: Detections,
        painted: np.ndarray,
        hidden: np.ndarray,
        reasons: list[str],
    ) -> dict[str, Any]:
        h, w = image.shape[:2]
        pic = image
        if len(painted) or len(hidden):
            # The report never carries face pixels: every masked or kept region is filled solid
            # (a blurred or pixelated mask, or a face a reviewer kept, would otherwise show).
            pic = image.copy()
            for x1, y1, x2, y2 in [*painted.tolist(), *hidden.tolist()]:
                pic[y1:y2, x1:x2] = 0
        if w > self.width:
            # INTER_AREA on the raw array: several times cheaper than PIL's resize, and this
            # runs on many frames of every video when a report is asked for.
            pic = cv2.resize(pic, (self.width, max(1, round(h * self.width / w))), interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(pic, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            raise RuntimeError("could not encode a report thumbnail")
        return {
            "frame": frame,
            "width": w,
            "height": h,
            "jpeg_base64": base64.b64encode(jpeg.tobytes()).decode("ascii"),
            "boxes": [
                {
                    "mask": [int(v) for v in painted[i]],
                    "label": str(masked.label[i]),
                    "score": round(float(masked.confidence[i]), 3),
                    "filled": bool(masked.filled[i]),
                }
                for i in range(len(masked))
            ],
            "reasons": reasons,
        }

    def result(self) -> list[dict[str, Any]]:
        """Sampled thumbnails in frame order, each once (flagged ones carry their reasons)."""
        by_frame = {t["frame"]: t for t in self.even}
        for held in self.flagged:
            by_frame[held.thumb["frame"]] = held.thumb
        return [by_frame[k] for k in sorted(by_frame)]

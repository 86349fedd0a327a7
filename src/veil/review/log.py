"""Which frames a human should look at, and the small pictures the HTML report shows.

A frame is worth a look when veil was unsure: a detection just above the threshold (the next
face may be just below it), a box the tracker filled in because the detector missed that
frame, a very small face (small faces are the ones detectors miss), or a crowd. The sampler
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


KINDS = {
    "low": "low-confidence detections",
    "filled": "boxes filled in by the tracker",
    "small": "tiny faces",
    "crowd": "many regions",
    "second": "face-like regions outside every mask (second opinion)",
}


def frame_reasons(masked: Detections) -> tuple[float, list[tuple[str, str]]]:
    """Priority (higher = look first) and (kind, human-readable reason) pairs for one frame's
    masked boxes; no reasons when nothing about the frame is doubtful."""
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


class ReviewLog:
    """Frames worth a human look, gathered as frames are painted: the `limit` with the highest
    priority, plus a count and the first frame of each kind of doubt (bounded memory)."""

    def __init__(self, limit: int = 20) -> None:
        self.limit = limit
        self._top: list[tuple[float, int, list[str]]] = []  # min-heap (priority, -frame, reasons)
        self._kinds: dict[str, list[int]] = {}  # kind -> [count, first frame]

    def offer(self, frame: int, masked: Detections, doubts: list[str] | None = None) -> tuple[float, list[str]]:
        """`doubts`: reasons found elsewhere (a second detector's look at the output)."""
        priority, reasons = frame_reasons(masked)
        for text in doubts or []:
            # A face-like region left visible outranks every other doubt.
            reasons.insert(0, ("second", text))
            priority += 5.0
        texts = [text for _, text in reasons]
        for kind, _ in reasons:
            seen = self._kinds.setdefault(kind, [0, frame])
            seen[0] += 1
        if reasons:
            item = (round(priority, 2), -frame, texts)
            if len(self._top) < self.limit:
                heapq.heappush(self._top, item)
            elif item[:2] > self._top[0][:2]:
                heapq.heapreplace(self._top, item)
        return priority, texts

    def flags(self) -> list[dict[str, Any]]:
        ordered = sorted(self._top, key=lambda t: (-t[0], -t[1]))
        return [{"frame": -neg, "priority": p, "reasons": r} for p, neg, r in ordered]

    def warnings(self) -> list[str]:
        """One summary line per kind of doubt, for the report's warnings."""
        return [
            f"{n} frame{'s' * (n != 1)} with {KINDS[kind]}, worth a human look (first: frame {first})"
            for kind, (n, first) in self._kinds.items()
        ]


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

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

LOW_CONFIDENCE = 0.4  # centerface scores; the recall-first threshold is 0.15-0.2
SMALL_FACE_PX = 20
CROWD = 8
THUMB_WIDTH = 320


KINDS = {
    "low": "low-confidence detections",
    "filled": "boxes filled in by the tracker",
    "small": "tiny faces",
    "crowd": "many regions",
}


def _reasons(entry: dict[str, Any]) -> tuple[float, list[tuple[str, str]]]:
    boxes = entry.get("boxes", [])
    reasons: list[tuple[str, str]] = []
    priority = 0.0
    low = [b["score"] for b in boxes if not b.get("filled") and b.get("score", 1.0) < LOW_CONFIDENCE]
    if low:
        reasons.append(("low", f"{len(low)} low-confidence detection{'s' * (len(low) != 1)} (min {min(low):.2f})"))
        priority += 2.0 + (LOW_CONFIDENCE - min(low)) * 5
    filled = [b for b in boxes if b.get("filled")]
    if filled:
        reasons.append(("filled", f"{len(filled)} box{'es' * (len(filled) != 1)} filled in by the tracker"))
        priority += 1.0 + 0.2 * len(filled)
    small = [b for b in boxes if b.get("label") == "face" and b["box"][3] - b["box"][1] < SMALL_FACE_PX]
    if small:
        text = f"{len(small)} tiny face{'s' * (len(small) != 1)} (< {SMALL_FACE_PX} px): others may be missed"
        reasons.append(("small", text))
        priority += 1.5
    if len(boxes) >= CROWD:
        reasons.append(("crowd", f"crowded: {len(boxes)} regions"))
        priority += 1.0 + 0.05 * len(boxes)
    return priority, reasons


def review_reasons(entry: dict[str, Any]) -> tuple[float, list[str]]:
    """Priority (higher = look first) and human-readable reasons for one report frame entry."""
    priority, reasons = _reasons(entry)
    return priority, [text for _, text in reasons]


def worth_reviewing(frames: list[dict[str, Any]], limit: int = 20) -> list[dict[str, Any]]:
    scored = []
    for entry in frames:
        priority, reasons = review_reasons(entry)
        if reasons:
            scored.append({"frame": entry["frame"], "priority": round(priority, 2), "reasons": reasons})
    scored.sort(key=lambda r: (-r["priority"], r["frame"]))
    return scored[:limit]


def warnings_for(frames: list[dict[str, Any]]) -> list[str]:
    """One summary line per kind of doubt, for the report's warnings."""
    seen: dict[str, list[int]] = {}
    for entry in frames:
        for kind, _ in _reasons(entry)[1]:
            seen.setdefault(kind, []).append(entry["frame"])
    return [
        f"{len(idx)} frame{'s' * (len(idx) != 1)} with {KINDS[kind]}, worth a human look (first: frame {idx[0]})"
        for kind, idx in seen.items()
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

    def offer(self, image: np.ndarray, entry: dict[str, Any]) -> None:
        index = int(entry["frame"])
        if index % self.step == 0:
            self.even.append(self._thumb(image, entry, []))
            if len(self.even) > self.even_cap:
                self.step *= 2
                self.even = [t for t in self.even if t["frame"] % self.step == 0]
        priority, reasons = review_reasons(entry)
        if not reasons:
            return
        if len(self.flagged) < self.flagged_cap:
            heapq.heappush(self.flagged, _Held(priority, -index, self._thumb(image, entry, reasons)))
        elif priority > self.flagged[0].priority:
            heapq.heapreplace(self.flagged, _Held(priority, -index, self._thumb(image, entry, reasons)))

    def _thumb(self, image: np.ndarray, entry: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
        h, w = image.shape[:2]
        pic = image
        if w > self.width:
            # INTER_AREA on the raw array: several times cheaper than PIL's resize, and this
            # runs on many frames of every video when a report is asked for.
            pic = cv2.resize(image, (self.width, max(1, round(h * self.width / w))), interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(pic, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            raise RuntimeError("could not encode a report thumbnail")
        return {
            "frame": int(entry["frame"]),
            "width": w,
            "height": h,
            "jpeg_base64": base64.b64encode(jpeg.tobytes()).decode("ascii"),
            "boxes": [
                {
                    "mask": b["mask"],
                    "label": b.get("label", ""),
                    "score": b.get("score"),
                    "filled": bool(b.get("filled")),
                }
                for b in entry.get("boxes", [])
            ],
            "reasons": reasons,
        }

    def result(self) -> list[dict[str, Any]]:
        """Sampled thumbnails in frame order, each once (flagged ones carry their reasons)."""
        by_frame = {t["frame"]: t for t in self.even}
        for held in self.flagged:
            by_frame[held.thumb["frame"]] = held.thumb
        return [by_frame[k] for k in sorted(by_frame)]

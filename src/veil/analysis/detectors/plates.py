"""Licence-plate detector: text lines that sit on a plate, grown to the whole plate and its frame.

No plate-specific model ships offline under a licence veil can use, so a plate is found as "a
line of characters on a uniformly coloured rectangle", from the text detector's regions (see
detectors/text.py; one network run serves both detectors, see `PlateDetector.detect`):

1. Text regions are joined into lines: DB often splits a plate ("AB 123" and "CD") or finds
   only some of its characters. Regions join when they have about the same angle and height,
   lie on one line and are less than 1.2 line heights apart.
2. Lines that cannot be a plate are dropped: more than `max_aspect` (12) times longer than
   high (sentences, shop signs) or taller than `max_height_frac` of the image.
3. Each line is resampled into an upright crop in its own frame (tilted plates become level),
   at a fixed 24 px per line height so every threshold below is in line heights. An Otsu split
   of the middle of the line gives characters (minority) and plate background (majority); a
   line whose two classes differ by less than `min_contrast` in L* has no characters on it
   (DB fires on some flat blobs) and is dropped. Row and column profiles of "pixels of the
   background colour" then say how far the plate extends above, below, left and right of the
   characters found: the background ends where the profile drops (at the frame, or where the
   car body starts). This is what covers characters DB missed and the plate's margins.
4. The rectangle is grown by `frame_margin` line heights plus 2 px on every side so the frame
   itself is inside, and by `end_margin` more at both ends (an EU plate's blue band, a state
   emblem: not of the background colour, so the walk stops before them). It is mapped back to
   the image and returned as its axis-aligned box.

Where the background colour runs on to the end of the search window (a white plate on a white
car), that side gets a fixed margin instead: 0.3 line heights across, up to 2.5 along (the rest
of a plate whose other characters DB missed), so a plate is never left half-masked because its
car has its colour; where fewer than two sides end at an edge, the line is masked as found. The confidence
is the text score times 0.6-1.0, the more sides ended at a real edge the higher; nothing is
dropped on that score, since for redaction a missed plate costs more than a masked sign.

Weak spots: any line of characters on a uniform patch is taken for a plate (stickers, signs,
number boards), and a line DB merged with a neighbouring blob yields a box as big as the blob.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from veil.analysis.boxes import nms
from veil.analysis.detectors import register
from veil.analysis.detectors.text import TextDetector, TextRegions
from veil.types import Detections

# Canonical resampling: one line height = UNIT px in the upright crop.
UNIT = 24.0


@dataclass
class Line:
    """A line of text in its own frame: centre, unit vector along the text, length and height."""

    center: np.ndarray
    along: np.ndarray
    length: float
    height: float
    score: float

    @property
    def across(self) -> np.ndarray:
        return np.array([-self.along[1], self.along[0]])


@register("plates")
class PlateDetector:
    name = "plates"
    label = "plate"

    def __init__(
        self,
        text_detector: TextDetector | None = None,
        frame_margin: float = 0.12,
        end_margin: float = 0.3,
        search_along: float = 4.0,
        search_across: float = 0.7,
        max_aspect: float = 12.0,
        max_height_frac: float = 0.25,
        min_contrast: float = 30.0,
        **text_options: Any,
    ) -> None:
        # Sharing one TextDetector means one network run per frame for `--redact plates,text`.
        self.text = text_detector if text_detector is not None else TextDetector(**text_options)
        self.frame_margin = frame_margin
        self.end_margin = end_margin
        self.search_along = search_along
        self.search_across = search_across
        self.max_aspect = max_aspect
        self.max_height_frac = max_height_frac
        self.min_contrast = min_contrast

    def settings(self) -> dict[str, Any]:
        return {
            "text": self.text.settings(),
            "frame_margin": self.frame_margin,
            "end_margin": self.end_margin,
            "search_along": self.search_along,
            "search_across": self.search_across,
            "max_aspect": self.max_aspect,
            "max_height_frac": self.max_height_frac,
            "min_contrast": self.min_contrast,
        }

    def detect(self, image: np.ndarray) -> Detections:
        # `regions` is cached on the image's content, so if the text detector already ran on
        # this frame (as `text`), this costs no second network run.
        return self.detect_from_regions(image, self.text.regions(image))

    def detect_from_regions(self, image: np.ndarray, regions: TextRegions) -> Detections:
        """Plates from text regions already found in `image` (by `TextDetector.regions`)."""
        height, width = image.shape[:2]
        quads, scores = [], []
        for line in join_lines(regions):
            if line.length > self.max_aspect * line.height or line.height > self.max_height_frac * height:
                continue
            plate = self._plate(image, line)
            if plate is None:
                continue
            quad, plateness = plate
            quads.append(quad)
            scores.append(line.score * plateness)
        if not quads:
            return Detections.empty()
        q = np.stack(quads)
        xyxy = np.concatenate([q.min(axis=1), q.max(axis=1)], axis=1)
        xyxy[:, 0::2] = np.clip(xyxy[:, 0::2], 0, width)
        xyxy[:, 1::2] = np.clip(xyxy[:, 1::2], 0, height)
        conf = np.asarray(scores, dtype=np.float32)
        # Two lines of one plate (US plates' state name) give near-identical plate boxes.
        keep = nms(xyxy, conf, 0.7)
        return Detections.from_boxes(xyxy[keep], conf[keep], self.label)

    def _plate(self, image: np.ndarray, line: Line) -> tuple[np.ndarray, float] | None:
        """The plate around `line`: its 4 corners in the image and a 0.6-1 plate-likeness;
        None when the line has no character contrast."""
        h = line.height
        s = UNIT / h
        u0 = -line.length / 2 - self.search_along * h
        v0 = -h / 2 - self.search_across * h
        cw = max(1, round((line.length + 2 * self.search_along * h) * s))
        ch = max(1, round((h + 2 * self.search_across * h) * s))
        a, c = line.along, line.across
        # Canonical (x, y) -> image: centre + (x/s + u0) * along + (y/s + v0) * across.
        m = np.array(
            [
                [a[0] / s, c[0] / s, line.center[0] + u0 * a[0] + v0 * c[0]],
                [a[1] / s, c[1] / s, line.center[1] + u0 * a[1] + v0 * c[1]],
            ],
            dtype=np.float64,
        )
        crop = cv2.warpAffine(
            image, m, (cw, ch), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
        )
        # The text line's own rectangle in the crop.
        tx0, tx1 = round(self.search_along * UNIT), cw - round(self.search_along * UNIT)
        ty0, ty1 = round(self.search_across * UNIT), ch - round(self.search_across * UNIT)
        extent = _extent(crop, tx0, tx1, ty0, ty1, self.min_contrast)
        if extent is None:
            return None
        x0, x1, y0, y1, found = extent
        pv = self.frame_margin * UNIT + 2 * s
        # Along the line also the EU band (blue, about 0.4 line heights) or a province/state
        # emblem, which do not have the background colour and so stop the walk.
        pu = pv + self.end_margin * UNIT
        rect = np.array([[x0 - pu, y0 - pv], [x1 + pu, y0 - pv], [x1 + pu, y1 + pv], [x0 - pu, y1 + pv]])
        corners = rect @ m[:, :2].T + m[:, 2]
        return corners.astype(np.float32), 0.6 + 0.1 * found


def _extent(
    crop: np.ndarray, tx0: int, tx1: int, ty0: int, ty1: int, min_contrast: float
) -> tuple[float, float, float, float, int] | None:
    """How far the plate's background colour extends around the text rectangle (crop pixels).

    Returns left, right, top, bottom and how many of the 4 sides ended at an edge inside the
    crop (the others got the default margin); None if the text rectangle holds no characters
    (its two Otsu classes differ by less than `min_contrast` in L*, 0-255 scale).
    """
    ch, cw = crop.shape[:2]
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32)
    # The middle of the text rectangle is surely on the plate (its ends and edges may not be,
    # DB's rectangles overshoot); there the characters are the minority class.
    dy, dx = (ty1 - ty0) // 4, (tx1 - tx0) // 10
    core = lab[ty0 + dy : ty1 - dy, tx0 + dx : tx1 - dx].reshape(-1, 3)
    otsu, _ = cv2.threshold(core[:, 0].astype(np.uint8).reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = core[:, 0] > otsu
    minority = min(bright.mean(), 1 - bright.mean())
    contrast = float(np.median(core[bright, 0]) - np.median(core[~bright, 0])) if minority > 0 else 0.0
    if contrast < min_contrast or minority < 0.05:
        # No characters on it: a flat blob DB mistook for text, not a plate.
        return None
    background = core[bright] if bright.mean() >= 0.5 else core[~bright]
    if len(background) == 0:
        background = core
    colour = np.median(background, axis=0)
    spread = float(np.median(np.linalg.norm(background - colour, axis=1)))
    similar = np.linalg.norm(lab - colour, axis=2) < min(30.0, max(12.0, 2.0 * spread))

    gap = max(2, round(0.15 * UNIT))
    rows = similar[:, tx0:tx1].mean(axis=1)
    # Thresholds relative to the plate's own share of background pixels: a dark, noisy plate
    # may match its median colour in only a third of its pixels.
    row_t = float(np.clip(0.5 * np.median(rows[ty0:ty1]), 0.1, 0.4))
    top, top_ok = _walk(rows, ty0, -1, row_t, gap)
    bottom, bottom_ok = _walk(rows, ty1 - 1, 1, row_t, gap)
    if not top_ok:
        top = ty0 - 0.3 * UNIT
    if not bottom_ok:
        bottom = ty1 + 0.3 * UNIT
    r0, r1 = max(0, int(top)), min(ch, int(np.ceil(bottom)) + 1)
    cols = similar[r0:r1].mean(axis=0)
    # Characters interrupt the background column by column; smooth over half a character.
    k = max(1, round(0.5 * UNIT))
    cols = np.convolve(cols, np.ones(k) / k, mode="same")
    col_t = float(np.clip(0.5 * np.median(cols[tx0:tx1]), 0.08, 0.3))
    # Along the line a gap may be a character or two DB did not find: allow half a line height.
    left, left_ok = _walk(cols, tx0, -1, col_t, round(0.5 * UNIT))
    right, right_ok = _walk(cols, tx1 - 1, 1, col_t, round(0.5 * UNIT))
    # Background running on to the window's end along the line is either the rest of a plate
    # whose other characters DB missed, or a car of the plate's colour; mask 2.5 line heights
    # of it, about the length of the longest plates (EU, 4.7:1) beyond a half-found line.
    if not left_ok:
        left = max(left, tx0 - 2.5 * UNIT)
    if not right_ok:
        right = min(right, tx1 + 2.5 * UNIT)
    found = int(top_ok + bottom_ok + left_ok + right_ok)
    if found < 2:
        # The "background" is bounded on one side at most, so this is no plate-shaped patch
        # (or a plate the colour of its car): mask the text itself, not a window around it.
        left, right, top, bottom = tx0, tx1, ty0, ty1
    left, top = min(left, tx0), min(top, ty0)
    right, bottom = max(right, tx1), max(bottom, ty1)
    return float(left), float(right), float(top), float(bottom), found


def _walk(profile: np.ndarray, start: int, step: int, threshold: float, gap: int) -> tuple[float, bool]:
    """From `start`, move by `step` while `profile` stays >= threshold (gaps <= `gap` allowed,
    so a thin frame line does not stop the walk). Returns the last such index and whether
    the walk stopped inside the profile (False: it ran off the end, i.e. no edge found)."""
    last = start
    i = start + step
    misses = 0
    while 0 <= i < len(profile):
        if profile[i] >= threshold:
            last, misses = i, 0
        else:
            misses += 1
            if misses > gap:
                return float(last + (1 if step > 0 else 0)), True
        i += step
    return float(last), False


def join_lines(regions: TextRegions) -> list[Line]:
    """Text regions joined into lines of text (see module docstring, step 1)."""
    lines = [_line_of(q, float(s)) for q, s in zip(regions.quads, regions.scores, strict=True)]
    n = len(lines)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if _same_line(lines[i], lines[j]):
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    out = []
    for members in groups.values():
        if len(members) == 1:
            out.append(lines[members[0]])
            continue
        points = np.concatenate([regions.quads[i] for i in members])
        score = max(lines[i].score for i in members)
        out.append(_line_of(points, score))
    return out


def _line_of(points: np.ndarray, score: float) -> Line:
    (cx, cy), (w, h), angle = cv2.minAreaRect(np.asarray(points, dtype=np.float32).reshape(-1, 1, 2))
    theta = np.deg2rad(angle)
    along = np.array([np.cos(theta), np.sin(theta)])
    # The "along" axis is the one nearer the image's horizontal: a plate is seldom turned by more
    # than 45 degrees, and a region of 1-2 characters may be taller than wide.
    if abs(along[1]) > abs(along[0]):
        along = np.array([along[1], -along[0]])
        w, h = h, w
    if along[0] < 0:
        along = -along
    return Line(np.array([cx, cy]), along, float(w), float(h), score)


def _same_line(a: Line, b: Line) -> bool:
    if abs(float(np.dot(a.along, b.along))) < np.cos(np.deg2rad(15)):
        return False
    if max(a.height, b.height) > 1.6 * min(a.height, b.height):
        return False
    h = max(a.height, b.height)
    d = b.center - a.center
    if abs(float(np.dot(d, a.across))) > 0.5 * h:
        return False
    gap = abs(float(np.dot(d, a.along))) - (a.length + b.length) / 2
    return gap < 1.2 * h

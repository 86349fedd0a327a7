"""Verify: prove from an output's pixels and samples that it is what the user asked for.

The request is the `Settings` passed in (what the command line, a plan or the review page asked
for) together with the plan. Four checks, each reported on its own (`VerifyResult.checks`):

- **frames**: the output holds exactly the frames of the requested span (`--start`/`--end`,
  else the plan's range, else the whole input), counted in the input when it is given, and
  lasts as long; without the input, the plan's frame count, and no longer than the span.
- **zones**: every privacy zone of the request *and* of the plan is filled in every frame, even
  one the plan forgot.
- **boxes**: every box the plan masks (grown by its margin), and every whole-frame range.
- **audio**: every audio edit asked for is in the output: mute is digital silence in its
  ranges, bleep is the tone, disguise changed the signal (compared with the input, when given).
  Audio outside the ranges is not compared here.

A solid mask (and every zone and whole frame, always filled opaquely) must show its colour
*and* be flat. Colour alone let dark content pass: at 15 % brightness every pixel of a face is
within 40 grey levels of black. Flatness is the standard deviation of the grey level of the
region's inner pixels (EDGE in from its border). Measured on the astronaut sample with a solid
patch painted over the face next to busy content (worst case over black, white, red, blue and
grey fills, margins 0 and 0.2, every frame of a 20-frame 320x240 clip; /tmp script, not shipped):

    H.264 crf 18 veryfast 4:2:0 (veil's settings)   0.58    crf 28   0.97
    JPEG q95 4:4:4 (veil's settings)                 0.30    q75 4:2:0 0.74, q50 4:2:0 0.98
    the face at 15 % / 8 % / 4 % brightness, unmasked, JPEG or H.264: 6.6 / 3.6 / 1.8

On real JPEG outputs of veil (solid masks, WIDER-face crowd photos in ../shared/data), the
largest spread was 0.75 for regions at least 16 px across inside, and 1.14 for smaller ones
(8x6 px inside: JPEG's 8x8 blocks ring over all of such a region); the astronaut face left
unmasked at 15 % brightness spreads 10.5. So FLAT_STD = 1.5 (FLAT_STD_SMALL = 2.5 under
FLAT_SMALL_PX across) leaves about 2x margin over veil's own encoders. Its reach, the two crowd
photos darkened and verified unredacted against their plans (faces failing / faces):
15 %: 43/50 and 28/28; 8 %: 28/50 and 27/28; 4 %: 3/50 and 12/28 from the output alone; with
the input given (as every run gives it), the leak test below also runs on pictures and 8 %
fails 49/50 and 28/28, 4 % 36/50 and 27/28. A flat patch of another shade (a
plain wall under a missing zone) is caught by the median grey level instead (LEVEL_TOL).
x264's P-frames can leave more than that on a fill over a changing picture: block-sized steps
of 2-9 grey levels on black, spread 1.8, on a generated crowd clip whose output was right. So on
video a solid mask that fails the flatness test alone is judged once more against the input,
read again only then (`_check_unflat`): it fails when it holds more than LEAK_MAX of the
input's detail there (a dark face left unmasked: about 1), and passes when it holds none of it
or the input had none to hold.

Blur and pixelate masks are compared with the
input's region painted again; on top of the per-pixel tolerance, the detail the mask removed
(input minus expected, mean removed) must not be in the output: the share of it found there
(`_leak`) is about 0 for a painted mask and about 1 for an unmasked region, however dark
(measured: at most 0.035 on veil's blur and pixelate outputs of the clip and photos above,
1.00 on every unmasked region with enough detail to tell; LEAK_MAX = 0.5).

Audio tolerances (measured on a 440 Hz tone at 0.1 through veil's AAC re-encode): a muted range
peaks at 1.2e-3 at its edge, 4e-4 10 ms in, 2e-5 30 ms in; so lossy tracks are checked from
GUARD_SAMPLES in from each edge with a peak of at most MUTE_PEAK, lossless ones exactly. A
bleeped range fits the tone at amplitude 0.0998 (0.1 asked) leaving 0.0011 RMS unexplained.

Invalid settings (a margin or threshold that is not a finite number, a zone or box coordinate
that is not finite) are refused with a VeilError: verify never passes what it cannot check.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from veil.analysis.zones import Zone
from veil.config import Settings
from veil.errors import VeilError
from veil.media.audio import BLEEP_DBFS, BLEEP_HZ, AudioEdit
from veil.plan import FrameBoxes, Plan, plan_time_range, plan_zones
from veil.render.redact import (
    Redactor,
    ShownRegion,
    in_paint_order,
    redactor_for,
    shown_mask,
    sparable,
    spared_mask,
)
from veil.timerange import TimeRange
from veil.types import Frame

LOSSLESS = {".png", ".tif", ".tiff", ".bmp"}
# Lossy outputs are compared on brightness (4:2:0 video keeps one colour sample per 2x2 pixels,
# so colour bleeds across a mask's edge while brightness stays sharp): a pixel matches when its
# grey level is within TOLERANCE of the expected one, and a region passes when MIN_SHARE of its
# pixels, EDGE pixels in from its border, match; a region too small to leave an inner part is
# compared whole, with the looser MIN_SHARE_SMALL. A face left unmasked differs by far more.
TOLERANCE = 40
MIN_SHARE = 0.9
MIN_SHARE_SMALL = 0.75
EDGE = 2
# Solid fills: the grey level's standard deviation over the inner pixels (module docstring).
FLAT_STD = 1.5
FLAT_STD_SMALL = 2.5
FLAT_SMALL_PX = 16
# Solid fills: the median grey level of the inner pixels may differ from the fill's by this much
# (codec rounding of a flat patch is a level or two; a plain wall of another shade is more).
LEVEL_TOL = 12
# Blur and pixelate: a region whose removed detail has an RMS below DETAIL_MIN grey levels had
# nothing to hide; above it, at most LEAK_MAX of that detail may be found in the output.
DETAIL_MIN = 1.0
LEAK_MAX = 0.5
# Solid video masks that fail only the flatness test held for the input's second reading; more
# than this fail at once (so many uneven fills is not codec noise, and memory stays bounded).
MAX_UNFLAT = 256
# Frame counts: a span's duration may differ by this many frame intervals (timestamp rounding).
DURATION_SLACK_FRAMES = 1.5
# Audio (module docstring): lossy codecs smear an edge over about two codec frames.
GUARD_SAMPLES = 2048
MUTE_PEAK = 3e-3
BLEEP_AMPLITUDE = 10 ** (BLEEP_DBFS / 20)
BLEEP_AMPLITUDE_RANGE = (0.8, 1.25)
BLEEP_RESIDUAL = 0.1
# Disguise: the output must differ from the input by at least this share of the input's RMS,
# where the input is louder than DISGUISE_MIN_RMS (silence disguised is still silence).
DISGUISE_MIN_CHANGE = 0.2
DISGUISE_MIN_RMS = 1e-3
# Zone and box coordinates beyond this (pixels or fractions) cannot be rasterised faithfully.
MAX_COORD = 1e7
GREY = np.asarray([0.299, 0.587, 0.114])
GREY32 = GREY.astype(np.float32)
MAX_LISTED = 100
# `_surely_filled`: a spread or level this close to its bound is checked one box at a time (the
# sums and numpy's float32 deviation may differ in the last digits).
SURE_MARGIN = 1e-3


@dataclass
class VerifyResult:
    ok: bool = True
    frames_checked: int = 0
    regions_checked: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    failed_regions: int = 0
    failed_other: int = 0
    seconds: float = 0.0
    # Per check (frames, zones, boxes, audio): what was checked and whether it held.
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self, name: str, **info: Any) -> dict[str, Any]:
        entry = self.checks.setdefault(name, {"ok": True})
        entry.update(info)
        return entry

    def fail(self, entry: dict[str, Any], check: str = "boxes", region: bool = True) -> None:
        self.ok = False
        entry = {"check": check, **entry}
        self.check(check)["ok"] = False
        if region:
            self.failed_regions += 1
        else:
            self.failed_other += 1
        if len(self.failures) < MAX_LISTED:
            self.failures.append(entry)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "frames_checked": self.frames_checked,
            "regions_checked": self.regions_checked,
            "regions_failed": self.failed_regions,
            "failures": self.failures,
            "checks": self.checks,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        if self.ok:
            audio = self.checks.get("audio", {})
            extra = ""
            if audio.get("ranges_checked"):
                extra = f"; audio {audio['mode']} in {audio['ranges_checked']} ranges"
            return f"verified: {self.regions_checked} masked regions in {self.frames_checked} frames all present{extra}"
        first = self.failures[0] if self.failures else {}
        check = first.get("check", "boxes")
        where = f"frame {first['frame']}: " if first.get("frame") is not None else ""
        return (
            f"verify FAILED ({check}): {where}{first.get('what')}; {self.failed_regions} of "
            f"{self.regions_checked} masked regions missing, {self.failed_other} other failures"
        )


def verify(
    plan: Plan, output: Path, settings: Settings, source_path: Path | None = None, *, pixels: bool = True
) -> VerifyResult:
    """Check `output` against the request (`settings`) and `plan`; `source_path` (the plan's
    input) is read for blur or pixelate masks, whose expected pixels depend on the picture
    under them, and for the frame count, duration and audio of the requested span.

    `pixels=False`: only the frame count, duration and audio (no frame is decoded), for a file
    whose pixels were verified in parts (a video joined from verified segments)."""
    from veil.media.source import media_kind

    started = time.monotonic()
    zones = _check_request(settings, plan)
    result = VerifyResult()
    lossless = output.suffix.lower() in LOSSLESS
    solid = settings.mask == "solid"
    redactor = redactor_for(settings, zones, plan)
    color = np.asarray(redactor.fill, dtype=np.int16)
    boxes = FrameBoxes(plan)
    shown = ShownRegion(plan) if plan.show_only is not None else None
    segment = isinstance(plan.input.get("segment"), dict)
    span = _requested_range(plan, settings, segment, result)
    source_kind = media_kind(source_path) if source_path is not None else None
    if not pixels:
        return _verify_request_only(plan, output, settings, source_path, source_kind, span, segment, result, started)
    originals = None
    if not solid or (shown is not None and redactor.outside is not None):
        if source_path is None:
            raise VeilError(
                "verify: blur and pixelate masks (and a blurred show_only) need the plan's input to check against"
            )
        originals = _frames(source_path, span)
    elif source_kind == "image":
        originals = _frames(source_path)  # cheap for a picture: the leak test then runs too
    result.check("boxes", mask=settings.mask, regions=0)
    if redactor.zones:
        result.check("zones", zones=[z.name for z in zones], frames=0)
    if shown is not None:
        result.check("show_only", tracks=list(shown.spec.tracks), mask=shown.spec.mask, frames=0)
    n = 0
    read: dict[str, Any] = {}
    # A solid video mask that is the fill's colour but not flat enough is judged against the
    # input afterwards (`_check_unflat`), which is read again only if one turns up.
    unflat: list[Unflat] | None = (
        [] if originals is None and source_path is not None and source_kind == "video" else None
    )
    for frame in _frames(output, None, read):
        n += 1
        original = next(originals, None) if originals is not None else None
        # A 16-bit or float output is seen through its 8-bit copy: a weak mask painted at full
        # depth rounds differently from one painted in 8 bits, so it is compared as lossy.
        exact = lossless and not (read.get("deep") and not solid)
        _check_frame(frame, original, boxes, redactor, color, exact, solid, result, shown, unflat, n - 1)
    if unflat:
        _check_unflat(unflat, _frames(source_path, span), color, result)
    result.frames_checked = n
    result.checks["boxes"]["regions"] = (
        result.regions_checked
        - result.checks.get("zones", {}).get("frames", 0)
        - result.checks.get("show_only", {}).get("frames", 0)
    )
    _check_frames(plan, output, n, source_path, source_kind, span, segment, result)
    _check_audio(plan, output, settings, source_path, source_kind, span, result)
    result.seconds = time.monotonic() - started
    return result


def _verify_request_only(
    plan: Plan,
    output: Path,
    settings: Settings,
    source_path: Path | None,
    source_kind: str | None,
    span: TimeRange | None,
    segment: bool,
    result: VerifyResult,
    started: float,
) -> VerifyResult:
    from veil.media.check import video_span
    from veil.media.source import media_kind, read_image

    kind = media_kind(output)
    n = video_span(output).frames if kind == "video" else len(read_image(output).pages) if kind == "image" else 0
    if kind == "animation":
        n = sum(1 for _ in _frames(output))
    result.frames_checked = n
    _check_frames(plan, output, n, source_path, source_kind, span, segment, result)
    _check_audio(plan, output, settings, source_path, source_kind, span, result)
    result.seconds = time.monotonic() - started
    return result


# ----------------------------------------------------------------------------- the request


def _check_request(settings: Settings, plan: Plan) -> list[Zone]:
    """Refuse settings verify cannot honestly check; return every zone asked for (the
    request's and the plan's, once each)."""

    def finite(value: Any, name: str) -> None:
        if value is not None and (isinstance(value, bool) or not math.isfinite(float(value))):
            raise VeilError(f"verify: {name} must be a finite number, got {value!r}")

    finite(settings.margin, "margin")
    finite(settings.threshold, "threshold")
    if settings.margin is not None and not 0 <= float(settings.margin) <= 5:
        raise VeilError(f"verify: margin must be between 0 and 5, got {settings.margin}")
    if settings.time_range is not None:
        finite(settings.time_range.start, "--start")
        finite(settings.time_range.end, "--end")
    for a, b in settings.audio_ranges:
        finite(a, "an audio range's start")
        if b != math.inf:
            finite(b, "an audio range's end")
    zones: list[Zone] = []
    seen: set[tuple[Any, ...]] = set()
    for zone in [*settings.zones, *plan_zones(plan)]:
        pts = np.asarray(zone.polygon, dtype=np.float64)
        if not np.isfinite(pts).all() or (np.abs(pts) > MAX_COORD).any():
            raise VeilError(f"verify: zone {zone.name!r} has a coordinate that is not a finite number of pixels")
        key = (zone.polygon, zone.fractional)
        if key not in seen:
            seen.add(key)
            zones.append(zone)
    return zones


def _requested_range(plan: Plan, settings: Settings, segment: bool, result: VerifyResult) -> TimeRange | None:
    """The part of the input the output must hold: the request's range, else the plan's."""
    planned = plan_time_range(plan)
    asked = settings.time_range
    if asked is not None and planned is not None and not segment and not _same_range(asked, planned):
        result.fail(
            {"frame": None, "what": f"the plan covers {_span_text(planned)}, the request {_span_text(asked)}"},
            "frames",
            region=False,
        )
    return asked if asked is not None else planned


def _same_range(a: TimeRange, b: TimeRange) -> bool:
    ends = (a.end is None and b.end is None) or (a.end is not None and b.end is not None and abs(a.end - b.end) < 1e-3)
    return abs(a.start - b.start) < 1e-3 and ends


def _span_text(r: TimeRange | None) -> str:
    if r is None:
        return "the whole input"
    return f"{r.start:g}-{r.end:g} s" if r.end is not None else f"{r.start:g} s to the end"


# ----------------------------------------------------------------------------- frames


def _check_frames(
    plan: Plan,
    output: Path,
    n: int,
    source_path: Path | None,
    source_kind: str | None,
    span: TimeRange | None,
    segment: bool,
    result: VerifyResult,
) -> None:
    from veil.media.check import video_span
    from veil.media.source import media_kind, read_image

    entry = result.check("frames", frames=n, plan_frames=plan.frames, span=_span_text(span))
    if n != plan.frames:
        what = f"output has {n} frames, the plan {plan.frames}"
        result.fail({"frame": min(n, plan.frames), "what": what}, "frames", region=False)  # not a mask missing
    if segment:
        entry["span"] = "one segment (its plan's frames)"
        return
    if media_kind(output) != "video":
        if source_kind == "image" and source_path is not None:
            pages = len(read_image(source_path).pages)
            entry["input_frames"] = pages
            if pages != n:
                result.fail({"frame": None, "what": f"output has {n} pages, the input {pages}"}, "frames", False)
        return
    got = video_span(output)
    if got.last_s is None:
        return
    # Where the last frame ends on the output's clock, which starts at the span's start. (Not
    # last minus first: AVI stores decode times, so its first frame may start a frame late.)
    step = 1.0 / got.rate if got.rate else 0.0
    if source_kind == "video" and source_path is not None:
        want = video_span(source_path, span)
        if want.frames != n:
            # Packets can disagree with what the decoder returns (damaged input): count frames.
            want = video_span(source_path, span, decode=True)
        entry["input_frames"] = want.frames
        step = 1.0 / want.rate if want.rate else step
        got_end = got.last_s + step
        entry["duration_s"] = round(got_end, 3)
        # "2-5 s of the input", or "the input" (not "the whole input of the input").
        part = f"{_span_text(span)} of the input" if span is not None else "the input"
        if want.frames != n:
            what = f"output has {n} frames, {part} {want.frames}"
            result.fail({"frame": None, "what": what}, "frames", region=False)
        elif want.last_s is not None:
            want_end = want.last_s - (span.start if span is not None else 0.0) + step
            entry["input_duration_s"] = round(want_end, 3)
            if abs(want_end - got_end) > DURATION_SLACK_FRAMES * step + 1e-3:
                what = f"output lasts {got_end:.3f} s, {part} {want_end:.3f} s"
                result.fail({"frame": None, "what": what}, "frames", region=False)
        return
    got_end = got.last_s + step
    entry["duration_s"] = round(got_end, 3)
    # Without the input only an upper bound is known: the span's length.
    limit = None if span is None or span.end is None else span.end - span.start
    if limit is not None and got_end > limit + DURATION_SLACK_FRAMES * step + 1e-3:
        what = f"output lasts {got_end:.3f} s, longer than the requested {_span_text(span)}"
        result.fail({"frame": None, "what": what}, "frames", region=False)


def _frames(path: Path, time_range: Any = None, read: dict[str, Any] | None = None) -> Any:
    """Every frame (page) of `path`, upright 8-bit RGB, read the way veil reads inputs
    (`time_range`: only that part of a video, as the render read it)."""
    from veil.media.animation import stream_classes
    from veil.media.source import media_kind, read_image

    kind = media_kind(path)
    if kind == "image":
        pages = read_image(path).pages
        if read is not None:
            read["deep"] = any(page.full is not None for page in pages)
        for page in pages:
            yield page.frame
        return
    source_class, _ = stream_classes(kind, path)
    extra = {"time_range": time_range} if time_range is not None and kind == "video" else {}
    with source_class(path, with_audio=False, **extra) as source:
        yield from source.items()


# ----------------------------------------------------------------------------- pixels


def _check_frame(
    frame: Frame,
    original: Frame | None,
    boxes: FrameBoxes,
    redactor: Redactor,
    color: np.ndarray,
    lossless: bool,
    solid: bool,
    result: VerifyResult,
    shown: ShownRegion | None = None,
    unflat: list[Unflat] | None = None,
    position: int = 0,
) -> None:
    """Check one output frame's masks; `unflat` (a list) collects solid masks that fail only
    the flatness test, to be judged against the input frame at `position` (`_check_unflat`)."""
    index = frame.index
    masked, _kept = boxes.at(index)
    if len(masked) and not (np.isfinite(masked.xyxy).all() and (np.abs(masked.xyxy) <= MAX_COORD).all()):
        # Overflowing coordinates paint nothing and would be skipped as "outside the picture".
        raise VeilError(f"verify: a box of frame {index} has a coordinate that is not a finite number of pixels")
    whole = boxes.whole_frame(index) is not None
    h, w = frame.height, frame.width
    if redactor.zones:
        result.regions_checked += 1
        zones = result.checks["zones"]
        zones["frames"] += 1
        expected = redactor.zone_mask(h, w)
        problem = _solid_problem(frame.image, expected, color, lossless)
        if problem:
            result.fail({"frame": index, "what": f"privacy zone not masked ({problem})"}, "zones")
    if whole:
        result.regions_checked += 1
        problem = _solid_problem(frame.image, np.ones((h, w), dtype=bool), color, lossless)
        if problem:
            result.fail({"frame": index, "what": f"whole frame not masked ({problem})"})
        return
    subject = shown.at(index, w, h) if shown is not None else None
    if not len(masked) and subject is None:
        return
    masked = in_paint_order(masked)
    pixel_boxes = redactor.mask_boxes(masked, w, h)
    # show_only: the subject's detected face and head are shown through head and body boxes of
    # other tracks and duplicates of their own face (ShownRegion.seen, .duplicates); those
    # pixels are not the boxes' to check.
    seen = shown.seen(index, w, h) if shown is not None else None
    duplicates = shown.duplicates if shown is not None else frozenset()
    spare = sparable(masked, duplicates)
    spared = (
        spared_mask(seen, pixel_boxes, spare, h, w) if seen is not None and len(seen) and len(pixel_boxes) else None
    )
    reference = None
    if original is not None:
        # What the render painted: the input's frame through the same redactor.
        reference = original.image[:h, :w].copy()
        redactor(reference, masked, shown=subject, seen=seen, duplicates=duplicates)
    if subject is not None:
        _check_outside(frame, original, reference, subject, redactor, color, lossless, result)
    fill_grey = float(color.astype(np.float32) @ GREY32)
    present = (pixel_boxes[:, 2] > pixel_boxes[:, 0]) & (pixel_boxes[:, 3] > pixel_boxes[:, 1])
    result.regions_checked += int(present.sum())  # the others lie wholly outside the picture
    # Solid boxes through a lossy codec are judged on grey levels: the grey of the rectangle
    # around all boxes is computed once, not once per box and check (a crowd has hundreds of
    # boxes a frame), nor for the whole frame when a face or two sit in a 1080p picture.
    grey = None
    ox = oy = 0
    if solid and not lossless and reference is None and present.any():
        around = pixel_boxes[present]
        ox, oy = int(around[:, 0].min()), int(around[:, 1].min())
        grey = _grey(frame.image[oy : int(around[:, 3].max()), ox : int(around[:, 2].max())])
    todo = present
    if grey is not None:
        sure = _surely_filled(grey, pixel_boxes - np.asarray([ox, oy, ox, oy]), fill_grey)
        if spared is not None:
            sure &= ~spare  # partly the subject's face: checked one by one below
        todo = present & ~sure
    for i in np.flatnonzero(todo).tolist():
        x1, y1, x2, y2 = pixel_boxes[i].tolist()
        small = min(x2 - x1, y2 - y1) <= 2 * EDGE + 2
        e = 0 if lossless or small else EDGE
        region = frame.image[y1 + e : y2 - e, x1 + e : x2 - e]
        want = color if reference is None else reference[y1 + e : y2 - e, x1 + e : x2 - e].astype(np.int16)
        region_grey = grey[y1 + e - oy : y2 - e - oy, x1 + e - ox : x2 - e - ox] if grey is not None else None
        if spared is not None and spare[i]:
            skip = spared[y1 + e : y2 - e, x1 + e : x2 - e]
            if skip.all():
                continue  # wholly the subject's face
            if skip.any():
                # Checked as if those pixels were what the box should show.
                region = region.copy()
                region[skip] = np.broadcast_to(want, region.shape)[skip] if reference is not None else color
                region_grey = None
        diff = np.abs(region_grey - fill_grey) if region_grey is not None else _distance(region, want, lossless)
        share = float((diff <= (0 if lossless else TOLERANCE)).mean())
        problem = None
        if share < (1.0 if lossless else MIN_SHARE_SMALL if small else MIN_SHARE):
            problem = f"{share:.0%} of its pixels match"
        elif not lossless and not small and solid:
            if region_grey is None:
                region_grey = _grey(region)
            level = abs(float(np.median(region_grey)) - fill_grey)
            spread = float(region_grey.std())
            bound = FLAT_STD if min(region.shape[:2]) >= FLAT_SMALL_PX else FLAT_STD_SMALL
            if level > LEVEL_TOL:
                problem = f"grey level {level:.0f} off the fill's"
            elif spread > bound:
                problem = f"not flat: grey level spread {spread:.1f} > {bound}"
                if unflat is not None and len(unflat) < MAX_UNFLAT:
                    failure = _failure(index, masked, i, share, problem, (x1, y1, x2, y2))
                    unflat.append(Unflat(position, (y1 + e, y2 - e, x1 + e, x2 - e), region.copy(), failure))
                    continue
        if problem is None and not lossless and not small and original is not None:
            leak = _leak(region, want, original.image[y1 + e : y2 - e, x1 + e : x2 - e])
            if leak is not None and leak > LEAK_MAX:
                problem = f"{leak:.0%} of the detail the mask removes is still there"
        if problem:
            result.fail(_failure(index, masked, i, share, problem, (x1, y1, x2, y2)))


def _surely_filled(grey: np.ndarray, boxes: np.ndarray, fill_grey: float) -> np.ndarray:
    """Per solid box on a lossy frame: whether it certainly passes `_check_frame`'s checks,
    found for every box at once from summed-area tables of the grey levels around the boxes.

    Why: a crowd on a fixed camera has hundreds of masks a frame, and checking each one with
    its own numpy calls took most of verify's time (6.5 s of the mall clip's first 500 frames).
    The share of matching pixels is counted exactly; the grey level's spread is the standard
    deviation from the sums of grey and grey squared; and the median, which the tables cannot
    give, lies within one standard deviation of the mean, so a box whose mean is within
    LEVEL_TOL less that deviation of the fill's level passes the level check. A box that is
    not certain by these bounds (a spread within `SURE_MARGIN` of its bound, or any failure)
    is checked one by one as before, so a verdict and its message never change."""
    import cv2

    n_boxes = len(boxes)
    if not n_boxes:
        return np.zeros(0, dtype=bool)
    matching = (np.abs(grey - fill_grey) <= TOLERANCE).astype(np.uint8)
    count_table = cv2.integral(matching, sdepth=cv2.CV_32S)
    sum_table, square_table = cv2.integral2(grey, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
    x1, y1, x2, y2 = (boxes[:, k].astype(np.int64) for k in range(4))
    small = np.minimum(x2 - x1, y2 - y1) <= 2 * EDGE + 2
    e = np.where(small, 0, EDGE)
    x1, y1, x2, y2 = x1 + e, y1 + e, x2 - e, y2 - e
    ok = (x2 > x1) & (y2 > y1)
    x1, y1, x2, y2 = (np.where(ok, v, 0) for v in (x1, y1, x2, y2))

    def box_sums(table: np.ndarray) -> np.ndarray:
        return (table[y2, x2] - table[y1, x2] - table[y2, x1] + table[y1, x1]).astype(np.float64)

    n = np.maximum((x2 - x1) * (y2 - y1), 1).astype(np.float64)
    share = box_sums(count_table) / n
    sure = ok & (share >= np.where(small, MIN_SHARE_SMALL, MIN_SHARE))
    mean = box_sums(sum_table) / n
    spread = np.sqrt(np.maximum(box_sums(square_table) / n - mean * mean, 0.0))
    rows, cols = y2 - y1, x2 - x1
    bound = np.where(np.minimum(rows, cols) >= FLAT_SMALL_PX, FLAT_STD, FLAT_STD_SMALL)
    flat = (spread <= bound - SURE_MARGIN) & (np.abs(mean - fill_grey) + spread <= LEVEL_TOL - SURE_MARGIN)
    return sure & (small | flat)


def _failure(
    index: int, masked: Any, i: int, share: float, problem: str, box: tuple[int, int, int, int]
) -> dict[str, Any]:
    """The report entry of mask `i` of frame `index` that failed its check."""
    return {
        "frame": index,
        "track": int(masked.track_id[i]),
        "label": str(masked.label[i]),
        "mask": list(box),
        "what": f"{masked.label[i]} mask of track {int(masked.track_id[i])} missing ({problem})",
        "share_masked": round(share, 3),
    }


@dataclass
class Unflat:
    """A solid mask of the fill's colour whose grey levels spread more than a painted fill's."""

    position: int  # the output frame's position (0 = first), as the input is read again
    where: tuple[int, int, int, int]  # y1, y2, x1, x2 of the checked pixels
    pixels: np.ndarray
    failure: dict[str, Any]  # what the report says if it fails


def _check_unflat(unflat: list[Unflat], originals: Any, color: np.ndarray, result: VerifyResult) -> None:
    """A solid mask that is the fill's colour but not flat is codec noise unless it still holds
    the input's detail: x264's P-frames leave block-sized steps of a few grey levels on a black
    fill over a changing picture (spread 1.8 measured on a generated clip), while a dark face
    left unmasked keeps all of its detail (`_leak` about 1). Fails it when more than LEAK_MAX of
    the detail the mask removes is still there; passes it when the input had too little detail
    there to show (under DETAIL_MIN grey levels RMS: nothing to identify)."""
    by_position: dict[int, list[Unflat]] = {}
    for u in unflat:
        by_position.setdefault(u.position, []).append(u)
    try:
        for position, original in enumerate(originals):
            for u in by_position.pop(position, []):
                y1, y2, x1, x2 = u.where
                leak = _leak(u.pixels, color, original.image[y1:y2, x1:x2])
                if leak is not None and leak > LEAK_MAX:
                    what = u.failure["what"][:-1] + f"; {leak:.0%} of the input's detail is still there)"
                    result.fail({**u.failure, "what": what})
            if not by_position:
                break
    finally:
        originals.close()  # the input's decoder, when it stopped before the end
    for rest in by_position.values():
        for u in rest:  # the input ended first: judged on the output alone
            result.fail(u.failure)


def _check_outside(
    frame: Frame,
    original: Frame | None,
    reference: np.ndarray | None,
    subject: np.ndarray,
    redactor: Redactor,
    color: np.ndarray,
    lossless: bool,
    result: VerifyResult,
) -> None:
    """show_only: every pixel outside the subject's region is masked: filled (colour and flat,
    as a zone) or, for a blurred outside, the input's pixels blurred as the render blurs them
    with none of the detail the blur removes."""
    h, w = frame.height, frame.width
    outside = ~shown_mask(subject, h, w)
    result.regions_checked += 1
    result.checks["show_only"]["frames"] += 1
    if not outside.any():
        return
    problem = None
    if redactor.outside is None or reference is None or original is None:
        problem = _solid_problem(frame.image, outside, color, lossless)
    else:
        diff = _distance(frame.image[outside], reference[outside].astype(np.int16), lossless)
        share = float((diff <= (0 if lossless else TOLERANCE)).mean())
        if share < (1.0 if lossless else MIN_SHARE):
            problem = f"{share:.0%} of its pixels match the blurred input"
        elif not lossless:
            # As one row of pixels: `_leak` reads an H x W x 3 picture.
            leak = _leak(frame.image[outside][None], reference[outside][None], original.image[:h, :w][outside][None])
            if leak is not None and leak > LEAK_MAX:
                problem = f"{leak:.0%} of the detail the blur removes is still there"
    if problem:
        where = "subject not in this frame: whole frame" if not len(subject) else "outside the shown subject"
        result.fail({"frame": frame.index, "what": f"{where} not masked ({problem})"}, "show_only")


def _solid_problem(image: np.ndarray, where: np.ndarray, color: np.ndarray, lossless: bool) -> str | None:
    """Why the pixels `where` of `image` are not an opaque fill of `color`, or None."""
    if not where.any():
        return None
    got = _distance(image[where], color, lossless)
    share = float((got <= (0 if lossless else TOLERANCE)).mean())
    if share < (1.0 if lossless else MIN_SHARE):
        return f"{share:.0%} of its pixels match"
    if lossless:
        return None
    import cv2

    inner = cv2.erode(where.astype(np.uint8), np.ones((2 * EDGE + 1, 2 * EDGE + 1), np.uint8)).astype(bool)
    if inner.sum() >= 16:
        level = _level_off(image[inner], color)
        if level > LEVEL_TOL:
            return f"grey level {level:.0f} off the fill's"
        spread = _spread(image[inner])
        bound = FLAT_STD if inner.sum() >= FLAT_SMALL_PX**2 else FLAT_STD_SMALL
        if spread > bound:
            return f"not flat: grey level spread {spread:.1f} > {bound}"
    return None


def _grey(pixels: np.ndarray) -> np.ndarray:
    """Grey levels (float32) of RGB `pixels` (any shape ending in 3)."""
    return pixels.astype(np.float32) @ GREY32


def _level_off(pixels: np.ndarray, color: np.ndarray) -> float:
    """How far the median grey level of `pixels` is from the fill's: a flat patch of another
    colour (a plain wall under a missing zone) is flat but not the fill."""
    grey = _grey(pixels.reshape(-1, 3))
    return abs(float(np.median(grey)) - float(np.asarray(color, dtype=np.float32) @ GREY)) if grey.size else 0.0


def _spread(pixels: np.ndarray) -> float:
    """Standard deviation of the grey level: a painted fill through a codec stays under
    FLAT_STD; content under it, however dark, does not."""
    grey = _grey(pixels.reshape(-1, 3))
    return float(grey.std()) if grey.size else 0.0


def _leak(region: np.ndarray, want: np.ndarray, original: np.ndarray) -> float | None:
    """Share of the detail a mask removes (input minus expected, in grey, mean removed) that
    the output still holds: ~0 when painted (codec error does not follow the removed detail),
    ~1 when the region is the input's. None when there was too little detail to tell."""
    grey = GREY.astype(np.float32)
    expected = want.astype(np.float32) @ grey if want.ndim == 3 else np.full(region.shape[:2], float(want @ GREY))
    removed = original.astype(np.float32) @ grey - expected
    kept = region.astype(np.float32) @ grey - expected
    removed -= removed.mean()
    kept -= kept.mean()
    energy = float((removed * removed).sum())
    if energy < DETAIL_MIN**2 * removed.size:
        return None
    return float((kept * removed).sum()) / energy


def _distance(image: np.ndarray, expected: np.ndarray, lossless: bool) -> np.ndarray:
    """Per pixel: the largest channel difference (lossless), or the grey-level difference."""
    diff = image.astype(np.int16) - expected
    if lossless:
        return np.abs(diff).max(axis=-1)
    return np.abs(diff @ GREY)


# ----------------------------------------------------------------------------- audio


def _check_audio(
    plan: Plan,
    output: Path,
    settings: Settings,
    source_path: Path | None,
    source_kind: str | None,
    span: TimeRange | None,
    result: VerifyResult,
) -> None:
    from veil.media.check import audio_stats, audio_stream_count
    from veil.media.source import media_kind

    edits = [settings.audio_edit()]
    if isinstance(plan.audio, dict) and plan.audio:
        try:
            planned = AudioEdit.from_json(plan.audio)
        except (TypeError, ValueError) as exc:
            raise VeilError(f"verify: the plan's audio section is invalid ({exc})") from exc
        if planned.changes and planned != edits[0]:
            edits.append(planned)
    edits = [e for e in edits if e.changes]
    if not edits:
        return
    entry = result.check("audio", mode="+".join(e.mode for e in edits), ranges_checked=0, unchecked=[])
    if media_kind(output) != "video":
        entry["unchecked"].append("the output has no audio track (not a video)")
        return
    if audio_stream_count(output) == 0:
        if source_kind == "video" and source_path is not None and audio_stream_count(source_path):
            what = f"audio {entry['mode']} was asked for, but the output has no audio track"
            result.fail({"frame": None, "what": what}, "audio", region=False)
        else:
            entry["unchecked"].append("no audio track")
        return
    for edit in edits:
        ranges = list(edit.ranges) or [(0.0, math.inf)]
        tone = BLEEP_HZ if edit.mode == "bleep" else 0.0
        disguise = edit.mode == "disguise"
        # Disguise compares samples with the input's: both lose the same edges.
        guard = GUARD_SAMPLES if disguise else None
        tracks = audio_stats(output, ranges, tone, keep=disguise, guard=guard, lossy_guard=GUARD_SAMPLES)
        inputs = None
        if disguise:
            if source_path is not None and source_kind == "video" and span is None:
                inputs = dict(enumerate(audio_stats(source_path, ranges, keep=True, guard=guard)))
            else:
                entry["unchecked"].append("disguise: compared only when the whole input is given")
        for ti, track in enumerate(tracks):
            for ri, stats in enumerate(track.ranges):
                where = f"{stats.start_s:g}-{stats.end_s:g} s" if math.isfinite(stats.end_s) else "whole track"
                if not math.isfinite(stats.end_s) and stats.start_s:
                    where = f"{stats.start_s:g} s to the end"
                label = f"audio track {ti + 1}, {where}"
                if stats.short:
                    entry["unchecked"].append(f"{label}: shorter than the codec's edge smear")
                    continue
                if not stats.samples:
                    entry["unchecked"].append(f"{label}: beyond the end of the track")
                    continue
                if disguise and inputs is None:
                    continue  # said once above: nothing to compare with
                entry["ranges_checked"] += 1
                problem = _audio_problem(edit.mode, stats, track.lossless, inputs, ti, ri)
                if problem:
                    result.fail({"frame": None, "what": f"{label}: {problem}"}, "audio", region=False)


def _audio_problem(
    mode: str, stats: Any, lossless: bool, inputs: dict[int, Any] | None, track: int, index: int
) -> str | None:
    if mode == "mute":
        limit = 0.0 if lossless else MUTE_PEAK
        if stats.peak > limit:
            return f"mute asked for, but the audio peaks at {stats.peak:.4f} (at most {limit:g})"
        return None
    if mode == "bleep":
        amplitude, residual = stats.tone()
        low, high = BLEEP_AMPLITUDE_RANGE
        if not low * BLEEP_AMPLITUDE <= amplitude <= high * BLEEP_AMPLITUDE or residual > BLEEP_RESIDUAL * amplitude:
            return (
                f"bleep asked for, but the {BLEEP_HZ:g} Hz tone has amplitude {amplitude:.4f} "
                f"(want {BLEEP_AMPLITUDE:.3f}) and {residual:.4f} RMS of other sound"
            )
        return None
    if mode == "disguise" and inputs is not None and track in inputs:
        before = inputs[track].ranges[index].samples_kept()
        after = stats.samples_kept()
        n = min(before.shape[1], after.shape[1])
        channels = min(before.shape[0], after.shape[0])
        if not n:
            return None
        before, after = before[:channels, :n], after[:channels, :n]
        level = float(np.sqrt((before * before).mean()))
        if level < DISGUISE_MIN_RMS:
            return None
        change = float(np.sqrt(((after - before) ** 2).mean())) / level
        if change < DISGUISE_MIN_CHANGE:
            return f"disguise asked for, but the audio differs from the input's by only {change:.0%}"
    return None

"""What veil accepts from outside, said in one place: the plan, the zone file, the review API's
request bodies and the numeric command-line options.

Everything that enters is checked here once, where it enters; the rest of veil trusts the values
it is handed. Every refusal is one line (a `VeilError`, or for plans a `PlanError`) that names the
field, e.g. `x.plan.json: tracks[3].boxes[0].box[2]: input should be a finite number, got nan`.

Coordinates. A box or zone vertex must be a finite number, and within `REACH` frame sizes of the
frame: x in [-REACH * width, (1 + REACH) * width], y likewise. A detector's box of a face that
is partly outside the picture sticks out by at most its own size, which is less than a frame, so
four frame sizes refuse nothing real, while a typo or an overflowing tool (1e19, 1e39, 2e8) is
refused instead of wrapping around in the integer pixel arithmetic of painting (float32 boxes,
cv2's int32 fixed-point polygon vertices), which painted nothing or the wrong half of the
picture. Where the frame size is not known (a hand-written plan without `input.width`, a zone file
before its video is opened), coordinates are bounded by `MAX_COORD` pixels; the zone painter
checks the frame rule again when the frame size is known. A box must also overlap the frame, and
its frame must be one of the plan's frames: a box wholly outside either masks nothing, and a plan
whose boxes mask nothing while it says "verified" is what this module exists to prevent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from veil.errors import VeilError

# Frame sizes a coordinate may lie beyond each edge of the frame (see the module's docstring).
REACH = 4
# Pixels: the bound on any coordinate where the frame size is unknown, and on frame sizes. Far
# beyond any picture veil decodes; (1 + 2 * REACH) * MAX_COORD * 16 (cv2's 1/16 px vertices) still
# fits an int32.
MAX_COORD = float(1 << 20)
# Frame numbers and track ids: whole numbers a JSON reader (the review page's JavaScript) and an
# int64 array both hold exactly.
MAX_FRAME = 1 << 31
MAX_ID = 1 << 53

Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Coordinate = Annotated[float, Strict(), Field(allow_inf_nan=False, ge=-MAX_COORD, le=MAX_COORD)]
Seconds = Annotated[float, Strict(), Field(allow_inf_nan=False, ge=0, le=1e9)]
# The longest stretch the review page may ask the recognizer to read at once (POST /api/words).
MAX_WORDS_S = 60.0
FrameIndex = Annotated[int, Strict(), Field(ge=0, lt=MAX_FRAME)]
TrackId = Annotated[int, Strict(), Field(gt=-MAX_ID, lt=MAX_ID)]
PersonId = Annotated[int, Strict(), Field(ge=0, lt=MAX_ID)]
Size = Annotated[int, Strict(), Field(ge=1, le=int(MAX_COORD))]
Box = tuple[Coordinate, Coordinate, Coordinate, Coordinate]
Point = tuple[Coordinate, Coordinate]


def one_line(exc: ValidationError, where: str) -> str:
    """The first problem `exc` reports as `WHERE: FIELD: what is wrong, got VALUE`."""
    err = exc.errors(include_url=False)[0]
    loc = ""
    for part in err["loc"]:
        loc += f"[{part}]" if isinstance(part, int) else ("." if loc else "") + str(part)
    msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    msg = msg[:1].lower() + msg[1:]
    got = ""
    if err["type"] != "missing" and not err["type"].startswith("value_error"):
        got = f", got {short(err.get('input'))}"
    # `plan.json: tracks[3].boxes[0].box[2]`: a field path continues `where` when it names one.
    sep = ("" if loc.startswith("[") else ".") if where.endswith("]") else ": "
    head = (f"{where}{sep}{loc}" if where else loc) if loc else where
    return f"{head}: {msg}{got}" if head else f"{msg}{got}"


def short(value: Any) -> str:
    """`value` for an error line: at most 40 characters (a 400-digit number is not echoed whole)."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit for str()
        text = "a very long number"
    return text if len(text) <= 40 else text[:37] + "..."


# ----------------------------------------------------------------------------- frame rules


def reach(width: int | None, height: int | None) -> tuple[float, float, float, float]:
    """(x_min, y_min, x_max, y_max) any coordinate may take on a `width` x `height` frame."""
    if width is None or height is None:
        return -MAX_COORD, -MAX_COORD, MAX_COORD, MAX_COORD
    return -REACH * width, -REACH * height, (1 + REACH) * width, (1 + REACH) * height


def box_problem(box: Any, width: int | None, height: int | None) -> str | None:
    """Why `box` (x1, y1, x2, y2, finite) cannot be used on a `width` x `height` frame, or None."""
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        return f"x2 must exceed x1 and y2 exceed y1, got {list(box)}"
    lo_x, lo_y, hi_x, hi_y = reach(width, height)
    if min(x1, x2) < lo_x or max(x1, x2) > hi_x or min(y1, y2) < lo_y or max(y1, y2) > hi_y:
        frame = f"the {width}x{height} frame" if width is not None else "any frame"
        return f"{short(list(box))} reaches more than {REACH} frame sizes beyond {frame}"
    if width is not None and height is not None and (x2 < 0 or y2 < 0 or x1 > width or y1 > height):
        return f"{short(list(box))} lies wholly outside the {width}x{height} frame"
    return None


def _frame_context(info: ValidationInfo) -> tuple[int | None, int | None, int | None]:
    ctx = info.context or {}
    return ctx.get("width"), ctx.get("height"), ctx.get("frames")


# ----------------------------------------------------------------------------- zones


class ZoneIn(BaseModel):
    """One privacy zone: a polygon of 3 or more points (pixels, or fractions of the frame)."""

    model_config = ConfigDict(extra="ignore")
    name: StrictStr | None = None
    polygon: list[Any]

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("name must be a non-empty string")
        return v

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, v: list[Any]) -> list[tuple[float, float]]:
        if len(v) < 3:
            raise ValueError("needs at least 3 points [[x, y], ...]")
        points = []
        for p in v:
            ok = isinstance(p, list | tuple) and len(p) == 2
            ok = ok and all(isinstance(c, int | float) and not isinstance(c, bool) for c in p)
            if not ok:
                raise ValueError(f"every point must be [x, y] with two numbers, got {short(p)}")
            try:
                x, y = float(p[0]), float(p[1])
            except OverflowError:
                x = y = math.inf
            if not (math.isfinite(x) and math.isfinite(y)) or x < 0 or y < 0:
                raise ValueError(f"coordinates must be finite and >= 0, got {short(p)}")
            if x > MAX_COORD or y > MAX_COORD:
                raise ValueError(f"coordinates must be at most {MAX_COORD:.0f} pixels, got {short(p)}")
            points.append((x, y))
        if polygon_area(points) <= 0:
            raise ValueError("has no area (points in a line or repeated)")
        return points


def polygon_area(points: list[tuple[float, float]]) -> float:
    area = 0.0
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True):
        area += x1 * y2 - x2 * y1
    return abs(area) / 2


def zone_problem(polygon: list[tuple[float, float]], width: int, height: int) -> str | None:
    """Why a zone in pixels cannot be painted on a `width` x `height` frame, or None."""
    _, _, hi_x, hi_y = reach(width, height)
    if any(x > hi_x or y > hi_y for x, y in polygon):
        return f"reaches more than {REACH} frame sizes beyond the {width}x{height} frame"
    if all(x > width for x, _ in polygon) or all(y > height for _, y in polygon):
        return f"lies outside the {width}x{height} frame"
    return None


# ----------------------------------------------------------------------------- plans


class BoxIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    frame: FrameIndex
    box: Box
    detected: StrictBool = False
    score: Number | None = None

    @model_validator(mode="after")
    def _in_frame(self, info: ValidationInfo) -> BoxIn:
        width, height, frames = _frame_context(info)
        if frames is not None and self.frame >= frames:
            raise ValueError(f"frame {self.frame} is past the plan's {frames} frame{'s' * (frames != 1)}")
        problem = box_problem(self.box, width, height)
        if problem:
            raise ValueError(f"box {problem}")
        return self


class TrackIn(BaseModel):
    """A plan track. `redact` is not checked here: anything but `false` masks (plan.py warns)."""

    model_config = ConfigDict(extra="allow")
    id: TrackId
    label: StrictStr = "face"
    redact: Any = True
    source: Literal["detector", "manual"] = "detector"
    reason: Any = None
    # Tracks of one person share it (analysis/person_ids.py); absent: the track is its own person.
    person: PersonId | None = None
    boxes: list[BoxIn] = Field(min_length=1)

    @field_validator("label")
    @classmethod
    def _label(cls, v: str) -> str:
        if not v:
            raise ValueError("expected a name such as face, plate or text")
        return v

    @field_validator("boxes")
    @classmethod
    def _increasing(cls, v: list[BoxIn]) -> list[BoxIn]:
        for j in range(1, len(v)):
            if v[j].frame <= v[j - 1].frame:
                raise ValueError(f"boxes[{j}].frame: frames must increase along a track")
        return v


class TimeRangeIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    start_s: Seconds | None = 0.0
    end_s: Seconds | None = None

    @model_validator(mode="after")
    def _order(self) -> TimeRangeIn:
        if self.end_s is not None and self.end_s <= (self.start_s or 0.0):
            raise ValueError("end_s must be after start_s")
        return self


class InputIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    path: StrictStr | None = None
    sha256: StrictStr
    kind: Literal["image", "animation", "video"]
    frames: Annotated[int, Strict(), Field(ge=1, le=MAX_FRAME)] | None = None
    width: Size | None = None
    height: Size | None = None
    time_range: TimeRangeIn | None = None
    duration_s: Seconds | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and "\x00" in v:
            raise ValueError("a file name cannot hold a NUL character")
        return v


class DecisionIn(BaseModel):
    """A reviewer's logged decision (the review page writes them; the report reads them)."""

    model_config = ConfigDict(extra="allow")
    track: TrackId | None = None
    reviewer: StrictStr | None = None
    time: StrictStr | None = None


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    reviewer: StrictStr | None = None
    decisions: list[DecisionIn] | None = None
    reviewed: dict[str, Any] | None = None
    flags: list[Any] | None = None


class PlanSettingsIn(BaseModel):
    """What a plan records about how it was made and is painted by default. Only the keys veil
    reads back are checked; the rest (detectors, audio description) are a record."""

    model_config = ConfigDict(extra="allow")
    preset: StrictStr | None = None
    threshold: Annotated[float, Strict(), Field(allow_inf_nan=False, gt=0, le=1)] | None = None
    margin: Annotated[float, Strict(), Field(allow_inf_nan=False, ge=0, le=5)] | None = None
    mask: StrictStr | None = None
    mask_color: StrictStr | None = None
    classes: list[StrictStr] | None = None
    lookahead_s: Seconds | None = None


class FrameRangeIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    start: FrameIndex
    end: FrameIndex
    reason: StrictStr | None = None

    @model_validator(mode="after")
    def _order(self) -> FrameRangeIn:
        if self.end < self.start:
            raise ValueError(f"expected 0 <= start <= end, got {self.start}-{self.end}")
        return self


class AudioIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    mode: Literal["keep", "mute", "bleep", "disguise"] = "keep"
    ranges: list[tuple[Seconds, Seconds]] | None = None
    # Proposals (`proposed`, from the speech finder) a reviewer turned down: a record, not applied.
    rejected: list[tuple[Seconds, Seconds]] | None = None

    @field_validator("ranges", "rejected")
    @classmethod
    def _order(cls, v: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        for i, (a, b) in enumerate(v or []):
            if not a < b:
                raise ValueError(f"[{i}]: expected [start_s, end_s] with start < end")
        return v


class ShowOnlyIn(BaseModel):
    """`show_only`: the tracks a subject-access output shows; everything else is masked."""

    model_config = ConfigDict(extra="forbid")
    tracks: list[TrackId] = Field(min_length=1)
    margin: Annotated[float, Strict(), Field(allow_inf_nan=False, ge=0, le=5)] = 0.2
    mask: Literal["solid", "blur"] = "solid"


class PlanHeaderIn(BaseModel):
    """A plan without its tracks (they are checked one at a time by `TrackIn`)."""

    model_config = ConfigDict(extra="allow")
    veil_plan: Annotated[int, Strict(), Field(ge=1)]
    input: InputIn
    settings: PlanSettingsIn | None = None
    frame_ranges: list[FrameRangeIn] | None = None
    zones: list[ZoneIn] | None = None
    audio: AudioIn | None = None
    review: ReviewIn | None = None
    created: StrictStr | None = None
    veil_version: StrictStr | None = None
    show_only: ShowOnlyIn | None = None

    @model_validator(mode="after")
    def _in_frame(self) -> PlanHeaderIn:
        frames = plan_context(self)["frames"]
        for i, rng in enumerate(self.frame_ranges or []):
            # A range that starts past the last frame masks nothing; one that runs past it is
            # "to the end" and is kept.
            if frames is not None and rng.start >= frames:
                raise ValueError(f"frame_ranges[{i}]: frames {rng.start}-{rng.end} are past the plan's {frames}")
        width, height = self.input.width, self.input.height
        if width is None or height is None:
            return self
        for i, zone in enumerate(self.zones or []):
            problem = zone_problem(zone.polygon, width, height)  # type: ignore[arg-type]
            if problem:
                raise ValueError(f"zones[{i}]: the zone {problem}")
        return self


def plan_context(header: PlanHeaderIn) -> dict[str, Any]:
    """What a track is checked against: the frame size and the number of frames, where known.
    An image plan without a frame count has one frame (as `Plan.frames` says)."""
    frames = header.input.frames
    if frames is None and header.input.kind == "image":
        frames = 1
    return {"width": header.input.width, "height": header.input.height, "frames": frames}


# ----------------------------------------------------------------------------- review API bodies


class Body(BaseModel):
    # Unknown fields are ignored (the page adds `reviewer` to every edit), as FastAPI did before.
    model_config = ConfigDict(extra="ignore")
    # The plan's version the edit was made on (GET /api/plan's session.version): a stale one is
    # refused (409), so two tabs never silently undo each other's work.
    version: Annotated[int, Strict(), Field(ge=0, lt=MAX_ID)] | None = None


class IdsBody(Body):
    ids: list[TrackId]
    reason: StrictStr | None = None
    reviewer: StrictStr | None = None


class KeepOnlyBody(IdsBody):
    # A subject-access request by default: the plan's show_only masks everything but them.
    show_only: StrictBool = True
    margin: Annotated[float, Strict(), Field(allow_inf_nan=False, ge=0, le=5)] | None = None


class ShowOnlyBody(Body):
    # [] clears show_only (the plan's masks then decide what is hidden).
    ids: list[TrackId]
    margin: Annotated[float, Strict(), Field(allow_inf_nan=False, ge=0, le=5)] | None = None
    reviewer: StrictStr | None = None


class RedactBody(IdsBody):
    redact: StrictBool


class ManualBody(Body):
    frame: FrameIndex
    box: Box
    label: StrictStr = "face"
    redact: StrictBool = True
    # A track of the person the box extends (review page: one person selected while drawing).
    join: TrackId | None = None
    reviewer: StrictStr | None = None


class KeyframeBody(Body):
    track: TrackId
    frame: FrameIndex
    box: Box | None = None
    reviewer: StrictStr | None = None


class TrackBody(Body):
    track: TrackId
    reviewer: StrictStr | None = None


class RangeBody(Body):
    start: FrameIndex
    end: FrameIndex
    reason: StrictStr | None = None


class RangesBody(Body):
    ranges: list[RangeBody]
    reviewer: StrictStr | None = None


class AudioBody(Body):
    ranges: list[tuple[Seconds, Seconds]]
    # The proposals the reviewer turned down (all of them; None leaves the saved list as it is).
    rejected: list[tuple[Seconds, Seconds]] | None = None
    reviewer: StrictStr | None = None


class WordsBody(BaseModel):
    """A stretch of the input's audio whose words the page asks for (never saved anywhere)."""

    model_config = ConfigDict(extra="ignore")
    start: Seconds
    end: Seconds

    @model_validator(mode="after")
    def _span(self) -> WordsBody:
        if not self.start < self.end <= self.start + MAX_WORDS_S:
            raise ValueError(f"end: expected start < end <= start + {MAX_WORDS_S:g} s")
        return self


class ReviewedBody(Body):
    reviewer: StrictStr


class HistoryBody(Body):
    back: StrictBool
    reviewer: StrictStr | None = None


# ----------------------------------------------------------------------------- command-line numbers


def number_option(
    option: str,
    low: float | None = None,
    high: float | None = None,
    *,
    above: bool = False,
) -> Callable[[str], float]:
    """An argparse `type=` for a finite number in [low, high] (with `above`: more than `low`).

    It raises VeilError, not argparse's error, so a bad value is the same one line (and exit 2)
    as every other refusal instead of a usage block; `nan` and `inf` parse as floats, and
    `nan < 0` is False, so the range alone would let them through."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise VeilError(f"{option}: expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise VeilError(f"{option}: expected a finite number, got {text!r}")
        if low is not None and (value <= low if above else value < low):
            raise VeilError(f"{option} must be {'more than' if above else 'at least'} {low:g}, got {text}")
        if high is not None and value > high:
            raise VeilError(f"{option} must be at most {high:g}, got {text}")
        return value

    parse.__name__ = "number"  # what argparse calls the type in its own messages
    return parse


def whole_option(option: str, low: int, high: int) -> Callable[[str], int]:
    """An argparse `type=` for a whole number in [low, high], refused in one line (see above)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise VeilError(f"{option}: expected a whole number, got {short(text)}") from None
        if not low <= value <= high:
            raise VeilError(f"{option} must be from {low} to {high}, got {short(value)}")
        return value

    parse.__name__ = "int"
    return parse


def time_option(option: str) -> Callable[[str], str]:
    """An argparse `type=` for `--start`/`--end`: checked now, kept as text for `TimeRange`."""

    def parse(text: str) -> str:
        from veil.timerange import parse_time

        parse_time(text, option)
        return text

    parse.__name__ = "time"
    return parse


def check_finite(name: str, value: Any, low: float | None = None, high: float | None = None) -> float:
    """`value` as a float, refused with one line naming `name` unless finite and in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise VeilError(f"{name}: expected a number, got {short(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise VeilError(f"{name}: expected a finite number, got {short(value)}")
    if (low is not None and number < low) or (high is not None and number > high):
        span = (
            f"between {low:g} and {high:g}"
            if low is not None and high is not None
            else (f"at least {low:g}" if low is not None else f"at most {high:g}")
        )
        raise VeilError(f"{name} must be {span}, got {number:g}")
    return number

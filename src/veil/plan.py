"""The redaction plan: what to mask in which frame, the contract between analysis and rendering.

`veil scan` writes a plan, people and the review page edit it, `veil render` applies it, and
`veil verify` checks an output against it. The schema is documented in docs/plan.md; this
module is its only reader and writer.

A track covers every frame from its first box to its last. Frames with no stored box get the
linear interpolation of the stored boxes on either side (`interpolate`). The scanner stores
every detected box and drops an inferred box only when that interpolation reproduces it
exactly at the plan's precision (`simplify`), so a plan renders the same pixels as the run that
made it, while runs of inferred boxes (detection strides, gaps, look-ahead) cost a few
keyframes instead of one record per frame. Manual tracks use the same rule: their boxes are
keyframes, and a manual track with one box covers that frame only.

Fail closed: a track whose `redact` is missing or not a boolean is redacted; a plan that does
not parse, has a newer version or a malformed box is refused with a line that names the problem.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from veil import __version__
from veil.errors import VeilError
from veil.types import Detections

PLAN_VERSION = 1
# Plan coordinates are pixels rounded to this many decimals: finer than any mask edge (masks
# are painted on whole pixels, rounded outwards), coarse enough to keep the file small.
DECIMALS = 1
# A run of inferred boxes is stored with at least one keyframe every this many frames, so
# simplification stays linear in the track's length.
MAX_KEYFRAME_GAP = 64
# A tracker track on screen for longer than this is stored as consecutive plan tracks, so the
# builder's memory per live track stays bounded (about 3 MB) however long a face stays in view.
MAX_TRACK_FRAMES = 9000
AUDIO_MODES = ("keep", "mute", "bleep", "disguise")
SOURCES = ("detector", "manual")
# An image's pages (a TIFF may hold several) and an animation's frames are the plan's frames.
KINDS = ("image", "animation", "video")


class PlanError(VeilError):
    """A plan that cannot be used as it is; the message names the file and the problem."""


def quantize(xyxy: np.ndarray) -> np.ndarray:
    """Boxes as the plan stores them (float64, DECIMALS places): every path that paints a box
    first passes it through here, so a plan on disk and the run that wrote it agree exactly."""
    return np.round(np.asarray(xyxy, dtype=np.float64), DECIMALS)


def interpolate(a: np.ndarray, b: np.ndarray, fa: int, fb: int, frame: int) -> np.ndarray:
    """The box at `frame` on the straight line from box `a` (at `fa`) to box `b` (at `fb`)."""
    return quantize(a + (b - a) * ((frame - fa) / (fb - fa)))


# ----------------------------------------------------------------------------- values


@dataclass(slots=True)
class PlanBox:
    frame: int
    box: np.ndarray  # float64 x1, y1, x2, y2 in pixels of the upright frame
    detected: bool = False
    score: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"frame": self.frame, "box": [float(v) for v in self.box]}
        if self.detected:
            out["detected"] = True
            if self.score is not None:
                out["score"] = round(float(self.score), 3)
        return out


@dataclass
class Track:
    id: int
    label: str
    boxes: list[PlanBox]
    redact: bool = True
    source: str = "detector"
    reason: str | None = None
    # Tracks of one person in one clip share this number (>= 0); None: the track is its own
    # person (analysis/person_ids.py says how tracks are grouped).
    person: int | None = None
    # Keys veil does not know (e.g. written by a newer review page) are kept as they were.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def first(self) -> int:
        return self.boxes[0].frame

    @property
    def last(self) -> int:
        return self.boxes[-1].frame

    def box_at(self, frame: int) -> tuple[np.ndarray, PlanBox | None] | None:
        """(box, the stored box if `frame` has one) or None when the track is not in `frame`."""
        # Searched on the boxes themselves: a cached list of their frames went stale when a
        # reviewer's edit changed a keyframe's frame without changing how many there are.
        pos = bisect.bisect_left(self.boxes, frame, key=lambda b: b.frame)
        if pos < len(self.boxes) and self.boxes[pos].frame == frame:
            return self.boxes[pos].box, self.boxes[pos]
        if pos == 0 or pos == len(self.boxes):
            return None
        a, b = self.boxes[pos - 1], self.boxes[pos]
        return interpolate(a.box, b.box, a.frame, b.frame, frame), None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "label": self.label,
            "redact": self.redact,
            "source": self.source,
        }
        if self.reason:
            out["reason"] = self.reason
        if self.person is not None:
            out["person"] = self.person
        out.update({k: v for k, v in self.extra.items() if not k.startswith("_")})
        out["boxes"] = [b.to_json() for b in self.boxes]
        return out


@dataclass
class FrameRange:
    """Every pixel of frames `start`..`end` (inclusive) is masked."""

    start: int
    end: int
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": self.start, "end": self.end}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class ShowOnly:
    """A subject-access request: the output shows only these tracks' regions (each box grown by
    `margin`, a fraction of its size) and masks everything else in every frame; a frame where
    none of them is present is masked whole. `mask`: "solid" (default, irreversible) or "blur"
    (reversible; a render warns). Boxes of other tracks inside the shown region stay masked, but a
    head or body box does not cover a face or head of the subject detected in that frame
    (render/redact.py `ShownRegion.seen`)."""

    tracks: tuple[int, ...]
    margin: float = 0.2
    mask: str = "solid"

    def to_json(self) -> dict[str, Any]:
        return {"tracks": list(self.tracks), "margin": self.margin, "mask": self.mask}


SHOW_ONLY_BLUR_WARNING = (
    "show_only: everything but the subject is blurred, not filled; blur is reversible, "
    "so bystanders may be recognisable (use the default solid mask for a release)"
)


@dataclass
class Plan:
    input: dict[str, Any]
    settings: dict[str, Any]
    tracks: list[Track] = field(default_factory=list)
    frame_ranges: list[FrameRange] = field(default_factory=list)
    # `zones.Zone`s in upright pixels. A plan built in memory may give zone-file entries
    # ({"name", "polygon"}); they are read by the zone reader into Zones here.
    zones: list[Any] = field(default_factory=list)
    audio: dict[str, Any] = field(default_factory=lambda: {"mode": "keep", "ranges": []})
    review: dict[str, Any] = field(default_factory=dict)
    created: str | None = None
    veil_version: str = __version__
    # Lines about fail-closed repairs made while loading (e.g. a malformed decision).
    warnings: list[str] = field(default_factory=list)
    # Show only these tracks, mask everything else (a subject-access request); None: off.
    show_only: ShowOnly | None = None

    def __post_init__(self) -> None:
        from veil.analysis.zones import Zone, parse_zones

        if any(not isinstance(z, Zone) for z in self.zones):
            given = [z.to_json() if isinstance(z, Zone) else z for z in self.zones]
            self.zones = [Zone(z.name, z.polygon) for z in parse_zones(given, "plan zones", allow_empty=True)]

    @property
    def frames(self) -> int:
        return int(self.input.get("frames") or 1)

    def header_json(self) -> dict[str, Any]:
        """Everything but the tracks, in the order the file lists it."""
        return {
            "veil_plan": PLAN_VERSION,
            "veil_version": self.veil_version,
            "created": self.created,
            "input": self.input,
            "settings": self.settings,
            "frame_ranges": [r.to_json() for r in self.frame_ranges],
            "zones": [z.to_json() for z in self.zones],
            "audio": self.audio,
            "review": self.review,
            # Written only when set: plans without it stay byte-for-byte as before.
            **({"show_only": self.show_only.to_json()} if self.show_only is not None else {}),
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.header_json(), "tracks": [t.to_json() for t in self.tracks]}

    def next_track_id(self) -> int:
        return max((t.id for t in self.tracks), default=-1) + 1


# ----------------------------------------------------------------------------- reading


def load_plan(path: Path, spooled: bool = False) -> Plan:
    """Read and check a plan; every problem is a PlanError naming the file and what is wrong.

    `spooled`: for renderers and verify. A plan in veil's own layout (a track a line) is checked
    whole as usual, but its tracks stay on disk (`SpooledTracks`): memory holds a small index
    and, while rendering, only the tracks on screen. Other layouts are read whole either way."""
    from veil.jsonfile import read_json

    lines = _line_layout(Path(path))
    if lines is not None:
        header, tracks = lines
        return plan_from_json(header, str(path), tracks, spool=Path(path) if spooled else None)
    return plan_from_json(read_json(path, "plan", PlanError), str(path))


TRACKS_OPEN = ', "tracks": ['


def _line_layout(path: Path) -> tuple[dict[str, Any], Iterator[tuple[int, Any]]] | None:
    """A plan in the layout veil writes (`write_plan_stream`: the header on the first line, then a
    track a line) as (header, (byte offset, track) parsed one line at a time), so loading a long
    plan never holds all of its raw JSON at once; None for any other layout (read whole instead)."""
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline().rstrip("\n")
    except (OSError, UnicodeDecodeError):
        return None
    if not first.endswith(TRACKS_OPEN):
        return None
    try:
        header = json.loads(first[: -len(TRACKS_OPEN)] + "}")
    except (ValueError, RecursionError):  # read whole instead, where the problem is named
        return None

    def tracks() -> Iterator[tuple[int, Any]]:
        with open(path, "rb") as fh:
            fh.readline()
            closed = False
            number = 1
            while True:
                offset = fh.tell()
                raw = fh.readline()
                if not raw:
                    break
                number += 1
                text = raw.decode("utf-8", errors="replace").strip()
                if not text:
                    continue
                if closed or text == "]}":
                    if closed or text != "]}":
                        raise PlanError(f"{path}: the plan is not valid JSON (line {number}: text after the end)")
                    closed = True
                    continue
                try:
                    yield offset, json.loads(text.removesuffix(","))
                except json.JSONDecodeError as exc:
                    raise PlanError(f"{path}: the plan is not valid JSON (line {number}: {exc.msg})") from None
                except RecursionError:
                    raise PlanError(f"{path}: line {number}: nested too deeply") from None
                except ValueError as exc:  # a number past Python's digit limit
                    raise PlanError(f"{path}: line {number}: {str(exc).splitlines()[0][:80]}") from None
            if not closed:
                raise PlanError(f"{path}: the plan is not valid JSON (it ends before its tracks do)")

    return header, tracks()


@dataclass(frozen=True)
class TrackRef:
    """Where a spooled track's line starts, and the frames it covers."""

    id: int
    first: int
    last: int
    offset: int


class SpooledTracks:
    """A plan's tracks left in its file: iterating reads them again one at a time, so every
    reader of `Plan.tracks` sees them all while memory holds one; `FrameBoxes` reads each when
    its first frame comes. Each read is checked against the index (same id and frames), so a
    plan file changed while it is being rendered fails instead of rendering something else."""

    def __init__(self, path: Path, refs: list[TrackRef], context: dict[str, Any] | None = None) -> None:
        self.path = path
        self.refs = refs
        # The frame size and count each track was checked against when the plan was loaded.
        self.context = context

    def __len__(self) -> int:
        return len(self.refs)

    def __iter__(self) -> Iterator[Track]:
        with open(self.path, "rb") as fh:
            for ref in self.refs:
                yield self._read(fh, ref)

    def read(self, ref: TrackRef) -> Track:
        with open(self.path, "rb") as fh:
            return self._read(fh, ref)

    def _read(self, fh: IO[bytes], ref: TrackRef) -> Track:
        fh.seek(ref.offset)
        text = fh.readline().decode("utf-8", errors="replace").strip().removesuffix(",")
        try:
            track = _track(json.loads(text), f"{self.path}: track {ref.id}", [], self.context)
        except (ValueError, RecursionError, PlanError):
            track = None
        if track is None or (track.id, track.first, track.last) != (ref.id, ref.first, ref.last):
            raise PlanError(f"{self.path}: the plan changed while it was being read (track {ref.id}); run again")
        return track


def plan_from_json(
    data: Any,
    where: str = "plan",
    lazy_tracks: Iterable[tuple[int, Any]] | None = None,
    spool: Path | None = None,
) -> Plan:
    """Check a decoded plan against `schema` (what is valid is said there, once); `lazy_tracks`
    (from `load_plan`: byte offset and track) replaces `data["tracks"]`, read one track at a
    time; with `spool` (the file they come from) the tracks are checked and then left there
    (`SpooledTracks`). Every problem is one PlanError line naming the field."""
    from veil.schema import PlanHeaderIn, PlanSettingsIn, plan_context

    if not isinstance(data, dict) or "veil_plan" not in data:
        raise PlanError(f'{where}: not a veil plan (no "veil_plan" version)')
    version = data["veil_plan"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PlanError(f"{where}: veil_plan: expected a version number, got {_short(version)}")
    if version > PLAN_VERSION:
        raise PlanError(f"{where}: plan version {version} is newer than this veil reads ({PLAN_VERSION}); upgrade veil")
    header_data = {k: v for k, v in data.items() if k != "tracks"}
    header = _validate(PlanHeaderIn, header_data, where)
    context = plan_context(header)
    warnings: list[str] = []

    tracks: list[Track] = []
    refs: list[TrackRef] = []
    seen: set[int] = set()
    if lazy_tracks is None:
        raw_tracks = data.get("tracks")
        if not isinstance(raw_tracks, list):
            raise PlanError(f'{where}: missing "tracks"' if raw_tracks is None else f"{where}: tracks: expected a list")
        lazy_tracks = ((-1, raw) for raw in raw_tracks)
    for i, (offset, raw) in enumerate(lazy_tracks):
        track = _track(raw, f"{where}: tracks[{i}]", warnings, context)
        if track.id in seen:
            raise PlanError(f"{where}: tracks[{i}].id: {track.id} is used twice; ids must be unique")
        seen.add(track.id)
        if spool is not None:
            refs.append(TrackRef(track.id, track.first, track.last, offset))
        else:
            tracks.append(track)

    from veil.analysis.zones import Zone

    show_only = None
    if header.show_only is not None:
        missing = [i for i in header.show_only.tracks if i not in seen]
        if missing:
            raise PlanError(f"{where}: show_only.tracks: no track {missing[0]} in the plan")
        show_only = ShowOnly(tuple(header.show_only.tracks), header.show_only.margin, header.show_only.mask)
        if show_only.mask != "solid":
            warnings.append(SHOW_ONLY_BLUR_WARNING)

    # The input, settings, audio and review objects are kept as the file has them (other keys
    # included); only their checked fields are read by veil.
    audio = data.get("audio") or {"mode": "keep", "ranges": []}
    audio = {**audio, "mode": audio.get("mode", "keep"), "ranges": [list(r) for r in audio.get("ranges") or []]}
    return Plan(
        input=data["input"],
        # A checked key given as null reads as absent (the default), as every reader expects.
        settings={
            k: v
            for k, v in (data.get("settings") or {}).items()
            if v is not None or k not in PlanSettingsIn.model_fields
        },
        tracks=SpooledTracks(spool, refs, context) if spool is not None else tracks,  # type: ignore[arg-type]
        frame_ranges=[FrameRange(r.start, r.end, r.reason) for r in header.frame_ranges or []],
        zones=[
            Zone(z.name or f"zone {i + 1}", tuple(z.polygon))  # type: ignore[arg-type]
            for i, z in enumerate(header.zones or [])
        ],
        audio=audio,
        review=data.get("review") or {},
        created=data.get("created"),
        veil_version=str(data.get("veil_version") or ""),
        warnings=warnings,
        show_only=show_only,
    )


def _validate(model: Any, raw: Any, where: str, context: dict[str, Any] | None = None) -> Any:
    from pydantic import ValidationError

    from veil.schema import one_line

    try:
        return model.model_validate(raw, context=context)
    except ValidationError as exc:
        raise PlanError(one_line(exc, where)) from None
    except RecursionError:
        raise PlanError(f"{where}: nested too deeply") from None


def _short(value: Any) -> str:
    from veil.schema import short

    return short(value)


def _track(raw: Any, at: str, warnings: list[str], context: dict[str, Any] | None = None) -> Track:
    from veil.schema import TrackIn

    if not isinstance(raw, dict):
        raise PlanError(f"{at}: expected an object")
    checked = _validate(TrackIn, raw, at, context)
    redact = raw.get("redact", True)
    if not isinstance(redact, bool):
        # Fail closed: only an explicit `false` keeps a track visible.
        warnings.append(f"track {checked.id}: redact is {_short(redact)}, not true or false; it is redacted")
        redact = True
    # Rounded together, row by row as `quantize` rounds one box (a plan holds many thousands).
    rounded = quantize(np.asarray([b.box for b in checked.boxes], dtype=np.float64).reshape(-1, 4))
    boxes = [PlanBox(b.frame, q, b.detected, b.score) for b, q in zip(checked.boxes, rounded, strict=True)]
    for j, b in enumerate(boxes):
        if not (b.box[2] > b.box[0] and b.box[3] > b.box[1]):
            # Checked again at the plan's precision: a box thinner than 0.05 px rounds to nothing.
            raise PlanError(f"{at}.boxes[{j}].box: x2 must exceed x1 and y2 exceed y1 at 0.1 px, got {b.box.tolist()}")
    known = {"id", "label", "redact", "source", "reason", "person", "boxes"}
    # Keys starting with "_" are reserved for veil's in-memory state: never read from a file.
    extra = {k: v for k, v in raw.items() if k not in known and not k.startswith("_")}
    reason = raw.get("reason")
    return Track(
        checked.id,
        checked.label,
        boxes,
        redact,
        checked.source,
        reason if isinstance(reason, str) else None,
        checked.person,
        extra,
    )


def track_ids(plan: Plan) -> set[int]:
    """Every track id of `plan` (a spooled plan's from its index, without reading its tracks)."""
    if isinstance(plan.tracks, SpooledTracks):
        return {ref.id for ref in plan.tracks.refs}
    return {t.id for t in plan.tracks}


def set_show_only(plan: Plan, tracks: Iterable[int], margin: float | None = None, mask: str | None = None) -> None:
    """Make `plan` a subject-access plan showing only `tracks` (checked: at least one, each in
    the plan); `margin` and `mask` default to the plan's current show_only, else 0.2 and solid."""
    from veil.schema import ShowOnlyIn

    ids = sorted(set(tracks))
    have = plan.show_only
    raw = {
        "tracks": ids,
        "margin": float(margin if margin is not None else have.margin if have else 0.2),
        "mask": mask or (have.mask if have else "solid"),
    }
    checked = _validate(ShowOnlyIn, raw, "show_only")
    missing = sorted(set(ids) - track_ids(plan))
    if missing:
        raise PlanError(f"show_only: no track {missing[0]} in the plan")
    plan.show_only = ShowOnly(tuple(checked.tracks), checked.margin, checked.mask)
    if checked.mask != "solid" and SHOW_ONLY_BLUR_WARNING not in plan.warnings:
        plan.warnings.append(SHOW_ONLY_BLUR_WARNING)


def content_digest(plan: Plan) -> str:
    """SHA-256 of what a plan asks for (tracks, ranges, zones, audio, settings, show_only), not
    of its review log: a sign-off records it, so any later change to the plan is seen."""
    import hashlib

    digest = hashlib.sha256()
    header = {k: v for k, v in plan.header_json().items() if k not in ("review", "created", "veil_version")}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for track in plan.tracks:
        digest.update(json.dumps(track.to_json(), sort_keys=True).encode())
    return digest.hexdigest()


def sign_off_problem(plan: Plan) -> str | None:
    """Why `plan` is not signed off (`veil render --require-review`), or None: someone marked
    it reviewed on the review page and nothing it asks for changed since."""
    signed = plan.review.get("reviewed")
    if not isinstance(signed, dict) or not isinstance(signed.get("by"), str) or not signed["by"].strip():
        return "nobody marked this plan reviewed (veil review PLAN, then Mark reviewed)"
    if signed.get("digest") != content_digest(plan):
        return f"the plan changed after {signed['by']} marked it reviewed ({signed.get('at') or 'no time'})"
    return None


def sign_off(plan: Plan) -> dict[str, Any]:
    """For the report: who marked the plan reviewed and when, and whether the plan rendered is
    still the one they signed off (`signed_off` False: nobody did, or it changed since)."""
    signed = plan.review.get("reviewed")
    problem = sign_off_problem(plan)
    out: dict[str, Any] = {"signed_off": problem is None, "plan_version": plan.review.get("version")}
    if isinstance(signed, dict):
        out.update(by=signed.get("by"), at=signed.get("at"), frames_shown=signed.get("frames_shown"))
    if problem:
        out["problem"] = problem
    return out


def plan_zones(plan: Plan) -> list[Any]:
    """The plan's privacy zones (`zones.Zone`, upright pixels); zone-file entries assigned to
    `plan.zones` after it was made are read as `Plan()` reads them."""
    plan.__post_init__()
    return list(plan.zones)


def plan_time_range(plan: Plan) -> Any:
    """The part of the input the plan covers (`--start`/`--end` at scan time), or None."""
    from veil.timerange import TimeRange

    rng = plan.input.get("time_range")
    if not isinstance(rng, dict):
        return None
    return TimeRange(float(rng.get("start_s") or 0.0), rng.get("end_s"))


# ----------------------------------------------------------------------------- writing


def write_plan(plan: Plan, path: Path, overwrite: bool = True) -> None:
    """Write `plan` atomically (temporary name, then rename)."""
    from veil.media.sink import atomic_output

    with atomic_output(path, overwrite=overwrite) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        write_plan_stream(fh, plan.header_json(), (json.dumps(t.to_json()) for t in plan.tracks))


def write_plan_stream(fh: IO[str], header: dict[str, Any], track_lines: Iterator[str]) -> None:
    """The plan file: the header's keys, then `"tracks"` with one track per line, so a plan of any
    length is written without holding its tracks in memory and stays readable with `jq`."""
    head = json.dumps(header, ensure_ascii=False)
    fh.write(head[:-1] + ', "tracks": [')
    first = True
    for line in track_lines:
        fh.write("\n" if first else ",\n")
        fh.write(line)
        first = False
    fh.write("\n]}\n")


def simplify(boxes: list[PlanBox]) -> list[PlanBox]:
    """Drop inferred boxes that `interpolate` reproduces exactly from the boxes kept around them.

    Detected boxes are always kept (they carry scores). The result renders every frame of the
    track to exactly the same box as the input list.
    """
    if len(boxes) <= 2:
        return list(boxes)
    # `interpolate` in plain floats: the same operations in the same order (numpy's rounding to
    # DECIMALS is rint(x * 10) / 10, and Python's round is rint), at a fraction of the cost of
    # numpy calls on 4 numbers; a track's boxes are checked this way about once each.
    frames = [b.frame for b in boxes]
    coords = [b.box.tolist() for b in boxes]
    scale = 10.0**DECIMALS

    def on_line(a: int, b: int, k: int) -> bool:
        w = (frames[k] - frames[a]) / (frames[b] - frames[a])
        try:
            ends = zip(coords[a], coords[b], coords[k], strict=True)
            return all(round((p + (q - p) * w) * scale) / scale == r for p, q, r in ends)
        except (ValueError, OverflowError):  # not finite: keep the box
            return False

    kept = [boxes[0]]
    anchor = 0
    i = 1
    while i < len(boxes):
        # Try to reach the farthest j such that everything strictly between anchor and j is an
        # inferred box the line anchor -> j reproduces.
        best = i
        j = i + 1
        while j < len(boxes) and j - anchor <= MAX_KEYFRAME_GAP and not boxes[j - 1].detected:
            if all(on_line(anchor, j, k) for k in range(anchor + 1, j)):
                best = j
                j += 1
            else:
                break
        kept.append(boxes[best])
        anchor = best
        i = best + 1
    return kept


class PlanBuilder:
    """Turns the tracker's per-frame output into plan tracks as frames are emitted.

    A tracker track becomes a plan track; when it skips a frame (its box left the picture) the
    plan track ends and a new one starts, because a plan track covers every frame between its
    first and last box. Finished tracks are simplified and written to a temporary file at once,
    so memory holds only the tracks still on screen.
    """

    def __init__(self, spool_dir: Path | None = None) -> None:
        # tracker id -> (plan id, label, boxes, tracker id)
        self._open: dict[int, tuple[int, str, list[PlanBox], int]] = {}
        self._next = 0
        # Closed by `close()`: the spool lives as long as the builder, not one block.
        self._spool = tempfile.NamedTemporaryFile(  # noqa: SIM115
            "w+", encoding="utf-8", suffix=".veil-tracks", dir=spool_dir, delete=False
        )
        self.tracks_written = 0
        self.summary: list[dict[str, Any]] = []
        # Which tracker tracks are one person (`follow`), and per spooled line the tracker id it
        # came from: person numbers are given once the clip is done (`finish`), because a link
        # found late can join people whose first tracks were written long before.
        self._persons: Any = None
        self._keys: list[int | None] = []
        self._numbers: dict[int, int] | None = None

    def follow(self, persons: Any) -> None:
        """Take person groups from the tracker (`analysis.person_ids.PersonIds`)."""
        self._persons = persons

    def add(self, frame: int, detections: Detections) -> Detections:
        """Record frame `frame`'s boxes and return them as the plan will render them."""
        xyxy = quantize(detections.xyxy)
        present: set[int] = set()
        plan_ids: list[int] = []
        for i in range(len(detections)):
            tid = int(detections.track_id[i])
            if tid < 0:
                tid = -1 - (frame << 16) - i  # an untracked box is a one-frame track
            entry = self._open.get(tid)
            if entry is None or entry[2][-1].frame != frame - 1 or len(entry[2]) >= MAX_TRACK_FRAMES:
                if entry is not None:
                    self._close(tid)
                entry = (self._next, str(detections.label[i]), [], tid)
                self._next += 1
                self._open[tid] = entry
            detected = not bool(detections.filled[i])
            score = float(detections.confidence[i]) if detected else None
            entry[2].append(PlanBox(frame, xyxy[i], detected, score))
            present.add(tid)
            plan_ids.append(entry[0])
        for tid in [t for t in self._open if t not in present]:
            self._close(tid)
        return Detections(
            xyxy.astype(np.float32),
            detections.confidence,
            detections.label,
            np.asarray(plan_ids, dtype=np.int64),
            detections.filled,
        )

    def _close(self, tid: int) -> None:
        plan_id, label, boxes, key = self._open.pop(tid)
        kept = simplify(boxes)
        track = Track(plan_id, label, kept)
        self._spool.write(json.dumps(track.to_json()) + "\n")
        self._keys.append(key if self._persons is not None and key in self._persons else None)
        self.tracks_written += 1
        detected = sum(b.detected for b in boxes)
        self.summary.append(
            {
                "track": plan_id,
                "label": label,
                "first_frame": boxes[0].frame,
                "last_frame": boxes[-1].frame,
                "frames_detected": detected,
                "frames_filled": len(boxes) - detected,
            }
        )

    def finish(self) -> None:
        for tid in list(self._open):
            self._close(tid)
        self._spool.flush()
        if self._persons is not None and self._numbers is None:
            # Persons numbered by their first frame on screen (then by plan track id).
            summary = self.summary
            order = sorted(range(len(self._keys)), key=lambda k: (summary[k]["first_frame"], summary[k]["track"]))
            self._numbers = self._persons.numbering([self._keys[k] for k in order if self._keys[k] is not None])
            for key, record in zip(self._keys, self.summary, strict=True):
                person = self.person(key)
                if person is not None:
                    record["person"] = person

    def person(self, key: int | None) -> int | None:
        if key is None or self._numbers is None:
            return None
        return self._numbers[self._persons.find(key)]

    def track_lines(self) -> Iterator[str]:
        self._spool.seek(0)
        keys = iter(self._keys)
        for line in self._spool:
            if line.strip():
                line = line.rstrip("\n")
                person = self.person(next(keys))
                if person is not None:
                    # The line's keys end with "boxes" (Track.to_json); `person` goes before it.
                    head, sep, tail = line.partition(', "boxes": [')
                    line = f'{head}, "person": {person}{sep}{tail}'
                yield line

    def close(self) -> None:
        name = self._spool.name
        self._spool.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


# ----------------------------------------------------------------------------- rendering view


class FrameBoxes:
    """Per-frame view of a plan for renderers: the boxes to mask, and to keep, in frame order.

    Frames must be asked for in increasing order (a video is rendered front to back); only the
    tracks alive at the current frame are looked at, so a plan with thousands of tracks costs
    per frame what its visible tracks cost.
    """

    def __init__(self, plan: Plan, only: set[int] | None = None) -> None:
        # A spooled plan's tracks are read from its file as their first frame comes, so memory
        # holds the index and the tracks on screen, however long the video.
        self._spooled = plan.tracks if isinstance(plan.tracks, SpooledTracks) else None
        items = self._spooled.refs if self._spooled is not None else plan.tracks
        if only is not None:  # only these tracks (the show_only subject's)
            items = [t for t in items if t.id in only]
        self._pending: list[Track | TrackRef] = sorted(items, key=lambda t: t.first)
        self._next = 0
        self._active: list[Track] = []
        self._ranges = sorted(plan.frame_ranges, key=lambda r: r.start)

    def whole_frame(self, frame: int) -> FrameRange | None:
        for r in self._ranges:
            if r.start <= frame <= r.end:
                return r
        return None

    def at(self, frame: int) -> tuple[Detections, Detections]:
        """(boxes to mask, boxes kept visible) in frame `frame`, as float32 Detections whose
        `track_id` is the plan track's id and `filled` marks boxes not found by a detector."""
        while self._next < len(self._pending) and self._pending[self._next].first <= frame:
            item = self._pending[self._next]
            if isinstance(item, TrackRef):
                assert self._spooled is not None
                item = self._spooled.read(item)
            self._active.append(item)
            self._next += 1
        self._active = [t for t in self._active if t.last >= frame]
        masked: list[tuple[Track, np.ndarray, PlanBox | None]] = []
        kept: list[tuple[Track, np.ndarray, PlanBox | None]] = []
        for track in self._active:
            got = track.box_at(frame)
            if got is None:
                continue
            (masked if track.redact else kept).append((track, *got))
        return _detections(masked), _detections(kept)


def _detections(items: list[tuple[Track, np.ndarray, PlanBox | None]]) -> Detections:
    if not items:
        return Detections.empty()
    return Detections(
        np.stack([box for _, box, _ in items]).astype(np.float32),
        np.asarray(
            [(stored.score if stored and stored.score is not None else 1.0) for _, _, stored in items],
        ),
        np.asarray([t.label for t, _, _ in items], dtype=object),
        np.asarray([t.id for t, _, _ in items], dtype=np.int64),
        np.asarray([not (stored and stored.detected) for _, _, stored in items], dtype=bool),
    )

"""One review: the plan being edited, its undo history, autosave, frames and the render job.

Every edit goes through `ReviewSession.edit`, which snapshots the plan for undo, applies the
change, logs the decision in `plan.review.decisions` and saves: the previous file is copied to
NAME.plan.json.bak first, then the plan is written atomically (temporary name, rename). Nothing
is written outside the plan's folder.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from veil.errors import VeilError
from veil.plan import (
    FrameBoxes,
    FrameRange,
    Plan,
    PlanBox,
    Track,
    content_digest,
    load_plan,
    plan_from_json,
    plan_time_range,
    quantize,
    set_show_only,
    write_plan,
)
from veil.progress import Reporter
from veil.review.server import follow as follower
from veil.review.server.frames import FrameIndex, FrameReader, make_proxy, needs_proxy, proxy_path
from veil.timerange import TimeRange
from veil.types import Frame

UNDO_DEPTH = 50
# A drawn box is followed this many seconds each way.
FOLLOW_SECONDS = 4.0
THUMB_SIZE = 96


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class EditError(VeilError):
    """An edit the plan cannot take (unknown track, bad box); answered with HTTP 400."""


class RenderReporter(Reporter):
    """Progress of the background render, read by the page."""

    def __init__(self, state: dict[str, Any]) -> None:
        super().__init__(quiet=True)
        self.state = state

    def start_file(self, name: str, total: int | None, unit: str = "frames") -> None:
        self.state.update(total=total or 0, done=0)

    def advance(self, frames: int = 1) -> None:
        self.state["done"] = self.state.get("done", 0) + frames

    def warn(self, line: str) -> None:
        self.state.setdefault("warnings", []).append(line)


class StaleEdit(EditError):
    """An edit made on a plan version that is no longer the saved one (HTTP 409)."""


class NoSpeech(VeilError):
    """The words cannot be read: no speech extra installed (HTTP 501), or no audio (404)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# The recognizer reads a proposal's words (POST /api/words) from the WORDS_WINDOW_S stretches of
# the audio that hold it, counted from its start, as `veil scan` heard them: Whisper hears 30 s at
# a time and reads a short clip worse (eight digits cut out with a second either side came back
# as "He should."), and the first window is then the very audio the scan's words came from.
WORDS_WINDOW_S = 30.0


def _audio_ranges(ranges: list[list[float]]) -> list[list[float]]:
    """[start_s, end_s] pairs, rounded to ms and checked (0 <= start < end, finite)."""
    clean = []
    for r in ranges:
        try:
            # Rounded first: a range that rounds to nothing would be saved as one the plan
            # reader then refuses.
            start, end = round(float(r[0]), 3), round(float(r[1]), 3)
        except (TypeError, ValueError, OverflowError, IndexError):
            raise EditError(f"audio range {r!r} must be [start_s, end_s]") from None
        if not (np.isfinite(start) and np.isfinite(end) and 0 <= start < end):
            raise EditError(f"audio range {r} must be [start_s, end_s] with 0 <= start < end")
        clean.append([start, end])
    return clean


class ReviewSession:
    def __init__(self, plan_path: Path) -> None:
        self.plan_path = plan_path.resolve()
        self.folder = self.plan_path.parent
        self.plan = load_plan(self.plan_path)
        source = Path(self.plan.input.get("path") or "")
        self.input = source if source.is_absolute() else (self.folder / source).resolve()
        if not self.input.is_file():
            raise VeilError(f"{self.plan_path}: its input {self.input} is missing")
        self.kind = self.plan.input["kind"]
        self.lock = threading.RLock()
        self.undo: list[str] = []
        self.redo: list[str] = []
        # The plan's edit count, kept in the plan (review.version) so it survives a restart.
        saved = self.plan.review.get("version")
        self.version = saved if isinstance(saved, int) and not isinstance(saved, bool) and saved >= 0 else 0
        self.shown: set[int] = set()
        self.render_state: dict[str, Any] = {"state": "idle"}
        self.output: Path | None = None
        self.report: Path | None = None
        self._thumbs: dict[tuple[int, int], bytes] = {}
        self._stop = threading.Event()
        self.reader: FrameReader | None = None
        self.thumb_reader: FrameReader | None = None
        self.proxy: FrameReader | None = None
        self.proxy_state: dict[str, Any] = {"state": "none"}
        self.proxy_file: Path | None = None  # where this session's proxy is (or is being) made
        self._image: np.ndarray | None = None
        # The part of the input the plan covers (--start/--end at scan time), or None: its frames
        # and audio times count from the range's start, as `veil render` reads them.
        self.time_range = plan_time_range(self.plan)
        self.first = 0  # the input's index of the plan's frame 0
        if self.kind == "video":
            self.reader = FrameReader(self.input)
            # Thumbnails seek all over the clip: their own decoder leaves the player's in place.
            self.thumb_reader = FrameReader(self.input, cache_bytes=64 << 20, index=self.reader.index)
            if self.time_range is not None:
                self.first, self.frames = self.reader.index.span(self.time_range)
            else:
                self.frames = len(self.reader)
            if not self.frames:
                raise VeilError(f"{self.plan_path}: its time range holds no frame of {self.input.name}")
            self.rate = self.reader.index.rate
            self._start_proxy()
        else:
            from veil.media.source import read_image

            self._image = read_image(self.input).frame.image
            self.frames = 1
            self.rate = 1.0
        self._waveform: list[float] | None = None
        self._words_lock = threading.Lock()

    # ------------------------------------------------------------------ frames

    def _start_proxy(self) -> None:
        assert self.reader is not None
        if not needs_proxy(
            self.reader.index, int(self.plan.input.get("width") or 0), int(self.plan.input.get("height") or 0)
        ):
            return
        target = proxy_path(self.input, str(self.plan.input.get("sha256", "")))
        self.proxy_file = target
        if target.is_file() and self._use_proxy(target):
            return
        progress = [0]
        self.proxy_state = {"state": "making", "progress": progress, "total": len(self.reader)}

        def work() -> None:
            try:
                make_proxy(self.input, target, progress, self._stop)
                if not self._use_proxy(target):
                    self.proxy_state = {"state": "failed", "error": "frame count differs"}
            except Exception as exc:  # noqa: BLE001 - the player keeps reading the original
                self.proxy_state = {"state": "failed", "error": str(exc)}

        threading.Thread(target=work, name="veil-proxy", daemon=True).start()

    def _use_proxy(self, target: Path) -> bool:
        index = FrameIndex(target)
        assert self.reader is not None
        if len(index) != len(self.reader):  # a copy of the whole input, whatever the plan's range
            return False
        self.proxy = FrameReader(target, index=index)
        self.proxy_state = {"state": "ready"}
        return True

    def original(self, frame: int) -> np.ndarray:
        if self._image is not None:
            if frame != 0:
                raise IndexError("an image has one frame, 0")
            return self._image
        assert self.reader is not None
        return self.reader.get(self._input_index(frame))

    def _input_index(self, frame: int) -> int:
        """The input's index of the plan's frame `frame` (checked: readers of the whole input
        would take an index past the plan's range)."""
        if not 0 <= frame < self.frames:
            raise IndexError(f"frame {frame} is outside 0..{self.frames - 1}")
        return self.first + frame

    def player_frame(self, frame: int, width: int) -> np.ndarray:
        """The picture the player shows: the proxy when it is ready and wide enough."""
        self.shown.add(frame)
        proxy = self.proxy
        # The proxy is at most PROXY_WIDTH wide; narrower videos keep their full width in it.
        if proxy is not None and min(width, int(self.plan.input.get("width") or width)) <= proxy_width(proxy):
            return proxy.get(self._input_index(frame))
        return self.original(frame)

    def exported(self, frame: int) -> np.ndarray:
        """Frame `frame` painted exactly as `veil render` would paint it with this plan."""
        from veil.render.paint import FrameRenderer

        self.shown.add(frame)
        image = self.original(frame).copy()
        with self.lock:
            plan = self.plan
            settings = render_settings(plan)
            boxes = FrameBoxes(plan)
            masked, kept = boxes.at(frame)
            whole = boxes.whole_frame(frame) is not None
            renderer = FrameRenderer(settings, zones=list(settings.zones), plan=plan)
            # show_only: the subject's region is read now, while the plan cannot change.
            fixed = None
            if renderer.show is not None:
                h, w = image.shape[:2]
                show = renderer.show
                fixed = _Fixed(show.at(frame, w, h), show.seen(frame, w, h), show.duplicates)
        if fixed is not None:
            renderer.show = fixed  # type: ignore[assignment]
        renderer.paint(Frame(image, frame), masked, kept, whole)
        return image

    def thumbnail(self, track_id: int) -> bytes:
        """A crop of the original around the track's most confident box, made on request and kept
        in memory only."""
        with self.lock:
            track = self._track(track_id)
            best = max(track.boxes, key=lambda b: (b.detected, b.score or 0.0, -b.frame))
            frame, box = best.frame, best.box.copy()
        key = (track_id, frame)
        if key in self._thumbs:
            return self._thumbs[key]
        image = self._thumb_source(frame, box)
        h, w = image.shape[:2]
        x1, y1, x2, y2 = box
        pad = 0.25 * max(x2 - x1, y2 - y1)
        ix1, iy1 = max(0, int(x1 - pad)), max(0, int(y1 - pad))
        ix2, iy2 = min(w, int(x2 + pad) + 1), min(h, int(y2 + pad) + 1)
        crop = image[iy1:iy2, ix1:ix2] if ix2 > ix1 and iy2 > iy1 else image[:1, :1]
        scale = THUMB_SIZE / max(crop.shape[:2])
        crop = cv2.resize(
            crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        )
        data = jpeg(crop, 85)
        if len(self._thumbs) > 2000:
            self._thumbs.clear()
        self._thumbs[key] = data
        return data

    def _thumb_source(self, frame: int, box: np.ndarray) -> np.ndarray:
        """The frame to crop from, and `box` scaled to it in place: the proxy (a cheap seek) when it
        has the original's width or the box is still 48 px or more there, else the original."""
        if self._image is not None:
            return self._image
        proxy = self.proxy
        width = float(self.plan.input.get("width") or 0)
        if proxy is not None and width:
            scale = proxy_width(proxy) / width
            if scale >= 0.999 or min(box[2] - box[0], box[3] - box[1]) * scale >= 48:
                box *= scale
                return proxy.get(self._input_index(frame))
        assert self.thumb_reader is not None
        return self.thumb_reader.get(self._input_index(frame))

    def waveform(self, buckets: int = 1500) -> dict[str, Any]:
        """Peak level of the first audio stream in `buckets` equal slices of the clip."""
        if self._waveform is None:
            self._waveform = audio_peaks(self.input, buckets, self.time_range) if self.kind == "video" else []
        # A range's own length: its times count from its start.
        duration = self.frames / max(self.rate, 1e-6)
        if self.time_range is None:
            duration = float(self.plan.input.get("duration_s") or duration)
        return {"peaks": self._waveform, "duration_s": duration}

    # ------------------------------------------------------------------ state for the page

    def state(self) -> dict[str, Any]:
        with self.lock:
            data = self.plan.to_json()
            data["session"] = {
                "version": self.version,
                "frames": self.frames,
                "rate": self.rate,
                "kind": self.kind,
                "width": self.plan.input.get("width"),
                "height": self.plan.input.get("height"),
                "name": self.input.name,
                "plan": self.plan_path.name,
                "can_undo": bool(self.undo),
                "can_redo": bool(self.redo),
                "frames_shown": len(self.shown),
                "render": self.render_status(),
                "proxy": {k: v for k, v in self.proxy_state.items() if k != "progress"},
            }
            return data

    # ------------------------------------------------------------------ editing

    def check_version(self, version: int | None) -> None:
        """Refuse an edit made on an older plan than the one saved (another tab changed it)."""
        if version is not None and version != self.version:
            raise StaleEdit(
                f"the plan changed in another tab or window (version {self.version}, this edit was made on "
                f"{version}); it was reloaded: check it and make the edit again"
            )

    def edit(
        self, change: Callable[[Plan], list[dict[str, Any]]], reviewer: str | None, version: int | None = None
    ) -> None:
        """Apply `change` (which returns the decisions it made), log them, save; `version`: the
        plan's version the edit was made on (refused with StaleEdit when it is not the current)."""
        with self.lock:
            self.check_version(version)
            before = json.dumps(self.plan.to_json())
            decisions = change(self.plan)
            for decision in decisions:
                # Only the name sent with this edit: another tab's reviewer is not this one.
                decision.setdefault("reviewer", reviewer)
                decision.setdefault("time", now())
            if decisions:
                self.plan.review.setdefault("decisions", []).extend(decisions)
            if reviewer:
                self.plan.review["reviewer"] = reviewer
            self.undo.append(before)
            del self.undo[:-UNDO_DEPTH]
            self.redo.clear()
            self._save()

    def step_history(self, back: bool, version: int | None = None) -> None:
        with self.lock:
            self.check_version(version)
            source, target = (self.undo, self.redo) if back else (self.redo, self.undo)
            if not source:
                return
            target.append(json.dumps(self.plan.to_json()))
            self.plan = plan_from_json(json.loads(source.pop()), str(self.plan_path))
            self._save()

    def _save(self) -> None:
        if self.plan_path.is_file():
            tmp = self.plan_path.with_name(f".{self.plan_path.name}.bak-tmp")
            shutil.copy2(self.plan_path, tmp)
            os.replace(tmp, self.plan_path.with_name(self.plan_path.name + ".bak"))
        self.version += 1
        self.plan.review["version"] = self.version
        write_plan(self.plan, self.plan_path)

    def _track(self, track_id: int) -> Track:
        for track in self.plan.tracks:
            if track.id == track_id:
                return track
        raise EditError(f"no track {track_id}")

    # The edits the page can make; each returns the decisions to log.

    def set_redact(self, ids: list[int], redact: bool, reason: str | None) -> Callable[[Plan], list[dict[str, Any]]]:
        def change(plan: Plan) -> list[dict[str, Any]]:
            out = []
            for track_id in ids:
                track = self._track(track_id)
                track.redact = redact
                track.reason = reason or None
                out.append({"track": track_id, "action": "redact" if redact else "keep", "reason": reason})
            return out

        return change

    def keep_only(
        self, ids: list[int], reason: str | None, show_only: bool = True, margin: float | None = None
    ) -> Callable[[Plan], list[dict[str, Any]]]:
        """Keep `ids` visible and redact every other track; with `show_only` (the default, a
        subject-access request) the plan also masks everything outside them, so a bystander
        the scan never found is hidden too."""
        wanted = set(ids)
        if not wanted:
            raise EditError("select the tracks of the person to keep visible first")

        def change(plan: Plan) -> list[dict[str, Any]]:
            for track_id in wanted:
                self._track(track_id)
            out = []
            if show_only:
                set_show_only(plan, wanted, margin)
                out.append(
                    {
                        "track": None,
                        "action": "show only",
                        "tracks": sorted(wanted),
                        "reason": "everything but these tracks is masked in every frame",
                    }
                )
            for track in plan.tracks:
                keep = track.id in wanted
                if track.redact == (not keep) and (not keep or track.reason == reason):
                    continue
                track.redact = not keep
                track.reason = reason if keep else (reason and f"not the subject ({reason})")
                out.append({"track": track.id, "action": "keep" if keep else "redact", "reason": track.reason})
            return out

        return change

    def change_show_only(self, ids: list[int], margin: float | None = None) -> Callable[[Plan], list[dict[str, Any]]]:
        """Show only `ids` (see `keep_only`); [] ends the subject-access request."""

        def change(plan: Plan) -> list[dict[str, Any]]:
            if not ids:
                if plan.show_only is None:
                    return []
                plan.show_only = None
                return [{"track": None, "action": "show everyone", "reason": "show_only cleared"}]
            for track_id in ids:
                self._track(track_id)
            set_show_only(plan, ids, margin)
            return [{"track": None, "action": "show only", "tracks": sorted(set(ids)), "reason": None}]

        return change

    def merge(self, ids: list[int]) -> Callable[[Plan], list[dict[str, Any]]]:
        def change(plan: Plan) -> list[dict[str, Any]]:
            tracks = [self._track(i) for i in sorted(set(ids))]
            if len(tracks) < 2:
                raise EditError("choose two or more tracks to merge")
            by_frame: dict[int, PlanBox] = {}
            for track in tracks:
                for b in track.boxes:
                    have = by_frame.get(b.frame)
                    if have is None:
                        by_frame[b.frame] = PlanBox(b.frame, b.box.copy(), b.detected, b.score)
                    else:
                        # Both tracks are in this frame: the union covers both (fail closed).
                        union = np.concatenate(
                            [np.minimum(have.box[:2], b.box[:2]), np.maximum(have.box[2:], b.box[2:])]
                        )
                        by_frame[b.frame] = PlanBox(b.frame, quantize(union), have.detected or b.detected, have.score)
            keep = tracks[0]
            keep.boxes = [by_frame[f] for f in sorted(by_frame)]
            # Kept visible only when every part was kept: a merge never unmasks anything.
            keep.redact = any(t.redact for t in tracks)
            if all(t.source == "manual" for t in tracks):
                # Manual tracks are rebuilt from their keyframes: keep every part's keyframes.
                keys: dict[int, dict[str, Any]] = {}
                for track in tracks:
                    for key in track.extra.get("keyframes", []):
                        keys.setdefault(key["frame"], key)
                keep.extra["keyframes"] = [keys[f] for f in sorted(keys)]
            else:
                # A detector's boxes cannot be rebuilt from keyframes: the merged track keeps its
                # boxes as they are (and stays "manual" in the audit when a part was drawn by hand).
                keep.extra.pop("keyframes", None)
                if any(t.source == "manual" for t in tracks):
                    keep.source = "manual"
            merged = [t.id for t in tracks[1:]]
            keep.extra["merged_from"] = sorted(set(keep.extra.get("merged_from", [])) | set(merged))
            plan.tracks = [t for t in plan.tracks if t.id not in merged]
            if plan.show_only is not None and set(plan.show_only.tracks) & {t.id for t in tracks}:
                # A merged part was shown: the merged track is (its parts are one object).
                kept = (set(plan.show_only.tracks) - set(merged)) | {keep.id}
                set_show_only(plan, kept)
            return [{"track": keep.id, "action": "merge", "reason": f"same object as {', '.join(map(str, merged))}"}]

        return change

    def add_manual(
        self, frame: int, box: list[float], label: str, redact: bool, join: int | None = None
    ) -> tuple[Callable[[Plan], list[dict[str, Any]]], list[int]]:
        """A box the reviewer drew, followed through the video as a manual track. `join`: a
        track of the person it belongs to (extending a person over a stretch the tracker lost):
        the new track gets that person's number (the track gets one if it had none), their
        state (masked or kept), and joins the subject-access request when they are its subject."""
        xyxy = self._check_box(box)
        track_id_holder = [-1]
        if join is not None:
            self._track(join)  # a track that is not in the plan is a 400, before anything changes

        def change(plan: Plan) -> list[dict[str, Any]]:
            joined = next((t for t in plan.tracks if t.id == join), None) if join is not None else None
            track = Track(plan.next_track_id(), label, [], redact if joined is None else joined.redact, "manual")
            track.extra["keyframes"] = [{"frame": frame, "box": [float(v) for v in xyxy]}]
            track.boxes = self._manual_boxes(track)
            reason = "drawn by the reviewer"
            if joined is not None:
                if joined.person is None:
                    joined.person = max((t.person for t in plan.tracks if t.person is not None), default=-1) + 1
                track.person = joined.person
                reason += f"; extends person {joined.person} (track {joined.id})"
                if plan.show_only is not None and joined.id in plan.show_only.tracks:
                    plan.show_only = replace(plan.show_only, tracks=(*plan.show_only.tracks, track.id))
            plan.tracks.append(track)
            track_id_holder[0] = track.id
            return [{"track": track.id, "action": "add", "reason": reason}]

        return change, track_id_holder

    def set_keyframe(
        self, track_id: int, frame: int, box: list[float] | None
    ) -> Callable[[Plan], list[dict[str, Any]]]:
        """Set (or with `box` None, delete) the reviewer's keyframe of a manual track at `frame`."""
        xyxy = self._check_box(box) if box is not None else None

        def change(plan: Plan) -> list[dict[str, Any]]:
            track = self._track(track_id)
            if track.source != "manual" or "keyframes" not in track.extra:
                raise EditError(f"track {track_id} has no keyframes to edit; draw a new box to add a manual track")
            keys = [k for k in track.extra.get("keyframes", []) if k["frame"] != frame]
            if xyxy is not None:
                keys.append({"frame": frame, "box": [float(v) for v in xyxy]})
            if not keys:
                forget_shown(plan, track_id)
                plan.tracks = [t for t in plan.tracks if t.id != track_id]
                return [{"track": track_id, "action": "delete", "reason": "last keyframe deleted"}]
            track.extra["keyframes"] = sorted(keys, key=lambda k: k["frame"])
            track.boxes = self._manual_boxes(track)
            action = "keyframe" if xyxy is not None else "delete keyframe"
            return [{"track": track_id, "action": action, "reason": f"frame {frame}"}]

        return change

    def delete_track(self, track_id: int) -> Callable[[Plan], list[dict[str, Any]]]:
        def change(plan: Plan) -> list[dict[str, Any]]:
            track = self._track(track_id)
            if track.source != "manual":
                raise EditError("only manual tracks can be deleted; keep a detected track visible instead")
            forget_shown(plan, track_id)
            plan.tracks = [t for t in plan.tracks if t.id != track_id]
            return [{"track": track_id, "action": "delete", "reason": None}]

        return change

    def set_ranges(self, ranges: list[Any]) -> Callable[[Plan], list[dict[str, Any]]]:
        """`ranges`: `schema.RangeBody`s (whole numbers, checked by the API) or their dicts."""
        parsed = []
        for r in ranges:
            r = r if isinstance(r, dict) else r.model_dump()
            start, end = r["start"], r["end"]
            if any(isinstance(v, bool) or not isinstance(v, int) for v in (start, end)):
                raise EditError(f"frame range {start!r}-{end!r}: expected whole frame numbers")
            if not 0 <= start <= end < self.frames:
                raise EditError(f"frame range {start}-{end} is outside 0..{self.frames - 1}")
            parsed.append(FrameRange(start, end, r.get("reason") or None))

        def change(plan: Plan) -> list[dict[str, Any]]:
            before = {(r.start, r.end) for r in plan.frame_ranges}
            plan.frame_ranges = sorted(parsed, key=lambda r: r.start)
            added = [r for r in parsed if (r.start, r.end) not in before]
            removed = before - {(r.start, r.end) for r in parsed}
            out: list[dict[str, Any]] = [
                {"track": None, "action": "mask frames", "frames": [r.start, r.end], "reason": r.reason} for r in added
            ]
            out += [
                {"track": None, "action": "unmask frames", "frames": list(r), "reason": None} for r in sorted(removed)
            ]
            return out

        return change

    def set_audio(
        self, ranges: list[list[float]], rejected: list[list[float]] | None = None
    ) -> Callable[[Plan], list[dict[str, Any]]]:
        """The muted ranges (all of them), and the speech finder's proposals turned down (None:
        as saved)."""
        clean = _audio_ranges(ranges)
        turned_down = None if rejected is None else _audio_ranges(rejected)

        def change(plan: Plan) -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            if sorted(clean) != sorted(plan.audio.get("ranges") or []) or turned_down is None:
                out.append({"track": None, "action": "audio ranges", "ranges": clean, "reason": None})
            plan.audio["ranges"] = sorted(clean)
            if clean and plan.audio.get("mode", "keep") == "keep":
                plan.audio["mode"] = "mute"
            if turned_down is not None:
                before = {tuple(r) for r in plan.audio.get("rejected") or []}
                for r in turned_down:
                    if tuple(r) not in before:
                        out.append({"track": None, "action": "reject audio proposal", "range": r, "reason": None})
                for r in sorted(before - {tuple(r) for r in turned_down}):
                    out.append({"track": None, "action": "undo audio rejection", "range": list(r), "reason": None})
                if turned_down:
                    plan.audio["rejected"] = sorted(turned_down)
                else:
                    plan.audio.pop("rejected", None)
            return out

        return change

    def words(self, start: float, end: float) -> list[dict[str, Any]]:
        """The words said from `start` to `end` s of the input's audio, for the reviewer to judge
        a proposal by: recognized now (from the WORDS_WINDOW_S windows that hold the stretch), in
        memory, and never saved (the transcript is personal data; it reaches only this page)."""
        from veil.speech import available, recognize_samples
        from veil.speech.recognizer import load_audio

        if not available():
            raise NoSpeech("reading the words needs the speech extra: pip install 'veil[speech]'", 501)
        lo = math.floor(start / WORDS_WINDOW_S) * WORDS_WINDOW_S
        hi = max(lo + WORDS_WINDOW_S, math.ceil(end / WORDS_WINDOW_S) * WORDS_WINDOW_S)
        # A plan scanned with --start counts its audio times from there, as its output does.
        shift = self.time_range.start if self.time_range is not None else 0.0
        samples = load_audio(self.input, shift + lo, shift + hi)
        if samples is None:
            raise NoSpeech(f"{self.input.name} has no audio", 404)
        with self._words_lock:  # one recognition at a time: each uses every core
            heard = recognize_samples(samples)
        return [
            {"text": w.text, "start": round(lo + w.start, 2), "end": round(lo + w.end, 2)}
            for w in heard
            if lo + w.end > start and lo + w.start < end
        ]

    def mark_reviewed(self, reviewer: str) -> Callable[[Plan], list[dict[str, Any]]]:
        if not reviewer.strip():
            raise EditError("a reviewer's name is needed to mark the plan reviewed")

        def change(plan: Plan) -> list[dict[str, Any]]:
            share = round(len(self.shown) / max(self.frames, 1), 4)
            plan.review["reviewed"] = {
                "by": reviewer.strip(),
                "at": now(),
                "frames_shown": share,
                # What was signed off: `veil render --require-review` refuses the plan once it changes.
                "version": self.version + 1,
                "digest": content_digest(plan),
            }
            return [{"track": None, "action": "mark reviewed", "reason": f"{share:.1%} of frames shown"}]

        return change

    def _check_box(self, box: Any) -> np.ndarray:
        """A reviewer's box, by the plan's rule (`schema.box_problem`): finite, near and
        overlapping the frame; and at least 2 px each way, so the page cannot add a dot."""
        from veil.schema import box_problem

        try:
            xyxy = quantize(np.asarray(box, dtype=np.float64).reshape(4))
        except (TypeError, ValueError, OverflowError):
            raise EditError("a box is [x1, y1, x2, y2]") from None
        if not np.all(np.isfinite(xyxy)):
            raise EditError("a box's coordinates must be finite numbers")
        width, height = self.plan.input.get("width"), self.plan.input.get("height")
        if self._image is not None:
            height, width = self._image.shape[:2]
        problem = box_problem(xyxy.tolist(), width, height)
        if problem:
            raise EditError(f"box {problem}")
        if xyxy[2] - xyxy[0] < 2 or xyxy[3] - xyxy[1] < 2:
            raise EditError("a box must be at least 2 pixels wide and high")
        return xyxy

    def _manual_boxes(self, track: Track) -> list[PlanBox]:
        """Keyframes as the reviewer set them (interpolated between by the plan), plus the object
        followed backward from the first and forward from the last."""
        keys = sorted(track.extra["keyframes"], key=lambda k: k["frame"])
        boxes = [PlanBox(k["frame"], quantize(k["box"])) for k in keys]
        if self.kind != "video":
            return boxes
        limit = int(round(FOLLOW_SECONDS * self.rate))
        before = follower.follow(self.original, keys[0]["frame"], boxes[0].box, -1, limit, self.frames)
        after = follower.follow(self.original, keys[-1]["frame"], boxes[-1].box, +1, limit, self.frames)
        head = [PlanBox(f, quantize(b)) for f, b in reversed(before)]
        tail = [PlanBox(f, quantize(b)) for f, b in after]
        return head + boxes + tail

    # ------------------------------------------------------------------ render

    def start_render(self) -> bool:
        with self.lock:
            if self.render_state.get("state") == "running":
                return False
            self.render_state = {"state": "running", "done": 0, "total": self.frames, "started": time.time()}
        threading.Thread(target=self._render, name="veil-render", daemon=True).start()
        return True

    def _render(self) -> None:
        from veil.report.audit import build_report, write_report
        from veil.runners.pipeline import Pipeline, render_jobs

        state = self.render_state
        try:
            with self.lock:
                settings = render_settings(self.plan, overwrite=True, report=True)
                suffix = settings.output_format or self.input.suffix
                target = self.folder / f"{self.input.stem}_veiled{suffix}"
                # The plan is read from its file under the lock: the version is the one rendered.
                jobs, failed = render_jobs([str(self.plan_path)], str(target), settings)
                state["version"] = self.version
            if failed:
                raise VeilError(failed[0].error or "cannot render")
            job, plan_obj = jobs[0]
            pipeline = Pipeline(settings, RenderReporter(state), reviewer=self.plan.review.get("reviewer"))
            try:
                result = pipeline.render(job, plan_obj)
                report = self.folder / f"{self.input.stem}_veiled.report.json"
                write_report(report, build_report(pipeline, [result], ["veil", "review", str(self.plan_path)]))
            finally:
                pipeline.close()
            if not result.ok:
                raise VeilError(result.error or "render failed")
            self.output, self.report = target, report
            state.update(state="done", output=target.name, report=report.name)
        except Exception as exc:  # noqa: BLE001 - the page shows the one-line reason
            state.update(state="failed", error=str(exc))

    def render_status(self) -> dict[str, Any]:
        """The render's state for the page; `out_of_date` once the plan changed after the
        version it rendered."""
        out = {k: v for k, v in self.render_state.items() if k != "started"}
        if out.get("state") == "done" and out.get("version") is not None:
            out["out_of_date"] = out["version"] != self.version
        return out

    def close(self, keep_proxy: bool = True) -> None:
        """`keep_proxy` False: also delete the seek proxy (an unredacted copy of the video)."""
        self._stop.set()
        for reader in (self.reader, self.thumb_reader, self.proxy):
            if reader is not None:
                reader.close()
        if not keep_proxy and self.proxy_file is not None:
            remove_proxy(self.proxy_file)


class _Fixed:
    """A `ShownRegion` already read for one frame: its region, the subject's detected face and
    head, and the duplicates of their face."""

    def __init__(self, boxes: np.ndarray, seen: np.ndarray, duplicates: frozenset[int]) -> None:
        self.boxes = boxes
        self.detected = seen
        self.duplicates = duplicates

    def at(self, _frame: int, _width: int, _height: int) -> np.ndarray:
        return self.boxes

    def seen(self, _frame: int, _width: int, _height: int) -> np.ndarray:
        return self.detected


def forget_shown(plan: Plan, track_id: int) -> None:
    """A track about to be deleted leaves show_only; deleting its only track is refused (the
    request would otherwise end silently and show everyone)."""
    if plan.show_only is None or track_id not in plan.show_only.tracks:
        return
    rest = [i for i in plan.show_only.tracks if i != track_id]
    if not rest:
        raise EditError(f"track {track_id} is the only one shown (show only); end the request first")
    set_show_only(plan, rest)


def remove_proxy(path: Path) -> None:
    """The proxy and any partial one being written (a thread may still be finishing it)."""
    import contextlib

    for p in [path, *path.parent.glob(f".{path.stem}.veil-tmp-*")]:
        with contextlib.suppress(OSError):
            p.unlink()


def proxy_width(reader: FrameReader) -> int:
    return int(reader._stream.codec_context.width)


def render_settings(plan: Plan, overwrite: bool = False, report: bool = False) -> Any:
    """Settings to paint with: the plan's own, audio section included (as `veil render` uses
    them with no options)."""
    from veil.config import settings_for_plan

    return settings_for_plan(plan, overwrite=overwrite, report=report)


def jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise VeilError("cannot encode a frame as JPEG")
    return data.tobytes()


def audio_peaks(path: Path, buckets: int, trim: TimeRange | None = None) -> list[float]:
    """Peak levels of the first audio stream in `buckets` slices; of `trim`'s part only (a plan
    scanned with --start/--end, whose times count from its start)."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                return []
            stream = container.streams.audio[0]
            duration = float(stream.duration * stream.time_base) if stream.duration else None
            if not duration and container.duration:
                duration = container.duration / av.time_base
            if not duration:
                return []
            start = 0.0
            if trim is not None:
                start = trim.start
                duration = (duration if trim.end is None else min(duration, trim.end)) - start
                if duration <= 0:
                    return []
                container.seek(int(start / float(stream.time_base)), stream=stream)
            peaks = np.zeros(buckets, dtype=np.float32)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * frame.time_base) - start
                if t < 0:
                    continue
                if t >= duration:
                    break
                samples = frame.to_ndarray()
                level = float(np.abs(samples).max()) if samples.size else 0.0
                if samples.dtype.kind == "i":
                    level /= float(np.iinfo(samples.dtype).max)
                b = min(buckets - 1, max(0, int(t / duration * buckets)))
                peaks[b] = max(peaks[b], level)
            top = float(peaks.max()) or 1.0
            return [round(float(p) / top, 3) for p in peaks]
    except Exception:  # noqa: BLE001 - no waveform is shown; ranges can still be typed
        return []

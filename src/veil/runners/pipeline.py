"""The whole job: decide outputs for the inputs, then run each file through

    source -> detect -> track -> plan -> render (redact -> sink) -> verify -> report

`Pipeline.redact` is the one-shot `veil INPUT` (one streaming pass: the tracker's boxes go
through the plan builder and are painted as they are emitted, and the plan is written beside
as it is made); `Pipeline.scan` stops at the plan; `Pipeline.render` starts from one.

Fail closed: a frame reaches the sink only after its masks were painted; any error aborts the
file, and the sink's temporary output is deleted, never renamed. Every output is verified
against its plan from its own pixels before it is renamed into place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from veil import __version__
from veil.analysis.classes import finds_people
from veil.analysis.detectors import sha256_of
from veil.analysis.scan import tracked_frames
from veil.analysis.track import LookaheadTracker
from veil.analysis.zones import ZonePainter
from veil.config import Settings
from veil.errors import MediaError, VeilError
from veil.media.animation import stream_classes
from veil.media.audio import AUDIO_EXTS, AudioEdit, process_file
from veil.media.metadata import check_output, kept_exif
from veil.media.sink import atomic_output, default_suffix, output_problem, write_image
from veil.media.source import (
    ANIMATION_EXTS,
    IMAGE_EXTS,
    VIDEO_EXTS,
    AudioPacket,
    DecodedImage,
    VideoSource,
    media_kind,
    read_image,
)
from veil.plan import (
    FrameBoxes,
    Plan,
    PlanBuilder,
    PlanError,
    load_plan,
    plan_time_range,
    plan_zones,
    sign_off,
    write_plan_stream,
)
from veil.progress import Reporter
from veil.render.depth import paint_page, paint_region
from veil.render.paint import FrameRenderer, SecondOpinion
from veil.render.redact import redactor_for, shown_mask
from veil.render.verify import verify
from veil.runners.stages import prefetch
from veil.types import Detections, Frame

SUFFIX = "_veiled"
PLAN_SUFFIX = ".plan.json"

# The highest frame rate the analysis believes. Above it the header is damaged or odd, not a
# camera's: the schedules kept in time (the detectors' `pace`) would search that many times more
# rarely, and the tracker's look-ahead would hold that many frames. Such a file is analysed as if
# its rate were unknown: every frame searched, a 30-frame look-ahead. Slow-motion phones write
# 240 fps; footage at thousands of fps is not of people to be released.
MAX_ANALYSIS_FPS = 1000.0


@dataclass
class Job:
    input: Path
    output: Path
    kind: str
    # One-shot: also keep the plan here (--plan). Render: the plan file being applied.
    plan_path: Path | None = None


@dataclass
class FileResult:
    input: Path
    output: Path | None
    ok: bool
    error: str | None = None
    record: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- choosing outputs


def _walk(directory: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            # Skip our own outputs and temporaries so a re-run does not veil them again.
            if name.startswith(".") or Path(name).stem.endswith(SUFFIX):
                continue
            if path.suffix.lower() in IMAGE_EXTS | ANIMATION_EXTS | VIDEO_EXTS | AUDIO_EXTS:
                found.append(path)
    return found


def _collect(
    inputs: Iterable[str], failed: list[FileResult], walk: Callable[[Path], list[Path]]
) -> list[tuple[Path, Path | None]]:
    pairs: list[tuple[Path, Path | None]] = []  # (file, base directory it was found under)
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            failed.append(FileResult(path, None, False, f"{path}: no such file or directory"))
        elif path.is_dir():
            files = walk(path)
            if not files:
                failed.append(FileResult(path, None, False, f"{path}: nothing veil can read in this directory"))
            pairs.extend((f, path) for f in files)
        elif not os.access(path, os.R_OK):
            failed.append(FileResult(path, None, False, f"{path}: file is not readable"))
        else:
            pairs.append((path, None))
    return pairs


def _targets(
    pairs: list[tuple[Path, Path | None]], output: str | None, name_for: Callable[[Path], str]
) -> list[tuple[Path, Path]]:
    """(input, output path) per input: beside the input, or under -o (a file for one input, a
    directory for several, mirroring the tree of a directory input)."""
    out = Path(output) if output else None
    many = len(pairs) > 1 or any(base is not None for _, base in pairs)
    if out is not None and many and out.exists() and not out.is_dir():
        raise VeilError(f"{out}: -o must be a directory when there are several inputs")
    result = []
    for path, base in pairs:
        if out is None:
            target = path.with_name(name_for(path))
        elif many:
            rel = path.relative_to(base) if base is not None else Path(path.name)
            target = out / rel.parent / name_for(rel)
        elif out.is_dir() or str(output).endswith(os.sep):
            target = out / name_for(path)
        else:
            target = out
        result.append((path, target))
    return result


def plan_jobs(
    inputs: Iterable[str], output: str | None, settings: Settings, plan_output: str | None = None
) -> tuple[list[Job], list[FileResult]]:
    """Outputs of the one-shot run; problems become failed results, not exceptions."""
    failed: list[FileResult] = []
    pairs = _collect(inputs, failed, _walk)
    many = len(pairs) > 1 or any(base is not None for _, base in pairs)
    fmt = settings.output_format

    def name_for(path: Path) -> str:
        ext = fmt or default_suffix(path)
        return (path.stem + ext) if (output and many) else (path.stem + SUFFIX + ext)

    jobs: list[Job] = []
    taken: dict[Path, Path] = {}
    plans = dict(_targets(pairs, plan_output, lambda p: p.stem + PLAN_SUFFIX)) if plan_output else {}
    for path, target in _targets(pairs, output, name_for):
        problem = _check_target(path, target, settings.overwrite, taken)
        if problem:
            failed.append(FileResult(path, target, False, problem))
            continue
        try:
            kind = media_kind(path)
        except MediaError as exc:
            failed.append(FileResult(path, target, False, str(exc)))
            continue
        problem = _check_kind(kind, target)
        if problem:
            failed.append(FileResult(path, target, False, problem))
            continue
        plan_path = plans.get(path)
        if plan_path is not None:
            problem = _check_target(path, plan_path, settings.overwrite, taken)
            if problem:
                failed.append(FileResult(path, target, False, problem))
                continue
            taken[plan_path.resolve()] = path
        taken[target.resolve()] = path
        jobs.append(Job(path, target, kind, plan_path))
    return jobs, failed


# Kept for callers of the first release's name.
plan = plan_jobs


def scan_jobs(inputs: Iterable[str], output: str | None, overwrite: bool) -> tuple[list[Job], list[FileResult]]:
    """Plan files for `veil scan`: NAME.plan.json beside each input, or under -o."""
    failed: list[FileResult] = []
    jobs: list[Job] = []
    taken: dict[Path, Path] = {}
    for path, target in _targets(_collect(inputs, failed, _walk), output, lambda p: p.stem + PLAN_SUFFIX):
        problem = _check_target(path, target, overwrite, taken)
        if problem is None:
            try:
                jobs.append(Job(path, target, media_kind(path)))
                taken[target.resolve()] = path
                continue
            except MediaError as exc:
                problem = str(exc)
        failed.append(FileResult(path, target, False, problem))
    return jobs, failed


def render_jobs(
    plans: Iterable[str], output: str | None, settings: Settings
) -> tuple[list[tuple[Job, Plan]], list[FileResult]]:
    """(job, plan) per plan file for `veil render`; the output is named after the plan's input."""
    failed: list[FileResult] = []
    loaded: list[tuple[Path, Plan, Path]] = []
    walk = lambda d: sorted(d.rglob("*" + PLAN_SUFFIX))  # noqa: E731
    for plan_path, _base in _collect(plans, failed, walk):
        try:
            plan_obj = load_plan(plan_path, spooled=True)
        except PlanError as exc:
            failed.append(FileResult(plan_path, None, False, str(exc)))
            continue
        source = Path(plan_obj.input.get("path") or "")
        if not source.is_absolute():
            source = (plan_path.parent / source).resolve()
        loaded.append((plan_path, plan_obj, source))
    many = len(loaded) > 1
    out = Path(output) if output else None
    if out is not None and many and out.exists() and not out.is_dir():
        raise VeilError(f"{out}: -o must be a directory when there are several plans")
    jobs: list[tuple[Job, Plan]] = []
    taken: dict[Path, Path] = {}
    for plan_path, plan_obj, source in loaded:
        ext = settings.output_format or default_suffix(source)
        name = source.stem + SUFFIX + ext
        if out is None:
            target = source.with_name(name)
        elif many or out.is_dir() or str(output).endswith(os.sep):
            target = out / name
        else:
            target = out
        if not source.is_file():
            failed.append(FileResult(source, target, False, f"{plan_path}: its input {source} is missing"))
            continue
        problem = _check_target(source, target, settings.overwrite, taken) or _check_kind(
            plan_obj.input["kind"], target
        )
        if problem:
            failed.append(FileResult(source, target, False, problem))
            continue
        taken[target.resolve()] = source
        jobs.append((Job(source, target, plan_obj.input["kind"], plan_path), plan_obj))
    return jobs, failed


def _check_kind(kind: str, target: Path) -> str | None:
    return output_problem(kind, target)


def _check_target(src: Path, target: Path, overwrite: bool, taken: dict[Path, Path]) -> str | None:
    resolved = target.resolve()
    if resolved == src.resolve() or (target.exists() and os.path.samefile(src, target)):
        return f"{target}: output would overwrite the input; choose another -o"
    if resolved in taken:
        return f"{target}: output already used for {taken[resolved]}"
    if target.exists() and not overwrite:
        return f"{target}: already exists (use --overwrite to replace it)"
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        return f"{parent}: output directory is not writable"
    return None


# ----------------------------------------------------------------------------- running


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        reporter: Reporter | None = None,
        reviewer: str | None = None,
        second_opinion: bool = False,
    ) -> None:
        self.settings = settings
        self.reporter = reporter or Reporter(quiet=True)
        self.reviewer = reviewer
        # Render: also look at the output with a second face detector (the one-shot run always
        # does; a render runs no detector unless asked, so it needs no model and stays fast).
        self.second_opinion = second_opinion
        self._detector: Any = None
        self._workdir: Path | None = None
        self._plans_made = 0

    @property
    def detect(self) -> Any:
        """The detectors, built on first use (rendering a plan needs none)."""
        if self._detector is None:
            from veil.analysis.detect import FrameDetector

            self._detector = FrameDetector(self.settings)
            self.reporter.info(providers_line())
        return self._detector

    @property
    def workdir(self) -> Path:
        """Where one-shot plans (and the builder's spool) live until the report has copied them;
        made on first use, so a render writes nothing outside its output's folder."""
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="veil-"))
        return self._workdir

    def close(self) -> None:
        """Remove the scratch directory; the pipeline stays usable (a later job makes a new one),
        so a worker that keeps its pipeline (and its loaded detectors) between jobs closes it
        after each job instead of leaving one directory in the system's temp folder per process."""
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def describe(self) -> dict[str, Any]:
        from veil.render.masks import create as create_mask

        mask = create_mask(self.settings.mask, **self.settings.mask_options())
        # The mask's own record carries its colour: the raw option beside it only repeated it.
        settings = {k: v for k, v in self.settings.to_json().items() if k != "mask_color"}
        out = {
            **settings,
            "mask": {"name": mask.name, "irreversible": mask.irreversible, **mask.settings()},
            "detect_stride": self.settings.preset_obj.detect_stride,
            "keep_audio": self.settings.keep_audio,
            "keep_metadata": self.settings.keep_metadata,
        }
        if self._detector is not None:
            out["detectors"] = self._detector.describe()
        return out

    # -------------------------------------------------------------- the three commands

    def run(self, jobs: list[Job]) -> list[FileResult]:
        return [self.redact(job) for job in jobs]

    def redact(self, job: Job) -> FileResult:
        """One-shot: detect, track, plan and render in one streaming pass, then verify."""
        if job.kind == "audio":
            return self._guarded(job, lambda record: self._audio_only(job, record))
        return self._guarded(job, lambda record: self._redact(job, record))

    def scan(self, job: Job) -> FileResult:
        """Detect and track only; write the plan to `job.output`."""
        if job.kind == "audio":
            message = f"{job.input}: audio only, no picture to plan; use veil FILE --audio mute|bleep|disguise"
            return FileResult(job.input, job.output, False, message, {"input": str(job.input), "error": message})
        return self._guarded(job, lambda record: self._scan(job, record))

    def render(self, job: Job, plan_obj: Plan) -> FileResult:
        """Apply `plan_obj` to `job.input` with no detector run, then verify."""
        return self._guarded(job, lambda record: self._render(job, plan_obj, record))

    def _guarded(self, job: Job, body: Callable[[dict[str, Any]], None]) -> FileResult:
        started = time.monotonic()
        record: dict[str, Any] = {
            "input": str(job.input),
            "output": str(job.output),
            "kind": job.kind,
            "input_sha256": sha256_of(job.input),
            "warnings": [],
        }
        try:
            body(record)
        except VeilError as exc:
            self.reporter.end_file()
            record["error"] = str(exc)
            return FileResult(job.input, job.output, False, str(exc), record)
        except Exception as exc:  # noqa: BLE001 - any failure must abort this file only
            self.reporter.end_file()
            message = f"{job.input}: failed ({type(exc).__name__}: {exc})"
            record["error"] = message
            return FileResult(job.input, job.output, False, message, record)
        record.pop("_speech", None)
        record["seconds"] = round(time.monotonic() - started, 3)
        if "output_sha256" not in record and job.output.is_file():
            record["output_sha256"] = sha256_of(job.output)
        return FileResult(job.input, job.output, True, None, record)

    # -------------------------------------------------------------- one-shot

    def _redact(self, job: Job, record: dict[str, Any]) -> None:
        settings = self.settings
        self.detect.reset()
        detect_before = self.detect.seconds
        renderer = FrameRenderer(settings, zones=list(settings.zones), thumbnails=settings.report, second_opinion=True)
        builder = PlanBuilder(self.workdir)
        started = time.monotonic()
        try:
            with atomic_output(job.output, settings.overwrite) as tmp:
                if job.kind == "image":
                    info = self._image(job, tmp, record, renderer, self._detected_image(builder, renderer))
                else:
                    info = self._video(job, tmp, record, renderer, self._tracked(job, builder, renderer))
                builder.finish()
                self._plans_made += 1
                plan_file = self.workdir / f"{self._plans_made}{PLAN_SUFFIX}"
                self._write_plan(plan_file, job, record, info, renderer.review.flags(), builder)
                plan_obj = load_plan(plan_file, spooled=True)
                self._finish(job, tmp, plan_obj, record, renderer, started)
        finally:
            builder.close()
        record["plan_sha256"] = sha256_of(plan_file)
        record["_plan_file"] = str(plan_file)
        if job.plan_path is not None:
            with atomic_output(job.plan_path, settings.overwrite) as tmp_plan:
                shutil.copyfile(plan_file, tmp_plan)
            record["plan"] = str(job.plan_path)
        record["timings"]["detect_s"] = round(self.detect.seconds - detect_before, 3)
        self._done(job, record)

    def _detected_image(
        self, builder: PlanBuilder, renderer: FrameRenderer
    ) -> Callable[[Frame], tuple[Detections, Detections, bool]]:
        def boxes(frame: Frame) -> tuple[Detections, Detections, bool]:
            return self._detect_page(frame, builder, renderer.redactor.paint_zones), Detections.empty(), False

        return boxes

    def _tracked(
        self, job: Job, builder: PlanBuilder, renderer: FrameRenderer, segment: Any = None
    ) -> Callable[[VideoSource], Iterator[Any]]:
        def frames(source: VideoSource) -> Iterator[AudioPacket | tuple[Frame, Detections, Detections, bool]]:
            prepare = renderer.redactor.paint_zones if renderer.redactor.zones else None
            for item in self._planned_frames(job, source, builder, prepare, segment):
                if isinstance(item, AudioPacket):
                    yield item
                else:
                    yield (*item, Detections.empty(), False)

        return frames

    def _detect_page(self, frame: Frame, builder: PlanBuilder, prepare: Callable[[np.ndarray], None]) -> Detections:
        """A photo or page: privacy zones painted first (never looked at), detected, planned."""
        prepare(frame.image)
        return builder.add(frame.index, self.detect.run(frame.image))

    def _planned_frames(
        self,
        job: Job,
        source: VideoSource,
        builder: PlanBuilder,
        prepare: Callable[[np.ndarray], None] | None,
        segment: Any = None,
    ) -> Iterator[AudioPacket | tuple[Frame, Detections]]:
        """A video's analysis, the one analysis loop of veil (the one-shot run, scan and each
        segment of a long video): each frame with the boxes the plan holds for it, once the
        tracker has seen far enough past it (audio passes through). For a `segment`, the frames
        of its overlap only prime the tracker, and its plan numbers frames from its start."""
        rate = float(source.info.rate) if source.info.rate else None
        if rate is not None and not 0 < rate <= MAX_ANALYSIS_FPS:
            self.reporter.warn(f"{job.input}: the file claims {rate:g} fps; analysed as if its rate were unknown")
            rate = None
        tracker = LookaheadTracker.for_video(rate, self.settings.lookahead_s, stride=self.detect.max_stride)
        self.detect.pace(rate)
        builder.follow(tracker.persons)  # tracks of one person share a `person` number in the plan
        # Animations: every frame is detected with the image settings (few frames, often
        # unrelated: a tracker's stride would guess across jumps).
        every = job.kind == "animation"
        for item in tracked_frames(source, self.detect, tracker, every_frame=every, prepare=prepare, ahead=prefetch):
            if isinstance(item, AudioPacket):
                yield item
            else:
                frame, final = item
                if segment is None:
                    yield frame, builder.add(frame.index, final)
                elif frame.index >= segment.end:
                    return
                elif frame.index >= segment.start:
                    yield frame, builder.add(frame.index - segment.start, final)

    def _analysis_stage(
        self,
        job: Job,
        source: VideoSource,
        builder: PlanBuilder,
        prepare: Callable[[np.ndarray], None] | None,
        segment: Any = None,
    ) -> Iterator[Any]:
        """`_planned_frames` with decoding and analysis in threads of their own (stages.py), for
        the loops that scan without painting; close it when done."""
        return prefetch(
            lambda: _analysed(lambda decoded: self._planned_frames(job, decoded, builder, prepare, segment), source),
            "veil-stage-analyse",
        )

    def _audio_only(self, job: Job, record: dict[str, Any]) -> None:
        """A file with no picture: its audio streams copied, or muted, bleeped or disguised."""
        started = time.monotonic()
        edit, _ = self._speech(job, record)
        applied = edit or self.settings.audio_edit()
        with atomic_output(job.output, self.settings.overwrite) as tmp:
            record.update(process_file(job.input, tmp, applied))
            record["metadata"], meta_warnings = check_output(job.input, tmp, self.settings.keep_metadata)
        record["warnings"].extend(meta_warnings)
        record.update(frames_processed=0, counts={"regions": 0})
        record["timings"] = {"total_s": round(time.monotonic() - started, 3)}
        record["output_sha256"] = sha256_of(job.output)
        # What was applied: --audio-pii's edit when it found something, else the option's.
        what = applied.mode + (f" ({len(applied.ranges)} ranges)" if applied.ranges else "")
        self.reporter.info(
            f"[green]done[/] {job.input} -> {job.output}: audio {what}, {record['timings']['total_s']:.1f} s"
        )

    # -------------------------------------------------------------- scan

    def _scan(self, job: Job, record: dict[str, Any]) -> None:
        from veil.review.log import ReviewLog

        started = time.monotonic()
        self.detect.reset()
        review = ReviewLog()
        # A second detector looks for faces outside the planned masks, for the worth-a-look list.
        second, masks = SecondOpinion(heads=finds_people(self.settings.classes)), redactor_for(self.settings)
        builder = PlanBuilder(self.workdir)
        zones = ZonePainter(list(self.settings.zones), (0, 0, 0))
        try:
            if job.kind == "image":
                decoded = read_image(job.input)
                self.reporter.start_file(job.input.name, len(decoded.pages))
                for page in decoded.pages:
                    review.offer(page.frame.index, self._detect_page(page.frame, builder, zones.paint))
                    self.reporter.advance()
                self.reporter.end_file()
                info = _image_info(decoded)
                record["frames_processed"] = len(decoded.pages)
            else:
                source_class, _ = stream_classes(job.kind, job.output)
                with source_class(job.input, with_audio=False, **self._range(job)) as source:
                    self.reporter.start_file(job.input.name, source.expected_frames)
                    prepare = zones.paint if zones else None
                    # Decoding and analysis run ahead in threads of their own (as in `_video`).
                    planned_frames = self._analysis_stage(job, source, builder, prepare)
                    try:
                        for item in planned_frames:
                            frame, planned = item
                            covered = masks.mask_boxes(planned, frame.width, frame.height)
                            review.offer(frame.index, planned, second.look(frame.index, frame.image, covered))
                            self.reporter.advance()
                    finally:
                        planned_frames.close()
                        self.reporter.end_file()
                    info = _video_info(source)
                    record["frames_processed"] = source.frames_decoded
            builder.finish()
            self._write_plan(job.output, job, record, info, review.flags(), builder, propose=True)
        finally:
            builder.close()
        record["plan"] = str(job.output)
        record["plan_sha256"] = sha256_of(job.output)
        record["tracks"] = builder.summary
        record["review"] = review.flags()
        record["second_opinion"] = {"frames_checked": second.checked, "frames_flagged": second.flagged}
        record["warnings"].extend(review.warnings())
        record["seconds"] = round(time.monotonic() - started, 3)
        record["plan_bytes"] = job.output.stat().st_size
        n = record["frames_processed"]
        self.reporter.info(
            f"[green]scanned[/] {job.input} -> {job.output}: {n} frame{'s' * (n != 1)}, "
            f"{builder.tracks_written} track{'s' * (builder.tracks_written != 1)}, {record['seconds']:.1f} s"
        )

    # -------------------------------------------------------------- render

    def segment(self, job: Job, segment: Any, plan_path: Path, input_sha: str, render: bool = True) -> dict[str, Any]:
        """One segment of a long video (segments.py), through the same analysis and paint loops
        as the whole file: frames [start, end) analysed with the overlap around them, painted
        and encoded into `job.output` (atomic; no audio: the join adds it), and the segment's
        plan written to `plan_path`. With `render` False only the plan (the GPU path scans on
        one machine and `render_segment` paints elsewhere). Raises on failure."""
        settings = self.settings
        self.detect.reset()  # a segment starts afresh, whatever this worker ran before
        detect_before = self.detect.seconds
        started = time.monotonic()
        renderer = FrameRenderer(settings, zones=list(settings.zones), second_opinion=True)
        builder = PlanBuilder(self.workdir)
        record: dict[str, Any] = {"input_sha256": input_sha, "warnings": []}
        try:
            if render:
                with atomic_output(job.output, overwrite=True) as tmp:
                    frames = self._tracked(job, builder, renderer, segment)
                    info = self._video(job, tmp, record, renderer, frames, segment=segment)
                    builder.finish()
                    self._write_plan(plan_path, job, record, info, renderer.review.flags(), builder)
                    verified = self._verify_segment(job, segment, plan_path, tmp)
            else:
                source_class, _ = stream_classes(job.kind, job.output)
                with source_class(job.input, with_audio=False, **self._range(job, None, segment)) as source:
                    prepare = renderer.redactor.paint_zones if renderer.redactor.zones else None
                    planned_frames = self._analysis_stage(job, source, builder, prepare, segment)
                    try:
                        for frame, planned in planned_frames:
                            renderer.review.offer(frame.index, planned)
                    finally:
                        planned_frames.close()
                    info = _video_info(source, segment)
                    record.update(frames_decoded=source.frames_decoded, rotation=source.info.rotation)
                builder.finish()
                self._write_plan(plan_path, job, record, info, renderer.review.flags(), builder)
        finally:
            builder.close()
        out = _segment_result(segment, plan_path, record, started, self.detect.seconds - detect_before)
        if render:
            out.update(_segment_output(job.output, renderer, verified))
        return out

    def render_segment(self, job: Job, segment: Any, plan_path: Path) -> dict[str, Any]:
        """Paint a scanned segment's plan onto its frames and encode them into `job.output`: no
        detector, no overlap (a segment starts at a keyframe)."""
        started = time.monotonic()
        plan_obj = load_plan(plan_path, spooled=True)
        renderer = FrameRenderer(self.settings, zones=plan_zones(plan_obj), second_opinion=self.second_opinion)
        record: dict[str, Any] = {"warnings": []}
        with atomic_output(job.output, overwrite=True) as tmp:
            frames = self._painted_from_plan(plan_obj, segment.start)
            self._video(job, tmp, record, renderer, frames, plan_obj, segment=segment)
            verified = self._verify_segment(job, segment, plan_path, tmp)
        return {
            **_segment_result(segment, plan_path, record, started, 0.0),
            **_segment_output(job.output, renderer, verified),
        }

    def _verify_segment(self, job: Job, segment: Any, plan_path: Path, tmp: Path) -> dict[str, Any] | None:
        """Solid masks: check a segment's own pixels against its own plan, in the worker (blur
        and pixelate need the input's pixels under each mask: the joined file is verified)."""
        if self.settings.mask != "solid":
            return None
        result = verify(load_plan(plan_path, spooled=True), tmp, self.settings)
        if not result.ok:
            raise VeilError(f"{job.input}: segment {segment.index}: {result.summary()}; nothing written")
        return result.to_json()

    def _painted_from_plan(self, plan_obj: Plan, offset: int = 0) -> Callable[[VideoSource], Iterator[Any]]:
        """Frames with the boxes a plan holds for them (frame numbers less `offset`: a segment's
        plan counts from its start)."""
        planned = _planned_boxes(plan_obj, offset)

        def frames(source: VideoSource) -> Iterator[Any]:
            for item in source.items():
                yield item if isinstance(item, AudioPacket) else (item, *planned(item))

        return frames

    def _render(self, job: Job, plan_obj: Plan, record: dict[str, Any]) -> None:
        if record["input_sha256"] != plan_obj.input.get("sha256"):
            raise VeilError(
                f"{job.input}: does not match the plan {job.plan_path} (SHA-256 differs); the input changed "
                "since it was scanned: scan it again"
            )
        for line in plan_obj.warnings:
            record["warnings"].append(line)
            self.reporter.warn(f"{job.plan_path}: {line}")
        started = time.monotonic()
        zones = plan_zones(plan_obj)
        renderer = FrameRenderer(
            self.settings,
            zones=zones,
            thumbnails=self.settings.report,
            second_opinion=self.second_opinion,
            plan=plan_obj,
        )
        with atomic_output(job.output, self.settings.overwrite) as tmp:
            if job.kind == "image":
                self._image(job, tmp, record, renderer, _planned_boxes(plan_obj))
            else:
                self._video(job, tmp, record, renderer, self._painted_from_plan(plan_obj), plan_obj)
            self._finish(job, tmp, plan_obj, record, renderer, started)
        record["plan"] = str(job.plan_path)
        record["plan_sha256"] = sha256_of(job.plan_path) if job.plan_path else None
        record["decisions"] = decisions(plan_obj, self.reviewer)
        record["sign_off"] = sign_off(plan_obj)
        record["plan_tracks"] = plan_track_counts(plan_obj)
        if plan_obj.show_only is not None:
            record["show_only"] = plan_obj.show_only.to_json()
        record["timings"]["detect_s"] = 0.0
        self._done(job, record)

    # -------------------------------------------------------------- shared

    def _image(
        self,
        job: Job,
        tmp: Path,
        record: dict[str, Any],
        renderer: FrameRenderer,
        boxes_for: Callable[[Frame], tuple[Detections, Detections, bool]],
    ) -> dict[str, Any]:
        decoded = read_image(job.input)
        self.reporter.start_file(job.input.name, len(decoded.pages))
        redactor = renderer.redactor
        for page in decoded.pages:  # every page of a TIFF, each on its own (a plan frame each)
            frame = page.frame
            masked, kept, whole = boxes_for(frame)
            renderer.paint(frame, masked, kept, whole)
            # The alpha channel and the file's own bit depth get the same masks (depth.py).
            h, w = frame.height, frame.width
            if whole or redactor.zones:
                region = np.ones((h, w), bool) if whole else redactor.zone_mask(h, w)
                paint_region(page, region, redactor.fill)
            if not whole:
                paint_page(page, redactor.mask_boxes(masked, w, h), redactor.mask)
                if renderer.show is not None:
                    # show_only: the page's own depth and alpha are filled outside the subject
                    # (opaquely even when the 8-bit copy is blurred: fail closed).
                    paint_region(page, ~shown_mask(renderer.last_shown, h, w), redactor.fill)
            self.reporter.advance()
        write_image(tmp, decoded, kept_exif(decoded.exif) if self.settings.keep_metadata else None)
        self.reporter.end_file()
        record.update(
            frames_processed=len(decoded.pages),
            width=decoded.frame.width,
            height=decoded.frame.height,
            bit_depth=decoded.info["bit_depth"],
        )
        return _image_info(decoded)

    def _video(
        self,
        job: Job,
        tmp: Path,
        record: dict[str, Any],
        renderer: FrameRenderer,
        frames: Callable[[VideoSource], Iterator[Any]],
        plan_obj: Plan | None = None,
        segment: Any = None,
    ) -> dict[str, Any]:
        """The one paint-and-encode loop of veil: the one-shot run, render and each segment of a
        long video (whose audio and container tags are added when its segments are joined)."""
        settings = self.settings
        whole = segment is None
        keep_audio = settings.keep_audio and whole
        source_class, sink_class = stream_classes(job.kind, job.output)
        # A render applies the plan's audio section; a one-shot run with --audio-pii finds its own
        # (a segment has no audio: the runner does not cut a file whose speech is searched).
        edit = self._speech(job, record)[0] if plan_obj is None and whole else None
        with source_class(job.input, with_audio=keep_audio, **self._range(job, plan_obj, segment)) as source:
            tags = source.metadata if settings.keep_metadata and whole else None
            sink = sink_class(
                tmp,
                source.info,
                keep_audio=keep_audio,
                tags=tags,
                speed=settings.preset_obj.encoder_speed,
                allow_crop=settings.allow_crop,
                audio_edit=edit or settings.audio_edit(),
            )
            expected = source.expected_frames if whole else segment.end - segment.start
            self.reporter.start_file(job.input.name, expected)
            # Decode, analysis, painting and encoding overlap, each in a thread of its own
            # (stages.py); this thread encodes, in frame order, only frames already painted.
            painted = prefetch(lambda: _painted(frames, source, renderer), "veil-stage-paint")
            try:
                for item in painted:
                    if isinstance(item, AudioPacket):
                        sink.write_audio(item)
                        continue
                    sink.write_frame(item)
                    self.reporter.advance()
                sink.close()
            except BaseException:
                sink.abort()
                raise
            finally:
                painted.close()  # every stage's thread has ended once this returns
                self.reporter.end_file()
            info = source.info
            if whole:
                expected = source.frames_decoded
            if sink.frames_written != expected:
                where = "" if whole else f" segment {segment.index}"
                raise VeilError(f"{job.input}:{where} wrote {sink.frames_written} of {expected} frames")
            record.update(
                frames_processed=sink.frames_written,
                frames_decoded=source.frames_decoded,
                width=info.width,
                height=info.height,
                rotation=info.rotation,
                frame_rate=str(info.rate) if info.rate else None,
                audio=list(sink.audio_mode.values()) if settings.keep_audio else "dropped (--no-audio)",
                streams_dropped=info.dropped_streams,
            )
            return _video_info(source, segment)

    def _speech(self, job: Job, record: dict[str, Any], propose: bool = False) -> tuple[AudioEdit | None, list]:
        """Spoken personal data (veil.speech) when --audio-pii or --transcript asks, or a scan
        proposes it (`propose`, when the speech extra is installed): the edit that mutes it
        (None without --audio-pii) and the findings. The report gets ranges and reasons only."""
        settings = self.settings
        if "_speech" in record:
            return record["_speech"]  # once per file: the one-shot run paints, then plans
        if settings.audio_pii is None and settings.transcript is None:
            from veil.speech import available

            if not (propose and settings.keep_audio and available()):
                return None, []
        from veil.speech.apply import analyse, pii_edit

        with self.reporter.measured(f"{job.input.name}: listening for spoken personal data", "s of sound") as heard:
            findings, record["audio_pii"] = analyse(job.input, settings.transcript, settings.time_range, heard)
        record["_speech"] = (pii_edit(settings.audio_pii, findings) if settings.audio_pii else None), findings
        return record["_speech"]

    def _plan_audio(self, job: Job, record: dict[str, Any], propose: bool = False) -> dict[str, Any]:
        """The plan's audio section: the options' edit, or --audio-pii's; found ranges as
        `proposed`. Only `veil scan` proposes without being asked (`propose`): recognition (Whisper
        base, about 13x real time on two free cores, plus 2 s to load the model) is too much to add
        to every one-shot run."""
        edit, findings = self._speech(job, record, propose=propose and job.kind == "video")
        audio = (edit or self.settings.audio_edit()).to_json()
        if findings:
            audio["proposed"] = [f.to_json() for f in findings]
        return audio

    def _range(self, job: Job, plan_obj: Plan | None = None, segment: Any = None) -> dict[str, Any]:
        """The source's `time_range` option: the plan's when rendering one, else --start/--end;
        and a segment's frame window."""
        time_range = plan_time_range(plan_obj) if plan_obj is not None else self.settings.time_range
        out: dict[str, Any] = {}
        if segment is not None:
            # Rendering a segment's plan needs no look-ahead: decode from the segment's start.
            out["window"] = segment.render_window() if plan_obj is not None else segment.analysis_window()
        if time_range is None:
            return out
        if job.kind != "video":
            raise VeilError(f"{job.input}: --start/--end apply to videos only")
        return {**out, "time_range": time_range}

    def _write_plan(
        self,
        path: Path,
        job: Job,
        record: dict[str, Any],
        info: dict[str, Any],
        flags: list[dict[str, Any]],
        builder: PlanBuilder,
        propose: bool = False,
    ) -> None:
        header = Plan(
            input={
                "path": str(job.input.resolve()),
                "sha256": record["input_sha256"],
                "size": job.input.stat().st_size,
                **info,
                **({"time_range": self.settings.time_range.to_json()} if self.settings.time_range else {}),
            },
            zones=[
                {"name": z.name, "polygon": z.pixels(info["width"], info["height"]).tolist()}
                for z in self.settings.zones
            ],
            settings={**self.settings.to_json(), "detectors": self.detect.describe()},
            review={"flags": flags},
            audio=self._plan_audio(job, record, propose),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        ).header_json()
        with atomic_output(path, overwrite=True) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            write_plan_stream(fh, header, builder.track_lines())
        record["tracks"] = builder.summary

    def _finish(
        self, job: Job, tmp: Path, plan_obj: Plan, record: dict[str, Any], renderer: FrameRenderer, started: float
    ) -> None:
        """Verify the finished temporary output against its plan, then check its metadata; either
        failing fails the file, so the output is never renamed into place."""
        result = verify(plan_obj, tmp, self.settings, job.input)
        record["verify"] = result.to_json()
        if not result.ok:
            raise VeilError(f"{job.input}: {result.summary()}; nothing written")
        meta_started = time.monotonic()
        record["metadata"], meta_warnings = check_output(job.input, tmp, self.settings.keep_metadata)
        for line in meta_warnings:
            record["warnings"].append(line)
            self.reporter.warn(f"{job.input}: {line}")
        total = time.monotonic() - started
        record["timings"] = {
            "total_s": round(total, 3),
            "verify_s": round(result.seconds, 3),
            "metadata_check_s": round(time.monotonic() - meta_started, 3),
        }
        record["counts"] = renderer.counts()
        record["review"] = renderer.review.flags()
        record["warnings"].extend(renderer.review.warnings())
        # Not written to the JSON (keys starting with "_"); the HTML report shows them.
        record["_thumbnails"] = renderer.sampler.result() if renderer.sampler is not None else []

    def _done(self, job: Job, record: dict[str, Any]) -> None:
        record["output_sha256"] = sha256_of(job.output)
        self.reporter.info(done_line(job.input, job.output, record, fps=job.kind == "video"))


def done_line(source: Path, output: Path, record: dict[str, Any], fps: bool = False) -> str:
    """The one line a finished file gets: frames, regions, how much of the picture the masks
    took (a release that is mostly black is less useful), time, and `fps` the rate."""
    n = record.get("frames_processed", 0)
    counts = record.get("counts") or {}
    regions = int(counts.get("regions", 0))
    seconds = (record.get("timings") or {}).get("total_s", 0)
    share = (
        f" ({100 * counts['masked_pixels'] / counts['frame_pixels']:.1f} % of the picture)"
        if counts.get("frame_pixels")
        else ""
    )
    rate = f", {n / seconds:.1f} fps" if fps and seconds else ""
    return (
        f"[green]done[/] {source} -> {output}: {n} frame{'s' * (n != 1)}, "
        f"{regions} region{'s' * (regions != 1)} redacted{share}, verified, {seconds:.1f} s{rate}"
    )


class _Decoded:
    """A video source whose frames are decoded ahead by a thread of their own (its `items()`);
    everything else is the source's."""

    def __init__(self, source: VideoSource) -> None:
        self._source = source
        self._items: Iterator[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def items(self) -> Iterator[Any]:
        self._items = prefetch(self._source.items, "veil-stage-decode")
        return self._items

    def close(self) -> None:
        if self._items is not None:
            self._items.close()


def _analysed(frames: Callable[[Any], Iterator[Any]], source: VideoSource) -> Iterator[Any]:
    """The analysis stage: `frames` (detect, track, plan; or a plan's boxes) over the decoded
    frames, which the decode stage reads ahead."""
    decoded = _Decoded(source)
    try:
        yield from frames(decoded)
    finally:
        decoded.close()


def _painted(
    frames: Callable[[Any], Iterator[Any]], source: VideoSource, renderer: FrameRenderer
) -> Iterator[AudioPacket | Frame]:
    """The paint stage: each analysed frame painted with its masks (audio passes through)."""
    analysed = prefetch(lambda: _analysed(frames, source), "veil-stage-analyse")
    try:
        for item in analysed:
            if isinstance(item, AudioPacket):
                yield item
                continue
            frame, masked, kept, whole_frame = item
            renderer.paint(frame, masked, kept, whole_frame)
            yield frame
    finally:
        analysed.close()


def providers_line() -> str:
    """Which of onnxruntime's execution providers the detectors run on, as one line."""
    from veil.analysis.detectors import providers_in_use

    providers = providers_in_use()
    if not providers:
        return "detection: no onnxruntime network loaded"
    main, rest = providers[0], providers[1:]
    tail = f" ({', '.join(rest)} for what it does not take)" if rest else ""
    return f"detection runs on onnxruntime's {main}{tail}"


def _image_info(decoded: DecodedImage) -> dict[str, Any]:
    """The plan's input description of an image: its pages are the plan's frames."""
    return {"kind": "image", "width": decoded.frame.width, "height": decoded.frame.height, "frames": len(decoded.pages)}


def _video_info(source: VideoSource, segment: Any = None) -> dict[str, Any]:
    info = source.info
    rot = info.rotation % 180 != 0
    if segment is not None:
        # A segment's plan: its own frames, numbered from its start (segments.merged_plan).
        return {**_video_info(source), "frames": segment.end - segment.start, "segment": segment.to_json()}
    return {
        "kind": "animation" if type(source).__name__ == "AnimationSource" else "video",
        # Plan coordinates are those of the upright picture.
        "width": info.height if rot else info.width,
        "height": info.width if rot else info.height,
        "frames": source.frames_decoded,
        "frame_rate": str(info.rate) if info.rate else None,
        "time_base": str(info.time_base),
        "rotation": info.rotation,
        "duration_s": info.duration_s,
    }


def _planned_boxes(plan_obj: Plan, offset: int = 0) -> Callable[[Frame], tuple[Detections, Detections, bool]]:
    """A frame's boxes from a plan: (masked, kept, whole frame masked); frame numbers less
    `offset` (a segment's plan counts from its start)."""
    boxes = FrameBoxes(plan_obj)

    def planned(frame: Frame) -> tuple[Detections, Detections, bool]:
        index = frame.index - offset
        masked, kept = boxes.at(index)
        return masked, kept, boxes.whole_frame(index) is not None

    return planned


def _segment_result(
    segment: Any, plan_path: Path, record: dict[str, Any], started: float, detect_s: float
) -> dict[str, Any]:
    """What a segment's worker sends back (small JSON; segments.join reads it)."""
    return {
        "segment": segment.to_json(),
        "plan": str(plan_path),
        "frames": segment.end - segment.start,
        "frames_decoded": record["frames_decoded"],
        "rotation": record["rotation"],
        "seconds": round(time.monotonic() - started, 3),
        "detect_s": round(detect_s, 3),
    }


def _segment_output(out_path: Path, renderer: FrameRenderer, verified: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "output": str(out_path),
        "output_sha256": sha256_of(out_path),
        "counts": renderer.counts(),
        "verify": verified,
    }


def plan_track_counts(plan_obj: Plan) -> dict[str, Any]:
    """The plan's tracks for the report: how many, by label, and how many a reviewer kept."""
    labels: dict[str, int] = {}
    kept = manual = 0
    for track in plan_obj.tracks:
        labels[track.label] = labels.get(track.label, 0) + 1
        kept += not track.redact
        manual += track.source == "manual"
    return {"total": sum(labels.values()), "by_label": labels, "kept_visible": kept, "manual": manual}


def decisions(plan_obj: Plan, reviewer: str | None) -> list[dict[str, Any]]:
    """Every human decision in a plan, for the audit report: tracks kept visible or added by
    hand, whole-frame ranges, and what the review page logged (with who and when)."""
    logged = {d.get("track"): d for d in plan_obj.review.get("decisions", []) if isinstance(d, dict)}
    who = reviewer or plan_obj.review.get("reviewer")
    out: list[dict[str, Any]] = []
    for track in plan_obj.tracks:
        if track.redact and track.source == "detector":
            continue
        entry = {
            "track": track.id,
            "label": track.label,
            "decision": "kept visible" if not track.redact else "added by hand",
            "reason": track.reason,
            "reviewer": logged.get(track.id, {}).get("reviewer") or who,
            "time": logged.get(track.id, {}).get("time"),
            "frames": [track.first, track.last],
        }
        if track.source == "manual" and not track.redact:
            entry["decision"] = "added by hand, kept visible"
        out.append(entry)
    for rng in plan_obj.frame_ranges:
        out.append({"decision": "whole frames masked", "frames": [rng.start, rng.end], "reason": rng.reason,
                    "reviewer": who})  # fmt: skip
    if plan_obj.review.get("reviewed"):
        out.append({"decision": "marked reviewed", **plan_obj.review["reviewed"]})
    return out


def report_header(pipeline: Pipeline) -> dict[str, Any]:
    return {"veil_version": __version__, "settings": pipeline.describe()}

"""veil as a library: the same code the command line runs, for scripts and other tools.

    import veil

    result = veil.anonymize("clip.mp4", "safe.mp4", mask="solid", redact="faces,plates")
    plan = veil.scan_to_plan("clip.mp4")                    # detect and track only
    result = veil.render_plan(plan, "safe.mp4")               # paint a (reviewed) plan, verify
    with veil.StreamRedactor(fps=25) as redactor:            # someone else's frame loop
        for image in frames:                                  # H x W x 3 uint8 RGB arrays
            for done in redactor.push(image):
                sink(done)
        for done in redactor.flush():
            sink(done)

Every function checks its options as the command line does (one `Settings`, config.py) and
raises `veil.VeilError` with a one-line message for bad input or a failed file; nothing is
printed unless `progress=True`. Outputs are written to a temporary name, verified from their
pixels, and renamed, exactly as `veil INPUT` does; work files go to veil's private work
directory (cache.py), never beside the output. See docs/api.md.
"""

from __future__ import annotations

import os
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from veil.analysis.classes import DEFAULT_CLASSES
from veil.config import Settings
from veil.errors import VeilError

PathLike = str | os.PathLike[str]

# Not `render`: `veil.render.paint` is the rendering stage's package, which would shadow a function of
# that name on `veil`; `scan_to_plan` pairs with it.
__all__ = ["Result", "StreamRedactor", "anonymize", "render_plan", "scan_to_plan", "settings"]


@dataclass
class Result:
    """What happened to one file: `record` is the file's entry of the audit report (counts,
    verification, warnings, timings; see docs/plan.md for the plan it points at)."""

    input: Path
    output: Path
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def regions(self) -> int:
        """Regions (boxes) masked, over all frames."""
        return int((self.record.get("counts") or {}).get("regions", 0))

    @property
    def frames(self) -> int:
        return int(self.record.get("frames_processed", 0))

    @property
    def verified(self) -> bool:
        """True when every planned mask was found in the output's pixels."""
        return bool((self.record.get("verify") or {}).get("ok"))

    @property
    def warnings(self) -> list[str]:
        return list(self.record.get("warnings") or [])


def _classes(redact: str | Sequence[str]) -> str:
    return redact if isinstance(redact, str) else ",".join(redact)


def _args(**values: Any) -> types.SimpleNamespace:
    """The parsed-arguments object the command line's own settings builders read, so an option
    means exactly what it means on the command line."""
    return types.SimpleNamespace(**values)


def settings(
    *,
    preset: str = "balanced",
    threshold: float | None = None,
    redact: str | Sequence[str] = DEFAULT_CLASSES,
    lookahead: float = 1.0,
    zones: PathLike | None = None,
    start: str | float | None = None,
    end: str | float | None = None,
    mask: str = "solid",
    mask_color: str | None = None,
    margin: float | None = None,
    output_format: str | None = None,
    overwrite: bool = False,
    keep_audio: bool = True,
    keep_metadata: bool = False,
    allow_crop: bool = False,
    audio: str = "keep",
    audio_ranges: str | None = None,
    report: bool = False,
) -> Settings:
    """Checked, final settings from the command line's options (same names, same meaning; see
    `veil --help`): `redact` is a comma list or a sequence of classes, `zones` a zones file,
    `start`/`end` seconds or [h:]mm:ss, `audio_ranges` e.g. "0:12-0:15.5,90-95"."""
    from veil.cli import _detect_settings
    from veil.media.audio import parse_ranges

    args = _args(
        preset=preset,
        threshold=threshold,
        redact=_classes(redact),
        lookahead=lookahead,
        zones=Path(zones) if zones is not None else None,
        start=None if start is None else str(start),
        end=None if end is None else str(end),
    )
    return _detect_settings(
        args,
        margin=margin,
        mask=mask,
        mask_color=mask_color,
        output_format=output_format,
        overwrite=overwrite,
        keep_audio=keep_audio,
        keep_metadata=keep_metadata,
        report=report,
        allow_crop=allow_crop,
        audio=audio,
        audio_ranges=tuple(parse_ranges(audio_ranges)) if audio_ranges else (),
    )


def _reporter(progress: bool) -> Any:
    from veil.progress import Reporter

    return Reporter(quiet=not progress)


def _one(jobs: list[Any], failed: list[Any], what: PathLike) -> Any:
    if failed:
        raise VeilError(failed[0].error or f"{what}: cannot be processed")
    if len(jobs) != 1:
        raise VeilError(f"{what}: give one file (use the command line for folders)")
    return jobs[0]


def _write_report(path: PathLike | None, pipeline: Any, results: list[Any], argv: list[str]) -> None:
    if path is not None:
        from veil.report.audit import build_report, write_report

        write_report(Path(path), build_report(pipeline, results, argv))


def anonymize(
    input: PathLike,
    output: PathLike | None = None,
    *,
    report: PathLike | None = None,
    plan: PathLike | None = None,
    progress: bool = False,
    **options: Any,
) -> Result:
    """Detect, track, mask, write and verify one photo, video or audio file, as `veil INPUT`.

    `output`: the file to write (default: NAME_veiled.EXT beside the input). `report`: also
    write the JSON audit report there (and its HTML view beside it). `plan`: also keep the plan
    used. `options`: as `settings()` (mask, redact, preset, margin, zones, start, end, audio...).
    Returns the file's `Result`; raises `VeilError` if the file cannot be done (nothing is
    written then)."""
    from veil.runners.batch import record_done
    from veil.runners.cache import Cache
    from veil.runners.pipeline import Pipeline, plan_jobs

    chosen = settings(report=report is not None, **options)
    jobs, failed = plan_jobs([str(input)], str(output) if output is not None else None, chosen,
                             str(plan) if plan is not None else None)  # fmt: skip
    job = _one(jobs, failed, input)
    pipeline = Pipeline(chosen, _reporter(progress))
    try:
        result = pipeline.redact(job)
        if not result.ok:
            raise VeilError(result.error or f"{input}: failed")
        record_done(Cache.at(), [result], chosen)
        _write_report(report, pipeline, [result], ["veil.anonymize", str(input)])
    finally:
        pipeline.close()
    return Result(result.input, job.output, {k: v for k, v in result.record.items() if not k.startswith("_")})


def scan_to_plan(input: PathLike, plan: PathLike | None = None, *, progress: bool = False, **options: Any) -> Path:
    """Detect and track only, as `veil scan`: write the redaction plan of one photo or video
    (default: NAME.plan.json beside it) and return its path. `options`: the detection options
    of `settings()` (preset, threshold, redact, lookahead, zones, start, end, overwrite)."""
    from veil.runners.pipeline import Pipeline, scan_jobs

    chosen = settings(**options)
    jobs, failed = scan_jobs([str(input)], str(plan) if plan is not None else None, chosen.overwrite)
    job = _one(jobs, failed, input)
    pipeline = Pipeline(chosen, _reporter(progress))
    try:
        result = pipeline.scan(job)
    finally:
        pipeline.close()
    if not result.ok:
        raise VeilError(result.error or f"{input}: scan failed")
    return Path(job.output)


def render_plan(
    plan: PathLike,
    output: PathLike | None = None,
    *,
    mask: str | None = None,
    mask_color: str | None = None,
    margin: float | None = None,
    audio: str | None = None,
    audio_ranges: str | None = None,
    output_format: str | None = None,
    overwrite: bool = False,
    keep_audio: bool = True,
    keep_metadata: bool = False,
    allow_crop: bool = False,
    report: PathLike | None = None,
    reviewer: str | None = None,
    second_opinion: bool = False,
    progress: bool = False,
) -> Result:
    """Paint a plan's masks onto its input with no detector run, then verify, as `veil render`.
    Mask, colour, margin and audio default to the plan's own; arguments given override them."""
    from veil.cli import _render_settings
    from veil.runners.pipeline import Pipeline, render_jobs

    args = _args(
        mask=mask,
        mask_color=mask_color,
        margin=margin,
        audio=audio,
        audio_ranges=audio_ranges,
        output_format=output_format,
        overwrite=overwrite,
        no_audio=not keep_audio,
        keep_metadata=keep_metadata,
        report=report,
        allow_crop=allow_crop,
    )
    given = _render_settings(args)
    jobs, failed = render_jobs([str(plan)], str(output) if output is not None else None, given)
    job, plan_obj = _one(jobs, failed, plan)
    chosen = _render_settings(args, plan_obj)
    pipeline = Pipeline(chosen, _reporter(progress), reviewer=reviewer, second_opinion=second_opinion)
    try:
        result = pipeline.render(job, plan_obj)
        if not result.ok:
            raise VeilError(result.error or f"{plan}: render failed")
        _write_report(report, pipeline, [result], ["veil.render_plan", str(plan)])
    finally:
        pipeline.close()
    return Result(result.input, job.output, {k: v for k, v in result.record.items() if not k.startswith("_")})


class StreamRedactor:
    """Redacts a stream of frames one by one, for someone else's pipeline: the same detectors,
    tracker and masks as a video run, without any file.

    `push(image)` takes an H x W x 3 uint8 RGB array (never modified) and returns the frames
    that are final now, painted, in order: the tracker holds frames back for `lookahead`
    seconds at `fps` so a face is masked before it is first detected, so output lags input by
    that many frames; `flush()` returns the rest at the end. With `lookahead=0` every frame is
    detected and each `push` returns its own frame at once (`redact(image)` does just that):
    simpler, but a face the detector misses on a frame is not filled in from its neighbours.

    Every frame that comes out is painted; a frame whose analysis fails raises, so a caller
    that catches the error must not use that frame (fail closed)."""

    def __init__(self, fps: float = 25.0, *, lookahead: float = 1.0, **options: Any) -> None:
        from veil.analysis.detect import FrameDetector
        from veil.analysis.track import CutDetector, LookaheadTracker
        from veil.render.paint import FrameRenderer

        if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
            raise VeilError(f"fps must be a positive number, got {fps!r}")
        self.settings = settings(lookahead=lookahead, **options)
        self.detector = FrameDetector(self.settings)
        self.immediate = lookahead == 0
        # Immediate: detect every frame (no stride), so nothing has to wait for a later one.
        stride = 1 if self.immediate else self.detector.max_stride
        self.tracker = LookaheadTracker.for_video(float(fps), lookahead, stride=stride)
        self.cuts = CutDetector()
        self.renderer = FrameRenderer(self.settings, zones=list(self.settings.zones))
        self.index = 0
        self.shape: tuple[int, ...] | None = None

    def push(self, image: np.ndarray) -> list[np.ndarray]:
        """Take the next frame; return the frames now final, painted (possibly none)."""
        from veil.types import Frame

        frame = Frame(self._checked(image), self.index)
        self.index += 1
        redactor = self.renderer.redactor
        if redactor.zones:
            redactor.paint_zones(frame.image)  # zones first: never looked at
        # The analysis step of a video run (scan.tracked_frames), one frame at a time.
        cut = self.cuts(frame.image)
        due = self.detector.due(frame.index)
        if self.immediate or cut:
            detections = self.detector.run(frame.image)
        elif due:
            detections = self.detector.run(frame.image, due, video=True)
        else:
            detections = None
        return self._paint(self.tracker.push(frame, detections, cut))

    def redact(self, image: np.ndarray) -> np.ndarray:
        """`lookahead=0` only: the frame, painted, at once."""
        if not self.immediate:
            raise VeilError("redact() needs StreamRedactor(lookahead=0); with a look-ahead use push() and flush()")
        (out,) = self.push(image)
        return out

    def flush(self) -> list[np.ndarray]:
        """The frames still held back, painted; call once at the end of the stream."""
        return self._paint(self.tracker.flush())

    @property
    def regions(self) -> int:
        """Regions masked so far."""
        return self.renderer.regions

    def _paint(self, ready: Iterable[tuple[Any, Any]]) -> list[np.ndarray]:
        out = []
        for frame, boxes in ready:
            self.renderer.paint(frame, boxes)
            out.append(frame.image)
        return out

    def _checked(self, image: np.ndarray) -> np.ndarray:
        arr = np.asarray(image)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 2 or arr.shape[1] < 2:
            raise VeilError(f"a frame must be an H x W x 3 uint8 RGB array, got {arr.dtype} {arr.shape}")
        if self.shape is not None and arr.shape != self.shape:
            raise VeilError(f"frame {self.index}: size {arr.shape} differs from the stream's {self.shape}")
        self.shape = arr.shape
        return np.array(arr, copy=True, order="C")  # the caller's array is never painted

    def __enter__(self) -> StreamRedactor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

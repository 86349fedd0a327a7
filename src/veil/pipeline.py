"""The whole job: plan outputs for the inputs, then run source -> detect -> track -> redact -> sink
for each file, and collect what was done for the report.

Fail closed: a frame reaches the sink only after detection and redaction succeeded for it; any
error aborts the file, and the sink's temporary output is deleted, never renamed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veil import __version__
from veil.audio import AUDIO_EXTS, AudioEdit, process_file
from veil.detectors import Detector, create, sha256_of
from veil.errors import MediaError, VeilError
from veil.masks import create as create_mask
from veil.metadata import check_output, kept_exif
from veil.presets import get_preset
from veil.progress import Reporter
from veil.redact import Redactor
from veil.review import ThumbnailSampler, warnings_for, worth_reviewing
from veil.sink import PIL_FORMATS, VideoSink, atomic_output, write_image
from veil.source import IMAGE_EXTS, VIDEO_EXTS, AudioPacket, VideoSource, media_kind, read_image
from veil.track import LookaheadTracker
from veil.types import Detections, Frame

SUFFIX = "_veiled"
CLASS_DETECTORS = {"faces": "centerface", "plates": "plates", "text": "text"}
# Video: the text network runs on every TEXT_STRIDE-th face-detection frame. Text and plates
# move with the camera, which the tracker follows; the network costs twice CenterFace.
TEXT_STRIDE = 3


@dataclass
class Settings:
    preset: str = "balanced"
    threshold: float | None = None
    margin: float | None = None
    mask: str = "solid"
    mask_color: str = "black"
    classes: tuple[str, ...] = ("faces",)
    output_format: str | None = None
    overwrite: bool = False
    keep_audio: bool = True
    keep_metadata: bool = False
    # Video: seconds of frames read ahead so tracks extend before their first detection.
    lookahead_s: float = 1.0
    # A report was asked for: collect what only the report needs (contact-sheet thumbnails).
    report: bool = False
    # Voices (veil.audio): keep, mute, bleep or disguise; ranges in seconds, empty = whole track.
    audio: str = "keep"
    audio_ranges: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Job:
    input: Path
    output: Path
    kind: str


@dataclass
class FileResult:
    input: Path
    output: Path | None
    ok: bool
    error: str | None = None
    record: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- planning


def _walk(directory: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            # Skip our own outputs and temporaries so a re-run does not veil them again.
            if name.startswith(".") or Path(name).stem.endswith(SUFFIX):
                continue
            if path.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS | AUDIO_EXTS:
                found.append(path)
    return found


def _output_ext(path: Path, output_format: str | None) -> str:
    return output_format if output_format else path.suffix


def plan(inputs: Iterable[str], output: str | None, settings: Settings) -> tuple[list[Job], list[FileResult]]:
    """Decide the output path of every input file; problems become failed results, not exceptions."""
    fmt = settings.output_format
    if fmt and not fmt.startswith("."):
        fmt = "." + fmt
    if fmt and fmt.lower() not in set(PIL_FORMATS) | VIDEO_EXTS:
        raise VeilError(f"unknown output format {settings.output_format!r}")
    settings.output_format = fmt.lower() if fmt else None

    pairs: list[tuple[Path, Path | None]] = []  # (file, base directory it was found under)
    failed: list[FileResult] = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            failed.append(FileResult(path, None, False, f"{path}: no such file or directory"))
        elif path.is_dir():
            files = _walk(path)
            if not files:
                failed.append(FileResult(path, None, False, f"{path}: no images or videos in directory"))
            pairs.extend((f, path) for f in files)
        elif not os.access(path, os.R_OK):
            failed.append(FileResult(path, None, False, f"{path}: file is not readable"))
        else:
            pairs.append((path, None))

    out = Path(output) if output else None
    many = len(pairs) > 1 or any(base is not None for _, base in pairs)
    if out is not None and many and out.exists() and not out.is_dir():
        raise VeilError(f"{out}: -o must be a directory when there are several inputs")

    jobs: list[Job] = []
    taken: dict[Path, Path] = {}
    for path, base in pairs:
        ext = _output_ext(path, settings.output_format)
        if out is None:
            target = path.with_name(path.stem + SUFFIX + ext)
        elif many:
            rel = path.relative_to(base) if base is not None else Path(path.name)
            target = (out / rel).with_suffix(ext)
        elif out.is_dir() or output.endswith(os.sep):  # type: ignore[union-attr]
            target = out / (path.stem + SUFFIX + ext)
        else:
            target = out
        problem = _check_target(path, target, settings, taken)
        if problem:
            failed.append(FileResult(path, target, False, problem))
            continue
        taken[target.resolve()] = path
        try:
            kind = media_kind(path)
        except MediaError as exc:
            failed.append(FileResult(path, target, False, str(exc)))
            continue
        target_kind = "image" if target.suffix.lower() in PIL_FORMATS else "video"
        target_kind = "audio" if target.suffix.lower() in AUDIO_EXTS else target_kind
        if target.suffix.lower() not in set(PIL_FORMATS) | VIDEO_EXTS | AUDIO_EXTS:
            failed.append(FileResult(path, target, False, f"{target}: unknown output extension"))
            continue
        if target_kind != kind:
            failed.append(FileResult(path, target, False, f"{target}: cannot write a {kind} as {target.suffix}"))
            continue
        jobs.append(Job(path, target, kind))
    return jobs, failed


def _check_target(src: Path, target: Path, settings: Settings, taken: dict[Path, Path]) -> str | None:
    resolved = target.resolve()
    if resolved == src.resolve() or (target.exists() and os.path.samefile(src, target)):
        return f"{target}: output would overwrite the input; choose another -o"
    if resolved in taken:
        return f"{target}: output already used for {taken[resolved]}"
    if target.exists() and not settings.overwrite:
        return f"{target}: already exists (use --overwrite to replace it)"
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        return f"{parent}: output directory is not writable"
    return None


# ----------------------------------------------------------------------------- running


class FrameDetector:
    """Runs the detector of every requested class on a frame and merges their boxes.

    On video each detector has a stride: faces run every `preset.detect_stride` frames, the
    heavier text network (shared by text and plates) every TEXT_STRIDE-th of those, and the
    tracker fills the frames in between; faces use the preset's video options there. Photos and
    scene cuts run every detector with the image options.
    """

    def __init__(self, settings: Settings) -> None:
        preset = get_preset(settings.preset)
        # (detector for images, detector for video, video stride) per class.
        self.detectors: list[tuple[Detector, Detector, int]] = []
        self.seconds = 0.0  # time spent detecting, for the report's timings
        face_stride = max(1, preset.detect_stride)
        text: Detector | None = None
        for cls in settings.classes:
            if cls not in CLASS_DETECTORS:
                raise VeilError(f"unknown class {cls!r}; choose from {', '.join(CLASS_DETECTORS)}, all")
            if cls == "faces":
                threshold = settings.threshold if settings.threshold is not None else preset.threshold
                face = create("centerface", threshold=threshold, **preset.face_options)
                video = face.with_options(**preset.video_face_options) if preset.video_face_options else face
                self.detectors.append((face, video, face_stride))
                continue
            if text is None:
                text = create("text")
            # Plates reuse the text network's output for the same frame (cached by content).
            detector = text if cls == "text" else create("plates", text_detector=text)
            self.detectors.append((detector, detector, face_stride * TEXT_STRIDE))

    @property
    def max_stride(self) -> int:
        return max(stride for _, _, stride in self.detectors)

    def __call__(self, image: Any, index: int | None = None) -> Detections | None:
        """Boxes of every class due at video frame `index`, or of every class with the image
        settings when `index` is None (photos, and scene cuts in video); None if none was due."""
        if index is None:
            due = [image_detector for image_detector, _, _ in self.detectors]
        else:
            due = [video for _, video, stride in self.detectors if index % stride == 0]
        if not due:
            return None
        started = time.perf_counter()
        try:
            return Detections.merge([d.detect(image) for d in due])
        finally:
            self.seconds += time.perf_counter() - started

    def describe(self) -> list[dict[str, Any]]:
        out = []
        for image_detector, video, stride in self.detectors:
            entry = {"name": image_detector.name, "label": image_detector.label, "settings": image_detector.settings()}
            entry["video_stride"] = stride
            if video is not image_detector:
                entry["video_settings"] = video.settings()
            out.append(entry)
        return out


class Pipeline:
    def __init__(self, settings: Settings, reporter: Reporter | None = None) -> None:
        self.settings = settings
        self.reporter = reporter or Reporter(quiet=True)
        self.preset = get_preset(settings.preset)
        margin = settings.margin if settings.margin is not None else self.preset.margin
        if margin < 0:
            raise VeilError("--margin must be 0 or more")
        options = {"color": settings.mask_color} if settings.mask == "solid" else {}
        self.mask = create_mask(settings.mask, **options)
        self.redactor = Redactor(self.mask, margin)
        self.detect = FrameDetector(settings)
        # Downscaled output frames for the HTML report's contact sheet, per file (bounded).
        self.sampler: ThumbnailSampler | None = None
        self.audio_edit = AudioEdit(settings.audio, list(settings.audio_ranges))

    def describe(self) -> dict[str, Any]:
        return {
            "preset": self.settings.preset,
            "classes": list(self.settings.classes),
            "detectors": self.detect.describe(),
            "mask": {"name": self.mask.name, "irreversible": self.mask.irreversible, **self.mask.settings()},
            "margin": self.redactor.margin,
            "detect_stride": self.preset.detect_stride,
            "lookahead_s": self.settings.lookahead_s,
            "keep_audio": self.settings.keep_audio,
            "audio": self.audio_edit.describe(),
            "keep_metadata": self.settings.keep_metadata,
        }

    def run(self, jobs: list[Job]) -> list[FileResult]:
        return [self.run_one(job) for job in jobs]

    def run_one(self, job: Job) -> FileResult:
        started = time.monotonic()
        record: dict[str, Any] = {
            "input": str(job.input),
            "output": str(job.output),
            "kind": job.kind,
            "input_sha256": sha256_of(job.input),
            "warnings": [],
        }
        # Thumbnails feed only the HTML report; without --report they would be wasted work.
        self.sampler = ThumbnailSampler() if self.settings.report else None
        detect_before = self.detect.seconds
        try:
            with atomic_output(job.output, self.settings.overwrite) as tmp:
                if job.kind == "image":
                    self._image(job, tmp, record)
                elif job.kind == "audio":
                    record.update(process_file(job.input, tmp, self.audio_edit), frames_processed=0, frames=[])
                else:
                    self._video(job, tmp, record)
                # Inspect the finished temporary file: identifying metadata fails the file.
                meta_started = time.monotonic()
                record["metadata"], meta_warnings = check_output(job.input, tmp, self.settings.keep_metadata)
                meta_seconds = time.monotonic() - meta_started
                for line in meta_warnings:
                    record["warnings"].append(line)
                    self.reporter.warn(f"{job.input}: {line}")
        except VeilError as exc:
            self.reporter.end_file()
            record["error"] = str(exc)
            return FileResult(job.input, job.output, False, str(exc), record)
        except Exception as exc:  # noqa: BLE001 - any failure must abort this file only
            self.reporter.end_file()
            message = f"{job.input}: failed ({type(exc).__name__}: {exc})"
            record["error"] = message
            return FileResult(job.input, job.output, False, message, record)
        record["output_sha256"] = sha256_of(job.output)
        record["seconds"] = round(time.monotonic() - started, 3)
        detect_seconds = self.detect.seconds - detect_before
        record["timings"] = {
            "total_s": record["seconds"],
            "detect_s": round(detect_seconds, 3),
            "metadata_check_s": round(meta_seconds, 3),
            "decode_track_redact_encode_s": round(max(0.0, record["seconds"] - detect_seconds - meta_seconds), 3),
        }
        record["warnings"].extend(warnings_for(record["frames"]))
        record["review"] = worth_reviewing(record["frames"])
        # Not written to the JSON (keys starting with "_"); the HTML report shows them.
        record["_thumbnails"] = self.sampler.result() if self.sampler is not None else []
        self.sampler = None
        n = record["frames_processed"]
        boxes = sum(len(f["boxes"]) for f in record["frames"])
        rate = f", {n / record['seconds']:.1f} fps" if job.kind == "video" and record["seconds"] else ""
        self.reporter.info(
            f"[green]done[/] {job.input} -> {job.output}: {n} frame{'s' * (n != 1)}, "
            f"{boxes} region{'s' * (boxes != 1)} redacted, {record['seconds']:.1f} s{rate}"
        )
        return FileResult(job.input, job.output, True, None, record)

    def _redact(self, frame: Frame, detections: Detections) -> dict[str, Any]:
        painted = self.redactor(frame.image, detections)
        boxes = []
        for rec, box in zip(detections.to_records(), painted, strict=True):
            rec["mask"] = [int(v) for v in box]
            boxes.append(rec)
        entry = {"frame": frame.index, "boxes": boxes}
        if self.sampler is not None:
            self.sampler.offer(frame.image, entry)
        return entry

    def _image(self, job: Job, tmp: Path, record: dict[str, Any]) -> None:
        self.reporter.start_file(job.input.name, 1)
        decoded = read_image(job.input)
        detections = self.detect(decoded.frame.image)
        entry = self._redact(decoded.frame, detections)
        alpha = decoded.alpha
        if alpha is not None:
            for x1, y1, x2, y2 in (b["mask"] for b in entry["boxes"]):
                alpha[y1:y2, x1:x2] = 255  # the fill must be visible, not transparent
        write_image(
            tmp,
            decoded.frame.image,
            alpha,
            decoded.icc_profile,
            kept_exif(decoded.exif) if self.settings.keep_metadata else None,
        )
        self.reporter.advance()
        self.reporter.end_file()
        if decoded.info.get("frames_in_file", 1) > 1:
            line = f"only the first of {decoded.info['frames_in_file']} pages is written"
            record["warnings"].append(line)
            self.reporter.warn(f"{job.input}: {line}")
        record.update(frames_processed=1, frames=[entry], width=decoded.frame.width, height=decoded.frame.height)

    def _video(self, job: Job, tmp: Path, record: dict[str, Any]) -> None:
        # The tracker must see both ends of the longest gap between two detection passes.
        stride = self.detect.max_stride
        frames: list[dict[str, Any]] = []
        with VideoSource(job.input, with_audio=self.settings.keep_audio) as source:
            tags = dict(source.container.metadata) if self.settings.keep_metadata else None
            sink = VideoSink(
                tmp,
                source.info,
                keep_audio=self.settings.keep_audio,
                tags=tags,
                speed=self.preset.encoder_speed,
                audio_edit=self.audio_edit,
            )
            tracker = LookaheadTracker.for_video(
                float(source.info.rate) if source.info.rate else None,
                self.settings.lookahead_s,
                stride=stride,
                detect=self.detect,
            )
            self.reporter.start_file(job.input.name, source.expected_frames)
            try:
                for item in source.items():
                    if isinstance(item, AudioPacket):
                        sink.write_audio(item)
                        continue
                    detections = self.detect(item.image, item.index)
                    for frame, final in tracker.push(item, detections):
                        frames.append(self._redact(frame, final))
                        sink.write_frame(frame)
                        self.reporter.advance()
                for frame, final in tracker.flush():
                    frames.append(self._redact(frame, final))
                    sink.write_frame(frame)
                    self.reporter.advance()
                sink.close()
            except BaseException:
                sink.abort()
                raise
            finally:
                self.reporter.end_file()
            info = source.info
        if sink.frames_written != source.frames_decoded:
            raise VeilError(f"{job.input}: wrote {sink.frames_written} of {source.frames_decoded} frames")
        record.update(
            frames_processed=sink.frames_written,
            width=info.width,
            height=info.height,
            rotation=info.rotation,
            frame_rate=str(info.rate) if info.rate else None,
            audio=list(sink.audio_mode.values()) if self.settings.keep_audio else "dropped (--no-audio)",
            streams_dropped=info.dropped_streams,
            tracks=tracker.summary(),
            frames=frames,
        )


def report_header(pipeline: Pipeline) -> dict[str, Any]:
    return {"veil_version": __version__, "settings": pipeline.describe()}

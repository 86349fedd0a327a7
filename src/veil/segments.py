"""Long videos in segments: cut at keyframes, redact each segment on its own, join by stream copy.

    probe (demux only) -> segments [start, end) at keyframes
    each segment: decode [start - overlap, end + overlap) -> detect -> track -> paint [start, end)
                  -> encode its own file -> verify it against its own plan
    join: copy every segment's packets into one file, remux the source's audio once, merge plans

Why an overlap: the tracker extends a track up to its look-ahead window before its first
detection and after its last, and needs the frames around a frame to do so. A segment decodes
`overlap` frames (the look-ahead window plus one detection stride) before its first frame and
after its last, so a face that crosses the cut is tracked in both segments as it would be in one
pass; only frames in [start, end) are written. Detection runs on the same frames as a single
pass would (the stride counts global frame indices), so the overlap costs decoding and tracking
plus the detections of 2 x overlap frames, per segment.

Why stream copy is exact: every segment is encoded with the source's own timestamps, so packets
are joined without rewriting any time; each segment starts with an IDR frame (a new encoder), and
x264 closes its GOPs, so the joined stream decodes to exactly the segments' frames. The join
checks the packet count against the frame count and fails the file otherwise (fail closed).

Verification: with a solid mask each segment is verified from its own pixels against its own plan
(in parallel, in the workers); the joined packets are those bytes, unchanged. Blur and pixelate
masks need the input's pixels under each mask, so the joined file is verified against the merged
plan instead.

Only paths and small JSON cross process boundaries: a `Segment` is a few integers, a segment's
result is a dict; frames never leave the process that decoded them.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import av
import numpy as np

from veil.config import Settings
from veil.errors import MediaError, VeilError
from veil.source import AudioPacket, VideoSource
from veil.types import Frame

# With several workers and no --segment-seconds, a video is cut into about two segments per
# worker, so one file keeps every worker busy and a slow segment at the end leaves the others idle
# for half a segment at most; but no longer than DEFAULT_SEGMENT_S (what an interruption can lose)
# and no shorter than MIN_DEFAULT_SEGMENT_S: each segment decodes the look-ahead overlap twice, one
# more encoder start and one more plan, which cost 5.0 % more decoded frames at 60 s segments (an
# hour of 720p at -j16: 113,369 frames decoded for 108,000) and proportionally less above.
DEFAULT_SEGMENT_S = 300.0
MIN_DEFAULT_SEGMENT_S = 60.0


def default_segment_seconds(duration_s: float, workers: int) -> float | None:
    """The segment length for a video of `duration_s` seconds with `workers` workers and no
    --segment-seconds; None when it is too short to cut (or there is one worker)."""
    if workers < 2:
        return None
    length = min(DEFAULT_SEGMENT_S, max(MIN_DEFAULT_SEGMENT_S, duration_s / (2 * workers)))
    return length if duration_s >= 2 * length else None


@dataclass
class Segment:
    """Frames [start, end) of a video, decoded from the keyframe at `decode_from` (pts
    `decode_pts`) up to frame `read_to` (exclusive); `start` is a keyframe too."""

    index: int
    start: int
    end: int
    decode_from: int
    decode_pts: int
    read_to: int
    start_pts: int = 0  # pts of the keyframe at `start` (rendering from a plan decodes from there)

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Segment:
        return cls(**{f.name: int(data[f.name]) for f in fields(cls)})


@dataclass
class Probe:
    """What cutting needs, from demuxing only (no decoding): presentation-ordered frame count,
    which frames are keyframes (and their pts), the rate and duration."""

    frames: int
    keyframes: list[tuple[int, int]]  # (frame index in presentation order, pts)
    rate: float
    duration_s: float


def probe(path: Path) -> Probe | None:
    """None when the file cannot be cut safely (a packet without a timestamp, no keyframes)."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            pts_list: list[int] = []
            key_pts: list[int] = []
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's final flush packet
                if packet.pts is None:
                    return None
                pts_list.append(packet.pts)
                if packet.is_keyframe:
                    key_pts.append(packet.pts)
            rate = float(stream.average_rate or stream.guessed_rate or 0) or 30.0
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        raise MediaError(f"{path}: cannot read the video to cut it ({exc})") from exc
    if not pts_list or not key_pts:
        return None
    pts_list.sort()
    order = {p: i for i, p in enumerate(pts_list)}
    keyframes = sorted((order[p], p) for p in key_pts)
    return Probe(len(pts_list), keyframes, rate, len(pts_list) / rate)


def overlap_frames(settings: Settings, rate: float, stride: int) -> int:
    """Frames decoded before and after a segment: the tracker's look-ahead window (as
    `LookaheadTracker.for_video` sizes it) plus one detection stride, so the detection that
    starts or ends a track across the cut is inside the overlap."""
    return int(round(max(settings.lookahead_s, 0.0) * rate)) + max(1, stride) + 1


def cut(info: Probe, segment_s: float, overlap: int) -> list[Segment]:
    """Segments of about `segment_s` seconds, each starting at a keyframe."""
    want = max(1, int(round(segment_s * info.rate)))
    key_frames = [k for k, _ in info.keyframes]
    starts = [0]
    while True:
        # The first keyframe at or after the next target that leaves a segment of at least half
        # the length (so no sliver is made where keyframes are sparse).
        target = starts[-1] + want
        pos = bisect.bisect_left(key_frames, max(target, starts[-1] + want // 2 + 1))
        if pos >= len(key_frames) or info.frames - key_frames[pos] < want // 2:
            break
        starts.append(key_frames[pos])
    out = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else info.frames
        first = max(0, start - overlap)
        pos = bisect.bisect_right(key_frames, first) - 1
        decode_from, decode_pts = info.keyframes[max(pos, 0)]
        start_pts = dict(info.keyframes).get(start, decode_pts)
        out.append(Segment(i, start, end, decode_from, decode_pts, min(info.frames, end + overlap), start_pts))
    return out


def plan_segments(path: Path, settings: Settings, segment_s: float, stride: int) -> tuple[Probe, list[Segment]] | None:
    """The segments of `path`, or None when it is shorter than two segments or cannot be cut."""
    info = probe(path)
    if info is None or info.duration_s < 2 * segment_s:
        return None
    segments = cut(info, segment_s, overlap_frames(settings, info.rate, stride))
    return (info, segments) if len(segments) > 1 else None


# ----------------------------------------------------------------------------- one segment


class SegmentReader:
    """Decodes frames [decode_from, read_to) of a video with their global indices; duck-types
    `VideoSource.items()` for `scan.tracked_frames` (frames only: audio is remuxed at the join)."""

    def __init__(self, path: Path, segment: Segment) -> None:
        self.path = path
        self.segment = segment
        self.source = VideoSource(path, with_audio=False)
        self.info = self.source.info
        self.frames_decoded = 0
        self.rotation: int | None = None

    def close(self) -> None:
        self.source.container.close()

    def items(self) -> Iterator[Frame]:
        seg = self.segment
        container, stream = self.source.container, self.source.stream
        if seg.decode_from > 0:
            container.seek(seg.decode_pts, stream=stream, backward=True, any_frame=False)
        index = seg.decode_from
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    # Leading frames of an open GOP, or frames before the keyframe seek landed
                    # on: they belong to the previous segment's range.
                    if frame.pts is None or frame.pts < seg.decode_pts:
                        continue
                    if index >= seg.read_to:
                        return
                    yield self._to_frame(frame, index)
                    index += 1
        except av.error.FFmpegError as exc:
            raise MediaError(f"{self.path}: corrupt video data near frame {index} ({exc})") from exc
        if index < min(seg.read_to, seg.end):
            raise MediaError(f"{self.path}: segment {seg.index} ends at frame {index}, expected {seg.end}")

    def _to_frame(self, frame: av.VideoFrame, index: int) -> Frame:
        rotation = int(getattr(frame, "rotation", 0) or 0) % 360
        if self.rotation is None:
            self.rotation = rotation
            self.info.rotation = rotation  # the sink reads it when it opens
        image = frame.to_ndarray(format="rgb24")
        if rotation:
            image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
        self.frames_decoded += 1
        return Frame(image, index, frame.pts, frame.time_base)


def settings_json(settings: Settings) -> dict[str, Any]:
    """Every init field of `settings`, so a worker rebuilds exactly the same Settings."""
    out = {f.name: getattr(settings, f.name) for f in fields(Settings) if f.init}
    out["classes"] = list(settings.classes)
    return out


def redact_segment(
    pipeline: Any, input_path: Path, input_sha: str, segment: Segment, out_path: Path | None, plan_path: Path
) -> dict[str, Any]:
    """Redact frames [start, end) of `input_path` into `out_path` (video only, atomic) and write
    its plan (track frames numbered from the segment's start; review flags keep global frame
    numbers) to `plan_path`. With `out_path` None, only scan: write the plan, which
    `render_segment` paints later (the GPU path: detection on a GPU actor, painting and encoding
    in a CPU task). Returns a small dict."""
    from veil.plan import Plan, PlanBuilder, write_plan_stream
    from veil.render import FrameRenderer
    from veil.scan import tracked_frames
    from veil.sink import VideoSink, atomic_output
    from veil.track import LookaheadTracker
    from veil.types import Detections

    settings: Settings = pipeline.settings
    detector = pipeline.detect
    detector.reset()  # a segment starts afresh, whatever this worker ran before
    started = time.monotonic()
    detect_before = detector.seconds
    renderer = FrameRenderer(settings)
    builder = PlanBuilder(pipeline.workdir)
    reader = SegmentReader(input_path, segment)
    written = 0
    verified: dict[str, Any] | None = None
    try:
        tracker = LookaheadTracker.for_video(
            float(reader.info.rate) if reader.info.rate else None, settings.lookahead_s, stride=detector.max_stride
        )
        output = atomic_output(out_path, overwrite=True) if out_path is not None else contextlib.nullcontext(None)
        with output as tmp:
            sink = None
            if tmp is not None:
                sink = VideoSink(tmp, reader.info, keep_audio=False, speed=settings.preset_obj.encoder_speed)
            try:
                for item in tracked_frames(reader, detector, tracker):  # type: ignore[arg-type]
                    frame, final = item  # type: ignore[misc]
                    if frame.index < segment.start:
                        continue  # the overlap before: it only primes the tracker
                    if frame.index >= segment.end:
                        break
                    masked = builder.add(frame.index - segment.start, final)
                    if sink is not None:
                        renderer.paint(frame, masked, Detections.empty(), False)
                        sink.write_frame(frame)
                    else:
                        renderer.review.offer(frame.index, masked)
                    written += 1
                if sink is not None:
                    sink.close()
            except BaseException:
                if sink is not None:
                    sink.abort()
                raise
            if written != segment.end - segment.start:
                raise VeilError(
                    f"{input_path}: segment {segment.index} read {written} of {segment.end - segment.start} frames"
                )
            builder.finish()
            rotation = reader.rotation or 0
            rot = rotation % 180 != 0
            info = reader.info
            header = Plan(
                input={
                    "path": str(input_path.resolve()),
                    "sha256": input_sha,
                    "size": input_path.stat().st_size,
                    "kind": "video",
                    "width": info.height if rot else info.width,
                    "height": info.width if rot else info.height,
                    "frames": written,
                    "frame_rate": str(info.rate) if info.rate else None,
                    "time_base": str(info.time_base),
                    "rotation": rotation,
                    "segment": segment.to_json(),
                },
                settings={**settings.to_json(), "detectors": detector.describe()},
                review={"flags": renderer.review.flags()},
            ).header_json()
            with atomic_output(plan_path, overwrite=True) as tmp_plan, open(tmp_plan, "w", encoding="utf-8") as fh:
                write_plan_stream(fh, header, builder.track_lines())
            if tmp is not None:
                verified = _verify_segment(input_path, segment, plan_path, tmp, settings)
    finally:
        builder.close()
        reader.close()
    out = {
        "segment": segment.to_json(),
        "plan": str(plan_path),
        "frames": written,
        "frames_decoded": reader.frames_decoded,
        "rotation": rotation,
        "seconds": round(time.monotonic() - started, 3),
        "detect_s": round(detector.seconds - detect_before, 3),
    }
    if out_path is not None:
        out.update(_segment_output(out_path, renderer, verified))
    return out


def render_segment(
    settings: Settings, input_path: Path, segment: Segment, plan_path: Path, out_path: Path
) -> dict[str, Any]:
    """Paint a scanned segment's plan onto frames [start, end) and encode them into `out_path`:
    no detector, no overlap (the segment starts at a keyframe)."""
    from veil.plan import FrameBoxes, load_plan
    from veil.render import FrameRenderer
    from veil.sink import VideoSink, atomic_output

    started = time.monotonic()
    plan_obj = load_plan(plan_path, spooled=True)
    boxes = FrameBoxes(plan_obj)
    renderer = FrameRenderer(settings)
    exact = Segment(segment.index, segment.start, segment.end, segment.start, segment.start_pts, segment.end)
    reader = SegmentReader(input_path, exact)
    written = 0
    try:
        with atomic_output(out_path, overwrite=True) as tmp:
            sink = VideoSink(tmp, reader.info, keep_audio=False, speed=settings.preset_obj.encoder_speed)
            try:
                for frame in reader.items():
                    local = frame.index - segment.start
                    masked, kept = boxes.at(local)
                    renderer.paint(frame, masked, kept, boxes.whole_frame(local) is not None)
                    sink.write_frame(frame)
                    written += 1
                sink.close()
            except BaseException:
                sink.abort()
                raise
            if written != segment.end - segment.start:
                raise VeilError(
                    f"{input_path}: segment {segment.index} wrote {written} frames, its plan {plan_obj.frames}"
                )
            verified = _verify_segment(input_path, segment, plan_path, tmp, settings)
    finally:
        reader.close()
    return {
        "segment": segment.to_json(),
        "plan": str(plan_path),
        "frames": written,
        "frames_decoded": reader.frames_decoded,
        "rotation": reader.rotation or 0,
        "seconds": round(time.monotonic() - started, 3),
        "detect_s": 0.0,
        **_segment_output(out_path, renderer, verified),
    }


def _verify_segment(
    input_path: Path, segment: Segment, plan_path: Path, tmp: Path, settings: Settings
) -> dict[str, Any] | None:
    """Solid masks: check the segment's own pixels against its plan (blur and pixelate need the
    input's pixels under the masks: the joined file is verified instead)."""
    from veil.plan import load_plan
    from veil.verify import verify

    if settings.mask != "solid":
        return None
    result = verify(load_plan(plan_path, spooled=True), tmp, settings)
    if not result.ok:
        raise VeilError(f"{input_path}: segment {segment.index}: {result.summary()}; nothing written")
    return result.to_json()


def _segment_output(out_path: Path, renderer: Any, verified: dict[str, Any] | None) -> dict[str, Any]:
    from veil.detectors import sha256_of

    return {
        "output": str(out_path),
        "output_sha256": sha256_of(out_path),
        "counts": renderer.counts(),
        "verify": verified,
    }


# ----------------------------------------------------------------------------- join


def _video_packets(paths: list[Path]) -> Iterator[tuple[float, int, Any]]:
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            tb = stream.time_base
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                when = packet.dts if packet.dts is not None else packet.pts
                yield float(when * tb), 0, packet


def _audio_packets(source: VideoSource) -> Iterator[tuple[float, int, Any]]:
    streams = source.info.audio_streams
    if not streams:
        return
    for packet in source.container.demux(streams):
        if packet.dts is None or not packet.size:
            continue
        yield float(packet.dts * packet.time_base), 1, AudioPacket(packet, packet.stream.index)


def _join_video(tmp: Path, input_path: Path, parts: list[Path], frames: int, rotation: int, settings: Settings) -> int:
    """Stream-copy the segments' video and the source's audio into `tmp`; returns packets
    written. Packets are interleaved by time so the muxer buffers almost nothing."""
    from veil.sink import VideoSink

    with VideoSource(input_path, with_audio=settings.keep_audio) as source:
        info = source.info
        info.rotation = rotation
        tags = dict(source.container.metadata) if settings.keep_metadata else None
        sink = VideoSink(tmp, info, keep_audio=settings.keep_audio, tags=tags)
        options = {"fflags": "+bitexact"}
        if sink.tags and tmp.suffix.lower() in (".mp4", ".mov", ".m4v"):
            options["movflags"] = "use_metadata_tags"
        video_packets = 0
        with av.open(str(tmp), "w", options=options) as out, av.open(str(parts[0])) as first:
            out.metadata.clear()
            out.metadata.update(sink.tags)
            sink.container = out
            _, sink.audio_codec = _codecs_for(tmp)
            template = first.streams.video[0]
            vout = out.add_stream_from_template(template)
            vout.time_base = template.time_base
            vout.metadata.clear()
            if rotation:
                vout.set_display_rotation(rotation)
            if settings.keep_audio:
                for in_stream in info.audio_streams:
                    sink._add_audio(in_stream)
            merged = heapq.merge(_video_packets(parts), _audio_packets(source), key=lambda t: (t[0], t[1]))
            for _, kind, item in merged:
                if kind == 0:
                    item.stream = vout
                    out.mux(item)
                    video_packets += 1
                else:
                    sink._mux_audio(item)
            # Flush re-encoded audio (copied audio has nothing buffered).
            for aout, transcoder in sink.audio.values():
                if transcoder is None:
                    continue
                decoder, resampler = transcoder
                for frame in [*decoder.decode(None), None]:
                    for rs in resampler.resample(frame):
                        for packet in aout.encode(rs):
                            out.mux(packet)
                for packet in aout.encode(None):
                    out.mux(packet)
        if video_packets != frames:
            raise VeilError(f"{input_path}: joined {video_packets} video packets for {frames} frames")
        return video_packets


def _codecs_for(path: Path) -> tuple[str, str]:
    from veil.sink import DEFAULT_CODECS, VIDEO_CODECS

    return VIDEO_CODECS.get(path.suffix.lower(), DEFAULT_CODECS)


def merged_plan(input_path: Path, input_sha: str, probe_info: Probe, results: list[dict[str, Any]]) -> Any:
    """One plan for the whole file from the segments' plans: frames shifted back to global
    indices, track ids renumbered in segment order, review flags concatenated. A track that
    crosses a cut becomes two tracks, one per segment."""
    from veil.plan import Plan, load_plan

    tracks = []
    flags: list[dict[str, Any]] = []
    first = None
    next_id = 0
    for res in sorted(results, key=lambda r: r["segment"]["index"]):
        part = load_plan(Path(res["plan"]))
        offset = int(res["segment"]["start"])
        first = first or part
        for track in part.tracks:
            for box in track.boxes:
                box.frame += offset
            track.id = next_id
            next_id += 1
            tracks.append(track)
        for flag in part.review.get("flags", []):
            flags.append(flag)  # already global frame numbers
    assert first is not None
    info = {k: v for k, v in first.input.items() if k != "segment"}
    info.update(
        path=str(input_path.resolve()),
        sha256=input_sha,
        size=input_path.stat().st_size,
        frames=probe_info.frames,
        duration_s=probe_info.duration_s,
    )
    return Plan(input=info, settings=first.settings, tracks=tracks, review={"flags": flags})


def join(
    input_path: Path,
    output: Path,
    probe_info: Probe,
    results: list[dict[str, Any]],
    settings: Settings,
    plan_out: Path,
) -> dict[str, Any]:
    """Join finished segments into `output` (atomic), write the merged plan to `plan_out`, and
    return the file's report record."""
    from veil.detectors import sha256_of
    from veil.metadata import check_output
    from veil.plan import load_plan, write_plan
    from veil.sink import atomic_output
    from veil.verify import verify

    started = time.monotonic()
    results = sorted(results, key=lambda r: r["segment"]["index"])
    parts = [Path(r["output"]) for r in results]
    rotation = int(results[0].get("rotation") or 0)
    input_sha = sha256_of(input_path)
    plan_obj = merged_plan(input_path, input_sha, probe_info, results)
    write_plan(plan_obj, plan_out)
    record: dict[str, Any] = {
        "input": str(input_path),
        "output": str(output),
        "kind": "video",
        "input_sha256": input_sha,
        "warnings": [],
        "segments": len(results),
    }
    with atomic_output(output, settings.overwrite) as tmp:
        _join_video(tmp, input_path, parts, probe_info.frames, rotation, settings)
        if settings.mask != "solid":
            result = verify(load_plan(plan_out, spooled=True), tmp, settings, input_path)
            if not result.ok:
                raise VeilError(f"{input_path}: {result.summary()}; nothing written")
            record["verify"] = result.to_json()
        else:
            record["verify"] = {
                "ok": all(r["verify"]["ok"] for r in results),
                "frames_checked": sum(r["verify"]["frames_checked"] for r in results),
                "regions_checked": sum(r["verify"]["regions_checked"] for r in results),
                "regions_failed": 0,
                "failures": [],
                "per_segment": True,
            }
        record["metadata"], meta_warnings = check_output(input_path, tmp, settings.keep_metadata)
        record["warnings"].extend(meta_warnings)
    counts: dict[str, int] = {}
    for r in results:
        for k, v in r["counts"].items():
            counts[k] = counts.get(k, 0) + int(v)
    record.update(
        frames_processed=probe_info.frames,
        rotation=rotation,
        counts=counts,
        plan_sha256=sha256_of(plan_out),
        output_sha256=sha256_of(output),
        timings={
            "total_s": round(sum(r["seconds"] for r in results) + time.monotonic() - started, 3),
            "detect_s": round(sum(r["detect_s"] for r in results), 3),
            "join_s": round(time.monotonic() - started, 3),
        },
        review=plan_obj.review["flags"],
        _plan_file=str(plan_out),
    )
    return record

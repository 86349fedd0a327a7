"""Long videos in segments: cut at keyframes, redact each segment on its own, join by stream copy.

    probe (demux only) -> segments [start, end) at keyframes (of the --start/--end part)
    each segment: decode [start - overlap, end + overlap) -> detect -> track -> paint [start, end)
                  -> encode its own file -> verify it against its own plan
    join: copy every segment's packets into one file beside the source's audio (edited as asked,
          through the same sink as a whole file), merge plans, verify the request

A segment is not a second implementation: it is a frame window (`media.source.FrameWindow`)
read by the same decoder, and run through the pipeline's own analysis and paint-and-encode
loops (`Pipeline.segment`), so zones, time ranges, masks, crop and the second opinion reach it
exactly as they reach a whole file.

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
(in parallel, in the workers); the joined packets are those bytes, unchanged, and the joined file
is checked for the request alone (frames and duration of the span, audio edits), decoding no
picture. Blur and pixelate masks need the input's pixels under each mask, so the joined file is
verified whole against the merged plan and the request.

Only paths and small JSON cross process boundaries: a `Segment` is a few integers, a segment's
result is a dict; frames never leave the process that decoded them.
"""

from __future__ import annotations

import bisect
import heapq
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import av

from veil.config import Settings
from veil.errors import MediaError, VeilError
from veil.media.source import FrameWindow, VideoSource
from veil.timerange import TimeRange

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

    def analysis_window(self) -> FrameWindow:
        """What analysing the segment decodes: its frames with the overlap around them."""
        return FrameWindow(self.decode_from, self.decode_pts, self.read_to)

    def render_window(self) -> FrameWindow:
        """What painting a scanned segment decodes: its own frames, from the keyframe at its
        start (or, where --start fell between keyframes, the one before)."""
        key = self.decode_from if self.start_pts == self.decode_pts else self.start
        return FrameWindow(key, self.start_pts, self.end)

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


def probe(path: Path, time_range: TimeRange | None = None) -> Probe | None:
    """None when the file cannot be cut safely (a packet without a timestamp, no keyframes).
    With `time_range`, frames are numbered as the trimmed read numbers them (`VideoSource`):
    frame 0 is the first at or after --start, a keyframe before it has a negative index, and
    frames from --end on are not counted."""
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
            origin = stream.start_time or 0
            time_base = float(stream.time_base or 0)
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        raise MediaError(f"{path}: cannot read the video to cut it ({exc})") from exc
    if not pts_list or not key_pts:
        return None
    pts_list.sort()
    skipped = 0
    if time_range is not None:
        # The same test, on the same timestamps, as the trimmed read's.
        seconds = [(p - origin) * time_base for p in pts_list]
        skipped = sum(1 for t in seconds if time_range.before(t))
        inside = [not time_range.before(t) and not time_range.after(t) for t in seconds]
        kept = [p for p, keep in zip(pts_list, inside, strict=True) if keep]
        if not kept:
            return None
        last = kept[-1]
        pts_list = [p for p in pts_list if p <= last]
    order = {p: i - skipped for i, p in enumerate(pts_list)}
    keyframes = sorted((order[p], p) for p in key_pts if p in order)
    frames = len(pts_list) - skipped
    return Probe(frames, keyframes, rate, frames / rate)


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
    """The segments of `path` (of its --start/--end part), or None when that is shorter than
    two segments or cannot be cut."""
    info = probe(path, settings.time_range)
    if info is None or info.duration_s < 2 * segment_s:
        return None
    segments = cut(info, segment_s, overlap_frames(settings, info.rate, stride))
    return (info, segments) if len(segments) > 1 else None


# ----------------------------------------------------------------------------- one segment


def settings_json(settings: Settings) -> dict[str, Any]:
    """Every init field of `settings`, so a worker rebuilds exactly the same Settings."""
    out = {f.name: getattr(settings, f.name) for f in fields(Settings) if f.init}
    out["classes"] = list(settings.classes)
    return out


def _segment_job(input_path: Path, out_path: Path | None, plan_path: Path) -> Any:
    from veil.runners.pipeline import Job

    return Job(input_path, out_path if out_path is not None else plan_path, "video")


def redact_segment(
    pipeline: Any, input_path: Path, input_sha: str, segment: Segment, out_path: Path | None, plan_path: Path
) -> dict[str, Any]:
    """Redact frames [start, end) of `input_path` into `out_path` (video only, atomic) and write
    its plan (track frames numbered from the segment's start; review flags keep global frame
    numbers) to `plan_path`, through the pipeline's own analysis and paint loops
    (`Pipeline.segment`), so every option a whole file honours (zones, time range, crop, second
    opinion) a segment honours too. With `out_path` None, only scan: write the plan, which
    `render_segment` paints later (the GPU path). Returns a small dict."""
    job = _segment_job(input_path, out_path, plan_path)
    return pipeline.segment(job, segment, plan_path, input_sha, render=out_path is not None)


def render_segment(
    settings: Settings, input_path: Path, segment: Segment, plan_path: Path, out_path: Path
) -> dict[str, Any]:
    """Paint a scanned segment's plan onto frames [start, end) and encode them into `out_path`."""
    from veil.runners.pipeline import Pipeline

    return Pipeline(settings).render_segment(_segment_job(input_path, out_path, plan_path), segment, plan_path)


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


def _join_video(tmp: Path, input_path: Path, parts: list[Path], frames: int, rotation: int, settings: Settings) -> int:
    """Stream-copy the segments' video into `tmp` beside the source's audio, through the same
    sink as a whole file (so --audio mute/bleep/disguise and --start/--end apply to the audio
    exactly as they do there); returns video packets written. Packets are interleaved by time
    so the muxer buffers almost nothing."""
    from veil.media.sink import VideoSink

    with (
        VideoSource(input_path, with_audio=settings.keep_audio, time_range=settings.time_range) as source,
        av.open(str(parts[0])) as first,
    ):
        info = source.info
        info.rotation = rotation
        sink = VideoSink(
            tmp,
            info,
            keep_audio=settings.keep_audio,
            tags=source.metadata if settings.keep_metadata else None,
            audio_edit=settings.audio_edit(),
            video_template=first.streams.video[0],
        )
        audio = ((float(p.packet.dts * p.packet.time_base), 1, p) for p in source.audio_packets())
        try:
            for _, kind, item in heapq.merge(_video_packets(parts), audio, key=lambda t: (t[0], t[1])):
                if kind == 0:
                    sink.write_packet(item)
                else:
                    sink.write_audio(item)
            sink.close()
        except BaseException:
            sink.abort()
            raise
    if sink.video_packets != frames:
        raise VeilError(f"{input_path}: joined {sink.video_packets} video packets for {frames} frames")
    return sink.video_packets


def merged_plan(input_path: Path, input_sha: str, probe_info: Probe, results: list[dict[str, Any]]) -> Any:
    """One plan for the whole file from the segments' plans: frames shifted back to global
    indices, track ids renumbered in segment order, person numbers shifted past the earlier
    segments' (a person seen in two segments is two persons), review flags concatenated. A track
    that crosses a cut becomes two tracks, one per segment."""
    from veil.plan import Plan, load_plan

    tracks = []
    flags: list[dict[str, Any]] = []
    first = None
    next_id = 0
    next_person = 0  # person numbers stay distinct across segments, as track ids do
    for res in sorted(results, key=lambda r: r["segment"]["index"]):
        part = load_plan(Path(res["plan"]))
        offset = int(res["segment"]["start"])
        first = first or part
        persons = next_person
        for track in part.tracks:
            for box in track.boxes:
                box.frame += offset
            track.id = next_id
            next_id += 1
            if track.person is not None:
                track.person += persons
                next_person = max(next_person, track.person + 1)
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
    # Zones, the time range and the audio edit are the request's, the same in every segment.
    return Plan(
        input=info,
        settings=first.settings,
        tracks=tracks,
        zones=first.zones,
        audio=first.audio,
        review={"flags": flags},
        created=first.created,
    )


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
    from veil.analysis.detectors import sha256_of
    from veil.media.metadata import check_output
    from veil.media.sink import atomic_output
    from veil.plan import load_plan, write_plan
    from veil.render.verify import verify

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
        # The request (frames and duration of the span, audio edits) is checked on the joined
        # file; with a solid mask each segment's pixels were verified in its worker, so no frame
        # is decoded again here (blur and pixelate need the input's pixels: checked whole).
        solid = settings.mask == "solid"
        result = verify(load_plan(plan_out, spooled=True), tmp, settings, input_path, pixels=not solid)
        if not result.ok:
            raise VeilError(f"{input_path}: {result.summary()}; nothing written")
        record["verify"] = result.to_json()
        if solid:
            record["verify"].update(
                frames_checked=sum(r["verify"]["frames_checked"] for r in results),
                regions_checked=sum(r["verify"]["regions_checked"] for r in results),
                per_segment=True,
            )
        record["metadata"], meta_warnings = check_output(input_path, tmp, settings.keep_metadata)
        record["warnings"].extend(meta_warnings)
    counts: dict[str, int] = {}
    for r in results:
        for k, v in r["counts"].items():
            # Counts add up over segments; a worst frame is the worst of theirs.
            counts[k] = max(counts.get(k, 0), int(v)) if k.endswith("_max_permille") else counts.get(k, 0) + int(v)
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

"""Read-only looks at a finished file for verify: how many video frames a span of a file holds,
and what its audio tracks contain inside given time ranges.

Nothing here decodes pictures to pixels, and audio is streamed: a range of hours costs a few
running sums (mute, bleep), or at most `COMPARE_CAP_S` seconds of samples (disguise).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from veil.errors import MediaError
from veil.timerange import TimeRange

# Codecs whose decoded samples are the encoder's input exactly: a muted range must be zeros.
LOSSLESS_AUDIO = ("pcm_", "flac", "alac", "wavpack", "tta", "mlp", "truehd")
# Seconds of in-range samples kept to compare a disguised track with its input.
COMPARE_CAP_S = 60.0


@dataclass
class Span:
    """The video frames of a file (or of a part of it) as veil's source reads them."""

    frames: int
    first_s: float | None
    last_s: float | None
    rate: float | None

    @property
    def duration_s(self) -> float | None:
        """From the first frame's start to the last frame's end (one frame interval after it)."""
        if self.first_s is None or self.last_s is None:
            return None
        step = 1.0 / self.rate if self.rate else 0.0
        return self.last_s - self.first_s + step


def video_span(path: Path, time_range: TimeRange | None = None, decode: bool = False) -> Span:
    """Frames of `path`'s first video stream inside `time_range` (None: all), counted the way
    `source.VideoSource` keeps them (times from the stream's start, the same half-millisecond
    slack). Packets are counted, which needs no decoding; `decode`: decode frames (no pixel
    conversion) instead, for files whose packets carry no timestamps or disagree."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: cannot read ({exc})") from exc
    with container:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream")
        stream = container.streams.video[0]
        tb = stream.time_base
        origin = float((stream.start_time or 0) * tb) if tb else 0.0
        rate = stream.average_rate or stream.guessed_rate
        times: list[float] = []
        try:
            if decode:
                for frame in container.decode(stream):
                    times.append(float(frame.time if frame.time is not None else 0.0) - origin)
            else:
                for packet in container.demux(stream):
                    if not packet.size:
                        continue
                    if packet.pts is None or tb is None:
                        return video_span(path, time_range, decode=True)
                    times.append(float(packet.pts * tb) - origin)
        except av.error.FFmpegError as exc:
            raise MediaError(f"{path}: cannot read ({exc})") from exc
    kept = sorted(t for t in times if time_range is None or not (time_range.before(t) or time_range.after(t)))
    return Span(len(kept), kept[0] if kept else None, kept[-1] if kept else None, float(rate) if rate else None)


# ----------------------------------------------------------------------------- audio


@dataclass
class RangeStats:
    """What one audio track holds inside one time range (seconds from its first sample)."""

    start_s: float
    end_s: float
    guard: int = 0
    # True: nothing is left of the range once `guard` samples are left out at each edge.
    short: bool = False
    samples: int = 0  # per channel
    peak: float = 0.0
    energy: float = 0.0
    # Least-squares sums for fitting a sine and cosine of the bleep's frequency.
    xs: float = 0.0
    xc: float = 0.0
    ss: float = 0.0
    cc: float = 0.0
    sc: float = 0.0
    channels: int = 1
    kept: list[np.ndarray] = field(default_factory=list)

    @property
    def rms(self) -> float:
        return math.sqrt(self.energy / (self.samples * self.channels)) if self.samples else 0.0

    def tone(self) -> tuple[float, float]:
        """(amplitude of the best-fitting tone, RMS of what the tone leaves unexplained)."""
        if not self.samples:
            return 0.0, 0.0
        values = self.samples * self.channels
        det = self.ss * self.cc - self.sc * self.sc
        if det <= 0:
            return 0.0, math.sqrt(self.energy / values)
        a = (self.xs * self.cc - self.xc * self.sc) / det
        b = (self.xc * self.ss - self.xs * self.sc) / det
        residual = self.energy - (a * self.xs + b * self.xc)
        return math.hypot(a, b), math.sqrt(max(residual, 0.0) / values)

    def samples_kept(self) -> np.ndarray:
        return np.concatenate(self.kept, axis=1) if self.kept else np.zeros((1, 0))


@dataclass
class TrackStats:
    index: int
    codec: str
    rate: int
    channels: int
    samples: int
    ranges: list[RangeStats]

    @property
    def lossless(self) -> bool:
        return self.codec.startswith(LOSSLESS_AUDIO)


def _float_blocks(container: Any, stream: Any) -> Iterator[np.ndarray]:
    """(channels, n) float64 blocks of one audio stream, in order, from its first sample."""
    for frame in container.decode(stream):
        data = frame.to_ndarray()
        channels = frame.layout.nb_channels
        if not frame.format.is_planar:
            data = data.reshape(-1, channels).T
        if data.dtype == np.uint8:
            yield (data.astype(np.float64) - 128) / 128
        elif np.issubdtype(data.dtype, np.integer):
            yield data.astype(np.float64) / (np.iinfo(data.dtype).max + 1)
        else:
            yield data.astype(np.float64)


def audio_stats(
    path: Path,
    ranges: list[tuple[float, float]],
    tone_hz: float = 0.0,
    keep: bool = False,
    guard: int | None = None,
    lossy_guard: int = 0,
) -> list[TrackStats]:
    """Per audio track of `path`: peak, energy and tone-fit sums of the samples inside each of
    `ranges` (seconds from the track's first decoded sample, as audio.Editor counts them; end
    may be inf). Each range loses `guard` samples at both edges (None: `lossy_guard` on lossy
    codecs, 0 on lossless ones). `keep`: also keep up to COMPARE_CAP_S seconds of samples."""
    try:
        return _audio_stats(path, ranges, tone_hz, keep, guard, lossy_guard)
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: cannot read its audio ({exc})") from exc


def _audio_stats(
    path: Path,
    ranges: list[tuple[float, float]],
    tone_hz: float,
    keep: bool,
    guard: int | None,
    lossy_guard: int,
) -> list[TrackStats]:
    out: list[TrackStats] = []
    with av.open(str(path), metadata_errors="ignore") as container:
        for stream in container.streams.audio:
            ctx = stream.codec_context
            rate = int(ctx.sample_rate or 0)
            if not rate:
                continue
            lossless = ctx.name.startswith(LOSSLESS_AUDIO)
            trim = guard if guard is not None else (0 if lossless else lossy_guard)
            stats = [RangeStats(a, b, guard=trim) for a, b in ranges]
            # Rounded as audio.coverage rounds them, so a lossless range is exactly the muted one.
            bounds = [
                (int(round(a * rate)) + trim, (int(round(b * rate)) - trim) if math.isfinite(b) else math.inf)
                for a, b in ranges
            ]
            cap = int(COMPARE_CAP_S * rate)
            position = 0
            channels = 0
            for block in _float_blocks(container, stream):
                channels = block.shape[0]
                n = block.shape[1]
                for st, (lo, hi) in zip(stats, bounds, strict=True):
                    a, b = max(lo, position), min(hi, position + n)
                    if b <= a:
                        continue
                    a_i, b_i = int(a), int(b)
                    part = block[:, a_i - position : b_i - position]
                    st.samples += part.shape[1]
                    st.channels = part.shape[0]
                    st.peak = max(st.peak, float(np.abs(part).max(initial=0.0)))
                    st.energy += float((part * part).sum())
                    if tone_hz:
                        t = np.arange(a_i, b_i) / rate * (2 * np.pi * tone_hz)
                        s, c = np.sin(t), np.cos(t)
                        st.xs += float((part * s).sum())
                        st.xc += float((part * c).sum())
                        st.ss += float((s * s).sum()) * part.shape[0]
                        st.cc += float((c * c).sum()) * part.shape[0]
                        st.sc += float((s * c).sum()) * part.shape[0]
                    if keep and sum(k.shape[1] for k in st.kept) < cap:
                        st.kept.append(part.copy())
                position += n
            for st, (lo, hi) in zip(stats, bounds, strict=True):
                st.short = hi <= lo
            out.append(TrackStats(stream.index, ctx.name, rate, channels, position, stats))
    return out


def audio_stream_count(path: Path) -> int:
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            return len(container.streams.audio)
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: cannot read ({exc})") from exc

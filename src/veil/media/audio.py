"""Voices: mute, bleep or disguise an audio track (whole, or time ranges), and audio-only files.

Audio is decoded and re-encoded only when it is changed (`AudioEdit.changes`); otherwise
packets are copied. When it is changed, samples outside the ranges (and their short fades)
are written back exactly as decoded, at the input's sample rate, channel layout and sample
format, with the input's timestamps, so a lossless input stays bit-identical there.

Strength, weakest last: mute (nothing left) > bleep (nothing left, but the listener hears
where speech was cut) > disguise. Disguise is the McAdams transform of the VoicePrivacy
Challenge baseline: each 20 ms frame's LPC pole angles are raised to a power `alpha`, which
moves the formants while keeping the words. Its `alpha` is drawn per file from OS randomness
and never written anywhere. An attacker who knows the method can disguise a reference
recording the same way and match again; docs/audio.md gives the measured equal error rates.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from veil.errors import MediaError, VeilError
from veil.timerange import parse_time

AUDIO_MODES = ("keep", "mute", "bleep", "disguise")
AUDIO_EXTS = {".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus", ".oga"}
# Ramps at range edges, outside the range: the range itself is fully silenced/bleeped, and
# 5 ms is long enough to avoid a click, short enough to keep edges within 10 ms.
FADE_S = 0.005
BLEEP_HZ = 1000.0
BLEEP_DBFS = -20.0
# The McAdams coefficient range: chosen from the strength/intelligibility curve in
# docs/audio.md (bench/voice_bench.py). Lower alpha moves formants further.
DISGUISE_ALPHA = (0.60, 0.70)
DISGUISE_WIN_S = 0.020
BATCH_FRAMES = 64
MAX_BLOCK = 1 << 16
# Pole angles are warped on a 16 kHz scale so the same alpha moves the same formants at any
# sample rate; LPC order grows with the rate to keep resolving them.
REFERENCE_RATE = 16000
LPC_ORDER_16K = 20
LPC_ORDER_MAX = 24

STRENGTH = {
    "keep": "voice untouched",
    "mute": "digital silence: nothing of the voice is left",
    "bleep": f"replaced by a {BLEEP_HZ:g} Hz tone at {BLEEP_DBFS:g} dBFS: nothing of the voice is left",
    "disguise": "formants moved (McAdams LPC warping, random strength per file): weaker than mute; "
    "an attacker who disguises a reference recording the same way can still match it (docs/audio.md)",
}


# ----------------------------------------------------------------------------- what to do


def parse_ranges(text: str) -> list[tuple[float, float]]:
    """`00:01:02.5-00:01:05,90-95` -> [(62.5, 65.0), (90.0, 95.0)], sorted, overlaps merged."""
    ranges = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        pieces = part.split("-")
        if len(pieces) != 2:
            raise VeilError(f"--audio-ranges: {part!r} is not START-END")
        start, end = parse_time(pieces[0], "--audio-ranges"), parse_time(pieces[1], "--audio-ranges")
        if end <= start:
            raise VeilError(f"--audio-ranges: {part!r} ends before it starts")
        ranges.append((start, end))
    if not ranges:
        raise VeilError("--audio-ranges: no ranges given")
    return merge_ranges(ranges)


def merge_ranges(ranges: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@dataclass
class AudioEdit:
    """What happens to every audio track of a file: the plan's `audio` section holds this.

    `ranges` are (start, end) seconds from the start of the file; empty means the whole track.
    """

    mode: str = "keep"
    ranges: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in AUDIO_MODES:
            raise VeilError(f"--audio: unknown mode {self.mode!r}; choose from {', '.join(AUDIO_MODES)}")
        for start, end in self.ranges:
            if not (0 <= start < end):
                raise VeilError(f"audio range {start}-{end} is empty or negative")
        self.ranges = merge_ranges([(float(a), float(b)) for a, b in self.ranges])

    @property
    def changes(self) -> bool:
        return self.mode != "keep"

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "ranges": [[a, b] for a, b in self.ranges]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AudioEdit:
        return cls(str(data.get("mode", "keep")), [(float(a), float(b)) for a, b in data.get("ranges", [])])

    def describe(self) -> dict[str, Any]:
        """The report's record: method, ranges and its strength; never disguise parameters."""
        out: dict[str, Any] = {"method": self.mode, "strength": STRENGTH[self.mode]}
        if self.changes:
            out["ranges"] = [[a, b] for a, b in self.ranges] if self.ranges else "whole track"
            if self.ranges:
                out["edge_fade_s"] = FADE_S
        return out


# ----------------------------------------------------------------------------- sample edits


def coverage(start: int, n: int, rate: int, ranges: list[tuple[float, float]]) -> np.ndarray | None:
    """Weight in [0, 1] of the edited signal for samples start..start+n: 1 inside a range,
    a raised-cosine ramp over FADE_S just outside its edges, 0 elsewhere; None if all 0."""
    if not ranges:
        return np.ones(n)
    fade = max(1, int(round(FADE_S * rate)))
    end = start + n
    weight: np.ndarray | None = None
    for a_s, b_s in ranges:
        a, b = int(round(a_s * rate)), int(round(b_s * rate))
        if b + fade <= start or a - fade >= end:
            continue
        if weight is None:
            weight = np.zeros(n)
        idx = np.arange(start, end)
        ramp_in = 0.5 - 0.5 * np.cos(np.pi * np.clip((idx - (a - fade)) / fade, 0, 1))
        ramp_out = 0.5 - 0.5 * np.cos(np.pi * np.clip(((b + fade) - idx) / fade, 0, 1))
        inside = (idx >= a) & (idx < b)
        w = np.where(inside, 1.0, np.minimum(ramp_in, ramp_out) * ((idx >= a - fade) & (idx < b + fade)))
        np.maximum(weight, w, out=weight)
    return weight


def draw_alpha() -> float:
    """A McAdams coefficient for one file, from OS randomness; never stored or reported."""
    low, high = DISGUISE_ALPHA
    return low + (high - low) * secrets.randbits(53) / (1 << 53)


class McAdams:
    """Streaming McAdams disguise of one (channels, n) float signal.

    Frames lie on one grid from the start of the track, so the output does not depend on how
    the input was cut into blocks; each is analysed by LPC, its complex pole angles theta
    (on a 16 kHz scale) become theta**alpha, and the LPC residual is resynthesised through the
    warped filter, with the frame's energy kept. sqrt-Hann analysis and synthesis windows at
    50 % overlap sum to one. Latency: one window, flushed at the end.
    """

    def __init__(self, rate: int, channels: int, alpha: float) -> None:
        self.rate, self.channels, self.alpha = rate, channels, alpha
        self.win = 2 * max(8, int(round(DISGUISE_WIN_S * rate / 2)))
        self.hop = self.win // 2
        self.order = min(LPC_ORDER_MAX, max(8, int(round(LPC_ORDER_16K * rate / REFERENCE_RATE))))
        self.window = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(self.win) / self.win))
        self.scale = rate / REFERENCE_RATE
        # The first frame starts one hop before sample 0 so sample 0 is covered by two frames.
        self.buf = np.zeros((channels, self.hop))
        self.buf_start = -self.hop  # global index of buf[:, 0]
        self.acc = np.zeros((channels, self.win))
        self.acc_start = -self.hop
        self.emitted = 0

    def push(self, block: np.ndarray, skip: Any = None) -> np.ndarray:
        """Feed samples; return the disguised samples that are now final (may be fewer).

        `skip(start, end)` -> True lets frames that nobody will hear be left silent."""
        if block.shape[1] > MAX_BLOCK:  # bounds the batched arrays on a whole file pushed at once
            parts = [self.push(block[:, i : i + MAX_BLOCK], skip) for i in range(0, block.shape[1], MAX_BLOCK)]
            return np.concatenate(parts, axis=1)
        self.buf = np.concatenate([self.buf, block], axis=1)
        if self.buf.shape[1] < self.win + BATCH_FRAMES * self.hop:
            return np.zeros((self.channels, 0))  # numpy's per-call cost wants many frames at once
        return self._run(skip)

    def flush(self, skip: Any = None) -> np.ndarray:
        total = self.buf_start + self.buf.shape[1]
        self.buf = np.concatenate([self.buf, np.zeros((self.channels, self.win))], axis=1)
        out = self._run(skip)
        return out[:, : total - (self.emitted - out.shape[1])]

    def _run(self, skip: Any) -> np.ndarray:
        n_frames = (self.buf.shape[1] - self.win) // self.hop + 1
        if n_frames <= 0:
            return np.zeros((self.channels, 0))
        starts = np.arange(n_frames) * self.hop
        span = (n_frames - 1) * self.hop + self.win
        if self.acc.shape[1] < span:
            self.acc = np.concatenate([self.acc, np.zeros((self.channels, span - self.acc.shape[1]))], axis=1)
        keep = np.ones(n_frames, bool)
        if skip is not None:
            g0 = self.buf_start
            keep = np.array([not skip(g0 + s, g0 + s + self.win) for s in starts])
        if keep.any():
            idx = starts[keep][:, None] + np.arange(self.win)
            out = self._frames(self.buf[:, idx] * self.window) * self.window
            # Overlap-add: frames of the same parity never overlap (hop = win / 2), so a
            # fancy-indexed add per parity sums every sample exactly once per frame.
            for phase in (0, 1):
                sel = np.flatnonzero(keep) % 2 == phase
                if sel.any():
                    for c in range(self.channels):
                        self.acc[c][idx[sel]] += out[c, sel]
        done = n_frames * self.hop  # samples before the next frame's start are final
        out = self.acc[:, :done]
        self.acc = self.acc[:, done:]
        self.buf = self.buf[:, done:]
        self.buf_start += done
        self.acc_start += done
        # Output before sample 0 (the half frame of padding) is never emitted.
        lead = max(0, -(self.acc_start - done))
        out = out[:, lead:]
        self.emitted += out.shape[1]
        return out

    def _frames(self, frames: np.ndarray) -> np.ndarray:
        """Disguise windowed frames (channels, F, win) -> (channels, F, win).

        The channels share one analysis (of their mean): one voice is in every channel of a
        recording, and the poles are the costly part."""
        p = self.order
        _, n_frames, win = frames.shape
        nfft = 1 << int(np.ceil(np.log2(2 * win)))
        spec = np.fft.rfft(frames.mean(axis=0), nfft)
        r = np.fft.irfft(np.abs(spec) ** 2, nfft)[:, : p + 1]
        r[:, 0] *= 1 + 1e-9  # white-noise correction keeps Levinson stable on silence
        r[:, 0] += 1e-12
        a = _levinson(r, p)  # (F, p+1), a[:, 0] == 1
        # Poles: eigenvalues of each frame's companion matrix, in one batched call.
        comp = np.zeros((n_frames, p, p))
        comp[:, 0, :] = -a[:, 1:]
        comp[:, np.arange(1, p), np.arange(p - 1)] = 1.0
        poles = np.linalg.eigvals(comp)
        angle = np.angle(poles)
        complex_pole = np.abs(poles.imag) > 1e-12
        theta = np.abs(angle) * self.scale
        warped = np.minimum(np.pi * self.scale, theta**self.alpha) / self.scale
        warped = np.minimum(warped, np.pi)
        new_angle = np.where(complex_pole, np.sign(angle) * warped, angle)
        new_poles = np.abs(poles) * np.exp(1j * new_angle)
        a_new = _poly(new_poles)
        # Imported here: scipy.signal takes about half a second to import, and only a disguised
        # voice needs it, not every run that imports this module.
        from scipy.signal import lfilter

        out = np.empty_like(frames)
        for i in range(n_frames):
            # Residual through the frame's inverse filter, resynthesised through the warped one.
            out[:, i] = lfilter([1.0], a_new[i], lfilter(a[i], [1.0], frames[:, i], axis=-1), axis=-1)
        # Keep each frame's energy: a moved resonance changes the filter's gain.
        energy = np.einsum("cij,cij->ci", frames, frames)
        out_energy = np.einsum("cij,cij->ci", out, out)
        gain = np.sqrt(energy / np.maximum(out_energy, 1e-20))
        gain[~np.isfinite(gain) | (energy <= 1e-12)] = 0.0
        return out * gain[:, :, None]


def _levinson(r: np.ndarray, order: int) -> np.ndarray:
    """LPC coefficients of many frames at once from their autocorrelations (F, order+1)."""
    n = r.shape[0]
    a = np.zeros((n, order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, order + 1):
        acc = r[:, i] + np.einsum("ij,ij->i", a[:, 1:i], r[:, i - 1 : 0 : -1]) if i > 1 else r[:, i].copy()
        k = -acc / np.maximum(err, 1e-30)
        prev = a[:, 1:i].copy()
        a[:, 1:i] = prev + k[:, None] * prev[:, ::-1]
        a[:, i] = k
        err = err * (1 - k * k)
    return a


def _poly(roots: np.ndarray) -> np.ndarray:
    """Real polynomial coefficients from (F, p) conjugate-paired roots, batched np.poly."""
    n, p = roots.shape
    c = np.zeros((n, p + 1), complex)
    c[:, 0] = 1
    for k in range(p):
        c[:, 1 : k + 2] = c[:, 1 : k + 2] - roots[:, k : k + 1] * c[:, 0 : k + 1]
    return c.real


class Editor:
    """Applies an `AudioEdit` to one track, streamed as (channels, n) blocks in any dtype.

    Only samples with a non-zero coverage weight are computed and written; every other sample
    is returned exactly as it came. Output equals input in length, delayed by the disguise's
    latency (zero for mute and bleep)."""

    def __init__(self, edit: AudioEdit, rate: int, channels: int, alpha: float | None = None) -> None:
        self.edit, self.rate, self.channels = edit, rate, channels
        self.position = 0  # samples received
        self.out_position = 0  # samples returned
        self.pending: list[np.ndarray] = []  # originals waiting for their disguised samples
        self.disguise = None
        if edit.mode == "disguise":
            self.disguise = McAdams(rate, channels, draw_alpha() if alpha is None else alpha)
        self.level = 10 ** (BLEEP_DBFS / 20)

    def _skip(self, start: int, end: int) -> bool:
        w = coverage(start, end - start, self.rate, self.edit.ranges) if self.edit.ranges else None
        return bool(self.edit.ranges) and (w is None or not w.any())

    def push(self, block: np.ndarray) -> np.ndarray:
        start = self.position
        self.position += block.shape[1]
        if self.disguise is None:
            out = self._apply(block, start, None)
            self.out_position += out.shape[1]
            return out
        self.pending.append(block)
        return self._emit(self.disguise.push(_to_float(block), self._skip))

    def flush(self) -> np.ndarray:
        if self.disguise is None:
            return np.zeros((self.channels, 0))
        return self._emit(self.disguise.flush(self._skip))

    def _emit(self, edited: np.ndarray) -> np.ndarray:
        n = edited.shape[1]
        if n == 0:
            return np.zeros((self.channels, 0), self.pending[0].dtype if self.pending else np.float32)
        original = np.concatenate(self.pending, axis=1)
        head, rest = original[:, :n], original[:, n:]
        self.pending = [rest] if rest.shape[1] else []
        out = self._apply(head, self.out_position, edited)
        self.out_position += n
        return out

    def _apply(self, block: np.ndarray, start: int, edited: np.ndarray | None) -> np.ndarray:
        n = block.shape[1]
        weight = coverage(start, n, self.rate, self.edit.ranges) if self.edit.changes else None
        if weight is None:
            return block
        touched = np.flatnonzero(weight > 0)
        lo, hi = int(touched[0]), int(touched[-1]) + 1
        w = weight[lo:hi]
        original = _to_float(block[:, lo:hi])
        if self.edit.mode == "mute":
            new = np.zeros_like(original)
        elif self.edit.mode == "bleep":
            t = np.arange(start + lo, start + hi) / self.rate
            new = np.broadcast_to(self.level * np.sin(2 * np.pi * BLEEP_HZ * t), original.shape)
        else:
            assert edited is not None
            new = edited[:, lo:hi]
        mixed = original * (1 - w) + new * w
        out = block.copy()
        out[:, lo:hi] = _from_float(mixed, block.dtype, exact_zero=(w == 1) & (self.edit.mode == "mute"))
        return out


def _to_float(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8:
        return (x.astype(np.float64) - 128) / 128
    if np.issubdtype(x.dtype, np.integer):
        return x.astype(np.float64) / (np.iinfo(x.dtype).max + 1)
    return x.astype(np.float64)


def _from_float(x: np.ndarray, dtype: np.dtype, exact_zero: np.ndarray) -> np.ndarray:
    x = np.clip(x, -1.0, 1.0)
    x[:, exact_zero] = 0.0
    if dtype == np.uint8:
        return np.round(x * 127 + 128).astype(np.uint8)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(x * (info.max + 1)), info.min, info.max).astype(dtype)
    return x.astype(dtype)


# ----------------------------------------------------------------------------- tracks


SAMPLE_TYPES = {"u8": "uint8", "s16": "int16", "s32": "int32", "s64": "int64", "flt": "float32", "dbl": "float64"}
ENCODERS = {"mp3": "libmp3lame", "mp3float": "libmp3lame", "opus": "libopus", "vorbis": "libopus"}


def planar(frame: av.AudioFrame) -> np.ndarray:
    """A decoded frame's samples as (channels, n) in its own sample type."""
    data = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if frame.format.is_planar:
        return data
    return data.reshape(-1, channels).T


def to_frame(samples: np.ndarray, fmt: str, layout: str, rate: int) -> av.AudioFrame:
    """(channels, n) -> AudioFrame in format `fmt` (interleaved formats are re-interleaved)."""
    if av.AudioFormat(fmt).is_planar:
        data = np.ascontiguousarray(samples)
    else:
        data = np.ascontiguousarray(samples.T).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
    frame.sample_rate = rate
    return frame


class TrackRewriter:
    """Decodes one input audio stream, edits it and encodes it into `container`.

    The codec, sample rate, channel layout and sample format are the input's wherever an
    encoder for them exists; timestamps continue from the first decoded sample's."""

    def __init__(
        self, in_stream: Any, container: Any, edit: AudioEdit, fallback_codec: str = "aac", same_codec: bool = True
    ) -> None:
        ctx = in_stream.codec_context
        self.in_stream = in_stream
        self.container = container
        self.rate = ctx.sample_rate
        self.layout = ctx.layout.name
        self.channels = ctx.layout.nb_channels
        # The demuxer's own decoder: it knows the stream's time base and the encoder delay
        # to drop (AAC priming), so decoded timestamps are the ones a player uses.
        self.decoder = ctx
        codec = (_encoder_for(ctx.name, container, self.rate) if same_codec else None) or fallback_codec
        encoder = av.codec.Codec(codec, "w")
        rates = encoder.audio_rates
        out_rate = self.rate if not rates or self.rate in rates else min(rates, key=lambda r: (r < self.rate, r))
        formats = [f.name for f in encoder.audio_formats or []]
        in_fmt = ctx.format.name if ctx.format else "fltp"
        self.fmt = in_fmt if in_fmt in formats or not formats else _closest_format(in_fmt, formats)
        self.out = container.add_stream(codec, rate=out_rate)
        self.out.layout = self.layout
        self.out.format = self.fmt
        self.out.time_base = Fraction(1, out_rate)
        if codec not in ("flac",) and not codec.startswith("pcm_"):
            # The input's bit rate, so a lossy re-encode loses no more than it must. Matroska
            # and some other containers record none: measured from the stream's first packets,
            # else the encoder's default (128 kb/s for AAC) would replace it.
            bit_rate = ctx.bit_rate or in_stream.bit_rate or _measured_bit_rate(in_stream)
            if bit_rate:
                self.out.bit_rate = bit_rate
        self.out.metadata.clear()
        self.resampler = None
        if out_rate != self.rate:
            self.resampler = av.AudioResampler(format=self.fmt, layout=self.layout, rate=out_rate)
        self.codec = codec
        self.editor = Editor(edit, self.rate, self.channels)
        self.first_pts: int | None = None
        self.written = 0
        self.queue: list[np.ndarray] = []
        self.queued = 0
        self.frame_size = self.out.codec_context.frame_size or 0
        # Decoders of lossy codecs return the encoder's padding after the last real sample;
        # the stream's duration says where the audio ends, so the output ends there too.
        self.limit: int | None = None
        if in_stream.duration and in_stream.time_base:
            self.limit = int(round(in_stream.duration * in_stream.time_base * self.rate))

    def describe(self) -> str:
        name = self.in_stream.codec_context.name
        change = "" if self.resampler is None else f", resampled {self.rate} -> {self.out.rate} Hz"
        return f"{self.editor.edit.mode}: re-encoded {name} -> {self.codec}{change}"

    def write(self, packet: av.Packet) -> None:
        for frame in self.decoder.decode(packet):
            self._edit(frame)

    def close(self) -> None:
        for frame in self.decoder.decode(None):
            self._edit(frame)
        self._queue(self.editor.flush())
        self._drain(final=True)
        if self.resampler is not None:
            self._encode_frames(self.resampler.resample(None))
        for packet in self.out.encode(None):
            self.container.mux(packet)

    def _edit(self, frame: av.AudioFrame) -> None:
        if self.first_pts is None:
            pts = frame.pts if frame.pts is not None else 0
            tb = frame.time_base or Fraction(1, self.rate)
            self.first_pts = int(round(pts * tb * self.rate))
        samples = planar(frame)
        if self.fmt != frame.format.name:
            samples = _convert(samples, self.fmt)
        self._queue(self.editor.push(samples))
        self._drain(final=False)

    def _queue(self, samples: np.ndarray) -> None:
        if self.limit is not None:
            samples = samples[:, : max(0, self.limit - self.written - self.queued)]
        if samples.shape[1]:
            self.queue.append(samples)
            self.queued += samples.shape[1]

    def _drain(self, final: bool) -> None:
        size = self.frame_size or 4096
        if self.queued < size and not (final and self.queued):
            return
        data = np.concatenate(self.queue, axis=1)
        n_full = data.shape[1] // size * size
        cut = data.shape[1] if final else n_full
        for start in range(0, cut, size):
            chunk = data[:, start : min(start + size, cut)]
            frame = to_frame(chunk, self.fmt, self.layout, self.rate)
            frame.pts = (self.first_pts or 0) + self.written
            frame.time_base = Fraction(1, self.rate)
            self.written += chunk.shape[1]
            self._encode_frames(self.resampler.resample(frame) if self.resampler is not None else [frame])
        rest = data[:, cut:]
        self.queue = [rest] if rest.shape[1] else []
        self.queued = rest.shape[1]

    def _encode_frames(self, frames: list[av.AudioFrame]) -> None:
        for frame in frames:
            for packet in self.out.encode(frame):
                self.container.mux(packet)


def _encoder_for(decoder_name: str, container: Any, rate: int) -> str | None:
    name = ENCODERS.get(decoder_name, decoder_name)
    try:
        codec = av.codec.Codec(name, "w")
    except Exception:  # noqa: BLE001 - no encoder for this codec: the caller falls back
        return None
    if codec.name not in container.supported_codecs and name not in container.supported_codecs:
        return None
    return codec.name


def _closest_format(fmt: str, formats: list[str]) -> str:
    base = fmt.rstrip("p")
    for candidate in (base, base + "p", "s16", "s16p", "fltp", "flt"):
        if candidate in formats:
            return candidate
    return formats[0]


def _convert(samples: np.ndarray, fmt: str) -> np.ndarray:
    """Same samples in another sample type (planar/interleaved is handled by `to_frame`)."""
    target = np.dtype(SAMPLE_TYPES[fmt.rstrip("p")])
    if samples.dtype == target:
        return samples
    return _from_float(_to_float(samples), target, np.zeros(samples.shape[1], bool))


# ----------------------------------------------------------------------------- audio files


def is_audio_file(path: Path) -> bool:
    """An audio-only file: a known audio extension, or a container with audio and no video
    (cover pictures in mp3/m4a do not count as video)."""
    if path.suffix.lower() in AUDIO_EXTS:
        return True
    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            moving = [s for s in c.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
            return bool(c.streams.audio) and not moving
    except Exception:  # noqa: BLE001 - unreadable: not an audio file
        return False


def audio_packets(container: Any, streams: list[Any]) -> Iterator[av.Packet]:
    for packet in container.demux(streams):
        if packet.dts is not None and packet.size:
            yield packet


def process_file(source: Path, target: Path, edit: AudioEdit) -> dict[str, Any]:
    """Write an audio-only file: every audio stream copied (keep) or edited; cover pictures,
    tags, chapters and other streams dropped. Returns the report's record for the file."""
    try:
        inp = av.open(str(source), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"{source}: corrupt, truncated or not an audio file ({exc})") from exc
    with inp:
        streams = list(inp.streams.audio)
        if not streams:
            raise MediaError(f"{source}: no audio stream")
        fmt = _output_format(target)
        out = av.open(str(target), "w", format=fmt, options={"fflags": "+bitexact"})
        try:
            out.metadata.clear()
            copies: dict[int, Any] = {}
            rewriters: dict[int, TrackRewriter] = {}
            modes = []
            # Another extension asks for that format's own codec (e.g. flac -> .wav writes PCM).
            convert = source.suffix.lower() != target.suffix.lower()
            for stream in streams:
                if edit.changes or convert:
                    codec = OUTPUT_CODECS.get(target.suffix.lower(), out.default_audio_codec)
                    rewriters[stream.index] = TrackRewriter(stream, out, edit, codec, not convert)
                    modes.append(rewriters[stream.index].describe())
                else:
                    copy = out.add_stream_from_template(stream)
                    copy.metadata.clear()
                    copies[stream.index] = copy
                    modes.append(f"copied ({stream.codec_context.name})")
            try:
                for packet in audio_packets(inp, streams):
                    if packet.stream.index in rewriters:
                        rewriters[packet.stream.index].write(packet)
                    else:
                        packet.stream = copies[packet.stream.index]
                        out.mux(packet)
            except av.error.FFmpegError as exc:
                raise MediaError(f"{source}: corrupt audio data ({exc})") from exc
            for rewriter in rewriters.values():
                rewriter.close()
        finally:
            out.close()
        duration = inp.duration / av.time_base if inp.duration else None
        dropped = [f"{s.type}#{s.index}" for s in inp.streams if s not in streams]
        first = streams[0].codec_context
    return {
        "audio": modes,
        "audio_edit": edit.describe(),
        "duration_s": duration,
        "sample_rate": first.sample_rate,
        "channels": first.layout.nb_channels,
        "streams_dropped": dropped,
    }


def _measured_bit_rate(in_stream: Any, seconds: float = 30.0) -> int | None:
    """Bits per second of `in_stream` over its first `seconds`, read from a second opening of
    the file (the caller's demuxer stays where it is). None when it cannot be measured."""
    try:
        path = in_stream.container.name
        with av.open(path, metadata_errors="ignore") as c:
            stream = c.streams[in_stream.index]
            size, first, last = 0, None, None
            for packet in c.demux(stream):
                if packet.pts is None or not packet.size:
                    continue
                t = float(packet.pts * stream.time_base)
                end = t + float((packet.duration or 0) * stream.time_base)
                first = t if first is None else min(first, t)
                last = end if last is None else max(last, end)
                size += packet.size
                if last - first >= seconds:
                    break
        if first is None or last is None or last - first < 0.5:
            return None
        return int(size * 8 / (last - first))
    except Exception:  # noqa: BLE001 - an estimate only: the encoder's default is the fallback
        return None


OUTPUT_CODECS = {".opus": "libopus", ".mp3": "libmp3lame", ".m4a": "aac", ".aac": "aac", ".wav": "pcm_s16le"}


def _output_format(target: Path) -> str | None:
    ext = target.suffix.lower()
    return {".m4a": "ipod", ".aac": "adts", ".opus": "ogg", ".oga": "ogg"}.get(ext)

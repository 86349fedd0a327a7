"""Read inputs: classify a path, decode an image, or stream a video's frames and audio packets.

Videos are decoded frame by frame (never loaded whole), so memory stays flat on long files.
Every decode problem surfaces as a `MediaError` with a one-line message.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from veil.audio import AUDIO_EXTS
from veil.errors import MediaError
from veil.types import Frame

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}
VIDEO_EXTS = {".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm"}

# Photos from modern cameras reach 100+ megapixels; beyond this a file is more likely a
# decompression bomb than a photo.
Image.MAX_IMAGE_PIXELS = 400_000_000


def media_kind(path: Path) -> str:
    """'image', 'video' or 'audio' (no picture), from the extension, else by probing the content."""
    ext = path.suffix.lower()
    if ext in IMAGE_EXTS:
        return "image"
    if ext in VIDEO_EXTS:
        return "video"
    if ext in AUDIO_EXTS:
        return "audio"
    try:
        with Image.open(path) as img:
            img.verify()
        return "image"
    except Exception:
        pass
    try:
        with av.open(str(path)) as container:
            if container.streams.video:
                return "video"
            if container.streams.audio:
                return "audio"
    except Exception:
        pass
    raise MediaError(f"{path}: not an image or video veil can read")


# ----------------------------------------------------------------------------- images


@dataclass
class DecodedImage:
    frame: Frame
    format: str
    alpha: np.ndarray | None
    icc_profile: bytes | None
    # Raw metadata blocks, kept only for --keep-metadata.
    exif: bytes | None = None
    info: dict[str, Any] = field(default_factory=dict)


def read_image(path: Path) -> DecodedImage:
    try:
        with Image.open(path) as img:
            fmt = img.format or ""
            n_frames = getattr(img, "n_frames", 1)
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img.load()
            exif = img.info.get("exif")
            icc = img.info.get("icc_profile")
            # Apply EXIF orientation to the pixels so the output, which carries no EXIF,
            # shows the picture the right way up.
            upright = ImageOps.exif_transpose(img)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(f"{path}: not a readable image ({_short(exc)})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaError(f"{path}: corrupt or truncated image ({_short(exc)})") from exc
    if upright.width == 0 or upright.height == 0:
        raise MediaError(f"{path}: image has no pixels")
    alpha = None
    if upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and "transparency" in upright.info):
        rgba = upright.convert("RGBA")
        alpha = np.asarray(rgba)[:, :, 3].copy()
        rgb = np.asarray(rgba.convert("RGB")).copy()
    else:
        rgb = np.asarray(upright.convert("RGB")).copy()
    info = {"frames_in_file": n_frames, "mode": upright.mode}
    return DecodedImage(Frame(rgb, 0), fmt, alpha, icc, exif, info)


# ----------------------------------------------------------------------------- videos


@dataclass
class AudioPacket:
    """A compressed audio packet passed through to the sink untouched."""

    packet: av.Packet
    stream_index: int


@dataclass
class VideoInfo:
    width: int
    height: int
    rate: Fraction | None
    time_base: Fraction
    frames: int
    duration_s: float | None
    rotation: int
    codec: str
    audio_streams: list[Any]
    dropped_streams: list[str]


class VideoSource:
    """Demuxes a video file: yields upright RGB `Frame`s and `AudioPacket`s in file order."""

    def __init__(self, path: Path, with_audio: bool = True) -> None:
        self.path = path
        try:
            self.container = av.open(str(path), metadata_errors="ignore")
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise MediaError(f"{path}: corrupt, truncated or not a video ({_short(exc)})") from exc
        if not self.container.streams.video:
            self.container.close()
            raise MediaError(f"{path}: no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        audio = list(self.container.streams.audio) if with_audio else []
        dropped = [f"{s.type}#{s.index}" for s in self.container.streams if s is not self.stream and s not in audio]
        ctx = self.stream.codec_context
        duration = None
        if self.stream.duration and self.stream.time_base:
            duration = float(self.stream.duration * self.stream.time_base)
        elif self.container.duration:
            duration = self.container.duration / av.time_base
        self.info = VideoInfo(
            width=ctx.width,
            height=ctx.height,
            rate=self.stream.average_rate or self.stream.guessed_rate,
            time_base=self.stream.time_base or Fraction(1, 90000),
            frames=int(self.stream.frames or 0),
            duration_s=duration,
            rotation=0,
            codec=ctx.name,
            audio_streams=audio,
            dropped_streams=dropped,
        )
        self.frames_decoded = 0

    @property
    def expected_frames(self) -> int:
        """Frame count from the header, else estimated from duration and rate (0 if unknown)."""
        if self.info.frames:
            return self.info.frames
        if self.info.duration_s and self.info.rate:
            return int(round(self.info.duration_s * float(self.info.rate)))
        return 0

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.container.close()

    def items(self) -> Iterator[Frame | AudioPacket]:
        audio_index = {s.index for s in self.info.audio_streams}
        streams = [self.stream, *self.info.audio_streams]
        try:
            for packet in self.container.demux(streams):
                if packet.stream.index in audio_index:
                    if packet.dts is not None and packet.size:
                        yield AudioPacket(packet, packet.stream.index)
                    continue
                for frame in packet.decode():
                    yield self._to_frame(frame)
        except av.error.FFmpegError as exc:
            raise MediaError(
                f"{self.path}: corrupt video data after frame {self.frames_decoded} ({_short(exc)})"
            ) from exc
        if self.frames_decoded == 0:
            raise MediaError(f"{self.path}: video has zero decodable frames")
        expected = self.info.frames
        if expected and self.container.format.name.startswith("mov") and self.frames_decoded < expected:
            raise MediaError(
                f"{self.path}: truncated video: header promises {expected} frames, only "
                f"{self.frames_decoded} could be decoded"
            )

    def _to_frame(self, frame: av.VideoFrame) -> Frame:
        rotation = int(getattr(frame, "rotation", 0) or 0) % 360
        if self.frames_decoded == 0:
            self.info.rotation = rotation
        image = frame.to_ndarray(format="rgb24")
        if rotation:
            # The display matrix turns the picture counter-clockwise by `rotation` degrees;
            # detect on the picture as a viewer sees it.
            image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
        out = Frame(image, self.frames_decoded, frame.pts, frame.time_base)
        self.frames_decoded += 1
        return out


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]

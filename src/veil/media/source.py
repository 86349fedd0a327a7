"""Read inputs: classify a path, decode an image, or stream a video's frames and audio packets.

Videos are decoded frame by frame (never loaded whole), so memory stays flat on long files.
Every decode problem surfaces as a `MediaError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from veil.errors import MediaError
from veil.media.audio import AUDIO_EXTS
from veil.media.heif import register as register_heif
from veil.timerange import TimeRange
from veil.types import Frame

register_heif()

# HEIC/HEIF (iPhone photos) through pillow-heif, which ships libheif; AVIF through Pillow.
HEIF_EXTS = {".heic", ".heif", ".hif", ".avif"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", *HEIF_EXTS}
VIDEO_EXTS = {".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm"}
# Formats that may hold several frames: one of more than one frame is an animation.
ANIMATION_EXTS = {".gif", ".png", ".apng", ".webp"}
# Animated outputs Pillow writes, by extension (media/animation.py's sink).
ANIMATION_FORMATS = {".gif": "GIF", ".webp": "WEBP", ".png": "PNG", ".apng": "PNG"}
# Formats whose extra frames are pages of their own (each redacted and written), not previews
# of the same picture (as in MPO JPEGs) nor animation frames.
PAGED_FORMATS = {"TIFF", "HEIF", "AVIF"}

# Photos from modern cameras reach 100+ megapixels; beyond this a file is more likely a
# decompression bomb than a photo.
Image.MAX_IMAGE_PIXELS = 400_000_000


def media_kind(path: Path) -> str:
    """'image', 'animation' (GIF, animated WebP or PNG), 'video' or 'audio' (no picture), from the
    extension and, for formats that may be either, the frame count; else by probing the content."""
    ext = path.suffix.lower()
    if ext in ANIMATION_EXTS:
        return _image_or_animation(path)
    if ext in IMAGE_EXTS:
        return "image"
    if ext in VIDEO_EXTS:
        return "video"
    if ext in AUDIO_EXTS:
        return "audio"
    try:
        return _image_or_animation(path)
    except MediaError:
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


def _image_or_animation(path: Path) -> str:
    try:
        with Image.open(path) as img:
            if img.format == "GIF":
                return "animation"  # even of one frame: GIF is written by the animation sink
            frames = getattr(img, "n_frames", 1) if img.format in ("PNG", "WEBP") else 1
    except Exception as exc:  # noqa: BLE001 - reading fails later with the precise reason
        if path.suffix.lower() in IMAGE_EXTS | ANIMATION_EXTS:
            return "animation" if path.suffix.lower() in (".gif", ".apng") else "image"
        raise MediaError(f"{path}: not an image or video veil can read") from exc
    return "animation" if frames > 1 else "image"


# ----------------------------------------------------------------------------- images


@dataclass
class Page:
    """One picture of an image file (a TIFF may hold many).

    `frame.image` is the upright picture as 8-bit RGB: what detectors see and masks paint
    first. `full` holds the same pixels at the file's own depth (16-bit or float samples, grey
    or RGB, alpha last) when that is deeper than 8 bits, else None; the output is written from
    it so the depth survives, with the masks painted again at that depth (`paint_full_depth`).
    """

    frame: Frame
    alpha: np.ndarray | None
    full: np.ndarray | None = None

    @property
    def depth(self) -> str:
        return "8-bit" if self.full is None else DEPTH_NAMES.get(self.full.dtype.str[1:], str(self.full.dtype))


DEPTH_NAMES = {"u2": "16-bit", "f4": "32-bit float", "f8": "64-bit float"}


@dataclass
class DecodedImage:
    pages: list[Page]
    format: str
    icc_profile: bytes | None
    # Raw metadata blocks, kept only for --keep-metadata.
    exif: bytes | None = None
    info: dict[str, Any] = field(default_factory=dict)

    # The first page, for callers that handle single pictures.
    @property
    def frame(self) -> Frame:
        return self.pages[0].frame

    @property
    def alpha(self) -> np.ndarray | None:
        return self.pages[0].alpha


def read_image(path: Path) -> DecodedImage:
    """Decode every page of an image, upright, at its own bit depth (see `Page`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MediaError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            n_pages = getattr(img, "n_frames", 1) if fmt in PAGED_FORMATS else 1
            exif = img.info.get("exif")
            icc = img.info.get("icc_profile")
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                deep = False
                for index in range(n_pages):
                    img.seek(index)
                    if img.width * img.height > (Image.MAX_IMAGE_PIXELS or 1 << 62):
                        raise Image.DecompressionBombError(f"page {index + 1} is {img.width}x{img.height}")
                    _check_raw_strips(img, index)
                    deep = deep or _is_deep(img, data)
                if deep:
                    pages = _read_deep(path, data, img, n_pages)
                else:
                    pages = []
                    for index in range(n_pages):
                        img.seek(index)
                        img.load()
                        pages.append(_page_8bit(img, index))
    except UnidentifiedImageError as exc:
        raise MediaError(f"{path}: not a readable image (format not recognised)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(f"{path}: not a readable image ({_short(exc)})") from exc
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, IndexError, KeyError, cv2.error) as exc:
        raise MediaError(f"{path}: corrupt or truncated image ({_short(exc)})") from exc
    except RuntimeError as exc:  # Pillow's AVIF decoder: "Failed to decode image"
        raise MediaError(f"{path}: corrupt or truncated image ({_short(exc)})") from exc
    for page in pages:
        if page.frame.width == 0 or page.frame.height == 0:
            raise MediaError(f"{path}: image has no pixels")
    info = {"frames_in_file": n_pages, "bit_depth": pages[0].depth}
    return DecodedImage(pages, fmt, icc, exif, info)


def _check_raw_strips(img: Image.Image, index: int) -> None:
    """An uncompressed TIFF page whose strips hold fewer bytes than its size needs is cut short:
    Pillow would leave the missing rows black (and a damaged height can claim millions of rows)."""
    if img.format != "TIFF" or img.tag_v2.get(259, 1) != 1:
        return
    bits = img.tag_v2.get(258, (1,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    counts = img.tag_v2.get(279, ())
    counts = counts if isinstance(counts, tuple) else (counts,)
    needed = img.width * img.height * sum(int(b) for b in bits) // 8
    held = sum(int(c) for c in counts)
    if held < needed:
        raise ValueError(f"page {index + 1} holds {held} of the {needed} bytes its size needs")


def _page_8bit(img: Image.Image, index: int) -> Page:
    # Apply EXIF orientation to the pixels so the output, which carries no EXIF, shows the
    # picture the right way up.
    upright = ImageOps.exif_transpose(img)
    alpha = None
    if upright.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (upright.mode == "P" and "transparency" in upright.info):
        rgba = upright.convert("RGBA")
        alpha = np.asarray(rgba)[:, :, 3].copy()
        rgb = np.asarray(rgba.convert("RGB")).copy()
    else:
        rgb = np.asarray(upright.convert("RGB")).copy()
    return Page(Frame(rgb, index), alpha)


# Pillow keeps 16-bit grey, but reads 16-bit RGB PNG and TIFF as 8-bit RGB; OpenCV decodes
# those whole, so deep files are decoded by OpenCV.
DEEP_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}


def _is_deep(img: Image.Image, data: bytes) -> bool:
    if img.mode in DEEP_MODES:
        return True
    if img.format == "PNG":
        return len(data) > 24 and data[24] == 16  # IHDR bit depth
    if img.format == "TIFF":
        bits = img.tag_v2.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        return max(int(b) for b in bits) > 8
    return False


def _read_deep(path: Path, data: bytes, img: Image.Image, n_pages: int) -> list[Page]:
    buffer = np.frombuffer(data, np.uint8)
    with _quiet_native_stderr():
        if n_pages > 1:
            ok, arrays = cv2.imdecodemulti(buffer, cv2.IMREAD_UNCHANGED)
            arrays = list(arrays) if ok else []
        else:
            one = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
            arrays = [] if one is None else [one]
    if len(arrays) != n_pages:
        raise MediaError(
            f"{path}: corrupt or truncated image ({n_pages - len(arrays)} of {n_pages} pages could not be decoded)"
        )
    pages = []
    for index, array in enumerate(arrays):
        img.seek(index)
        orientation = int(img.getexif().get(0x0112, 1) or 1)
        full = _orient(_to_rgb_order(array), orientation)
        if full.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
            raise MediaError(f"{path}: unsupported sample format {full.dtype} on page {index + 1}")
        alpha8 = None
        if full.ndim == 3 and full.shape[2] in (2, 4):
            alpha8 = to_8bit(full[..., -1])
        pages.append(Page(Frame(to_8bit_rgb(full), index), alpha8, None if full.dtype == np.uint8 else full))
    return pages


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """libpng inside OpenCV prints its complaints ("libpng error: IDAT: CRC error") straight to
    file descriptor 2; the user gets veil's one-line error instead."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _to_rgb_order(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 3:
        return np.ascontiguousarray(array[..., ::-1])
    if array.ndim == 3 and array.shape[2] == 4:
        return np.ascontiguousarray(array[..., [2, 1, 0, 3]])
    if array.ndim == 3 and array.shape[2] == 1:
        return np.ascontiguousarray(array[..., 0])
    return array


# EXIF orientation -> (quarter turns anticlockwise, mirror left-right first).
_ORIENTATIONS = {2: (0, True), 3: (2, False), 4: (2, True), 5: (1, True), 6: (3, False), 7: (3, True), 8: (1, False)}


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    turns, mirror = _ORIENTATIONS.get(orientation, (0, False))
    if mirror:
        array = array[:, ::-1]
    if turns:
        array = np.rot90(array, k=turns)
    return np.ascontiguousarray(array)


def float_scale(array: np.ndarray) -> float:
    """The white level of float samples: 1.0 by convention, the maximum when samples exceed it."""
    finite = array[np.isfinite(array)]
    top = float(finite.max()) if finite.size else 1.0
    return top if top > 1.0 else 1.0


def to_8bit(array: np.ndarray) -> np.ndarray:
    """Scale samples of any depth to 0..255 (detection and 8-bit outputs only)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    scaled = np.nan_to_num(array.astype(np.float32) / float_scale(array), nan=0.0, posinf=1.0, neginf=0.0)
    return (np.clip(scaled, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def to_8bit_rgb(full: np.ndarray) -> np.ndarray:
    """8-bit RGB of a page at any depth: grey is repeated, alpha left out."""
    if full.ndim == 2:
        colour = full
    elif full.shape[2] in (1, 2):
        colour = full[..., 0]
    else:
        colour = full[..., :3]
    out = to_8bit(colour)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    return np.ascontiguousarray(out)


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


@dataclass(frozen=True)
class FrameWindow:
    """Frames [first, stop) of a video, numbered as the whole (or `--start`/`--end`-trimmed) read
    numbers them, decoded from the keyframe at index `key` (pts `key_pts`, key <= first): a
    segment of a long video (segments.py). Frames before `first` are yielded too: they prime the
    tracker. With a time range `key` may be negative (a keyframe before --start); such frames are
    decoded but never yielded, as a whole read never yields them."""

    key: int
    key_pts: int
    stop: int


class VideoSource:
    """Demuxes a video file: yields upright RGB `Frame`s and `AudioPacket`s in file order.

    The one decoder loop of veil: the one-shot run, scan, render, segments and verify all read
    frames through `items()`; `time_range` trims to part of the file (re-timed to start at 0),
    `window` reads one segment of it."""

    def __init__(
        self,
        path: Path,
        with_audio: bool = True,
        time_range: TimeRange | None = None,
        window: FrameWindow | None = None,
    ) -> None:
        self.path = path
        # Only frames and audio inside this part of the file are yielded, re-timed to start at 0.
        self.time_range = time_range
        self.window = window
        try:
            self.container = av.open(str(path), metadata_errors="ignore")
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise MediaError(f"{path}: corrupt, truncated or not a video ({_short(exc)})") from exc
        if not self.container.streams.video:
            self.container.close()
            raise MediaError(f"{path}: no video stream")
        self.stream = self.container.streams.video[0]
        if self.stream.codec_context is None:
            # FFmpeg found a video stream but no decoder for it: an unknown or damaged codec id.
            self.container.close()
            raise MediaError(f"{path}: video stream has an unknown or damaged codec")
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
    def metadata(self) -> dict[str, str]:
        """The container's tags (written again only with --keep-metadata)."""
        return dict(self.container.metadata)

    @property
    def expected_frames(self) -> int:
        """Frame count from the header, else estimated from duration and rate (0 if unknown)."""
        if self.time_range is not None:
            end = self.info.duration_s if self.time_range.end is None else self.time_range.end
            if end is None or not self.info.rate:
                return 0
            if self.info.duration_s is not None:
                end = min(end, self.info.duration_s)
            return max(0, int(round((end - self.time_range.start) * float(self.info.rate))))
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
        trim = self.time_range
        window = self.window
        # The input's clock starts at the video stream's first timestamp, as a player shows it.
        origin = float((self.stream.start_time or 0) * self.info.time_base)
        if window is not None:
            if window.key != 0 or trim is not None:
                self.container.seek(window.key_pts, stream=self.stream, backward=True, any_frame=False)
        elif trim is not None and trim.start > 0:
            target = int((origin + trim.start) / float(self.info.time_base))
            try:
                self.container.seek(target, stream=self.stream, backward=True, any_frame=False)
            except av.error.FFmpegError:
                self.container.seek(0, stream=self.stream)  # unseekable: decode from the top
        position = window.key if window is not None else 0
        try:
            for packet in self.container.demux(streams):
                if packet.stream.index in audio_index:
                    if packet.dts is not None and packet.size:
                        if trim is not None and not self._retime_audio(packet, trim, origin):
                            continue
                        yield AudioPacket(packet, packet.stream.index)
                    continue
                for frame in packet.decode():
                    index = None
                    if window is not None:
                        # Leading frames of an open GOP, or frames before the keyframe the seek
                        # landed on: they belong to the previous segment.
                        if frame.pts is None or frame.pts < window.key_pts:
                            continue
                        index, position = position, position + 1
                        if index >= window.stop:
                            return
                        if index < 0:
                            continue  # before --start
                    if trim is not None:
                        t = float(frame.time if frame.time is not None else 0.0) - origin
                        if trim.before(t):
                            continue
                        if trim.after(t):
                            self._check_end()
                            return
                        frame.pts = (frame.pts or 0) - trim.offset(self.info.time_base) - (self.stream.start_time or 0)
                    yield self._to_frame(frame, index)
        except av.error.FFmpegError as exc:
            raise MediaError(
                f"{self.path}: corrupt video data after frame {self.frames_decoded} ({_short(exc)})"
            ) from exc
        if window is not None:
            if position < window.stop:
                raise MediaError(f"{self.path}: the video ends at frame {position}, expected {window.stop}")
            return
        self._check_end()

    def audio_packets(self) -> Iterator[AudioPacket]:
        """The audio streams' packets alone (demuxed, never decoded), trimmed and re-timed like
        `items()`: what joining segments copies beside their video."""
        streams = self.info.audio_streams
        if not streams:
            return
        trim = self.time_range
        origin = float((self.stream.start_time or 0) * self.info.time_base)
        for packet in self.container.demux(streams):
            if packet.dts is None or not packet.size:
                continue
            if trim is not None and not self._retime_audio(packet, trim, origin):
                continue
            yield AudioPacket(packet, packet.stream.index)

    def _retime_audio(self, packet: av.Packet, trim: TimeRange, origin: float) -> bool:
        """Keep an audio packet inside the range, shifted by the same time as the video."""
        tb = packet.time_base
        t = float(packet.pts * tb) - origin if packet.pts is not None else float(packet.dts * tb) - origin
        if trim.before(t) or trim.after(t):
            return False
        shift = int(round((Fraction(origin).limit_denominator(1_000_000) + Fraction(trim.start)) / tb))
        if packet.pts is not None:
            packet.pts -= shift
        packet.dts -= shift
        return True

    def _check_end(self) -> None:
        if self.frames_decoded == 0:
            if self.time_range is not None:
                t = self.time_range
                span = f"{t.start:g} s and {t.end:g} s" if t.end is not None else f"{t.start:g} s and the end"
                length = f" (the video is {self.info.duration_s:.1f} s long)" if self.info.duration_s else ""
                raise MediaError(f"{self.path}: no frames between {span}{length}")
            raise MediaError(f"{self.path}: video has zero decodable frames")
        if self.time_range is not None:
            return  # a trimmed read stops early on purpose
        expected = self.info.frames
        if expected and self.container.format.name.startswith("mov") and self.frames_decoded < expected:
            raise MediaError(
                f"{self.path}: truncated video: header promises {expected} frames, only "
                f"{self.frames_decoded} could be decoded"
            )

    def _to_frame(self, frame: av.VideoFrame, index: int | None = None) -> Frame:
        rotation = int(getattr(frame, "rotation", 0) or 0) % 360
        if self.frames_decoded == 0:
            self.info.rotation = rotation  # the sink reads it when it opens
        image = frame.to_ndarray(format="rgb24")
        if rotation:
            # The display matrix turns the picture counter-clockwise by `rotation` degrees;
            # detect on the picture as a viewer sees it.
            image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
        out = Frame(image, self.frames_decoded if index is None else index, frame.pts, frame.time_base)
        self.frames_decoded += 1
        return out


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]

"""Write outputs: images with Pillow, videos with PyAV, always through a temporary file.

Nothing is ever written under the final name until the whole file is complete: the sink
writes `.<name>.veil-tmp-<random><ext>` in the output directory and renames it at the end,
so a crash, an interrupt or a full disk leaves no partial output behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import struct
import zlib
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from PIL import Image

from veil.errors import VeilError
from veil.media.audio import AUDIO_EXTS, AudioEdit, TrackRewriter
from veil.media.memory import MemoryRelease
from veil.media.source import (
    ANIMATION_FORMATS,
    HEIF_EXTS,
    VIDEO_EXTS,
    AudioPacket,
    DecodedImage,
    Page,
    VideoInfo,
    float_scale,
    to_8bit_rgb,
)
from veil.types import Frame

PIL_FORMATS = {
    ".avif": "AVIF",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
ALPHA_FORMATS = {"PNG", "WEBP", "TIFF", "AVIF"}
ICC_FORMATS = {"JPEG", "PNG", "WEBP", "TIFF", "AVIF"}
MULTIPAGE_FORMATS = {"TIFF"}
# Formats that hold samples deeper than 8 bits (PNG: 16-bit integers; TIFF: 16-bit and float).
DEEP_FORMATS = {"PNG", "TIFF"}


TMP_NAME = re.compile(r"^\.(?P<stem>.+)\.veil-tmp-[0-9a-f]{8}(?P<suffix>\.[^.]*)?$")


def final_name(path: Path) -> Path:
    """The name the user asked for, for messages about a temporary output of `atomic_output`."""
    match = TMP_NAME.match(path.name)
    return path.with_name(match["stem"] + (match["suffix"] or "")) if match else path


@contextlib.contextmanager
def atomic_output(final: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it to `final` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.veil-tmp-{secrets.token_hex(4)}{final.suffix}")
    try:
        yield tmp
        if final.exists() and not overwrite:
            raise VeilError(f"{final}: already exists (use --overwrite to replace it)")
        os.replace(tmp, final)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise VeilError(f"{final}: no space left on device") from exc
        if isinstance(exc, PermissionError):
            raise VeilError(f"{final.parent}: output directory is not writable") from exc
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_image(path: Path, image: DecodedImage, exif: bytes | None = None) -> None:
    """Save pixels only: a new image object carries no EXIF, XMP, IPTC, comments or thumbnails.

    Every page is written (a TIFF keeps all its pages; a format that holds one picture refuses
    a file of several, so nothing is silently dropped). Pages deeper than 8 bits keep their
    depth where the format allows (PNG: 16-bit; TIFF: 16-bit and float) and are written by
    OpenCV, which also writes 16-bit RGB; other formats get the 8-bit scaling.

    The ICC colour profile is kept (it describes colours, not people), except on deep pages
    (OpenCV writes none). `exif` is written only when the user asked for --keep-metadata.
    """
    fmt = PIL_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise VeilError(f"{path}: unsupported image output extension {path.suffix!r}")
    pages = image.pages
    if len(pages) > 1 and fmt not in MULTIPAGE_FORMATS:
        raise VeilError(
            f"{path}: the input has {len(pages)} pages and {fmt} holds one; write it as .tif to keep every page"
        )
    if any(page.full is not None for page in pages) and fmt in DEEP_FORMATS:
        _write_deep(path, fmt, pages)
        if fmt == "PNG" and image.icc_profile:
            _add_png_icc(path, image.icc_profile)
        return
    pils = [_pil_page(page, fmt) for page in pages]
    options: dict[str, Any] = {}
    if image.icc_profile and fmt in ICC_FORMATS:
        options["icc_profile"] = image.icc_profile
    if exif and fmt in {"JPEG", "PNG", "WEBP", "TIFF", "AVIF"}:
        options["exif"] = exif
    if fmt == "JPEG":
        options.update(quality=95, subsampling=0)
    elif fmt in ("WEBP", "AVIF"):
        options.update(quality=95)
        if fmt == "WEBP":
            options.update(method=4)
    elif fmt == "TIFF":
        options.update(compression="tiff_deflate")
    elif fmt == "PNG":
        options.update(compress_level=6)
    if len(pils) > 1:
        options.update(save_all=True, append_images=pils[1:])
    pils[0].save(path, format=fmt, **options)
    if len(pils) > 1:
        _check_pages(path, len(pils))


def _pil_page(page: Page, fmt: str) -> Image.Image:
    rgb = page.frame.image if page.full is None else to_8bit_rgb(page.full)
    alpha = page.alpha
    if alpha is not None and fmt in ALPHA_FORMATS:
        return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    return Image.fromarray(np.ascontiguousarray(rgb), "RGB")


def _write_deep(path: Path, fmt: str, pages: list[Page]) -> None:
    arrays = []
    for page in pages:
        full = page.full if page.full is not None else _with_alpha(page.frame.image, page.alpha)
        if fmt == "PNG" and full.dtype.kind == "f":
            # PNG has no float samples: 16-bit is the deepest it holds.
            full = (np.clip(np.nan_to_num(full / float_scale(full)), 0.0, 1.0) * 65535 + 0.5).astype(np.uint16)
        if full.dtype == np.float64:
            full = full.astype(np.float32)
        arrays.append(_to_bgr_order(full))
    if fmt == "PNG":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 6]
    else:
        params = [cv2.IMWRITE_TIFF_COMPRESSION, cv2.IMWRITE_TIFF_COMPRESSION_ADOBE_DEFLATE]
    try:
        if len(arrays) > 1:
            ok = cv2.imwritemulti(str(path), arrays, params)
        else:
            ok = cv2.imwrite(str(path), arrays[0], params)
    except cv2.error as exc:
        detail = str(exc).strip().splitlines()[-1][:120]
        raise VeilError(f"{final_name(path)}: could not write the {fmt} image ({detail})") from exc
    if not ok:
        raise VeilError(f"{final_name(path)}: could not write the {fmt} image")
    if len(arrays) > 1:
        _check_pages(path, len(arrays))


def _add_png_icc(path: Path, profile: bytes) -> None:
    """OpenCV writes no colour profile: add the input's as an iCCP chunk right after IHDR."""
    data = path.read_bytes()
    body = b"ICC profile\x00\x00" + zlib.compress(profile)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", zlib.crc32(b"iCCP" + body))
    end_of_ihdr = 8 + 8 + 13 + 4
    path.write_bytes(data[:end_of_ihdr] + chunk + data[end_of_ihdr:])


def _with_alpha(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    return rgb if alpha is None else np.dstack([rgb, alpha])


def _to_bgr_order(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 3:
        return np.ascontiguousarray(array[..., ::-1])
    if array.ndim == 3 and array.shape[2] == 4:
        return np.ascontiguousarray(array[..., [2, 1, 0, 3]])
    if array.ndim == 3 and array.shape[2] == 2:
        # Grey with alpha: OpenCV writes no two-channel images; spread grey to RGB.
        grey, alpha = array[..., 0], array[..., 1]
        return np.ascontiguousarray(np.dstack([grey, grey, grey, alpha]))
    return np.ascontiguousarray(array)


def _check_pages(path: Path, expected: int) -> None:
    """Exit 0 promises every page: read the count back rather than trust the writer."""
    try:
        with Image.open(path) as img:
            written = getattr(img, "n_frames", 1)
    except Exception as exc:  # noqa: BLE001 - any failure to read back is a failed write
        raise VeilError(f"{final_name(path)}: the written file cannot be read back ({type(exc).__name__})") from exc
    if written != expected:
        raise VeilError(f"{final_name(path)}: wrote {written} of {expected} pages")


# ----------------------------------------------------------------------------- video

VIDEO_CODECS = {".webm": ("libvpx-vp9", "libopus")}


def default_suffix(path: Path) -> str:
    """Output extension when the user names none: the input's, or JPEG for HEIC/HEIF/AVIF
    (which veil does not write), the format every viewer opens."""
    return ".jpg" if path.suffix.lower() in HEIF_EXTS else path.suffix


OUTPUT_EXTS = set(PIL_FORMATS) | set(ANIMATION_FORMATS) | VIDEO_EXTS | AUDIO_EXTS


def output_problem(kind: str, target: Path) -> str | None:
    """Why an input of `kind` ('image', 'animation', 'video', 'audio') cannot be written as `target`."""
    ext = target.suffix.lower()
    if ext not in OUTPUT_EXTS:
        return f"{target}: unknown output extension"
    allowed = {
        "image": set(PIL_FORMATS),
        "animation": set(ANIMATION_FORMATS) | VIDEO_EXTS,  # a video streams: the way out for long ones
        "video": VIDEO_EXTS,
        "audio": AUDIO_EXTS,
    }[kind]
    if ext not in allowed:
        return f"{target}: cannot write {'an' if kind[0] in 'aeiou' else 'a'} {kind} as {target.suffix}"
    return None


DEFAULT_CODECS = ("libx264", "aac")
# Threads of each video encoder (0: the codec's own choice, one or more per core). Not sized per
# batch worker: x264's output depends on its thread count (slices), and -j 1 and -j N must
# write the same frames (tests/test_batch.py).
ENCODER_THREADS = 0


def _geometry(codec: str, width: int, height: int, allow_crop: bool) -> tuple[int, int, str]:
    """Output width, height and pixel format: the input's exact size whenever the codec can.

    4:2:0 chroma (one colour sample per 2x2 pixels) is what every player decodes. VP9 codes an
    odd width or height in 4:2:0 (the last chroma sample covers one pixel); H.264 cannot: its
    frame cropping works in steps of two pixels in 4:2:0. So an odd-sized H.264 output is 4:4:4
    (High 4:4:4 profile) at the exact size: nothing is lost, but some hardware players and
    browsers do not play it. `allow_crop` (--allow-crop) picks 4:2:0 instead, dropping the last
    row and/or column, for players that need it.
    """
    odd = width % 2 or height % 2
    if not odd or codec.startswith("libvpx"):
        return width, height, "yuv420p"
    if allow_crop:
        return width - width % 2, height - height % 2, "yuv420p"
    if codec == "libx264":
        return width, height, "yuv444p"
    raise VeilError(
        f"{codec} cannot encode an odd size ({width}x{height}) exactly; --allow-crop drops the last row/column"
    )


@contextlib.contextmanager
def _encoding(path: Path) -> Iterator[None]:
    """FFmpeg refusing a frame (e.g. timestamps a damaged input made absurd, beyond what MP4
    stores) fails the file with one line, like any other bad input."""
    try:
        yield
    except av.error.FFmpegError as exc:
        detail = (exc.strerror or type(exc).__name__).strip()
        raise VeilError(f"{final_name(path)}: cannot encode the video ({detail})") from exc


class VideoSink:
    """Encodes frames with the input's timestamps and muxes audio (copied when possible)."""

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        keep_audio: bool = True,
        tags: dict[str, str] | None = None,
        speed: str = "veryfast",
        allow_crop: bool = False,
        audio_edit: AudioEdit | None = None,
        video_template: Any = None,
    ) -> None:
        """`tags`: container tags to write, only with --keep-metadata; none by default.
        `speed`: the x264 preset (quality per bit vs. encoding time).
        `allow_crop`: odd-sized video may lose its last row/column (see `_geometry`).
        `audio_edit`: mute, bleep or disguise; audio is re-encoded only when it changes.
        `video_template`: an encoded stream whose packets are copied in (`write_packet`, joining
        segments) instead of frames encoded; audio is handled exactly as when encoding."""
        self.path = path
        self.info = info
        self.keep_audio = keep_audio
        self.speed = speed
        self.allow_crop = allow_crop
        self.tags = dict(tags or {})
        self.container: Any = None
        # Audio that arrives before the first frame is written (the tracker's look-ahead holds
        # frames back) waits here; bounded by the look-ahead window.
        self.early_audio: list[AudioPacket] = []
        self.audio: dict[int, tuple[Any, Any]] = {}
        self.audio_mode: dict[int, str] = {}
        self.audio_edit = audio_edit
        self.rewriters: dict[int, TrackRewriter] = {}
        self.frames_written = 0
        self.memory = MemoryRelease()
        self.video_packets = 0  # encoded video packets muxed: one per frame written
        self.last_pts: int | None = None
        self.video_template = video_template

    def _open(self) -> None:
        """Open the output at the first frame: only then is the display rotation known."""
        info = self.info
        video_codec, self.audio_codec = VIDEO_CODECS.get(self.path.suffix.lower(), DEFAULT_CODECS)
        # bitexact: the muxer writes no creation time, no encoder version and no random ids,
        # so the container says nothing about when, where or on what machine veil ran.
        options = {"fflags": "+bitexact"}
        if self.tags and self.path.suffix.lower() in (".mp4", ".mov", ".m4v"):
            options["movflags"] = "use_metadata_tags"  # keeps e.g. com.apple.quicktime.* keys
        self.container = av.open(str(self.path), "w", options=options)
        self.container.metadata.clear()
        self.container.metadata.update(self.tags)
        if self.video_template is not None:
            self.stream = self.container.add_stream_from_template(self.video_template)
            self.stream.time_base = self.video_template.time_base
        else:
            rot = info.rotation % 180 != 0
            up_w, up_h = (info.height, info.width) if rot else (info.width, info.height)
            self.width, self.height, pix_fmt = _geometry(video_codec, up_w, up_h, self.allow_crop)
            rate = info.rate or Fraction(30)
            self.stream = self.container.add_stream(video_codec, rate=rate)
            self.stream.width, self.stream.height = (self.height, self.width) if rot else (self.width, self.height)
            self.stream.pix_fmt = pix_fmt
            self.stream.time_base = info.time_base
            self.stream.codec_context.time_base = info.time_base
            if video_codec == "libx264":
                self.stream.options = {"crf": "18", "preset": self.speed}
                if ENCODER_THREADS:
                    self.stream.codec_context.thread_count = ENCODER_THREADS
            else:
                self.stream.options = {"crf": "30", "b": "0", "row-mt": "1", "deadline": "realtime"}
        if info.rotation:
            self.stream.set_display_rotation(info.rotation)
        self.stream.metadata.clear()
        if self.keep_audio:
            for in_stream in info.audio_streams:
                self._add_audio(in_stream)
        for item in self.early_audio:
            self._mux_audio(item)
        self.early_audio.clear()

    def _add_audio(self, in_stream: Any) -> None:
        name = in_stream.codec_context.name
        if self.audio_edit is not None and self.audio_edit.changes:
            rewriter = TrackRewriter(in_stream, self.container, self.audio_edit, self.audio_codec)
            self.rewriters[in_stream.index] = rewriter
            self.audio_mode[in_stream.index] = rewriter.describe()
            return
        if name in self.container.supported_codecs:
            out = self.container.add_stream_from_template(in_stream)
            out.metadata.clear()  # handler names and times of the recording device
            self.audio[in_stream.index] = (out, None)
            self.audio_mode[in_stream.index] = f"copied ({name})"
            return
        ctx = in_stream.codec_context
        out = self.container.add_stream(self.audio_codec, rate=48000 if "opus" in self.audio_codec else ctx.rate)
        layout = "stereo" if ctx.channels >= 2 else "mono"
        out.layout = layout
        resampler = av.AudioResampler(format=out.format, layout=layout, rate=out.rate)
        decoder = av.CodecContext.create(name, "r")
        decoder.extradata = ctx.extradata
        decoder.sample_rate = ctx.sample_rate
        decoder.layout = ctx.layout
        self.audio[in_stream.index] = (out, (decoder, resampler))
        self.audio_mode[in_stream.index] = f"re-encoded {name} -> {self.audio_codec}"

    def write_frame(self, frame: Frame) -> None:
        if self.container is None:
            self._open()
        image = frame.image[: self.height, : self.width]
        if self.info.rotation:
            # Turn the picture back to its stored orientation; the display matrix set on the
            # stream makes players show it exactly as the input was shown.
            image = np.rot90(image, k=-(self.info.rotation // 90))
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        pts = frame.pts
        if pts is None or (self.last_pts is not None and pts <= self.last_pts):
            # Missing or repeated timestamps: continue one frame after the last.
            step = int(round(1 / (float(self.info.rate or 30) * float(self.info.time_base)))) or 1
            pts = (self.last_pts or 0) + step if self.last_pts is not None else 0
        vf.pts = pts
        vf.time_base = self.info.time_base
        self.last_pts = pts
        with _encoding(self.path):
            for packet in self.stream.encode(vf):
                self.container.mux(packet)
                self.video_packets += 1
        self.frames_written += 1
        self.memory.frame_done()

    def write_packet(self, packet: Any) -> None:
        """Copy one encoded video packet of `video_template`'s stream (a segment's output)."""
        if self.container is None:
            self._open()
        packet.stream = self.stream
        self.container.mux(packet)
        self.video_packets += 1
        self.frames_written += 1

    def write_audio(self, item: AudioPacket) -> None:
        if self.container is None:
            self.early_audio.append(item)
        else:
            self._mux_audio(item)

    def _mux_audio(self, item: AudioPacket) -> None:
        if item.stream_index in self.rewriters:
            self.rewriters[item.stream_index].write(item.packet)
            return
        entry = self.audio.get(item.stream_index)
        if entry is None:
            return
        out, transcoder = entry
        if transcoder is None:
            item.packet.stream = out
            self.container.mux(item.packet)
            return
        decoder, resampler = transcoder
        for frame in decoder.decode(item.packet):
            for rs in resampler.resample(frame):
                for packet in out.encode(rs):
                    self.container.mux(packet)

    def close(self) -> None:
        if self.container is None:
            raise VeilError(f"{final_name(self.path)}: no frames to write")
        if self.video_template is None:
            with _encoding(self.path):
                for packet in self.stream.encode(None):
                    self.container.mux(packet)
                    self.video_packets += 1
        if self.video_packets < self.frames_written:
            # Exit 0 promises every frame: an encoder that swallowed some fails the file.
            written = f"{self.video_packets} of {self.frames_written}"
            raise VeilError(f"{final_name(self.path)}: the encoder wrote {written} frames")
        for rewriter in self.rewriters.values():
            rewriter.close()
        for out, transcoder in self.audio.values():
            if transcoder is not None:
                decoder, resampler = transcoder
                for frame in decoder.decode(None):
                    for rs in resampler.resample(frame):
                        for packet in out.encode(rs):
                            self.container.mux(packet)
                for rs in resampler.resample(None):
                    for packet in out.encode(rs):
                        self.container.mux(packet)
                for packet in out.encode(None):
                    self.container.mux(packet)
        self.container.close()

    def abort(self) -> None:
        if self.container is None:
            return
        with contextlib.suppress(Exception):
            self.container.close()

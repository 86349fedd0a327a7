"""Write outputs: images with Pillow, videos with PyAV, always through a temporary file.

Nothing is ever written under the final name until the whole file is complete: the sink
writes `.<name>.veil-tmp-<random><ext>` in the output directory and renames it at the end,
so a crash, an interrupt or a full disk leaves no partial output behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from veil.audio import AudioEdit, TrackRewriter
from veil.errors import VeilError
from veil.source import AudioPacket, VideoInfo
from veil.types import Frame

PIL_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}
ICC_FORMATS = {"JPEG", "PNG", "WEBP", "TIFF"}


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


def write_image(
    path: Path,
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    icc_profile: bytes | None,
    exif: bytes | None = None,
) -> None:
    """Save pixels only: a new image object carries no EXIF, XMP, IPTC, comments or thumbnails.

    The ICC colour profile is kept (it describes colours, not people). `exif` is written only
    when the user asked for --keep-metadata.
    """
    fmt = PIL_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise VeilError(f"{path}: unsupported image output extension {path.suffix!r}")
    if alpha is not None and fmt in ALPHA_FORMATS:
        img = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    else:
        img = Image.fromarray(rgb, "RGB")
    options: dict[str, Any] = {}
    if icc_profile and fmt in ICC_FORMATS:
        options["icc_profile"] = icc_profile
    if exif and fmt in {"JPEG", "PNG", "WEBP", "TIFF"}:
        options["exif"] = exif
    if fmt == "JPEG":
        options.update(quality=95, subsampling=0)
    elif fmt == "WEBP":
        options.update(quality=95, method=4)
    elif fmt == "TIFF":
        options.update(compression="tiff_deflate")
    elif fmt == "PNG":
        options.update(compress_level=6)
    img.save(path, format=fmt, **options)


# ----------------------------------------------------------------------------- video

VIDEO_CODECS = {".webm": ("libvpx-vp9", "libopus")}
DEFAULT_CODECS = ("libx264", "aac")


class VideoSink:
    """Encodes frames with the input's timestamps and muxes audio (copied when possible)."""

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        keep_audio: bool = True,
        tags: dict[str, str] | None = None,
        speed: str = "veryfast",
        audio_edit: AudioEdit | None = None,
    ) -> None:
        """`tags`: container tags to write, only with --keep-metadata; none by default.
        `speed`: the x264 preset (quality per bit vs. encoding time).
        `audio_edit`: mute, bleep or disguise; audio is re-encoded only when it changes."""
        self.path = path
        self.info = info
        self.keep_audio = keep_audio
        self.speed = speed
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
        self.last_pts: int | None = None

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
        # An encoder needs even dimensions for 4:2:0 chroma; drop a last odd row/column.
        rot = info.rotation % 180 != 0
        up_w, up_h = (info.height, info.width) if rot else (info.width, info.height)
        self.width, self.height = up_w - up_w % 2, up_h - up_h % 2
        rate = info.rate or Fraction(30)
        self.stream = self.container.add_stream(video_codec, rate=rate)
        self.stream.width, self.stream.height = (self.height, self.width) if rot else (self.width, self.height)
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = info.time_base
        self.stream.codec_context.time_base = info.time_base
        if video_codec == "libx264":
            self.stream.options = {"crf": "18", "preset": self.speed}
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
        for packet in self.stream.encode(vf):
            self.container.mux(packet)
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
            raise VeilError(f"{self.path}: no frames to write")
        for packet in self.stream.encode(None):
            self.container.mux(packet)
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

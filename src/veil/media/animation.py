"""Animations (GIF, animated WebP, APNG) as short videos: read every frame, write the same format.

`AnimationSource` and `AnimationSink` have the interface of `VideoSource` and `VideoSink`
(`items()` yields `Frame`s; `write_frame`, `close`, `abort`), so the pipeline detects and
tracks every frame of an animation as it does a video's, and only picks the classes by kind.

Timing: each frame's timestamp is the sum of the durations before it, in milliseconds, and the
sink writes each frame's own duration and the loop count back, so the output plays exactly as
the input did. Pillow's writers fold a frame identical to the one before into it (adding the
durations); the sink checks that the written file holds every distinct frame and the same
total duration, and fails the file otherwise.

Pillow's writers need every frame at once, so an animation is held in memory while it is
written; one larger than MAX_PIXELS frame pixels is refused, with the way out (write it as a
video, which streams).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from veil.errors import MediaError, VeilError
from veil.media.sink import VideoSink, final_name
from veil.media.source import ANIMATION_FORMATS, VideoSource
from veil.types import Frame

# Output extension -> Pillow format of the animation writers.
# Frame pixels held while an animation is written: 250 million RGBA pixels is 1 GB.
MAX_PIXELS = 250_000_000
MS = Fraction(1, 1000)


@dataclass
class AnimatedFrame(Frame):
    """A frame plus its transparency (H x W uint8, None when the animation has none) and, for
    GIF, the colours the input frame had (packed 0xRRGGBB, sorted): they keep their exact value
    when the redacted frame has more colours than a GIF palette holds."""

    alpha: np.ndarray | None = None
    colours: np.ndarray | None = None


@dataclass
class AnimationInfo:
    """What `VideoInfo` says about a video, plus the per-frame durations and the loop count."""

    width: int
    height: int
    rate: Fraction | None
    time_base: Fraction
    frames: int
    duration_s: float | None
    format: str
    durations: list[int] = field(default_factory=list)
    loop: int | None = None
    has_alpha: bool = False
    rotation: int = 0
    codec: str = ""
    audio_streams: list[Any] = field(default_factory=list)
    dropped_streams: list[str] = field(default_factory=list)


def _decode_error(path: Path, exc: BaseException, at: str = "") -> MediaError:
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return MediaError(f"{path}: corrupt or truncated animation{at} ({text})")


class AnimationSource:
    """Decodes an animation's frames, composited as a viewer shows them, upright RGB plus alpha."""

    def __init__(self, path: Path, with_audio: bool = True) -> None:
        self.path = path
        self.frames_decoded = 0
        self.metadata: dict[str, str] = {}  # no container tags: kept metadata is EXIF, never copied
        try:
            self.image = Image.open(path)
        except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
            raise MediaError(f"{path}: not a readable animation ({_first_line(exc)})") from exc
        except Exception as exc:  # noqa: BLE001 - any parser failure is a bad file, said in one line
            raise _decode_error(path, exc) from exc
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                n = int(getattr(self.image, "n_frames", 1))
                durations = []
                for index in range(n):
                    self.image.seek(index)
                    if self.image.format == "WEBP":
                        self.image.load()  # Pillow sets a WebP frame's duration when it decodes it
                    durations.append(max(0, int(round(float(self.image.info.get("duration", 0) or 0)))))
                self.image.seek(0)
        except Exception as exc:  # noqa: BLE001
            self.image.close()
            raise _decode_error(path, exc) from exc
        width, height = self.image.size
        if width * height * n > MAX_PIXELS:
            self.image.close()
            raise MediaError(
                f"{path}: animation too large to hold while it is written ({n} frames of {width}x{height}); "
                "write it as a video instead (-o NAME.mp4)"
            )
        total_ms = sum(durations)
        rate = Fraction(n * 1000, total_ms) if total_ms else None
        self.info = AnimationInfo(
            width=width,
            height=height,
            rate=rate,
            time_base=MS,
            frames=n,
            duration_s=total_ms / 1000 if total_ms else None,
            format=self.image.format or "",
            durations=durations,
            loop=self.image.info.get("loop"),
            has_alpha=_has_alpha(self.image),
            codec=(self.image.format or "").lower(),
        )

    @property
    def expected_frames(self) -> int:
        return self.info.frames

    def __enter__(self) -> AnimationSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.image.close()

    def items(self) -> Iterator[AnimatedFrame]:
        pts = 0
        for index in range(self.info.frames):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    self.image.seek(index)
                    rgba = np.asarray(self.image.convert("RGBA"))
            except Exception as exc:  # noqa: BLE001
                raise _decode_error(self.path, exc, f" at frame {index}") from exc
            if rgba.shape[:2] != (self.info.height, self.info.width):
                raise MediaError(f"{self.path}: frame {index} has a different size from the first")
            alpha = np.ascontiguousarray(rgba[:, :, 3]) if self.info.has_alpha else None
            rgb = np.ascontiguousarray(rgba[:, :, :3])
            colours = _colours(rgb, alpha)[0] if self.info.format == "GIF" else None
            frame = AnimatedFrame(rgb, index, pts, MS, alpha, colours)
            pts += self.info.durations[index]
            self.frames_decoded += 1
            yield frame


def _has_alpha(img: Image.Image) -> bool:
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        return True
    # Later GIF frames may introduce transparency; WebP says so in its header (mode RGBA).
    return img.format == "GIF" and any(_frame_has_transparency(img, i) for i in range(getattr(img, "n_frames", 1)))


def _frame_has_transparency(img: Image.Image, index: int) -> bool:
    img.seek(index)
    found = "transparency" in img.info or img.mode in ("RGBA", "LA", "PA")
    img.seek(0)
    return found


def _shown(path: Path) -> Path:

    return final_name(path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


class AnimationSink:
    """Collects redacted frames and writes them as GIF, WebP or APNG with the input's timing."""

    def __init__(
        self,
        path: Path,
        info: AnimationInfo,
        keep_audio: bool = True,
        tags: dict[str, str] | None = None,
        speed: str = "veryfast",
        allow_crop: bool = False,
        audio_edit: object | None = None,
    ) -> None:
        """Same arguments as `VideoSink`; an animation has no audio (`audio_edit` is unused),
        gets no tags and keeps any size."""
        self.path = path
        self.info = info
        self.format = ANIMATION_FORMATS.get(path.suffix.lower())
        if self.format is None:
            raise VeilError(f"{path}: cannot write an animation as {path.suffix!r}")
        self.frames: list[Image.Image] = []
        self.durations: list[int] = []
        self.distinct = 0  # frames that differ from the one before: what a writer may not fold
        self._previous: np.ndarray | None = None
        self.frames_written = 0
        self.audio_mode: dict[int, str] = {}

    def write_audio(self, item: object) -> None:  # pragma: no cover - animations carry no audio
        return

    def write_frame(self, frame: Frame) -> None:
        alpha = getattr(frame, "alpha", None)
        pixels = frame.image if alpha is None else np.dstack([frame.image, alpha])
        if self._previous is None or not np.array_equal(self._previous, pixels):
            self.distinct += 1
        self._previous = pixels
        if self.format == "GIF":
            self.frames.append(_gif_frame(frame.image, alpha, getattr(frame, "colours", None)))
        else:
            self.frames.append(Image.fromarray(np.ascontiguousarray(pixels), "RGBA" if alpha is not None else "RGB"))
        index = min(frame.index, len(self.info.durations) - 1)
        self.durations.append(self.info.durations[index] if self.info.durations else 100)
        self.frames_written += 1

    def close(self) -> None:
        if not self.frames:
            raise VeilError(f"{_shown(self.path)}: no frames to write")
        options: dict[str, Any] = {"save_all": True, "append_images": self.frames[1:], "duration": self.durations}
        if self.info.loop is not None:
            options["loop"] = int(self.info.loop)
        if self.format == "GIF":
            # Transparent frames are complete pictures: clear each before the next is drawn.
            options["disposal"] = 2 if self.info.has_alpha else 1
        elif self.format == "WEBP":
            options.update(lossless=True, quality=80, method=4)
            if options.get("loop") is None:
                options["loop"] = 0
        else:
            options.update(default_image=False)
        try:
            self.frames[0].save(self.path, format=self.format, **options)
        except (OSError, ValueError) as exc:
            problem = f"could not write the {self.format} animation ({_first_line(exc)})"
            raise VeilError(f"{_shown(self.path)}: {problem}") from exc
        self._check_written()
        self.frames.clear()

    def _check_written(self) -> None:
        """Exit 0 promises every frame: read the file back rather than trust the writer."""
        try:
            with Image.open(self.path) as img:
                n = int(getattr(img, "n_frames", 1))
                total = 0
                for index in range(n):
                    img.seek(index)
                    if img.format == "WEBP":
                        img.load()
                    total += int(round(float(img.info.get("duration", 0) or 0)))
        except Exception as exc:  # noqa: BLE001 - an unreadable result is a failed write
            problem = f"the written animation cannot be read back ({_first_line(exc)})"
            raise VeilError(f"{_shown(self.path)}: {problem}") from exc
        if not self.distinct <= n <= len(self.durations):
            raise VeilError(f"{_shown(self.path)}: wrote {n} frames for {self.distinct} distinct frames")
        # GIF stores hundredths of a second; a single-frame file may store no duration at all.
        slack = 10 * len(self.durations) if self.format == "GIF" else len(self.durations)
        if n > 1 and abs(total - sum(self.durations)) > slack:
            raise VeilError(f"{_shown(self.path)}: wrote {total} ms of {sum(self.durations)} ms of animation")

    def abort(self) -> None:
        """Drop the frames; nothing reached the file (or `atomic_output` deletes what did)."""
        self.frames.clear()


def _colours(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted packed colours of the visible pixels, each visible pixel's index, and counts."""
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    visible = packed.reshape(-1) if alpha is None else packed[alpha >= 128]
    return np.unique(visible, return_inverse=True, return_counts=True)


def _gif_frame(rgb: np.ndarray, alpha: np.ndarray | None, original: np.ndarray | None = None) -> Image.Image:
    """A palette frame whose colours are exactly the frame's own wherever it has at most 255
    colours (a GIF frame's pixels always do, and a solid mask adds one). Otherwise (blur,
    pixelate) the input frame's own colours are kept first and the most used new ones fill the
    palette; every other pixel takes the nearest colour, so only the masked area changes."""
    h, w = rgb.shape[:2]
    clear = alpha < 128 if alpha is not None else None
    colours, inverse, counts = _colours(rgb, alpha)
    limit = 255 if clear is not None and clear.any() else 256
    if len(colours) > limit:
        priority = -counts.astype(np.float64)
        if original is not None and len(original) <= limit:
            priority[np.isin(colours, original)] = -np.inf  # the input's colours first
        keep = np.sort(colours[np.argsort(priority, kind="stable")[:limit]])
        keep_rgb = _unpack(keep).astype(np.int32)
        lookup = np.empty(len(colours), np.int64)
        exact = np.searchsorted(keep, colours)
        exact = np.clip(exact, 0, len(keep) - 1)
        hit = keep[exact] == colours
        lookup[hit] = exact[hit]
        missing = np.flatnonzero(~hit)
        if len(missing):
            miss_rgb = _unpack(colours[missing]).astype(np.int32)
            distance = ((miss_rgb[:, None, :] - keep_rgb[None, :, :]) ** 2).sum(axis=2)
            lookup[missing] = distance.argmin(axis=1)
        colours, inverse = keep, lookup[inverse]
    indices = np.zeros((h, w), np.uint8)
    palette = _unpack(colours).astype(np.uint8).reshape(-1)
    if clear is None:
        indices[:] = inverse.reshape(h, w)
        transparency = None
    else:
        indices[~clear] = inverse
        transparency = len(colours)
        indices[clear] = transparency
        palette = np.concatenate([palette, np.zeros(3, np.uint8)])
    img = Image.fromarray(indices, "P")
    img.putpalette(palette.tobytes())
    if transparency is not None:
        img.info["transparency"] = transparency
    return img


def _unpack(packed: np.ndarray) -> np.ndarray:
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=-1)


def stream_classes(kind: str, output: Path) -> tuple[type, type]:
    """The source and sink classes for a video or an animation written as `output`."""
    source = AnimationSource if kind == "animation" else VideoSource
    sink = AnimationSink if output.suffix.lower() in ANIMATION_FORMATS else VideoSink
    return source, sink

"""Random access to a video's frames for the review page, numbered as the renderer numbers them.

The renderer's frame N is the N-th frame the decoder emits, which is the N-th smallest
presentation timestamp. An index of the video packets (demuxed once, nothing decoded) maps N to
its timestamp and to the keyframe before it. Fetching frame N seeks to that keyframe and decodes
forward; a decoder already sitting a little before N just decodes on, so stepping and playing
cost one frame each. Decoded frames are kept in a small LRU cache.

When the keyframes are far apart (a long GOP makes a cold seek decode hundreds of frames), a
proxy is made in the background: the same frames at a reduced width with a keyframe every
`PROXY_GOP` frames, written into veil's private work directory (cache.py). The page's player reads the proxy once it
is ready; crops, "as exported" frames and manual tracking always read the original.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from veil.timerange import TimeRange

# A cold seek may decode this many pixels (30 frames of 1080p, about 0.3 s on one core) before
# a proxy is worth making.
PROXY_THRESHOLD_PIXELS = 30 * 1920 * 1080
PROXY_GOP = 12
PROXY_WIDTH = 960
# A decoder this many frames or fewer before the target decodes on rather than seeking.
DECODE_ON = 48


class FrameIndex:
    """Presentation timestamps of every video frame in decode-output order, and the keyframes."""

    def __init__(self, path: Path) -> None:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            pts: list[int] = []
            keys: list[int] = []
            for packet in container.demux(stream):
                if packet.pts is None or not packet.size:
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
            self.time_base = stream.time_base or Fraction(1, 90000)
            # The input's clock starts at the stream's first timestamp, as VideoSource counts it.
            self.start = stream.start_time or 0
            rate = stream.average_rate or stream.guessed_rate
            self.rate = float(rate) if rate else 25.0
        self.pts = sorted(pts)
        self.keys = sorted(keys) or self.pts[:1]
        # Longest run of frames between keyframes: the worst cold seek.
        positions = [bisect.bisect_left(self.pts, k) for k in self.keys] + [len(self.pts)]
        self.max_gop = max((b - a for a, b in zip(positions, positions[1:], strict=False)), default=1)

    def __len__(self) -> int:
        return len(self.pts)

    def span(self, trim: TimeRange) -> tuple[int, int]:
        """(first index, count) of the frames a read with `trim` (--start/--end) keeps, by
        VideoSource's rule: a plan scanned with a time range numbers its frames from there."""
        kept = [
            i
            for i, pts in enumerate(self.pts)
            if not trim.before(t := float((pts - self.start) * self.time_base)) and not trim.after(t)
        ]
        return (kept[0], len(kept)) if kept else (0, 0)

    def keyframe_before(self, index: int) -> int:
        target = self.pts[index]
        pos = bisect.bisect_right(self.keys, target) - 1
        return self.keys[max(pos, 0)]


class FrameReader:
    """`get(index)` returns frame `index` as upright RGB; thread-safe (one decoder, one lock)."""

    def __init__(self, path: Path, cache_bytes: int = 192 << 20, index: FrameIndex | None = None) -> None:
        self.path = path
        self.index = index or FrameIndex(path)
        self._container = av.open(str(path), metadata_errors="ignore")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._decoded: Iterator[av.VideoFrame] | None = None
        self._last = -1  # index of the frame the decoder emitted last
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._cached_bytes = 0
        self._lock = threading.Lock()
        self.rotation = 0
        self.seeks = 0

    def __len__(self) -> int:
        return len(self.index)

    def close(self) -> None:
        with self._lock:
            self._container.close()

    def get(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self.index):
            raise IndexError(f"frame {index} is outside 0..{len(self.index) - 1}")
        with self._lock:
            hit = self._cache.get(index)
            if hit is not None:
                self._cache.move_to_end(index)
                return hit
            try:
                return self._decode_to(index)
            except LookupError:
                # Some files seek to just after the keyframe asked for: start one keyframe earlier.
                return self._decode_to(index, earlier=True)

    def frames(self, start: int, end: int) -> Iterator[tuple[int, np.ndarray]]:
        """Frames start..end inclusive, in order (one seek, then decoding on)."""
        for i in range(max(0, start), min(end, len(self.index) - 1) + 1):
            yield i, self.get(i)

    def _decode_to(self, index: int, earlier: bool = False) -> np.ndarray:
        if earlier or self._decoded is None or not (self._last < index <= self._last + DECODE_ON):
            key = self.index.keyframe_before(index)
            if earlier:
                key = self.index.keyframe_before(max(0, bisect.bisect_left(self.index.pts, key) - 1))
            self._container.seek(key, backward=True, any_frame=False, stream=self._stream)
            self._decoded = self._container.decode(self._stream)
            self._last = -1
            self.seeks += 1
        for frame in self._decoded:
            if frame.pts is None:
                continue
            pos = bisect.bisect_left(self.index.pts, frame.pts)
            if pos >= len(self.index.pts) or self.index.pts[pos] != frame.pts:
                continue
            self._last = pos
            if pos < index:
                # Frames decoded on the way are kept only when stepping would ask for them next.
                if index - pos <= 2:
                    self._remember(pos, self._rgb(frame))
                continue
            image = self._rgb(frame)
            self._remember(pos, image)
            if pos == index:
                return image
            break
        # The decoder passed the target without emitting it (or ran out): start again from a seek.
        self._decoded = None
        raise LookupError(f"frame {index} could not be decoded")

    def _rgb(self, frame: av.VideoFrame) -> np.ndarray:
        rotation = int(getattr(frame, "rotation", 0) or 0) % 360
        self.rotation = rotation
        image = frame.to_ndarray(format="rgb24")
        if rotation:
            image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
        return image

    def _remember(self, index: int, image: np.ndarray) -> None:
        old = self._cache.pop(index, None)
        if old is not None:
            self._cached_bytes -= old.nbytes
        self._cache[index] = image
        self._cached_bytes += image.nbytes
        # Bounded in bytes, not frames: 192 MiB is about 30 frames of 1080p, 900 of 360p.
        while self._cached_bytes > self._cache_bytes and len(self._cache) > 1:
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= dropped.nbytes


def needs_proxy(index: FrameIndex, width: int, height: int) -> bool:
    return index.max_gop * width * height > PROXY_THRESHOLD_PIXELS


def proxy_path(input_path: Path, sha256: str) -> Path:
    """In veil's private work directory (cache.py; user-only), never beside the input: the proxy
    is an unredacted copy of the video. Named after the input's content (and name, for `veil
    cache list`): every plan of that input shares it, and a changed input never reuses it."""
    from veil.runners.cache import Cache

    return Cache.at().proxies() / f"{sha256[:12]}.{input_path.name}.proxy.mp4"


def make_proxy(source: Path, target: Path, progress: list[int], stop: threading.Event) -> None:
    """Re-encode `source` to `target` at PROXY_WIDTH with a keyframe every PROXY_GOP frames.

    Frames are written with their own index as timestamp, so the proxy's frame N is the
    original's frame N; the file appears under its final name only when complete."""
    from veil.media.sink import atomic_output

    with atomic_output(target, overwrite=True) as tmp, av.open(str(source), metadata_errors="ignore") as inp:
        stream_in = inp.streams.video[0]
        stream_in.thread_type = "AUTO"
        with av.open(str(tmp), "w", format="mp4") as out:
            stream = None
            for n, frame in enumerate(inp.decode(stream_in)):
                if stop.is_set():
                    raise InterruptedError("proxy cancelled")
                rotation = int(getattr(frame, "rotation", 0) or 0) % 360
                image = frame.to_ndarray(format="rgb24")
                if rotation:
                    image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
                h, w = image.shape[:2]
                if w > PROXY_WIDTH:
                    size = (PROXY_WIDTH, max(2, round(h * PROXY_WIDTH / w / 2) * 2))
                    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                if stream is None:
                    stream = out.add_stream("libx264", rate=25)
                    stream.width, stream.height = image.shape[1] // 2 * 2, image.shape[0] // 2 * 2
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"g": str(PROXY_GOP), "preset": "ultrafast", "crf": "23", "bf": "0"}
                    stream.thread_count = 2
                vf = av.VideoFrame.from_ndarray(image[: stream.height, : stream.width], format="rgb24")
                vf.pts = n
                vf.time_base = Fraction(1, 25)
                for packet in stream.encode(vf):
                    out.mux(packet)
                progress[0] = n + 1
            if stream is not None:
                for packet in stream.encode():
                    out.mux(packet)

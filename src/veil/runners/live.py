"""`veil live SOURCE DEST`: anonymize a camera stream at ingest, in real time, failing closed.

Three threads and a delay line (docs/live.md):

* the reader decodes SOURCE (any URL or device FFmpeg opens, or a file paced at its native rate
  with --realtime) and stamps each frame with its input time; every frame becomes a `Slot` that
  goes both to the writer's line and, if the detection queue has room, to the detection worker;
* the detection worker runs the detector on every `stride`-th frame (and on scene cuts) and feeds
  a `LookaheadTracker` whose look-ahead is --delay; the tracker's final boxes land on the slot;
* the writer emits each slot at its deadline, input time + delay + a processing budget: painted
  if its boxes are final by then, FULLY MASKED otherwise. A frame is never sent raw: start-up,
  decoder gaps (the source dropped: masked filler frames keep the output running with
  continuous timestamps), late detection and detector errors all give masked frames.

When detection cannot keep up, the worker steps down a ladder (a longer stride, then a smaller
detection resolution) and says so; when it has room again it steps back up. Every queue is
bounded, so memory does not grow with time. A JSON Lines log says what happened once a minute
(--log-interval) and at exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import queue
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from veil.analysis.classes import DEFAULT_CLASSES, parse_classes
from veil.analysis.detect import FrameDetector
from veil.analysis.presets import PRESETS
from veil.analysis.track import CutDetector, LookaheadTracker
from veil.analysis.zones import Zone, ZonePainter, load_zones
from veil.config import Settings
from veil.errors import VeilError
from veil.media.memory import MemoryRelease
from veil.progress import Reporter
from veil.render.paint import FrameRenderer
from veil.schema import check_finite, number_option
from veil.types import Detections, Frame

# Output timestamps are counted in this unit (MPEG-TS's clock; other muxers rescale it).
OUT_TIME_BASE = Fraction(1, 90000)
# A frame's result slot: None while its boxes are not final, MASK when it must be masked whole.
MASK = "mask"
# ... and UNSEEN when no detection ran close enough after it to decide it (counted as late).
UNSEEN = "unseen"
# Queue markers from the reader to the detection worker.
_RECONNECT = "reconnect"
_END = "end"
# Latency histogram: 10 ms bins up to 30 s (the last bin holds everything slower).
_LAT_BIN_S = 0.01
_LAT_BINS = 3000
URL_SCHEMES = (
    "rtsp://",
    "rtsps://",
    "rtmp://",
    "rtmps://",
    "srt://",
    "udp://",
    "rtp://",
    "tcp://",
    "http://",
    "https://",
)


# ----------------------------------------------------------------------------- options


# Seconds: the most look-ahead delay (and detection budget) a live run buffers frames for.
MAX_DELAY_S = 60.0


@dataclass
class LiveOptions:
    source: str
    dest: str
    # Look-ahead of the tracker, seconds: a face is masked this long before it is first detected.
    delay: float = 1.0
    # Extra time a frame may wait for detection and tracking beyond the delay; the output runs
    # delay + budget behind the input. Frames not final by then are sent fully masked.
    budget: float = 0.3
    realtime: bool = False
    keep_audio: bool = True
    # Stop after this many seconds (None: until interrupted, or the end of a --realtime file).
    duration: float | None = None
    log_path: Path | None = None
    log_interval: float = 60.0
    overwrite: bool = False
    # Seconds without a packet before the source counts as lost; then reconnect with backoff.
    read_timeout: float = 2.0
    max_backoff: float = 8.0
    # The longest the source may deliver no frame (it ended, or a camera was lost and did not
    # come back) before the output ends: masked filler is written for at most this long. None:
    # keep the output running, masked, until stopped.
    max_gap: float | None = 30.0
    # Output frame rate when the source does not say.
    default_fps: float = 25.0


def dest_kind(dest: str) -> str:
    """'mpegts' (udp, srt), 'rtsp', 'flv' (rtmp), 'hls' (a directory) or 'mp4' (a file)."""
    low = dest.lower()
    if low.startswith(("udp://", "srt://", "rtp://", "tcp://")):
        return "mpegts"
    if low.startswith(("rtsp://", "rtsps://")):
        return "rtsp"
    if low.startswith(("rtmp://", "rtmps://")):
        return "flv"
    if "://" in low:
        raise VeilError(f"{dest}: unsupported output URL (use rtsp://, rtmp://, srt://, udp://, a directory or a file)")
    path = Path(dest)
    if path.is_dir() or dest.endswith(("/", "\\")) or path.suffix.lower() == ".m3u8":
        return "hls"
    if path.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise VeilError(
            f"{dest}: a file output is written as fragmented MP4, so name it .mp4 (or end a directory "
            "name with / for HLS)"
        )
    return "mp4"


# ----------------------------------------------------------------------------- stats


class LiveStats:
    """Counters for the live log; every update under one lock, histograms of fixed size."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frames_in = 0
        self.frames_out = 0
        self.frames_painted = 0
        self.masked_deadline = 0  # boxes not final by the frame's deadline
        self.masked_error = 0  # a detector error near the frame
        self.masked_gap = 0  # filler frames while the source was missing (start-up, drops)
        self.masked_decoder = 0  # damaged by a decode error
        self.decode_errors = 0
        self.dropped = 0  # decoded but never sent (its output time had passed, or a queue was full)
        self.skipped_detection = 0  # never reached the tracker (worker behind): masked at output
        self.detector_errors = 0
        self.reconnects = 0
        self.stride = 1
        self.window = 0  # the tracker's look-ahead, frames
        self.scale = 1.0
        self.detect_size: tuple[int, int] | None = None
        self.adaptations: list[str] = []
        self._lat_total = np.zeros(_LAT_BINS, np.int64)
        self._lat_window = np.zeros(_LAT_BINS, np.int64)

    def latency(self, seconds: float) -> None:
        with self.lock:
            b = min(_LAT_BINS - 1, max(0, int(seconds / _LAT_BIN_S)))
            self._lat_total[b] += 1
            self._lat_window[b] += 1

    @staticmethod
    def _quantile(hist: np.ndarray, q: float) -> float | None:
        n = int(hist.sum())
        if n == 0:
            return None
        b = int(np.searchsorted(np.cumsum(hist), math.ceil(q * n)))
        return round((b + 0.5) * _LAT_BIN_S, 3)

    def record(self, event: str, final: bool = False) -> dict[str, Any]:
        with self.lock:
            hist = self._lat_total if final else self._lat_window
            rec = {
                "event": event,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "frames_in": self.frames_in,
                "frames_out": self.frames_out,
                "frames_painted": self.frames_painted,
                "masked_deadline": self.masked_deadline,
                "masked_error": self.masked_error,
                "masked_gap": self.masked_gap,
                "masked_decoder": self.masked_decoder,
                "decode_errors": self.decode_errors,
                "dropped": self.dropped,
                "skipped_detection": self.skipped_detection,
                "detector_errors": self.detector_errors,
                "reconnects": self.reconnects,
                # Latency from a frame's decoding at the input to its writing at the output.
                "latency_p50_s": self._quantile(hist, 0.5),
                "latency_p95_s": self._quantile(hist, 0.95),
                "latency_over": "run" if final else "interval",
                "stride": self.stride,
                "lookahead_frames": self.window,
                "detect_scale": self.scale,
                "detect_resolution": list(self.detect_size) if self.detect_size else None,
            }
            self._lat_window[:] = 0
            return rec


# ----------------------------------------------------------------------------- slots


class Slot:
    """One decoded frame on its way to the output. The worker sets `result`; the writer reads
    it once, at `deadline`, and sets `expired` (after which the worker ignores the frame)."""

    __slots__ = ("seq", "image", "arrival", "deadline", "result", "expired", "damaged")

    def __init__(self, seq: int, image: np.ndarray, arrival: float, deadline: float) -> None:
        self.seq = seq
        self.image = image
        self.arrival = arrival
        self.deadline = deadline
        self.result: Detections | str | None = None
        self.expired = False
        # The decoder reported this frame damaged (or it follows a decode error before the next
        # keyframe): its pixels are not the camera's picture, so no decision about them holds.
        self.damaged = False


@dataclass
class AudioItem:
    packet: Any
    deadline: float  # monotonic time at which it is muxed (same delay line as the video)


@dataclass
class StreamSetup:
    """What the output needs from the first connection."""

    width: int
    height: int
    fps: float
    audio: Any = None  # the input audio stream (template for the output's)


# ----------------------------------------------------------------------------- detection worker


class Ladder:
    """Detection load levels, from the preset's (best) to the cheapest: stride doubled up to the
    tracker's look-ahead (beyond it frames between detections could only be coasted, not
    interpolated), then the detection resolution lowered; then, with `network_steps`, the
    steady cues' network (heads on a fixed camera) run half as often, then a quarter."""

    def __init__(self, base_stride: int, window: int, network_steps: int = 0) -> None:
        cap = max(1, window)
        strides = [min(base_stride, cap)]
        while strides[-1] < cap:
            strides.append(min(cap, strides[-1] * 2))
        self.levels: list[tuple[int, float]] = [(s, 1.0) for s in strides]
        self.levels += [(strides[-1], 0.75), (strides[-1], 0.5)]
        # Per level, how many times NETWORK_EVERY_S the network waits between runs.
        self.network: list[int] = [1] * len(self.levels)
        for step in range(1, network_steps + 1):
            self.levels.append((strides[-1], 0.5))
            self.network.append(2**step)
        self.level = 0

    @property
    def current(self) -> tuple[int, float]:
        return self.levels[self.level]


# Seconds: the longest the steady cues' network part (heads on a fixed camera) waits between two
# runs until the face detector is at its cheapest level; between runs the tracker carries its
# heads (look-ahead interpolation). Measured on 2 cores (docs/live.md): 0.1 s (every frame at
# 10 fps) covered 97-99 % of the mall clip's head points against 95-96 % at 0.2 s, but pushed the
# face detector to half resolution, where the generated CCTV clips' 10-30 px faces leaked 6.8
# facing head-frames per 1,000 against 2.6 (files: 1.4). 0.2 s meets both live targets on the
# mall clip's heads and keeps faces nearer the files'.
NETWORK_EVERY_S = 0.2
# Ladder levels past the face detector's cheapest, each doubling the network's wait.
NETWORK_STEPS = 2
# Seconds: the longest the face detector waits between two runs however far behind the worker
# is; past it the ladder lowers the resolution instead. The ladder was measured with strides up
# to the 0.5 s look-ahead live had before it took the files' 1 s (bench/live_bench.py, docs/live.md):
# the longer look-ahead lets the tracker carry more, not the detector run less.
MAX_STRIDE_S = 0.5


class DetectionWorker:
    """Detect -> track, frame by frame, as fast as it can; steps the ladder to keep up."""

    # Seconds between two load decisions, and quiet seconds before stepping back up.
    CHECK_S = 1.0
    RELAX_S = 15.0

    def __init__(
        self,
        detector: FrameDetector,
        delay: float,
        stats: LiveStats,
        say: Callable[[str], None],
        log: Callable[[dict[str, Any]], None],
        zones: list[Zone] | None = None,
    ) -> None:
        self.detector = detector
        # Privacy zones are painted first, as in a file run: the detector, the cut detector and
        # the person cue never see those pixels, and the writer sends them painted.
        self.zones = ZonePainter(zones or [], (0, 0, 0)) if zones else None
        # Each class at its own stride, as in a file run (classes.py: text every few face
        # detections); the ladder stretches them all by the same factor.
        self.base_stride = _min_stride(detector)
        self._steady = [c for c in getattr(detector, "classes", None) or [] if c.cls.every_stream_frame]
        # Steady cues with a network part (the default `heads` on a fixed camera): the worker
        # schedules that part itself, on the ladder's stride but never sparser than
        # NETWORK_EVERY_S until the faces' cheapest level (`_network_stride`), so faces lose
        # stride and resolution before heads lose their network.
        self._networks = [c.video for c in self._steady if hasattr(c.video, "network_due")]
        for part in self._networks:
            part.tiles_spread = True  # no frame takes all the tiles at once (people.py)
        self._last_network = -(1 << 30)
        # The look-ahead in frames; set from the source's frame rate at each connection.
        window = max(0, int(round(delay * 25.0)))
        self.window = window
        self.fps = 25.0
        self.stats = stats
        self.say = say
        self.log = log
        self.inbox: queue.Queue[Slot | str | float] = queue.Queue(maxsize=max(8, 2 * window + 4))
        self.delay = delay
        self.ladder = self._new_ladder(window)
        self._held: dict[int, Slot] = {}
        self._failed: deque[int] = deque(maxlen=64)  # seqs whose detection raised
        self._detected: deque[int] = deque(maxlen=64)  # seqs the detector ran on (and returned)
        self._new_tracker()
        self._last_detected = -(1 << 30)
        self._busy = 0.0
        self._late = 0
        # Measured costs (seconds, moving averages): a detection at full resolution, a run of the
        # steady cues' network part (full size whatever the ladder), and the rest of a frame's
        # work (cut detection, camera motion, the steady cues' cheap part, tracking).
        self._detect_cost: float | None = None
        self._network_cost: float | None = None
        self._frame_cost: float | None = None
        self._relax = self.RELAX_S
        self._stepped_up_at = -math.inf
        self._window_start = time.monotonic()
        self._calm_since = time.monotonic()
        self._publish_level()

    def _new_tracker(self) -> None:
        stride = self.ladder.current[0]
        # No plan is written live, and a stream has no end at which to number persons.
        self.tracker = LookaheadTracker(window=self.window, stride=stride, group_persons=False, fps=self.fps)
        self.cuts = CutDetector()
        self._last_detected = -(1 << 30)
        self._last_network = -(1 << 30)
        self._class_last: dict[int, int] = {}

    def _publish_level(self) -> None:
        stride, scale = self.ladder.current
        with self.stats.lock:
            self.stats.stride, self.stats.scale, self.stats.window = stride, scale, self.window

    def run(self) -> None:
        while True:
            try:
                item = self.inbox.get(timeout=0.2)
            except queue.Empty:
                self._adapt()
                continue
            if item == _END:
                self._publish(self.tracker.flush())
                return
            if isinstance(item, float):
                # A (re)connection announces its frame rate: the look-ahead in frames follows.
                changed = item != self.fps  # the tracker's walking pace is per frame
                self.fps = item
                window = max(0, int(round(self.delay * item)))
                if changed or window != self.window or self._stride_cap(window) != self.ladder.levels[-1][0]:
                    self._publish(self.tracker.flush())
                    self.window = window
                    self.ladder = self._new_ladder(window)
                    self._publish_level()
                    self._new_tracker()
                continue
            if item == _RECONNECT:
                # No track crosses a drop: the stream after it may show another scene. The frames
                # the tracker held waited for a look-ahead that never came: late, but not for
                # lack of speed, so they do not count towards stepping down.
                self._publish(self.tracker.flush())
                self._late = 0
                self._new_tracker()
                continue
            assert isinstance(item, Slot)
            try:
                self._step(item)
            except Exception as exc:  # noqa: BLE001 - the frames it decides are masked; go on
                self._fail(item, exc)
            self._adapt()

    def _step(self, slot: Slot) -> None:
        started = time.monotonic()
        if slot.expired or started >= slot.deadline:
            # Its deadline passed while it queued: the writer masks it; spend nothing on it.
            with self.stats.lock:
                self.stats.skipped_detection += 1
            self._late += 1
            return
        stride, scale = self.ladder.current
        factor = stride / self.base_stride
        self.tracker.stride = max(stride, int(round(self.detector.max_stride * factor)))
        if self.zones is not None:
            self.zones.paint(slot.image)
        cut = self.cuts(slot.image)
        detections: Detections | None = None
        # The stride counts source frames, not frames that reached the worker: after a gap (a
        # burst dropped, frames skipped) the next frame is detected, not guessed.
        detect_s = 0.0
        detecting = cut or slot.seq - self._last_detected >= stride
        if detecting:
            self._last_detected = slot.seq
            detect_started = time.monotonic()
            due = None if cut else self._due(slot.seq, factor)
            if due is not None and self._steady:
                due = [c for c in due if not c.cls.every_stream_frame]
            detections = self._detect(slot, scale, cut, due)
            detect_s = time.monotonic() - detect_started
            if detections is not None:
                self._detected.append(slot.seq)
            # Cost of one detection at full resolution (the network's work grows with pixels).
            self._detect_cost = _ewma(self._detect_cost, detect_s / scale**2)
        if self._steady and not cut:
            # The every-frame cue (heads from background subtraction), full size whatever the
            # ladder: its cost counts as the frame's, not the detection's, since no level saves it.
            # Its network part runs on its own stride and is costed on its own.
            network_due = slot.seq - self._last_network >= self._network_stride(self.ladder.level)
            if network_due:
                self._last_network = slot.seq
            for part in self._networks:
                part.network_due = network_due
            network_before = sum(part.network_seconds for part in self._networks)
            steady = self._detect(slot, 1.0, False, self._steady)
            network_s = sum(part.network_seconds for part in self._networks) - network_before
            if network_due and self._networks:
                self._network_cost = _ewma(self._network_cost, network_s)
            detect_s += network_s
            if steady is None:
                detections = None  # a failure masks the frames it decides, as any detector's
            elif detections is not None or slot.seq != self._last_detected:
                detections = Detections.merge([detections, steady]) if detections is not None else steady
        self._held[slot.seq] = slot
        self._publish(self.tracker.push(Frame(slot.image, slot.seq), detections, cut))
        # The tracker keeps a record of every finished track and cut for a file's report; a stream has
        # no report and no end, so they are let go (memory must not grow with running time).
        self.tracker.finished.clear()
        self.tracker.cut_frames.clear()
        spent = time.monotonic() - started
        self._frame_cost = _ewma(self._frame_cost, spent - detect_s)
        self._busy += spent

    def _due(self, seq: int, factor: float) -> list[Any] | None:
        """The classes whose (ladder-stretched) stride has passed since they last ran; None: all
        (a detector without per-class strides)."""
        classes = getattr(self.detector, "classes", None)
        if not classes:
            return None
        due = []
        for i, c in enumerate(classes):
            if seq - self._class_last.get(i, -(1 << 30)) >= c.stride * factor - 1e-9:
                self._class_last[i] = seq
                due.append(c)
        return due

    def _detect(self, slot: Slot, scale: float, cut: bool, classes: list[Any] | None = None) -> Detections | None:
        image = slot.image
        h, w = image.shape[:2]
        if scale < 1.0:
            size = (max(16, int(w * scale)), max(16, int(h * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        if classes is not self._steady:  # the steady cues run at full size whatever the ladder
            with self.stats.lock:
                self.stats.detect_size = (image.shape[1], image.shape[0])
        try:
            found = self.detector.run(image, classes, video=not cut)
        except Exception as exc:  # noqa: BLE001 - any detector failure masks the frames it decides
            self._failed.append(slot.seq)
            with self.stats.lock:
                self.stats.detector_errors += 1
                first = self.stats.detector_errors == 1
            if first:
                self.say(f"detector error ({type(exc).__name__}: {exc}); frames around it are sent fully masked")
            return None
        if scale < 1.0 and len(found):
            found = replace(found, xyxy=found.xyxy * np.float32(w / image.shape[1]))
        return found

    def _fail(self, slot: Slot, exc: Exception) -> None:
        """Tracking failed: mask every frame the tracker held and start a new one."""
        self._failed.append(slot.seq)
        with self.stats.lock:
            self.stats.detector_errors += 1
        self.say(f"tracking error ({type(exc).__name__}: {exc}); the frames it held are sent fully masked")
        for held in self._held.values():
            held.result = MASK
        self._held.clear()
        self._new_tracker()

    def _publish(self, emitted: list[tuple[Frame, Detections]]) -> None:
        now = time.monotonic()
        # A failed detection leaves every frame it would have informed (the look-ahead either
        # side, plus a stride) without a decision: those are masked whole.
        reach = self.window + self.ladder.current[0]
        for frame, final in emitted:
            slot = self._held.pop(frame.index, None)
            if slot is None:
                continue
            if any(abs(frame.index - f) <= reach for f in self._failed):
                slot.result = MASK
            elif not any(frame.index <= d <= frame.index + self.window for d in self._detected):
                # No detection ran on this frame nor within the look-ahead after it (frames were
                # skipped or dropped while behind): a face that entered just before it would be
                # neither seen nor carried back to it. Undecided, so masked whole.
                slot.result = UNSEEN
            else:
                slot.result = final
            if now > slot.deadline:
                self._late += 1

    def predicted_load(self, level: int) -> float | None:
        """Share of real time the worker would be busy at `level`, from the costs measured so far."""
        if self._detect_cost is None or self._frame_cost is None:
            return None
        stride, scale = self.ladder.levels[level]
        network = (self._network_cost or 0.0) / self._network_stride(level)
        return self.fps * (self._frame_cost + self._detect_cost * scale**2 / stride + network)

    def _stride_cap(self, window: int) -> int:
        """The ladder's longest stride: the look-ahead, at most MAX_STRIDE_S."""
        return max(1, min(window, int(round(MAX_STRIDE_S * self.fps))))

    def _new_ladder(self, window: int) -> Ladder:
        return Ladder(self.base_stride, self._stride_cap(window), NETWORK_STEPS if self._networks else 0)

    def _network_stride(self, level: int) -> int:
        """Frames between two runs of the steady cues' network part at ladder level `level`: the
        face detector's stride, at most NETWORK_EVERY_S, times the level's slowing."""
        stride = self.ladder.levels[level][0]
        return max(1, min(stride, int(round(NETWORK_EVERY_S * self.fps)))) * self.ladder.network[level]

    def _adapt(self) -> None:
        now = time.monotonic()
        elapsed = now - self._window_start
        if elapsed < self.CHECK_S:
            return
        load = self._busy / elapsed
        backlog = self.inbox.qsize()
        late = self._late
        self._busy, self._late, self._window_start = 0.0, 0, now
        levels = len(self.ladder.levels)
        late_now = late > 0 or backlog > max(2, self.window // 2)
        behind = late_now or load > 0.9
        # Slowing the heads network takes frames actually late or queued, not a busy worker: a
        # late frame goes out masked whole (nothing leaks), a head the network missed is exposed.
        network = self.ladder.network
        if behind and not late_now and self.ladder.level + 1 < levels:
            behind = network[self.ladder.level + 1] == network[self.ladder.level]
        if behind:
            self._calm_since = now
            if now - self._stepped_up_at < 2 * self.CHECK_S + self.RELAX_S:
                # The level climbed to did not hold: wait longer before the next climb, so a
                # machine at the edge does not mask a burst of frames every few seconds.
                self._relax = min(16 * self.RELAX_S, 2 * self._relax)
            if self.ladder.level + 1 < levels:
                # Straight to the first level the measured costs say fits (busy at most 80 % of
                # the time), at least one step: a machine much too slow masks for a second or
                # two, not for the whole way down the ladder.
                # The heads network is slowed one measured step at a time, never by a prediction:
                # heads stay covered before faces, so the jump stops at the faces' cheapest level.
                target = self.ladder.level + 1
                while (
                    target + 1 < levels
                    and (self.predicted_load(target) or 0.0) > 0.8
                    and network[target + 1] == network[target]
                ):
                    target += 1
                self.ladder.level = target
                self._change(f"cannot keep up (load {load:.0%}, {late} late frames, {backlog} queued)")
        elif self.ladder.level > 0 and now - self._calm_since >= self._relax:
            # Back up one step only if the level above is predicted to leave room (busy at most
            # 60 %), so the worker does not climb into a level it must leave again at once.
            above = self.predicted_load(self.ladder.level - 1)
            if load < 0.6 and above is not None and above < 0.6:
                self.ladder.level -= 1
                self._calm_since = self._stepped_up_at = now
                self._change(f"keeping up with room to spare (load {load:.0%}, predicted {above:.0%})")

    def _change(self, why: str) -> None:
        stride, scale = self.ladder.current
        self._publish_level()
        text = f"{why}: detecting every {stride} frame{'s' * (stride != 1)} at {scale:.0%} resolution"
        if self._networks:
            every = self._network_stride(self.ladder.level)
            text += f", the heads network every {every} frame{'s' * (every != 1)}"
        self.say(text)
        with self.stats.lock:
            self.stats.adaptations.append(text)
            del self.stats.adaptations[:-20]
        self.log(
            {
                "event": "adapt",
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "stride": stride,
                "detect_scale": scale,
                "network_stride": self._network_stride(self.ladder.level) if self._networks else None,
                "why": why,
                # The measured costs the ladder decides on (ms, moving averages): a detection at
                # full resolution, a run of the steady cues' network part, the rest of a
                # frame's work.
                "cost_ms": {
                    name: None if value is None else round(1000 * value, 1)
                    for name, value in (
                        ("detection", self._detect_cost),
                        ("network", self._network_cost),
                        ("frame", self._frame_cost),
                    )
                },
            }
        )


def _min_stride(detector: Any) -> int:
    """The stride of the most frequent class (faces): the ladder's first level."""
    classes = getattr(detector, "classes", None)
    return min((c.stride for c in classes), default=1) if classes else detector.max_stride


def _ewma(previous: float | None, value: float, weight: float = 0.2) -> float:
    return value if previous is None else previous + weight * (value - previous)


# ----------------------------------------------------------------------------- writer


class Writer:
    """Emits every frame at its deadline: painted if final, fully masked otherwise; fills gaps
    in the input with masked frames so the output's timestamps stay continuous."""

    def __init__(self, options: LiveOptions, settings: Settings, stats: LiveStats, say: Callable[[str], None]) -> None:
        self.options = options
        self.settings = settings
        self.stats = stats
        self.say = say
        self.kind = dest_kind(options.dest)
        self.renderer = FrameRenderer(settings, zones=list(settings.zones))
        self.memory = MemoryRelease()
        self.cond = threading.Condition()
        self.pending: deque[Slot] = deque()
        self.audio: deque[AudioItem] = deque(maxlen=512)
        self.setup: StreamSetup | None = None
        self.max_pending = 64
        self.container: Any = None
        self.stream: Any = None
        self.audio_out: Any = None
        self.t0: float | None = None  # monotonic time of output timestamp 0
        self.t0_unix: float | None = None
        self.last_out: float | None = None  # monotonic time of the last frame written
        self.last_real: float | None = None  # ... and of the last one from the source
        self.last_added: float | None = None  # deadline of the last frame taken into the line
        self.last_audio_pts = -1
        self.draining = False
        self.closed = False
        self.error: str | None = None

    # -- called by the reader

    def configure(self, setup: StreamSetup) -> None:
        with self.cond:
            if self.setup is None:
                self.setup = setup
                # Enough room for every frame inside the delay line, with slack for bursts.
                horizon = self.options.delay + self.options.budget + 1.0
                self.max_pending = int(math.ceil(horizon * setup.fps)) + 16

    def add(self, slot: Slot) -> bool:
        with self.cond:
            if len(self.pending) >= self.max_pending or (self.last_out is not None and slot.deadline <= self.last_out):
                return False
            # A burst of frames that arrive late together (what the decoder read while probing
            # the stream, or a network hiccup) would crowd the output's timeline: keep the
            # output's frame rate and drop the frames that come too close after the last one.
            if self.last_added is not None and slot.deadline < self.last_added + 0.5 * self._step():
                return False
            self.last_added = slot.deadline
            self.pending.append(slot)
            self.cond.notify()
            return True

    def add_audio(self, item: AudioItem) -> None:
        with self.cond:
            self.audio.append(item)

    def finish(self) -> None:
        with self.cond:
            self.draining = True
            self.cond.notify()

    # -- the thread

    def run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # noqa: BLE001 - reported as one line by the main thread
            self.error = f"{self.options.dest}: output failed ({type(exc).__name__}: {exc})"
        finally:
            self._close()

    def _loop(self) -> None:
        while True:
            with self.cond:
                action = self._next_action()
                if action is None:
                    if self.draining and not self.pending:
                        return
                    self.cond.wait(timeout=self._wait_time())
                    continue
            kind, item = action
            if kind == "frame":
                self._write_slot(item)
            elif kind == "fill":
                self._write_masked(item)
                with self.stats.lock:
                    self.stats.masked_gap += 1
            self._write_audio()

    def _step(self) -> float:
        return 1.0 / self.setup.fps if self.setup else 0.04

    def _next_action(self) -> tuple[str, Any] | None:
        now = time.monotonic()
        head = self.pending[0] if self.pending else None
        if head is not None and (head.deadline <= now or self.draining):
            return "frame", self.pending.popleft()
        if self.last_out is not None and not self.draining:
            step = self._step()
            fill_at = self.last_out + step
            # A filler only where no real frame is about to come: half a frame of tolerance
            # keeps a slightly late input frame from being pre-empted.
            gap = self.options.max_gap
            if gap is not None and self.last_real is not None and fill_at - self.last_real > gap:
                return None  # the source is gone past --max-gap: no more filler (the reader ends the run)
            if now >= fill_at + 0.5 * step and (head is None or head.deadline > fill_at + 0.5 * step):
                return "fill", fill_at
        return None

    def _wait_time(self) -> float:
        now = time.monotonic()
        wake = now + 0.05
        if self.pending:
            wake = min(wake, self.pending[0].deadline)
        if self.last_out is not None:
            wake = min(wake, self.last_out + 1.5 * self._step())
        return max(0.001, wake - now)

    def _write_slot(self, slot: Slot) -> None:
        result = slot.result
        slot.expired = True
        if self.last_out is not None and slot.deadline <= self.last_out:
            with self.stats.lock:
                self.stats.dropped += 1
            return
        self.last_real = slot.deadline
        if slot.damaged:
            self._write_masked(slot.deadline)
            with self.stats.lock:
                self.stats.masked_decoder += 1
        elif isinstance(result, Detections):
            frame = Frame(slot.image, slot.seq)
            self.renderer.paint(frame, result)
            self._encode(slot.image, slot.deadline)
            with self.stats.lock:
                self.stats.frames_painted += 1
        else:
            self._write_masked(slot.deadline)
            with self.stats.lock:
                if result == MASK:
                    self.stats.masked_error += 1
                else:
                    self.stats.masked_deadline += 1
        self.stats.latency(time.monotonic() - slot.arrival)

    def _write_masked(self, at: float) -> None:
        assert self.setup is not None
        fill = self.renderer.redactor.fill
        image = np.empty((self.setup.height, self.setup.width, 3), np.uint8)
        image[:] = fill
        self._encode(image, at)

    def _encode(self, image: np.ndarray, at: float) -> None:
        if self.container is None:
            self._open(at)
        assert self.t0 is not None
        pts = int(round((at - self.t0) / OUT_TIME_BASE))
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[: self.height, : self.width]), format="rgb24")
        vf.pts = pts
        vf.time_base = OUT_TIME_BASE
        for packet in self.stream.encode(vf):
            self.container.mux(packet)
        self.last_out = at
        self.memory.frame_done()
        with self.stats.lock:
            self.stats.frames_out += 1

    def _open(self, at: float) -> None:
        assert self.setup is not None
        self.t0 = at
        self.t0_unix = time.time() - (time.monotonic() - at)
        dest = self.options.dest
        options: dict[str, str] = {"fflags": "+bitexact"}
        if self.kind == "mp4":
            path = Path(dest)
            if path.exists() and not self.options.overwrite:
                raise VeilError(f"{dest}: already exists (use --overwrite to replace it)")
            path.parent.mkdir(parents=True, exist_ok=True)
            # Fragmented: every fragment is complete on disk, so the file plays if veil dies.
            options["movflags"] = "frag_keyframe+empty_moov+default_base_moof"
            self.container = av.open(str(path), "w", format="mp4", options=options)
        elif self.kind == "hls":
            playlist = _playlist(dest)
            folder = playlist.parent
            folder.mkdir(parents=True, exist_ok=True)
            if playlist.exists() and not self.options.overwrite:
                raise VeilError(f"{playlist}: already exists (use --overwrite to replace it)")
            options.update(
                hls_time="2",
                hls_list_size="10",
                hls_flags="delete_segments+independent_segments",
                hls_segment_filename=str(folder / "segment_%06d.ts"),
            )
            self.container = av.open(str(playlist), "w", format="hls", options=options)
        else:
            if self.kind == "rtsp":
                options["rtsp_transport"] = "tcp"
            self.container = av.open(dest, "w", format=self.kind, options=options, timeout=10.0)
        setup = self.setup
        self.width, self.height = setup.width - setup.width % 2, setup.height - setup.height % 2
        rate = Fraction(setup.fps).limit_denominator(1001)
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.width, self.stream.height = self.width, self.height
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = OUT_TIME_BASE
        self.stream.codec_context.time_base = OUT_TIME_BASE
        speed = self.settings.preset_obj.encoder_speed
        # zerolatency: no B-frames and no encoder look-ahead, so a frame leaves when it is due;
        # a keyframe a second so fragments, segments and late-joining viewers start within 1 s.
        self.stream.options = {
            "crf": "21",
            "preset": speed if speed in ("ultrafast", "superfast") else "veryfast",
            "tune": "zerolatency",
            "g": str(max(1, int(round(setup.fps)))),
        }
        self.stream.metadata.clear()
        if setup.audio is not None and self.options.keep_audio:
            try:
                self.audio_out = self.container.add_stream_from_template(setup.audio)
                self.audio_out.metadata.clear()
            except Exception as exc:  # noqa: BLE001 - audio is optional; the picture is not
                self.say(f"audio dropped: the output cannot carry it ({exc})")
                self.audio_out = None

    def _write_audio(self) -> None:
        if self.audio_out is None or self.t0 is None:
            return
        now = time.monotonic()
        while True:
            with self.cond:
                if not self.audio or (self.audio[0].deadline > now and not self.draining):
                    return
                item = self.audio.popleft()
            pts = int(round((item.deadline - self.t0) / OUT_TIME_BASE))
            if pts <= self.last_audio_pts or pts < 0:
                continue
            packet = item.packet
            packet.stream = self.audio_out
            packet.time_base = OUT_TIME_BASE
            packet.pts = packet.dts = pts
            self.last_audio_pts = pts
            with contextlib.suppress(av.error.FFmpegError):
                self.container.mux(packet)

    def _close(self) -> None:
        if self.container is None:
            return
        try:
            self.draining = True
            self._write_audio()  # what is left of the audio after the last frame
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        except Exception as exc:  # noqa: BLE001
            self.error = self.error or f"{self.options.dest}: output failed at close ({exc})"
        with contextlib.suppress(Exception):
            self.container.close()
        self.closed = True


# ----------------------------------------------------------------------------- reader


class Reader:
    """Decodes SOURCE into slots; reconnects with backoff when it drops."""

    def __init__(
        self,
        options: LiveOptions,
        stats: LiveStats,
        writer: Writer,
        worker: DetectionWorker,
        stop: threading.Event,
        say: Callable[[str], None],
    ) -> None:
        self.options = options
        self.stats = stats
        self.writer = writer
        self.worker = worker
        self.stop = stop
        self.say = say
        self.seq = 0
        self.connected_once = False
        self.is_file = "://" not in options.source and not options.source.startswith("/dev/")
        self.error: str | None = None
        self.last_frame = time.monotonic()  # when the source last delivered a frame (or the start)
        self.ended_cleanly = False  # the last connection ended at the stream's end, not an error
        self.gave_up: str | None = None  # why the reader ended the run (--max-gap)

    def run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # noqa: BLE001 - reported as one line by the main thread
            self.error = f"{self.options.source}: {type(exc).__name__}: {exc}"
        finally:
            self._send(_END)

    def _send(self, item: Slot | str | float) -> None:
        # Markers must arrive; the worker drains its queue quickly, so this rarely waits. After a
        # stop, a worker that does not drain is given up on (its frames are masked anyway).
        for _ in range(20):
            try:
                self.worker.inbox.put(item, timeout=0.5)
                return
            except queue.Full:
                if self.stop.is_set() and item != _END:
                    return

    def _open(self) -> Any:
        source = self.options.source
        options = {"analyzeduration": "1000000", "probesize": "1000000"}
        low = source.lower()
        if low.startswith("udp://"):
            options.update(overrun_nonfatal="1", fifo_size="278876", timeout=str(int(self.options.read_timeout * 1e6)))
        elif low.startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = "tcp"
        fmt = "v4l2" if source.startswith("/dev/video") else None
        return av.open(
            source,
            format=fmt,
            options=options,
            timeout=(max(5.0, self.options.read_timeout), self.options.read_timeout),
        )

    def _gap_left(self) -> float | None:
        """Seconds left before --max-gap ends the run (None: no limit)."""
        if self.options.max_gap is None:
            return None
        return self.options.max_gap - (time.monotonic() - self.last_frame)

    def _give_up(self) -> bool:
        """Past --max-gap without a frame: end the run, saying why."""
        left = self._gap_left()
        if left is None or left > 0:
            return False
        gap = self.options.max_gap
        if self.ended_cleanly:
            self.gave_up = f"the source ended and did not come back within {gap:g} s (--max-gap); output ended"
        elif self.connected_once:
            self.gave_up = f"no frames from the source for {gap:g} s (--max-gap); output ended"
        else:
            self.gave_up = f"no frames from the source in {gap:g} s (--max-gap); giving up"
        self.say(self.gave_up)
        return True

    def _pause(self, backoff: float) -> None:
        left = self._gap_left()
        self.stop.wait(backoff if left is None else max(0.0, min(backoff, left)))

    def _loop(self) -> None:
        backoff = 0.5
        while not self.stop.is_set():
            if self._give_up():
                return
            try:
                container = self._open()
            except (av.error.FFmpegError, OSError) as exc:
                if self.is_file:
                    raise VeilError(f"{self.options.source}: cannot open ({exc})") from exc
                if self._give_up():
                    return
                self.say(f"cannot open {self.options.source} ({_short(exc)}); retrying in {backoff:g} s")
                self._pause(backoff)
                backoff = min(self.options.max_backoff, backoff * 2)
                continue
            got = 0
            self.ended_cleanly = False
            try:
                got = self._read(container)
                self.ended_cleanly = not self.stop.is_set()
            except (av.error.FFmpegError, OSError) as exc:
                if not self.stop.is_set():
                    self.say(f"source lost ({_short(exc)})")
            finally:
                with contextlib.suppress(Exception):
                    container.close()
            if self.is_file and not self.stop.is_set():
                return  # the end of a --realtime file is the end of the stream
            if self.stop.is_set():
                return
            if got:
                backoff = 0.5
            with self.stats.lock:
                self.stats.reconnects += 1
            self._send(_RECONNECT)
            if self._give_up():
                return
            limit = f", for up to {self._gap_left():.0f} s more (--max-gap)" if self.options.max_gap is not None else ""
            self.say(
                f"source {'ended' if self.ended_cleanly else 'dropped'}; reconnecting in {backoff:g} s "
                f"(the output continues, masked{limit})"
            )
            self._pause(backoff)
            backoff = min(self.options.max_backoff, backoff * 2)

    def _read(self, container: Any) -> int:
        if not container.streams.video:
            raise VeilError(f"{self.options.source}: no video stream")
        stream = container.streams.video[0]
        audio = container.streams.audio[0] if self.options.keep_audio and container.streams.audio else None
        ctx = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate and 1 <= float(rate) <= 240 else self.options.default_fps
        self.writer.configure(StreamSetup(ctx.width, ctx.height, fps, audio))
        self._send(fps)
        self.connected_once = True
        offset: float | None = None  # monotonic time minus source time, for this connection
        last_pts_s: float | None = None
        paced_start: tuple[float, float] | None = None
        # After a decode error, frames may be built on references that were lost: masked until
        # the next keyframe, or for two seconds of frames the decoder does not flag (streams with
        # intra refresh have no keyframes). FFmpeg itself shows nothing before a first keyframe.
        damaged = False
        damaged_left = 0
        frames = 0
        for packet in container.demux([s for s in (stream, audio) if s is not None]):
            if self.stop.is_set():
                break
            if audio is not None and packet.stream is audio:
                if packet.pts is not None and packet.size and offset is not None:
                    deadline = float(packet.pts * packet.time_base) + offset + self.options.delay + self.options.budget
                    self.writer.add_audio(AudioItem(packet, deadline))
                continue
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError:
                # A damaged packet: frames that refer to it are damaged until the next keyframe.
                damaged, damaged_left = True, int(2 * fps)
                with self.stats.lock:
                    self.stats.decode_errors += 1
                continue
            for frame in decoded:
                pts_s = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None
                if self.options.realtime and pts_s is not None:
                    # A file read as a camera: each frame no earlier than its own time.
                    if paced_start is None:
                        paced_start = (time.monotonic(), pts_s)
                    wait = paced_start[0] + (pts_s - paced_start[1]) - time.monotonic()
                    if wait > 0 and self.stop.wait(wait):
                        return frames
                arrival = time.monotonic()
                if pts_s is None:
                    pts_s = (last_pts_s + 1.0 / fps) if last_pts_s is not None else 0.0
                # The input time follows the source's clock (decode jitter does not reach the
                # output's timing) but never runs ahead of the arrival, and is pulled back to it
                # after a jump (a stall, a restarted encoder).
                if offset is None or last_pts_s is None or abs(pts_s - last_pts_s) > 2.0:
                    offset = arrival - pts_s
                lag = arrival - (pts_s + offset)
                if lag < 0 or lag > 1.0:
                    offset = arrival - pts_s
                last_pts_s = pts_s
                if damaged:
                    damaged_left -= 1
                    if (frame.key_frame and not frame.is_corrupt) or damaged_left < 0:
                        damaged = False
                self._admit(frame, pts_s + offset, arrival, damaged or frame.is_corrupt)
                self.last_frame = arrival
                frames += 1
        return frames

    def _admit(self, frame: Any, input_time: float, arrival: float, damaged: bool) -> None:
        setup = self.writer.setup
        assert setup is not None
        image = frame.to_ndarray(format="rgb24")
        if image.shape[1] != setup.width or image.shape[0] != setup.height:
            # A reconnect at another size: the output keeps the first size.
            image = cv2.resize(image, (setup.width, setup.height), interpolation=cv2.INTER_AREA)
        slot = Slot(self.seq, image, arrival, input_time + self.options.delay + self.options.budget)
        slot.damaged = damaged
        self.seq += 1
        with self.stats.lock:
            self.stats.frames_in += 1
        if not self.writer.add(slot):
            with self.stats.lock:
                self.stats.dropped += 1
            return
        try:
            self.worker.inbox.put_nowait(slot)
        except queue.Full:
            with self.stats.lock:
                self.stats.skipped_detection += 1


# ----------------------------------------------------------------------------- run


@dataclass
class LiveResult:
    ok: bool
    error: str | None
    final: dict[str, Any]


def live_detector(settings: Settings) -> FrameDetector:
    """The stream's detectors: those of `settings`, with the person network in int8 whatever the
    preset. A stream has a deadline, and what the network saves is frames kept in time: the
    mall clip in real time with one of two cores busy, 93.7-94.4 % of heads in 98.8 % of frames
    shown, against 89.3-90.4 % in 68-95 % with float32 (docs/cctv.md)."""
    return FrameDetector(settings, person_int8=True)


def person_network(detector: Any) -> str | None:
    """The model file the person network runs (None: no person class, or a stand-in detector)."""
    for cls in getattr(detector, "classes", []):
        if getattr(cls.video, "network", False):
            return cls.video.model.name
    return None


def run_live(
    options: LiveOptions,
    settings: Settings,
    reporter: Reporter | None = None,
    detector: FrameDetector | None = None,
) -> LiveResult:
    """Run until --duration, the end of a --realtime file, or an interrupt; returns the final
    log record. `detector` replaces the one `settings` asks for (tests stall one)."""
    reporter = reporter or Reporter()
    # Checked again for library callers: `nan < 0` is False, so only isfinite catches NaN.
    check_finite("--delay", options.delay, 0, MAX_DELAY_S)
    if check_finite("--budget", options.budget, 0, MAX_DELAY_S) <= 0:
        raise VeilError("--budget must be more than 0")
    kind = dest_kind(options.dest)  # a bad DEST fails before anything starts
    if "://" not in options.source and not options.source.startswith("/dev/"):
        if not Path(options.source).is_file():
            raise VeilError(f"{options.source}: no such file")
        if not options.realtime:
            raise VeilError(f"{options.source} is a file: add --realtime to read it as a live stream at its own rate")
        if kind == "mp4" and Path(options.dest).resolve() == Path(options.source).resolve():
            raise VeilError(f"{options.dest}: is the input; veil never writes over its input")
    existing = Path(options.dest) if kind == "mp4" else _playlist(options.dest) if kind == "hls" else None
    if existing is not None and existing.exists() and not options.overwrite:
        raise VeilError(f"{existing}: already exists (use --overwrite to replace it)")

    log_lock = threading.Lock()
    log_file = open(options.log_path, "a", encoding="utf-8") if options.log_path else None  # noqa: SIM115

    def log(record: dict[str, Any]) -> None:
        line = json.dumps(record)
        with log_lock:
            if log_file is not None:
                log_file.write(line + "\n")
                log_file.flush()
            else:
                print(line, file=sys.stderr, flush=True)

    def say(text: str) -> None:
        reporter.warn(f"veil live: {text}")

    stats = LiveStats()
    detector = detector or live_detector(settings)
    # The first run of a network is slow (memory planning, caches): pay it before the stream
    # starts, not on its first frames.
    with contextlib.suppress(Exception):
        detector.run(np.zeros((360, 640, 3), np.uint8), None, video=True)
    stop = threading.Event()
    writer = Writer(options, settings, stats, say)
    worker = DetectionWorker(detector, options.delay, stats, say, log, list(settings.zones))
    reader = Reader(options, stats, writer, worker, stop, say)

    threads = [
        threading.Thread(target=reader.run, name="veil-live-reader", daemon=True),
        threading.Thread(target=worker.run, name="veil-live-detect", daemon=True),
        threading.Thread(target=writer.run, name="veil-live-writer", daemon=True),
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    log(
        {
            "event": "start",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": options.source,
            "dest": options.dest,
            "delay_s": options.delay,
            "budget_s": options.budget,
            "preset": settings.preset,
            "classes": list(settings.classes),
            "person_network": person_network(detector),
            "stride": stats.stride,
            # The ladder's bounds: the face detector's longest stride, the heads network's.
            "max_stride_s": MAX_STRIDE_S,
            "network_every_s": NETWORK_EVERY_S,
        }
    )
    next_log = started + options.log_interval
    interrupted = False
    try:
        while threads[0].is_alive() or threads[1].is_alive():
            time.sleep(0.1)
            now = time.monotonic()
            if options.duration is not None and now - started >= options.duration:
                stop.set()
            if now >= next_log:
                log(stats.record("stats"))
                next_log += options.log_interval
            if writer.error:
                stop.set()
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
    stop.set()
    threads[0].join(timeout=options.read_timeout + 6)
    threads[1].join(timeout=30)
    writer.finish()
    threads[2].join(timeout=30)
    final = stats.record("exit", final=True)
    final["output_t0_unix"] = round(writer.t0_unix, 3) if writer.t0_unix else None
    final["adaptations"] = list(stats.adaptations)
    final["interrupted"] = interrupted
    final["ended"] = reader.gave_up
    error = writer.error or reader.error
    if error is None and stats.frames_out == 0:
        error = f"{options.source}: no frames received"
    final["error"] = error
    log(final)
    if log_file is not None:
        log_file.close()
    return LiveResult(error is None, error, final)


def max_gap(value: float) -> float | None:
    """--max-gap: seconds, or 0 for no limit."""
    if not math.isfinite(value) or value < 0:
        raise VeilError(f"--max-gap must be 0 (no limit) or a number of seconds, got {value}")
    return value or None


def _playlist(dest: str) -> Path:
    """The HLS playlist of a directory DEST (or DEST itself when it names a .m3u8)."""
    return Path(dest) if dest.lower().endswith(".m3u8") else Path(dest) / "index.m3u8"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


# ----------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="veil live",
        description="Anonymize a live stream in real time. Frames whose masks are not decided by their "
        "deadline, and every frame while the source is missing, are sent fully masked: never raw. "
        "Runs until --duration, the end of a --realtime file, or Ctrl-C / SIGTERM (a clean stop: exit 0). "
        "Exit 1: the stream failed (no frames, output error); 2: bad arguments. See docs/live.md.",
    )
    p.add_argument(
        "source",
        metavar="SOURCE",
        help="rtsp://, rtmp://, srt://, udp://, http(s):// (HLS), /dev/videoN, or a file with --realtime",
    )
    p.add_argument(
        "dest",
        metavar="DEST",
        help="rtsp:// or rtmp:// (push), srt:// or udp:// (MPEG-TS), a directory (HLS), or a file (fragmented MP4)",
    )
    p.add_argument(
        "--delay",
        type=number_option("--delay", 0, MAX_DELAY_S),
        default=1.0,
        metavar="SECONDS",
        help="tracker look-ahead, as files' --lookahead: faces are masked this long before first detected (default 1)",
    )
    p.add_argument(
        "--budget",
        type=number_option("--budget", 0, MAX_DELAY_S, above=True),
        default=0.3,
        metavar="SECONDS",
        help="time allowed for detection beyond the delay; the output runs delay+budget behind (default 0.3)",
    )
    p.add_argument("--realtime", action="store_true", help="SOURCE is a file: read it at its native frame rate")
    p.add_argument("--preset", default="balanced", choices=list(PRESETS), help="speed/recall trade-off")
    p.add_argument(
        "--threshold",
        type=number_option("--threshold", 0, 1, above=True),
        help="face detector score threshold (lower finds more)",
    )
    p.add_argument(
        "--redact",
        default=DEFAULT_CLASSES,
        help=f"what to erase: comma list of classes, or all (default: {DEFAULT_CLASSES}, as for files)",
    )
    p.add_argument("--mask", choices=["solid", "blur", "pixelate"], help="default: solid")
    p.add_argument("--mask-color", help="solid fill colour (default black)")
    p.add_argument(
        "--margin",
        type=number_option("--margin", 0, 5),
        help="grow each box by this fraction of its size on every side",
    )
    p.add_argument("--zones", type=Path, metavar="FILE.json", help="privacy zones: polygons masked in every frame")
    p.add_argument("--no-audio", action="store_true", help="drop audio")
    p.add_argument(
        "--duration",
        type=number_option("--duration", 0, above=True),
        metavar="SECONDS",
        help="stop after this long (default: run until stopped)",
    )
    p.add_argument(
        "--max-gap",
        type=number_option("--max-gap", 0),
        default=30.0,
        metavar="SECONDS",
        help="end the output when the source has sent no frame for this long (it ended, or a lost camera did "
        "not come back); masked filler is written for at most this long. 0: never end, fill until stopped "
        "(default 30)",
    )
    p.add_argument("--log", type=Path, metavar="FILE", help="append the JSON Lines live log here (default: stderr)")
    p.add_argument(
        "--log-interval",
        type=number_option("--log-interval", 0, above=True),
        default=60.0,
        metavar="SECONDS",
        help="default 60",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file or playlist")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    return p


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except VeilError as exc:  # a bad number (schema.number_option): one line, like every refusal
        Reporter().error(str(exc))
        return 2
    reporter = Reporter(quiet=args.quiet)

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        settings = Settings(
            preset=args.preset,
            threshold=args.threshold,
            margin=args.margin,
            mask=args.mask or "solid",
            mask_color=args.mask_color,
            classes=parse_classes(args.redact),
            keep_audio=not args.no_audio,
            zones=tuple(load_zones(args.zones)) if args.zones else (),
        )
        if args.log_interval <= 0:
            raise VeilError("--log-interval must be more than 0")
        options = LiveOptions(
            source=args.source,
            dest=args.dest,
            delay=args.delay,
            budget=args.budget,
            realtime=args.realtime,
            keep_audio=not args.no_audio,
            duration=args.duration,
            log_path=args.log,
            log_interval=args.log_interval,
            overwrite=args.overwrite,
            max_gap=max_gap(args.max_gap),
        )
        result = run_live(options, settings, reporter)
    except VeilError as exc:
        reporter.error(str(exc))
        return 2
    except KeyboardInterrupt:
        # A second interrupt while the first one was finishing the output.
        reporter.error("interrupted twice; the output may end without its last frames")
        return 130
    if not result.ok:
        reporter.error(result.error or "live run failed")
        return 1
    f = result.final
    reporter.info(
        f"veil live: {f['frames_out']} frames out ({f['frames_painted']} painted, "
        f"{f['masked_deadline']} masked for a missed deadline, {f['masked_gap']} masked while the source was "
        f"missing), latency p50 {f['latency_p50_s']} s, p95 {f['latency_p95_s']} s"
    )
    return 0

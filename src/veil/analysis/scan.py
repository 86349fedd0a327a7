"""The analysis loop of a video: decode -> (scene cut? stride?) -> detect -> track.

Scene cuts and detection strides are decided here, in one place, before detection: the face
detector runs on every `stride`-th frame with the preset's video options (the text network on
every few of those, see classes.py); a frame that starts a new shot runs every detector with the
image options even when the stride would skip it, so a shot never starts on guesswork. The
tracker then only links and fills; it never calls a detector.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import numpy as np

from veil.analysis.detect import FrameDetector, Started
from veil.analysis.track import CutDetector, LookaheadTracker
from veil.media.source import AudioPacket, VideoSource
from veil.types import Detections, Frame


def tracked_frames(
    source: VideoSource,
    detector: FrameDetector,
    tracker: LookaheadTracker,
    cuts: CutDetector | None = None,
    every_frame: bool = False,
    prepare: Callable[[np.ndarray], None] | None = None,
    ahead: Callable[[Callable[[], Iterator[Any]], str], Iterator[Any]] | None = None,
) -> Iterator[AudioPacket | tuple[Frame, Detections]]:
    """Audio packets as they come, and each frame with its final boxes once the tracker's
    look-ahead has seen far enough past it (frames come out in order, each exactly once).
    `every_frame`: run every detector with the image options on every frame (animations).
    `prepare`: paints each frame before anything looks at it (privacy zones: never shown, and
    motion there never reaches the person cue).
    `ahead(make, name)`: iterates a loop `make()` ahead of its consumer, in a thread of its own
    (runners/stages.prefetch): the person cues (`FrameDetector.start`) a frame ahead of the rest
    of detection (`finish`), and detection ahead of the tracker. The tracker's linking and boxes
    are Python that holds the GIL, the networks are not, and one network alone keeps neither
    core busy: on a crowded fixed camera the tracker is a third of the analysis, and overlapped
    it costs no wall time (docs/cctv.md, "Speed"). Every detector and the tracker see the same
    frames in the same order either way."""
    cuts = cuts if cuts is not None else CutDetector()

    def started() -> Iterator[AudioPacket | tuple[Frame, Started | None, bool]]:
        for item in source.items():
            if isinstance(item, AudioPacket):
                yield item
                continue
            if prepare is not None:
                prepare(item.image)
            cut = cuts(item.image)  # the first frame only records its features
            due = detector.due(item.index)
            if every_frame:
                begun: Started | None = detector.start(item.image)
            elif due:
                begun = detector.start(item.image, due, video=True, cut=cut)
            elif cut:
                begun = detector.start(item.image)
            else:
                begun = None
            yield item, begun, cut

    def detected() -> Iterator[AudioPacket | tuple[Frame, Detections | None, bool]]:
        items = ahead(started, "veil-stage-people") if ahead is not None else started()
        with closing(items):
            for item in items:
                if isinstance(item, AudioPacket):
                    yield item
                    continue
                frame, begun, cut = item
                yield frame, detector.finish(begun) if begun is not None else None, cut

    items = ahead(detected, "veil-stage-detect") if ahead is not None else detected()
    with closing(items):  # an early exit stops (and joins) the detection thread here
        for item in items:
            if isinstance(item, AudioPacket):
                yield item
                continue
            frame, detections, cut = item
            yield from tracker.push(frame, detections, cut)
    yield from tracker.flush()

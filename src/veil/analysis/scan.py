"""The analysis loop of a video: decode -> (scene cut? stride?) -> detect -> track.

Scene cuts and detection strides are decided here, in one place, before detection: the face
detector runs on every `stride`-th frame with the preset's video options (the text network on
every few of those, see classes.py); a frame that starts a new shot runs every detector with the
image options even when the stride would skip it, so a shot never starts on guesswork. The
tracker then only links and fills; it never calls a detector.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from veil.analysis.detect import FrameDetector
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
) -> Iterator[AudioPacket | tuple[Frame, Detections]]:
    """Audio packets as they come, and each frame with its final boxes once the tracker's
    look-ahead has seen far enough past it (frames come out in order, each exactly once).
    `every_frame`: run every detector with the image options on every frame (animations).
    `prepare`: paints each frame before anything looks at it (privacy zones: never shown, and
    motion there never reaches the person cue)."""
    cuts = cuts if cuts is not None else CutDetector()
    for item in source.items():
        if isinstance(item, AudioPacket):
            yield item
            continue
        if prepare is not None:
            prepare(item.image)
        cut = cuts(item.image)  # the first frame only records its features
        due = detector.due(item.index)
        if every_frame:
            detections: Detections | None = detector.run(item.image)
        elif due:
            detections = detector.run(item.image, due, video=True)
        elif cut:
            detections = detector.run(item.image)
        else:
            detections = None
        yield from tracker.push(item, detections, cut)
    yield from tracker.flush()

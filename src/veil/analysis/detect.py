"""Run the detectors of the requested classes on a frame and merge their boxes.

Which detectors run on which video frame (the stride, scene cuts) is decided by the caller's
loop (`scan.py`), before detection; this module only knows how to run a given set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.analysis.classes import CLASSES, RedactionClass
from veil.analysis.detectors import Detector, create
from veil.config import Settings
from veil.types import Detections


@dataclass
class Started:
    """A frame whose person cues have run (`FrameDetector.start`), waiting for the rest."""

    image: np.ndarray
    chosen: list[Detector]  # every detector of the frame, in the classes' order
    found: dict[int, Detections]  # by id of the detector: the person cues' boxes
    activity: np.ndarray | None  # where they saw people and motion (xyxy); None: not known
    cut: bool = False  # the frame starts a new shot


@dataclass
class ClassDetector:
    cls: RedactionClass
    image: Detector  # photos and the first frame of a shot
    video: Detector  # the other video frames (cheaper options, the tracker fills in)
    stride: int  # video: runs on frames whose index is a multiple of this


class FrameDetector:
    """One detector pair (image options, video options) per requested class."""

    def __init__(self, settings: Settings, person_int8: bool | None = None) -> None:
        """`person_int8`: run the person network in int8 (None: as the preset says)."""
        preset = settings.preset_obj
        int8 = preset.person_int8 if person_int8 is None else person_int8
        face_stride = max(1, preset.detect_stride)
        self.classes: list[ClassDetector] = []
        # Time spent in `start` and in `finish` (each half counts its own: they may run in two
        # threads at once).
        self.start_seconds = 0.0
        self.finish_seconds = 0.0
        built: dict[str, Detector] = {}
        for name in settings.classes:
            cls = CLASSES[name]
            if cls.label == "face":
                # The preset picks the face detector (the ensemble, or CenterFace alone).
                image = create(preset.face_detector, threshold=settings.threshold, **preset.face_options)
                video = image.with_options(**preset.video_face_options) if preset.video_face_options else image
            else:
                options: dict[str, Any] = dict(cls.options)
                if cls.detector == "people":
                    options["int8"] = int8
                if cls.reads is not None:
                    # Reuse the network run of the class this one reads (cached per frame).
                    source = built.get(cls.reads) or create(CLASSES[cls.reads].detector)
                    built[cls.reads] = source
                    options[f"{cls.reads}_detector"] = source
                video = built.get(name) or create(cls.detector, **options)
                image = create(cls.detector, **{**options, **cls.image_options}) if cls.image_options else video
            built[name] = image
            self.classes.append(ClassDetector(cls, image, video, face_stride * cls.video_stride))

    def reset(self) -> None:
        """A new file (or stream): detectors that keep state between frames (a background model,
        a schedule) start afresh, so nothing carries from one clip to the next."""
        for c in self.classes:
            for detector in {id(c.image): c.image, id(c.video): c.video}.values():
                reset = getattr(detector, "reset", None)
                if reset is not None:
                    reset()

    def pace(self, fps: float | None) -> None:
        """The frame rate of the video about to be detected (None: unknown), for detectors whose
        schedule is kept in time (the face ensemble without a person cue, ensemble.py `pace`; the
        person network, people.py `pace`); the detector runs on every `stride`-th frame, so it
        sees frames at fps / stride."""
        for c in self.classes:
            pace = getattr(c.video, "pace", None)
            if pace is not None:
                pace(fps / c.stride if fps else None)

    @property
    def max_stride(self) -> int:
        return max(c.stride for c in self.classes)

    def due(self, index: int) -> list[ClassDetector]:
        """The classes whose video detector runs on frame `index`."""
        return [c for c in self.classes if index % c.stride == 0]

    def run(self, image: np.ndarray, classes: list[ClassDetector] | None = None, video: bool = False) -> Detections:
        """Boxes of `classes` (default: all) found in `image`."""
        return self.finish(self.start(image, classes, video))

    def start(
        self, image: np.ndarray, classes: list[ClassDetector] | None = None, video: bool = False, cut: bool = False
    ) -> Started:
        """The first half of `run`: the person cues (detectors that report `activity`), which a
        face detector searching only where people may be (ensemble.py, `region_search`) needs
        first. `finish` runs the rest; a video's analysis runs the two halves in threads of their
        own, a frame apart (analysis/scan.py), so the person network and the face detector work
        at once. `cut`: the frame starts a new shot, where a searching detector's schedule starts
        again (every member over the whole frame): the faces it knew are of the shot before."""
        began = time.perf_counter()
        chosen = [c.video if video else c.image for c in (self.classes if classes is None else classes)]
        found: dict[int, Detections] = {}
        activity = []
        for d in chosen:
            if hasattr(d, "activity") and id(d) not in found:
                found[id(d)] = d.detect(image)
                if d.activity is not None:  # type: ignore[attr-defined]
                    activity.append(d.activity)  # type: ignore[attr-defined]
        self.start_seconds += time.perf_counter() - began
        return Started(image, chosen, found, np.concatenate(activity) if activity else None, cut)

    def finish(self, started: Started) -> Detections:
        """The second half of `run` (`start`): the other detectors, each searching face
        detector told where the person cues saw people and motion; the boxes merged in the
        classes' order."""
        began = time.perf_counter()
        found = dict(started.found)
        for d in started.chosen:
            if id(d) in found:
                continue
            if getattr(d, "region_search", False):
                if started.cut:
                    d.reset()  # type: ignore[attr-defined]
                d.search_regions = started.activity  # type: ignore[attr-defined]
            found[id(d)] = d.detect(started.image)
        self.finish_seconds += time.perf_counter() - began
        return Detections.merge([found[id(d)] for d in started.chosen])

    @property
    def seconds(self) -> float:
        """Time spent detecting (both halves), for the report's timings."""
        return self.start_seconds + self.finish_seconds

    def describe(self) -> list[dict[str, Any]]:
        out = []
        for c in self.classes:
            entry = {"name": c.image.name, "label": c.image.label, "settings": c.image.settings()}
            entry["video_stride"] = c.stride
            if c.video is not c.image:
                entry["video_settings"] = c.video.settings()
            out.append(entry)
        return out

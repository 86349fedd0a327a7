"""What veil can redact: one entry per class, so adding a class is one entry here (and a
detector file in detectors/).

`label` is the name boxes of the class carry in detections, plans and reports; `detector` the
registry name of the detector that finds them; `margin` the share of the box added on each side
(None: the preset's, which is chosen for faces); `isotropic` grows every side by a share of the
box's shorter side (a line of text grows by a share of its height, not of its length);
`video_stride` runs the detector on every k-th frame the face detector runs on, because the
tracker follows the camera between; `reads` names a class whose network output this one reuses
on the same frame (plates are found among text lines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from veil.analysis.presets import LATE_S


@dataclass(frozen=True)
class RedactionClass:
    name: str
    label: str
    detector: str
    margin: float | None = None
    isotropic: bool = False
    video_stride: int = 1
    reads: str | None = None
    # Options for the detector's factory; `image_options` are added for photos and the first
    # frame of a shot (e.g. a motion cue that has no background to compare with there).
    options: dict[str, Any] = field(default_factory=dict)
    image_options: dict[str, Any] = field(default_factory=dict)
    # Part of `--redact all`: whole bodies only when asked for by name (they blank most of a street).
    in_all: bool = True
    # A stream runs it on every frame at full resolution, whatever the load ladder says: it costs
    # little and learns from consecutive frames (a background model), so when detection falls
    # behind people's heads stay covered before faces lose their stride or resolution. A network
    # part it has (`network_due`, detectors/people.py) runs on the stream's own schedule for it
    # (runners/live.py: the ladder's stride, at least every NETWORK_EVERY_S until the face
    # detector is at its cheapest level).
    every_stream_frame: bool = False


# Text and plates: the PP-OCR network costs about twice CenterFace and text moves with the
# camera, which the tracker follows, so it runs on every third face-detection frame.
TEXT_STRIDE = 3

CLASSES: dict[str, RedactionClass] = {
    c.name: c
    for c in (
        # The preset names the face detector it runs (presets.face_detector: the ensemble, or
        # CenterFace alone); this entry gives the label and the rest.
        RedactionClass("faces", "face", "centerface"),
        # Plate boxes already include the plate's frame (detectors/plates.py), so they need only
        # a little slack; a face margin would double the masked area for nothing.
        RedactionClass("plates", "plate", "plates", margin=0.1, isotropic=True, video_stride=TEXT_STRIDE, reads="text"),
        RedactionClass("text", "text", "text", isotropic=True, video_stride=TEXT_STRIDE),
        # People's heads on fixed cameras (detectors/people.py, docs/cctv.md), for heads seen
        # from behind or too small for a face detector: the person network while the camera
        # holds still, and background subtraction for moving people it misses. Nothing on a
        # moving camera. On the mall clip's held-out half it covers 99.1 % of head points
        # against 87.6 % for background subtraction alone, at about half the speed: a person
        # missed is a person exposed. A live stream runs background subtraction on every frame
        # and the network on the load ladder's stride, but at least every 0.2 s until the face
        # detector is at its cheapest level: faces step down first (runners/live.py).
        RedactionClass(
            "heads",
            "head",
            "people",
            options={"mode": "head", "fixed_only": True, "late_s": LATE_S},
            image_options={"motion": False, "network": False},
            every_stream_frame=True,
        ),
        # Every person the NanoDet network finds in video, still or moving, any camera
        # (detectors/people.py), plus the motion cue: their heads (`people`) or whole bodies
        # (`persons`). On the mall clip's held-out half `people` covers 99.3 % of head points
        # against 87.6 % for `heads`, at about half the speed, so it is asked for by name
        # (docs/cctv.md, "When the network runs").
        # Photos (and a shot's first frame) run neither cue; a photo's people are left to the
        # face detector.
        RedactionClass(
            "people",
            "head",
            "people",
            options={"mode": "head", "late_s": LATE_S},
            image_options={"motion": False, "network": False},
            in_all=False,
        ),
        RedactionClass(
            "persons",
            "person",
            "people",
            options={"mode": "body", "late_s": LATE_S},
            image_options={"motion": False, "network": False},
            in_all=False,
        ),
    )
}
BY_LABEL: dict[str, RedactionClass] = {c.label: c for c in CLASSES.values()}
# What `veil` redacts unless told otherwise: faces, and on fixed cameras the heads of people
# whose faces are turned away or too small (the head cue finds nothing on a moving camera).
DEFAULT_CLASSES = "faces,heads"


def finds_people(classes: tuple[str, ...] | list[str]) -> bool:
    """Whether these classes mask people's heads or bodies (not faces alone): then a second
    opinion looks for people with no mask on the head too."""
    return any(CLASSES[c].label in ("head", "person") for c in classes if c in CLASSES)


def parse_classes(text: str) -> tuple[str, ...]:
    """`faces,plates` or `all` to class names, in the table's order; unknown names are an error."""
    from veil.errors import VeilError

    items = [c.strip() for c in text.split(",") if c.strip()]
    if items == ["all"]:
        return tuple(name for name, c in CLASSES.items() if c.in_all)
    unknown = [c for c in items if c not in CLASSES]
    if unknown or not items:
        raise VeilError(
            f"--redact: unknown class {', '.join(unknown) or text!r}; choose from {', '.join(CLASSES)}, all"
        )
    return tuple(dict.fromkeys(items))

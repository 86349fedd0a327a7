"""Speed presets: what each one runs, so users trade recall for time knowingly.

Numbers here come from `make bench` (see docs/detection.md); change them only with a new run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from veil.errors import VeilError


@dataclass(frozen=True)
class Preset:
    name: str
    # Options passed to the face detector's factory (see detectors/centerface.py).
    face_options: dict[str, Any] = field(default_factory=dict)
    # Detection threshold (CenterFace heatmap score); chosen for recall.
    threshold: float = 0.2
    # Mask margin: fraction of the box's width/height added on each side.
    margin: float = 0.2
    # Video: run the detectors on every k-th frame, the tracker fills the frames between.
    detect_stride: int = 1


PRESETS: dict[str, Preset] = {
    "fast": Preset("fast", {"top_scale": 0.5}, threshold=0.2, margin=0.25, detect_stride=2),
    "balanced": Preset("balanced", {"top_scale": 1.0}, threshold=0.2, margin=0.2),
    "thorough": Preset("thorough", {"top_scale": 2.0, "flip": True}, threshold=0.15, margin=0.2),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise VeilError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None

"""Settings, resolved and validated once: every option's check lives here, and the rest of veil
reads a frozen `Settings` whose values are final (the preset's margin and threshold already
applied, the output format normalised)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veil.audio import AudioEdit
from veil.classes import CLASSES
from veil.errors import VeilError
from veil.presets import Preset, get_preset
from veil.timerange import TimeRange
from veil.zones import Zone
from veil.zones import to_json as zones_to_json


@dataclass(frozen=True)
class Settings:
    preset: str = "balanced"
    # None: the preset's value. After construction `threshold` and `margin` hold the values used.
    threshold: float | None = None
    margin: float | None = None
    mask: str = "solid"
    # None: black. Only the solid mask has a colour; giving one with blur or pixelate is an error.
    mask_color: str | None = None
    classes: tuple[str, ...] = ("faces", "heads")
    output_format: str | None = None
    overwrite: bool = False
    keep_audio: bool = True
    keep_metadata: bool = False
    # Video: seconds of frames read ahead so tracks extend before their first detection.
    lookahead_s: float = 1.0
    # A report was asked for: collect what only the report needs (contact-sheet thumbnails).
    report: bool = False
    # Odd-sized H.264: drop the last row/column for 4:2:0 instead of writing 4:4:4 (sink._geometry).
    allow_crop: bool = False
    # Areas blanked in every frame before anything else (--zones, zones.py), and the part of each
    # video to process and write (--start/--end; None: all of it).
    zones: tuple[Zone, ...] = ()
    time_range: TimeRange | None = None
    # Voices (audio.py): keep, mute, bleep or disguise; ranges in seconds, empty = the whole track.
    audio: str = "keep"
    audio_ranges: tuple[tuple[float, float], ...] = ()
    # Spoken personal data (veil.speech): mute or bleep what the finder finds (None: scan only
    # proposes it); the recognized words go to `transcript` only when it is given.
    audio_pii: str | None = None
    transcript: Path | None = None
    preset_obj: Preset = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        preset = get_preset(self.preset)
        object.__setattr__(self, "preset_obj", preset)
        threshold = preset.threshold if self.threshold is None else float(self.threshold)
        if not 0.0 < threshold <= 1.0:
            raise VeilError(f"--threshold must be between 0 and 1, got {threshold}")
        object.__setattr__(self, "threshold", threshold)
        margin = preset.margin if self.margin is None else float(self.margin)
        if margin < 0 or margin > 5:
            raise VeilError(f"--margin must be between 0 and 5, got {margin}")
        object.__setattr__(self, "margin", margin)
        from veil.masks import available

        if self.mask not in available():
            raise VeilError(f"unknown mask {self.mask!r}; choose one of {', '.join(available())}")
        if self.mask_color is not None and self.mask != "solid":
            raise VeilError(f"--mask-color applies to the solid mask only, not to {self.mask}")
        if self.mask == "solid":
            from veil.masks.solid import parse_color

            parse_color(self.mask_color or "black")
        classes = tuple(self.classes)
        unknown = [c for c in classes if c not in CLASSES]
        if unknown or not classes:
            raise VeilError(f"unknown class {', '.join(unknown) or '(none)'}; choose from {', '.join(CLASSES)}")
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "zones", tuple(self.zones))
        from veil.audio import AUDIO_MODES

        if self.audio not in AUDIO_MODES:
            raise VeilError(f"--audio: unknown mode {self.audio!r}; choose from {', '.join(AUDIO_MODES)}")
        if not self.keep_audio and self.audio != "keep":
            raise VeilError(f"--audio {self.audio} and --no-audio contradict each other")
        if self.audio_ranges and self.audio == "keep":
            raise VeilError("--audio-ranges needs --audio mute, bleep or disguise")
        object.__setattr__(self, "audio_ranges", tuple((float(a), float(b)) for a, b in self.audio_ranges))
        if self.audio_pii is not None:
            if self.audio_pii not in ("mute", "bleep"):
                raise VeilError(f"--audio-pii: unknown mode {self.audio_pii!r}; choose mute or bleep")
            if self.audio != "keep" or not self.keep_audio:
                raise VeilError("--audio-pii cannot be combined with --audio or --no-audio")
        if self.lookahead_s < 0:
            raise VeilError("--lookahead must be 0 or more")
        fmt = self.output_format
        if fmt:
            from veil.sink import OUTPUT_EXTS

            fmt = ("" if fmt.startswith(".") else ".") + fmt.lower()
            if fmt not in OUTPUT_EXTS:
                raise VeilError(f"unknown output format {self.output_format!r}")
            object.__setattr__(self, "output_format", fmt)

    def mask_options(self) -> dict[str, Any]:
        return {"color": self.mask_color or "black"} if self.mask == "solid" else {}

    def to_json(self) -> dict[str, Any]:
        """The settings a plan records: what decides what is found and how it is painted."""
        return {
            "preset": self.preset,
            "threshold": self.threshold,
            "margin": self.margin,
            "mask": self.mask,
            "mask_color": self.mask_color,
            "classes": list(self.classes),
            "lookahead_s": self.lookahead_s,
            "zones": zones_to_json(list(self.zones)) if self.zones else None,
            "time_range": self.time_range.to_json() if self.time_range else None,
            "audio": self.audio_edit().describe(),
        }

    def audio_edit(self) -> AudioEdit:
        return AudioEdit(self.audio, list(self.audio_ranges))

"""Settings, resolved and validated once: every option's check lives here, and the rest of veil
reads a frozen `Settings` whose values are final (the preset's margin and threshold already
applied, the output format normalised)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veil.analysis.classes import CLASSES
from veil.analysis.presets import Preset, get_preset
from veil.analysis.zones import Zone
from veil.analysis.zones import to_json as zones_to_json
from veil.errors import VeilError
from veil.media.audio import AudioEdit
from veil.schema import check_finite, short
from veil.timerange import TimeRange

# Seconds: the most look-ahead a video run buffers (frames held in memory grow with it).
MAX_LOOKAHEAD_S = 60.0


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
        # Library callers and plans reach here without the command line's checks: every number is
        # checked again with math.isfinite (`nan < 0` is False, so a range check alone passes NaN).
        for name, text in (("preset", self.preset), ("mask", self.mask)):
            if not isinstance(text, str):
                raise VeilError(f"--{name}: expected a name, got {short(text)}")
        if self.mask_color is not None and not isinstance(self.mask_color, str):
            raise VeilError(f"--mask-color: expected a colour name, got {short(self.mask_color)}")
        preset = get_preset(self.preset)
        object.__setattr__(self, "preset_obj", preset)
        threshold = preset.threshold if self.threshold is None else check_finite("--threshold", self.threshold)
        if not 0.0 < threshold <= 1.0:
            raise VeilError(f"--threshold must be between 0 and 1, got {threshold}")
        object.__setattr__(self, "threshold", threshold)
        margin = preset.margin if self.margin is None else check_finite("--margin", self.margin, 0, 5)
        object.__setattr__(self, "margin", margin)
        from veil.render.masks import available

        if self.mask not in available():
            raise VeilError(f"unknown mask {self.mask!r}; choose one of {', '.join(available())}")
        if self.mask_color is not None and self.mask != "solid":
            raise VeilError(f"--mask-color applies to the solid mask only, not to {self.mask}")
        if self.mask == "solid":
            from veil.render.masks.solid import parse_color

            parse_color(self.mask_color or "black")
        if isinstance(self.classes, str) or not all(isinstance(c, str) for c in self.classes):
            raise VeilError(f"--redact: expected a list of class names, got {short(self.classes)}")
        classes = tuple(self.classes)
        unknown = [c for c in classes if c not in CLASSES]
        if unknown or not classes:
            raise VeilError(f"unknown class {', '.join(unknown) or '(none)'}; choose from {', '.join(CLASSES)}")
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "zones", tuple(self.zones))
        from veil.media.audio import AUDIO_MODES

        if self.audio not in AUDIO_MODES:
            raise VeilError(f"--audio: unknown mode {self.audio!r}; choose from {', '.join(AUDIO_MODES)}")
        if not self.keep_audio and self.audio != "keep":
            raise VeilError(f"--audio {self.audio} and --no-audio contradict each other")
        if self.audio_ranges and self.audio == "keep":
            raise VeilError("--audio-ranges needs --audio mute, bleep or disguise")
        ranges = []
        for rng in self.audio_ranges:
            if not isinstance(rng, list | tuple) or len(rng) != 2:
                raise VeilError(f"--audio-ranges: expected (start_s, end_s) pairs, got {short(rng)}")
            start = check_finite("--audio-ranges", rng[0], 0)
            end = check_finite("--audio-ranges", rng[1], 0)
            if end <= start:
                raise VeilError(f"--audio-ranges: {start:g}-{end:g} ends before it starts")
            ranges.append((start, end))
        object.__setattr__(self, "audio_ranges", tuple(ranges))
        object.__setattr__(self, "lookahead_s", check_finite("--lookahead", self.lookahead_s, 0, MAX_LOOKAHEAD_S))
        for zone in self.zones:
            if not isinstance(zone, Zone):
                raise VeilError(
                    f"zones: expected veil.analysis.zones.Zone (load_zones reads a zone file), got {short(zone)}"
                )
        if self.audio_pii is not None:
            if self.audio_pii not in ("mute", "bleep"):
                raise VeilError(f"--audio-pii: unknown mode {self.audio_pii!r}; choose mute or bleep")
            if self.audio != "keep" or not self.keep_audio:
                raise VeilError("--audio-pii cannot be combined with --audio or --no-audio")
        fmt = self.output_format
        if fmt:
            from veil.media.sink import OUTPUT_EXTS

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


def settings_for_plan(plan: Any, **given: Any) -> Settings:
    """The one settings builder for painting a plan (`veil render`, `veil verify`, the review
    page's preview and its render): the plan's own mask, margin, colour, classes, zones, time
    range and audio section, with every option in `given` that is not None overriding it.
    `given` takes Settings' field names; `audio`/`audio_ranges` replace the plan's audio edit."""
    from veil.plan import plan_time_range, plan_zones

    base = plan.settings
    options = {k: v for k, v in given.items() if v is not None}
    mask = options.pop("mask", None) or base.get("mask") or "solid"
    color = options.pop("mask_color", None)
    if color is None and mask == "solid":
        color = base.get("mask_color")
    audio = dict(plan.audio or {})
    if "audio" in options or "audio_ranges" in options:
        audio = {"mode": options.pop("audio", "keep"), "ranges": options.pop("audio_ranges", ())}
    known = [c for c in base.get("classes", ["faces"]) if c in CLASSES]
    return Settings(
        preset=base.get("preset", "balanced"),
        margin=options.pop("margin", base.get("margin")),
        mask=mask,
        mask_color=color,
        classes=tuple(known) or ("faces",),
        zones=tuple(plan_zones(plan)),
        time_range=plan_time_range(plan),
        audio=audio.get("mode", "keep"),
        audio_ranges=tuple(tuple(r) for r in audio.get("ranges") or ()),
        **options,
    )

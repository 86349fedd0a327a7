"""What veil strips from a file, what it keeps, and the check that nothing identifying survived.

Images are written from pixels only (see `sink.write_image`), videos from decoded frames and
copied audio packets with every container and stream tag cleared (see `sink.VideoSink`), so
stripping is by construction; this module records what that removed and verifies the output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from veil.errors import MediaError, VeilError
from veil.media.inspect import EXIF_IFD, Finding, identifying, inspect_file, summarize

# Always kept: they describe how to show the pixels, not who, where or when.
KEPT_ALWAYS = [
    "ICC colour profile (images): describes colours, not people",
    "display rotation (videos): the picture is shown the way the input was",
    "audio streams (videos; drop them with --no-audio): voices can identify people",
    "generic muxer names (e.g. encoder 'Lavf', handler 'VideoHandler'): name FFmpeg, not a device",
]
# Kept only with --keep-metadata.
KEPT_WITH_KEEP_METADATA = [
    "images: EXIF tags (GPS position, make/model, serial numbers, owner, dates, camera settings)",
    "videos: container tags (location, creation time, make/model, titles)",
]
# Never written, even with --keep-metadata: each can hold the unredacted picture.
NEVER_KEPT = [
    "EXIF thumbnail (IFD1), maker notes, MPF previews, data after the picture (motion photos)",
    "XMP, IPTC, Photoshop resources, JPEG comments, PNG text chunks",
    "video data, subtitle, attachment and chapter streams, extra video streams, cover pictures",
    "video stream tags (handler names, creation times, encoder names of the device)",
]
# Orientation is applied to the pixels before writing; a kept tag would turn them twice.
ORIENTATION = 0x0112
MAKER_NOTE = 0x927C


def kept_exif(raw: bytes | None) -> bytes | None:
    """The EXIF block written with --keep-metadata: the input's tags minus what carries pixels
    (IFD1 thumbnail, maker notes with their previews) and with orientation reset to upright."""
    if not raw:
        return None
    exif = Image.Exif()
    try:
        exif.load(raw)
    except Exception:  # noqa: BLE001 - unreadable EXIF is dropped, not copied blindly
        return None
    if ORIENTATION in exif:
        exif[ORIENTATION] = 1
    sub = exif.get_ifd(EXIF_IFD)
    sub.pop(MAKER_NOTE, None)
    # Exif.tobytes writes IFD0 and its sub-IFDs only, so the IFD1 thumbnail is left behind.
    return exif.tobytes()


def _named(finding: Finding) -> dict[str, str]:
    return {"category": finding.category, "where": finding.where, "key": finding.key}


def describe_kept(findings: list[Finding]) -> str:
    """One line for --keep-metadata: what identifying metadata the output still carries."""
    kept = summarize(findings)
    return ", ".join(kept) if kept else "nothing identifying"


def check_output(source: Path, output: Path, keep_metadata: bool) -> tuple[dict[str, Any], list[str]]:
    """Inspect input and output; return the report's metadata record and warnings.

    Raises VeilError if the output still carries identifying metadata and the user did not
    ask to keep it: the output is then never renamed to its final name (fail closed).
    """
    warnings: list[str] = []
    try:
        before = inspect_file(source)
    except MediaError as exc:
        before = []
        warnings.append(f"could not inspect the input's metadata: {exc}")
    try:
        after = inspect_file(output)
    except MediaError as exc:
        raise VeilError(f"{output}: cannot verify the output's metadata ({exc})") from exc
    left = identifying(after)
    if left and not keep_metadata:
        names = ", ".join(sorted({f.label() for f in left}))[:300]
        raise VeilError(f"{source}: identifying metadata survived in the output ({names}); nothing written")
    left_keys = {(f.category, f.key) for f in left}
    removed = [f for f in identifying(before) if (f.category, f.key) not in left_keys]
    # Names only, never values: the report must not itself carry the GPS position or owner name.
    record: dict[str, Any] = {
        "found_in_input": summarize(before),
        "removed": [_named(f) for f in removed],
        "left_in_output": [_named(f) for f in left],
        "kept_not_identifying": sorted({f"{f.where}: {f.key}" for f in after if not f.identifying}),
    }
    if keep_metadata:
        record["kept_on_request"] = describe_kept(after)
        if left:
            warnings.append(f"--keep-metadata: the output still carries {describe_kept(after)}")
    return record, warnings

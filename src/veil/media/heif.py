"""HEIC/HEIF input (the default photo format of iPhones) through pillow-heif.

pillow-heif ships libheif and its decoders in its wheel, so nothing is installed by hand. It
applies the file's rotation and mirroring while decoding and reports EXIF orientation 1, so
`ImageOps.exif_transpose` never turns the picture twice. AVIF is read by Pillow itself.
"""

from __future__ import annotations

_registered = False


def register() -> None:
    """Let Pillow open HEIC/HEIF files (idempotent; a no-op when pillow-heif is missing)."""
    global _registered
    if _registered:
        return
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - a dependency; HEIC then reads as unknown
        return
    pillow_heif.register_heif_opener(thumbnails=False)
    _registered = True

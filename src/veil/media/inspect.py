"""`veil inspect`: list the metadata in a file that could identify a person, place, time or device.

Used by people to check a file before and after veil, and by the pipeline to record what it
removed and to refuse an output that still carries anything identifying.

Images are parsed from their own structure (JPEG segments, PNG chunks, WebP RIFF chunks, TIFF
tags) with Pillow's EXIF reader for the EXIF blocks, so nothing a vendor hides in an unknown
segment or after the end of the picture goes unseen. Videos are read with PyAV (container and
stream tags, extra streams, chapters) plus a walk over MP4/MOV boxes for vendor user data that
FFmpeg does not surface. No external tool is needed.
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import sys
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
from PIL import ExifTags, Image, UnidentifiedImageError

from veil.errors import MediaError
from veil.media.heif import register as register_heif

register_heif()  # HEIC files are inspected like any other image Pillow reads

# What a finding is about; the order is the order of the printed report.
CATEGORIES = {
    "location": "location",
    "person": "person / owner",
    "serial": "serial / unique id",
    "device": "device / software",
    "time": "date / time",
    "thumbnail": "embedded picture",
    "stream": "extra stream",
    "text": "free text",
    "other": "other",
    "harmless": "not identifying",
}


@dataclass(frozen=True)
class Finding:
    """One piece of metadata. `identifying` is False for things kept on purpose (ICC profile,
    orientation, generic muxer names); they are listed with --all only."""

    category: str
    where: str
    key: str
    value: str
    identifying: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def label(self) -> str:
        return f"{self.where}: {self.key}"


def _short(value: Any, limit: int = 80) -> str:
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace").rstrip("\x00")
        if sum(not c.isprintable() for c in text) > len(text) // 4:
            return f"<{len(value)} bytes>"
    elif isinstance(value, tuple):
        text = ", ".join(_short(v, limit) for v in value)
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def identifying(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.identifying]


def summarize(findings: list[Finding]) -> list[str]:
    """Short category names of the identifying findings, e.g. ['location', 'device / software']."""
    present = {f.category for f in findings if f.identifying}
    return [label for cat, label in CATEGORIES.items() if cat in present]


# ----------------------------------------------------------------------------- EXIF

EXIF_IFD, GPS_IFD, INTEROP_IFD = 0x8769, 0x8825, 0xA005
# Tag -> category. Anything not listed and not structural counts as camera settings.
EXIF_TAGS: dict[int, str] = {
    0x010F: "device",  # Make
    0x0110: "device",  # Model
    0x0131: "device",  # Software
    0x013C: "device",  # HostComputer
    0x013B: "person",  # Artist
    0x8298: "person",  # Copyright
    0x0132: "time",  # DateTime
    0x010E: "text",  # ImageDescription
    0x9C9B: "text",  # XPTitle
    0x9C9C: "text",  # XPComment
    0x9C9D: "person",  # XPAuthor
    0x9C9E: "text",  # XPKeywords
    0x9C9F: "text",  # XPSubject
    0xA430: "person",  # CameraOwnerName
    0xA431: "serial",  # BodySerialNumber
    0xA435: "serial",  # LensSerialNumber
    0xA420: "serial",  # ImageUniqueID
    0xA433: "device",  # LensMake
    0xA434: "device",  # LensModel
    0x9003: "time",  # DateTimeOriginal
    0x9004: "time",  # DateTimeDigitized
    0x9010: "time",  # OffsetTime
    0x9011: "time",  # OffsetTimeOriginal
    0x9012: "time",  # OffsetTimeDigitized
    0x9290: "time",  # SubSecTime
    0x9291: "time",  # SubSecTimeOriginal
    0x9292: "time",  # SubSecTimeDigitized
    0x927C: "device",  # MakerNote: vendor block with serials, settings, often previews
    0x9286: "text",  # UserComment
    0xC62F: "serial",  # CameraSerialNumber (DNG)
    0xC614: "device",  # UniqueCameraModel (DNG)
}
# TIFF layout tags: describe the pixels, not the scene.
STRUCTURAL_TAGS = {
    254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 274, 277, 278, 279, 282, 283, 284, 296, 297,
    317, 318, 319, 320, 322, 323, 324, 325, 338, 339, 340, 341, 529, 530, 531, 532, 34675,
}  # fmt: skip


def _tag_name(tag: int, gps: bool = False) -> str:
    table = ExifTags.GPSTAGS if gps else ExifTags.TAGS
    return table.get(tag, f"tag 0x{tag:04x}")


def _gps_text(gps: dict[int, Any]) -> str:
    def degrees(value: Any, ref: Any) -> float | None:
        try:
            d, m, s = (float(v) for v in value)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        sign = -1 if str(ref).strip("\x00 ").upper() in {"S", "W"} else 1
        return sign * (d + m / 60 + s / 3600)

    lat, lon = degrees(gps.get(2), gps.get(1)), degrees(gps.get(4), gps.get(3))
    if lat is not None and lon is not None:
        return f"{lat:.6f}, {lon:.6f}"
    return _short(sorted(_tag_name(t, gps=True) for t in gps))


def exif_findings(exif: Image.Exif, where: str = "EXIF", tiff: bool = False) -> list[Finding]:
    """Findings from a parsed EXIF block (or a TIFF file's first IFD when `tiff`)."""
    out: list[Finding] = []
    settings: list[str] = []
    harmless: list[str] = []
    ifds: list[tuple[str, dict[int, Any]]] = [(where, dict(exif))]
    for pointer, name in ((EXIF_IFD, "Exif IFD"), (INTEROP_IFD, "Interop IFD")):
        try:
            ifds.append((f"{where} {name}", dict(exif.get_ifd(pointer))))
        except Exception:  # noqa: BLE001 - a broken sub-IFD is reported as such below
            out.append(Finding("other", where, name, "unreadable sub-directory"))
    for place, tags in ifds:
        for tag, value in tags.items():
            if tag in (EXIF_IFD, GPS_IFD, INTEROP_IFD) or place.endswith("Interop IFD"):
                continue
            if tag in EXIF_TAGS:
                shown = f"<{len(value)} bytes>" if tag == 0x927C and isinstance(value, bytes) else _short(value)
                out.append(Finding(EXIF_TAGS[tag], place, _tag_name(tag), shown))
            elif tiff and tag in STRUCTURAL_TAGS:
                continue
            elif tag in (0x0112, 0x011A, 0x011B, 0x0128, 0x0213):
                harmless.append(_tag_name(tag))  # orientation, resolution, chroma siting
            else:
                settings.append(_tag_name(tag))
    try:
        gps = dict(exif.get_ifd(GPS_IFD))
    except Exception:  # noqa: BLE001
        gps = {1: "unreadable"}
    if gps:
        out.append(Finding("location", f"{where} GPS", "GPS position", _gps_text(gps)))
        extra = sorted(_tag_name(t, gps=True) for t in gps if t not in (1, 2, 3, 4))
        if extra:
            out.append(Finding("location", f"{where} GPS", "GPS tags", _short(", ".join(extra))))
    try:
        # In a TIFF file the next IFD is the next page (listed as a page below), not a thumbnail.
        ifd1 = {} if tiff else dict(exif.get_ifd(ExifTags.IFD.IFD1))
    except Exception:  # noqa: BLE001
        ifd1 = {}
    if ifd1:
        size = ifd1.get(0x0202) or ifd1.get(0x0117)
        detail = f"{_short(size)} bytes" if size else f"{len(ifd1)} tags"
        out.append(Finding("thumbnail", f"{where} IFD1", "thumbnail", f"{detail}: a copy of the unredacted picture"))
    if settings:
        out.append(
            Finding(
                "device",
                where,
                "camera settings",
                _short(", ".join(settings[:8]) + (f" (+{len(settings) - 8} more)" if len(settings) > 8 else "")),
            )
        )
    if harmless:
        out.append(Finding("harmless", where, "layout tags", ", ".join(harmless), identifying=False))
    return out


def _exif_from_bytes(data: bytes, where: str) -> list[Finding]:
    exif = Image.Exif()
    try:
        exif.load(data)
    except Exception as exc:  # noqa: BLE001 - unparseable EXIF is still EXIF
        return [Finding("other", where, "EXIF block", f"{len(data)} bytes, unreadable ({type(exc).__name__})")]
    found = exif_findings(exif, where)
    return found or [Finding("other", where, "EXIF block", f"{len(data)} bytes, no known tags")]


# ----------------------------------------------------------------------------- XMP, IPTC

XMP_FIELDS: dict[str, str] = {
    **dict.fromkeys(
        ["GPSLatitude", "GPSLongitude", "GPSAltitude", "City", "State", "Country", "CountryCode",
         "Location", "Sublocation", "LocationCreated", "LocationShown", "ProvinceState"], "location"),
    **dict.fromkeys(["Make", "Model", "Lens", "LensModel", "LensMake", "CreatorTool", "Software"], "device"),
    **dict.fromkeys(
        ["SerialNumber", "LensSerialNumber", "ImageUniqueID", "DocumentID", "InstanceID",
         "OriginalDocumentID", "BodySerialNumber"], "serial"),
    **dict.fromkeys(
        ["creator", "Artist", "OwnerName", "CameraOwnerName", "rights", "CaptionWriter", "Credit",
         "AuthorsPosition", "PersonInImage", "Creator"], "person"),
    **dict.fromkeys(
        ["CreateDate", "ModifyDate", "DateTimeOriginal", "DateCreated", "MetadataDate", "DateTimeDigitized"],
        "time"),
    **dict.fromkeys(["description", "title", "subject", "Headline", "Keywords", "UserComment"], "text"),
}  # fmt: skip
_XMP_ATTR = re.compile(r"\b[\w-]+:(\w+)\s*=\s*\"([^\"]*)\"")
_XMP_ELEM = re.compile(r"<([\w-]+):(\w+)(?:\s[^>]*)?>(.*?)</\1:\2>", re.S)


def xmp_findings(data: bytes | str, where: str = "XMP") -> list[Finding]:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    out = [Finding("other", where, "XMP packet", f"{len(text)} characters")]
    seen: set[str] = set()
    matches = [(m.group(1), m.group(2)) for m in _XMP_ATTR.finditer(text)]
    matches += [(m.group(2), re.sub(r"<[^>]+>", " ", m.group(3))) for m in _XMP_ELEM.finditer(text)]
    for name, value in matches:
        if name in XMP_FIELDS and name not in seen and value.strip():
            seen.add(name)
            out.append(Finding(XMP_FIELDS[name], where, name, _short(value)))
    return out


IPTC_FIELDS: dict[int, tuple[str, str]] = {
    5: ("ObjectName", "text"), 25: ("Keywords", "text"), 55: ("DateCreated", "time"),
    60: ("TimeCreated", "time"), 62: ("DigitalCreationDate", "time"), 80: ("By-line", "person"),
    85: ("By-lineTitle", "person"), 90: ("City", "location"), 92: ("Sub-location", "location"),
    95: ("Province-State", "location"), 100: ("CountryCode", "location"), 101: ("Country", "location"),
    105: ("Headline", "text"), 110: ("Credit", "person"), 115: ("Source", "person"),
    116: ("CopyrightNotice", "person"), 120: ("Caption", "text"), 122: ("Writer", "person"),
}  # fmt: skip


def iptc_findings(data: bytes, where: str = "IPTC") -> list[Finding]:
    out: list[Finding] = []
    pos = 0
    while pos + 5 <= len(data) and data[pos] == 0x1C:
        record, dataset = data[pos + 1], data[pos + 2]
        (length,) = struct.unpack(">H", data[pos + 3 : pos + 5])
        pos += 5
        if length & 0x8000:  # extended length: the next n bytes hold the length
            n = length & 0x7FFF
            length = int.from_bytes(data[pos : pos + n], "big")
            pos += n
        value = data[pos : pos + length]
        pos += length
        if record != 2 or dataset == 0:
            continue
        name, category = IPTC_FIELDS.get(dataset, (f"2:{dataset}", "other"))
        out.append(Finding(category, where, name, _short(value)))
    return out or [Finding("other", where, "IPTC block", f"{len(data)} bytes")]


def photoshop_findings(data: bytes, where: str = "Photoshop") -> list[Finding]:
    """Image resource blocks ('8BIM'): IPTC, thumbnails, EXIF and XMP copies, vendor data."""
    out: list[Finding] = []
    pos, others = 0, 0
    while pos + 12 <= len(data) and data[pos : pos + 4] == b"8BIM":
        (rid,) = struct.unpack(">H", data[pos + 4 : pos + 6])
        name_len = data[pos + 6]
        pos += 7 + name_len + ((name_len + 1) % 2)
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        block = data[pos + 4 : pos + 4 + size]
        pos += 4 + size + size % 2
        if rid == 0x0404:
            out += iptc_findings(block, f"{where} IPTC")
        elif rid in (0x0409, 0x040C):
            out.append(Finding("thumbnail", where, "thumbnail", f"{size} bytes: a copy of the picture"))
        elif rid == 0x0422:
            out += _exif_from_bytes(block, f"{where} EXIF")
        elif rid == 0x0424:
            out += xmp_findings(block, f"{where} XMP")
        else:
            others += 1
    if others or not out:
        out.append(Finding("other", where, "image resources", f"{others} other blocks"))
    return out


# ----------------------------------------------------------------------------- image formats

_ENTROPY_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")


def _trailing(n: int, data: bytes, where: str) -> list[Finding]:
    if n <= 0 or not data.strip(b"\x00\xff"):
        return []  # nothing, or padding
    kind = "an MP4 video (motion photo)" if b"ftyp" in data[:64] else "hidden data or previews"
    return [Finding("thumbnail", where, "data after the picture", f"{n} bytes: {kind}")]


def jpeg_findings(data: bytes) -> list[Finding]:
    out: list[Finding] = []
    pos = 2
    while pos + 2 <= len(data):
        if data[pos] != 0xFF:
            out.append(Finding("other", "JPEG", "structure", f"unexpected byte at offset {pos}"))
            return out
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # end of image
            end = pos + 2
            return out + _trailing(len(data) - end, data[end:], "JPEG trailer")
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        payload = data[pos + 4 : pos + 2 + length]
        pos += 2 + length
        if marker == 0xDA:  # start of scan: skip entropy-coded data to the next marker
            m = _ENTROPY_END.search(data, pos)
            pos = m.start() if m else len(data)
        elif 0xE0 <= marker <= 0xEF:
            out += _jpeg_app(marker - 0xE0, payload)
        elif marker == 0xFE:
            out.append(Finding("text", "JPEG COM", "comment", _short(payload)))
    raise ValueError("no end-of-image marker")  # truncated: cannot vouch for the rest


def _jpeg_app(n: int, payload: bytes) -> list[Finding]:
    where = f"JPEG APP{n}"
    if n == 0 and payload.startswith(b"JFIF\x00"):
        if len(payload) >= 14 and payload[12] * payload[13]:
            return [Finding("thumbnail", where, "JFIF thumbnail", f"{payload[12]}x{payload[13]} pixels")]
        return []
    if n == 0 and payload.startswith(b"JFXX\x00"):
        return [Finding("thumbnail", where, "JFXX thumbnail", f"{len(payload)} bytes")]
    if n == 1 and payload.startswith(b"Exif\x00"):
        return _exif_from_bytes(payload, "EXIF")
    if n == 1 and payload.startswith(b"http://ns.adobe.com/xap/1.0/\x00"):
        return xmp_findings(payload[29:])
    if n == 1 and payload.startswith(b"http://ns.adobe.com/xmp/extension/\x00"):
        return [Finding("other", "XMP", "extended XMP", f"{len(payload)} bytes")]
    if n == 2 and payload.startswith(b"ICC_PROFILE\x00"):
        return [Finding("harmless", where, "ICC colour profile", f"{len(payload)} bytes", identifying=False)]
    if n == 2 and payload.startswith(b"MPF\x00"):
        return [Finding("thumbnail", where, "MPF multi-picture index", "previews or extra pictures follow")]
    if n == 13 and payload.startswith(b"Photoshop 3.0\x00"):
        return photoshop_findings(payload[14:])
    if n == 14 and payload.startswith(b"Adobe"):
        return []  # colour transform flags
    ident = payload[:16].split(b"\x00")[0].decode("latin-1", "replace")
    return [Finding("other", where, "vendor segment", f"{_short(ident) or '?'}: {len(payload)} bytes")]


PNG_HARMLESS = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"bKGD",
                b"pHYs", b"hIST", b"sPLT", b"acTL", b"fcTL", b"fdAT", b"cICP", b"mDCV", b"cLLI"}  # fmt: skip
PNG_TEXT_KEYS = {"author": "person", "copyright": "person", "creation time": "time", "software": "device",
                 "source": "device", "comment": "text", "description": "text", "title": "text",
                 "disclaimer": "text", "warning": "text"}  # fmt: skip


def png_findings(data: bytes) -> list[Finding]:
    out: list[Finding] = []
    pos = 8
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        name = ctype.decode("latin-1")
        if ctype == b"IEND":
            return out + _trailing(len(data) - pos, data[pos:], "PNG trailer")
        if ctype in PNG_HARMLESS:
            continue
        if ctype == b"iCCP":
            out.append(Finding("harmless", "PNG iCCP", "ICC colour profile", f"{length} bytes", identifying=False))
        elif ctype == b"eXIf":
            out += _exif_from_bytes(body, "PNG eXIf")
        elif ctype == b"tIME":
            stamp = "{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}".format(*struct.unpack(">HBBBBB", body[:7]))
            out.append(Finding("time", "PNG tIME", "modification time", stamp))
        elif ctype in (b"tEXt", b"zTXt", b"iTXt"):
            out += _png_text(name, body)
        else:
            out.append(Finding("other", f"PNG {name}", "ancillary chunk", f"{length} bytes"))
    raise ValueError("no IEND chunk")


def _png_text(name: str, body: bytes) -> list[Finding]:
    key, _, rest = body.partition(b"\x00")
    keyword = key.decode("latin-1", "replace")
    try:
        if name == "zTXt":
            value = zlib.decompress(rest[1:]).decode("latin-1", "replace")
        elif name == "iTXt":
            compressed, rest = rest[0], rest[2:]
            _lang, _, rest = rest.partition(b"\x00")
            _tkey, _, text = rest.partition(b"\x00")
            value = (zlib.decompress(text) if compressed else text).decode("utf-8", "replace")
        else:
            value = rest.decode("latin-1", "replace")
    except (zlib.error, IndexError):
        value = f"<{len(rest)} bytes, unreadable>"
    if keyword == "XML:com.adobe.xmp":
        return xmp_findings(value, f"PNG {name} XMP")
    if keyword.lower() in ("raw profile type exif", "raw profile type app1"):
        return [Finding("other", f"PNG {name}", keyword, "EXIF stored as text")]
    category = PNG_TEXT_KEYS.get(keyword.lower(), "text")
    return [Finding(category, f"PNG {name}", keyword, _short(value))]


WEBP_HARMLESS = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF"}


def webp_findings(data: bytes) -> list[Finding]:
    out: list[Finding] = []
    pos = 12
    end = min(len(data), 8 + struct.unpack("<I", data[4:8])[0])
    while pos + 8 <= end:
        ctype, length = struct.unpack("<4sI", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 8 + length + length % 2
        if ctype in WEBP_HARMLESS:
            continue
        if ctype == b"EXIF":
            out += _exif_from_bytes(body, "WebP EXIF")
        elif ctype == b"XMP ":
            out += xmp_findings(body, "WebP XMP")
        elif ctype == b"ICCP":
            out.append(Finding("harmless", "WebP ICCP", "ICC colour profile", f"{length} bytes", identifying=False))
        else:
            out.append(Finding("other", "WebP", "chunk " + ctype.decode("latin-1"), f"{length} bytes"))
    return out + _trailing(len(data) - end, data[end:], "WebP trailer")


def pillow_findings(path: Path, tiff: bool) -> list[Finding]:
    """TIFF and any other format Pillow reads (BMP, GIF, AVIF, ...): tags and info blocks."""
    out: list[Finding] = []
    with Image.open(path) as img:
        if tiff:
            exif = img.getexif()
            out += exif_findings(exif, "TIFF", tiff=True)
            tags = getattr(img, "tag_v2", {})
            if 700 in tags:
                out += xmp_findings(bytes(tags[700]) if not isinstance(tags[700], str) else tags[700], "TIFF XMP")
            if 33723 in tags:
                raw = tags[33723]
                out += iptc_findings(raw if isinstance(raw, bytes) else bytes(raw), "TIFF IPTC")
            if 34377 in tags:
                out += photoshop_findings(bytes(tags[34377]), "TIFF Photoshop")
            if 330 in tags:
                out.append(Finding("thumbnail", "TIFF", "SubIFDs", "previews or extra pictures"))
            if 34675 in tags:
                out.append(Finding("harmless", "TIFF", "ICC colour profile", "kept", identifying=False))
        else:
            if img.info.get("exif"):  # pillow-heif sets "exif": None when there is none
                out += _exif_from_bytes(img.info["exif"], f"{img.format} EXIF")
            for key in ("xmp", "XML:com.adobe.xmp"):
                if img.info.get(key):
                    out += xmp_findings(img.info[key], f"{img.format} XMP")
            if img.info.get("comment"):
                out.append(Finding("text", f"{img.format}", "comment", _short(img.info["comment"])))
            if img.info.get("icc_profile"):
                out.append(Finding("harmless", f"{img.format}", "ICC colour profile", "kept", identifying=False))
        frames = getattr(img, "n_frames", 1)
        if frames > 1 and img.format not in ("GIF", "WEBP"):
            # Pages are content, not metadata: veil redacts and writes every page of a TIFF.
            paged = img.format == "TIFF"
            out.append(
                Finding(
                    "harmless" if paged else "thumbnail",
                    img.format or "image",
                    "extra pages",
                    f"{frames - 1} more pictures",
                    identifying=not paged,
                )
            )
    return out


# ----------------------------------------------------------------------------- video

GENERIC_HANDLERS = {"", "videohandler", "soundhandler", "datahandler", "subtitlehandler", "hint handler",
                    "video media handler", "sound media handler", "mp4 video", "mp4 audio"}  # fmt: skip
HARMLESS_TAGS = {"major_brand", "minor_version", "compatible_brands", "language", "duration", "rotate",
                 "number_of_frames", "number_of_bytes", "bps", "_statistics_tags", "filename", "mimetype"}  # fmt: skip
_MUXER = re.compile(r"^(lavf|lavc|libebml|libmatroska)[\w.\- ]*$", re.I)


def classify_tag(key: str, value: str) -> tuple[str, bool] | None:
    """Category and whether a container or stream tag identifies; None for bookkeeping tags."""
    k = key.lower()
    if k in HARMLESS_TAGS or k.startswith("duration"):
        return None
    if k == "vendor_id":
        return ("device", value not in ("FFMP", "[0][0][0][0]", ""))
    if k == "handler_name":
        return ("device", value.strip().lower() not in GENERIC_HANDLERS)
    if k in ("encoder", "_statistics_writing_app") and _MUXER.match(value.strip()):
        return ("device", False)  # the muxer veil itself uses, not the recording device
    if any(s in k for s in ("location", "gps", "iso6709", "xyz", "latitude", "longitude")):
        return ("location", True)
    if any(s in k for s in ("serial", "uuid", "identifier", "content_id")):
        return ("serial", True)
    if any(s in k for s in ("artist", "author", "copyright", "owner", "composer", "publisher", "performer",
                            "encoded_by", "creator")):  # fmt: skip
        return ("person", True)
    if any(s in k for s in ("make", "model", "manufacturer", "software", "encoder", "firmware", "camera",
                            "lens", "android", "device", "handler", "writing_app")):  # fmt: skip
        return ("device", True)
    if any(s in k for s in ("date", "time", "year")):
        return ("time", True)
    if any(s in k for s in ("title", "comment", "description", "synopsis", "keyword", "album", "lyrics", "genre")):
        return ("text", True)
    return ("other", True)


def _tag_findings(tags: dict[str, str], where: str) -> list[Finding]:
    out = []
    for key, value in tags.items():
        verdict = classify_tag(key, str(value))
        if verdict is not None:
            category, ident = verdict
            out.append(Finding(category if ident else "harmless", where, key, _short(value), ident))
    return out


def video_findings(path: Path) -> list[Finding]:
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"{path}: not an image or video veil can read") from exc
    out: list[Finding] = []
    with container:
        out += _tag_findings(dict(container.metadata), "container")
        main_video = None
        for s in container.streams:
            where = f"stream #{s.index} ({s.type})"
            attached = bool(s.disposition & av.stream.Disposition.attached_pic) if s.type == "video" else False
            if s.type == "video" and attached:
                out.append(Finding("thumbnail", where, "cover picture", "a still picture attached to the file"))
            elif s.type == "video" and main_video is None:
                main_video = s
            elif s.type == "video":
                out.append(Finding("stream", where, "extra video stream", s.codec_context.name))
            elif s.type != "audio":
                tags = dict(s.metadata)
                detail = (
                    tags.get("filename")
                    or tags.get("handler_name")
                    or (s.codec_context.name if s.codec_context else "")
                    or "unknown codec"
                )
                out.append(Finding("stream", where, f"{s.type} stream", _short(detail)))
            out += _tag_findings(dict(s.metadata), where)
        chapters = container.chapters() if hasattr(container, "chapters") else []
        if chapters:
            titles = [c.get("metadata", {}).get("title", "") for c in chapters]
            out.append(Finding("stream", "container", "chapters", _short(f"{len(chapters)}: " + ", ".join(titles))))
        if container.format.name.startswith("mov"):
            out += mp4_box_findings(path)
    return out


# Boxes FFmpeg turns into tags (reported above) or that only describe the media.
ISO_KNOWN_TOP = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"moof", b"mfra", b"sidx", b"styp",
                 b"pdin", b"prft", b"emsg", b"ssix"}  # fmt: skip
ISO_KNOWN_UDTA = {b"meta", b"hnti", b"hinf", b"name", b"tsel", b"kind"}
ISO_CONTAINERS = {b"moov", b"trak", b"udta", b"mdia", b"minf", b"stbl"}


def mp4_box_findings(path: Path) -> list[Finding]:
    """Vendor boxes FFmpeg does not expose: user data (GoPro firmware/serial, Samsung, Sony XML)
    and top-level uuid/unknown boxes, e.g. a trailer a phone app appended."""
    out: list[Finding] = []
    with open(path, "rb") as fh:
        size_total = fh.seek(0, 2)

        def walk(start: int, end: int, parent: bytes, depth: int) -> None:
            pos = start
            while pos + 8 <= end and depth < 6:
                fh.seek(pos)
                header = fh.read(16)
                size, btype = struct.unpack(">I4s", header[:8])
                head = 8
                if size == 1 and len(header) >= 16:
                    size, head = struct.unpack(">Q", header[8:16])[0], 16
                elif size == 0:
                    size = end - pos
                if size < head:
                    return
                name = btype.decode("latin-1")
                if parent == b"" and btype not in ISO_KNOWN_TOP:
                    out.append(Finding("other", "MP4 box", name, f"{size} bytes of vendor data"))
                elif parent == b"udta" and btype not in ISO_KNOWN_UDTA and not btype.startswith(b"\xa9"):
                    out.append(Finding("other", "MP4 user data", name, f"{size} bytes"))
                elif parent != b"" and btype == b"uuid":
                    out.append(Finding("other", f"MP4 {parent.decode('latin-1')}", "uuid box", f"{size} bytes"))
                if btype in ISO_CONTAINERS:
                    walk(pos + head, min(end, pos + size), btype, depth + 1)
                pos += size

        walk(0, size_total, b"", 0)
    return out


# ----------------------------------------------------------------------------- dispatch


def inspect_file(path: Path) -> list[Finding]:
    """Everything found in `path`'s metadata. Raises MediaError if it is not a readable file."""
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
            # Still images are parsed whole (photos are small); videos are never read whole.
            parsers = {b"\xff\xd8\xff": jpeg_findings, b"\x89PNG\r\n\x1a\n": png_findings}
            for magic, parser in parsers.items():
                if head.startswith(magic):
                    return parser(head + fh.read())
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return webp_findings(head + fh.read())
    except OSError as exc:
        raise MediaError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (struct.error, IndexError, ValueError) as exc:
        raise MediaError(f"{path}: corrupt or truncated file ({type(exc).__name__})") from exc
    try:
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            return pillow_findings(path, tiff=True)
        is_iso = head[4:8] == b"ftyp"
        if not is_iso or head[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1"):
            try:
                return pillow_findings(path, tiff=False)
            except (UnidentifiedImageError, OSError) as exc:
                if not is_iso and not _looks_like_video(path):
                    raise MediaError(f"{path}: not an image or video veil can read") from exc
        return video_findings(path)
    except (struct.error, IndexError, ValueError, SyntaxError) as exc:
        raise MediaError(f"{path}: corrupt or truncated file ({type(exc).__name__})") from exc


def _looks_like_video(path: Path) -> bool:
    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            return bool(c.streams)
    except Exception:  # noqa: BLE001
        return False


# ----------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="veil inspect",
        description="List metadata that could identify a person, place, time or device.",
        epilog="exit codes: 0 nothing identifying, 1 identifying metadata found, 2 a file could not be read.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", type=Path)
    p.add_argument("--json", action="store_true", help="print JSON (one object per file)")
    p.add_argument("--all", action="store_true", help="also list metadata that is not identifying")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    found_any, failed = False, False
    results = []
    for path in args.files:
        try:
            findings = inspect_file(path)
        except MediaError as exc:
            failed = True
            results.append({"file": str(path), "error": str(exc)})
            if not args.json:
                print(f"veil: error: {exc}", file=sys.stderr)
            continue
        ident = identifying(findings)
        found_any |= bool(ident)
        results.append(
            {
                "file": str(path),
                "identifying": bool(ident),
                "categories": summarize(findings),
                "findings": [f.to_dict() for f in (findings if args.all else ident)],
            }
        )
        if not args.json:
            print(format_findings(path, findings, args.all))
    if args.json:
        print(json.dumps(results, indent=1, ensure_ascii=False))
    return 2 if failed else 1 if found_any else 0


def format_findings(path: Path | str, findings: list[Finding], show_all: bool = False) -> str:
    ident = identifying(findings)
    shown = findings if show_all else ident
    head = f"{path}: " + (
        f"{len(ident)} identifying item{'s' * (len(ident) != 1)} ({', '.join(summarize(findings))})"
        if ident
        else "nothing identifying found"
    )
    order = list(CATEGORIES)
    rows = sorted(shown, key=lambda f: (order.index(f.category), f.where))
    lines = [head]
    w_where = max((len(f.where) for f in rows), default=0)
    w_key = max((len(f.key) for f in rows), default=0)
    for f in rows:
        mark = " " if f.identifying else "-"
        lines.append(f" {mark} {CATEGORIES[f.category]:<19} {f.where:<{w_where}}  {f.key:<{w_key}}  {f.value}")
    if not show_all and len(findings) > len(ident):
        kept = sorted({f.key for f in findings if not f.identifying})
        lines.append(f"   (not identifying, kept: {', '.join(kept)}; --all lists them)")
    return "\n".join(lines)

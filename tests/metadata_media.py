"""Test inputs that carry identifying metadata, made here (no fixtures on disk), plus an
independent check with exiftool."""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import piexif
import pytest
from conftest import SAMPLE_IMAGE
from PIL import Image, PngImagePlugin

OWNER = "Jane Q. Witness"
SERIAL = "F2LXK9ABCD77"
LAT, LON = 48.858325, 2.2945

needs_exiftool = pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool absent (make sysdeps)")


def _dms(value: float) -> tuple[tuple[int, int], ...]:
    d = int(value)
    m = int((value - d) * 60)
    s = round(((value - d) * 60 - m) * 60 * 100)
    return ((d, 1), (m, 1), (s, 100))


def phone_exif(orientation: int = 1, thumbnail: bool = True) -> bytes:
    thumb = io.BytesIO()
    Image.open(SAMPLE_IMAGE).convert("RGB").resize((160, 120)).save(thumb, "JPEG")
    data: dict[str, Any] = {
        "0th": {
            piexif.ImageIFD.Make: b"Apple",
            piexif.ImageIFD.Model: b"iPhone 15 Pro",
            piexif.ImageIFD.Software: b"17.4.1",
            piexif.ImageIFD.Orientation: orientation,
            piexif.ImageIFD.DateTime: b"2024:05:01 10:00:00",
        },
        "Exif": {
            piexif.ExifIFD.BodySerialNumber: SERIAL.encode(),
            piexif.ExifIFD.CameraOwnerName: OWNER.encode(),
            piexif.ExifIFD.DateTimeOriginal: b"2024:05:01 10:00:00",
            piexif.ExifIFD.LensModel: b"iPhone 15 Pro back triple camera 6.86mm f/1.78",
            piexif.ExifIFD.MakerNote: b"Apple iOS\x00\x00\x01MM" + bytes(range(200)),
            piexif.ExifIFD.FNumber: (178, 100),
        },
        "GPS": {
            piexif.GPSIFD.GPSLatitudeRef: b"N",
            piexif.GPSIFD.GPSLatitude: _dms(LAT),
            piexif.GPSIFD.GPSLongitudeRef: b"E",
            piexif.GPSIFD.GPSLongitude: _dms(LON),
        },
    }
    if thumbnail:
        data["1st"] = {piexif.ImageIFD.JPEGInterchangeFormat: 0, piexif.ImageIFD.JPEGInterchangeFormatLength: 0}
        data["thumbnail"] = thumb.getvalue()
    return piexif.dump(data)


XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:exif="http://ns.adobe.com/exif/1.0/"'
    ' xmlns:xmp="http://ns.adobe.com/xap/1.0/" exif:GPSLatitude="48,51.4995N" xmp:CreateDate="2024-05-01T10:00:00"'
    f' xmp:CreatorTool="iPhone 15 Pro"><dc:creator><rdf:Seq><rdf:li>{OWNER}</rdf:li></rdf:Seq></dc:creator>'
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
)


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _iptc() -> bytes:
    def ds(n: int, value: bytes) -> bytes:
        return b"\x1c\x02" + bytes([n]) + struct.pack(">H", len(value)) + value

    iptc = ds(80, OWNER.encode()) + ds(90, b"Paris") + ds(120, b"Protest at the square")
    block = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc + b"\x00" * (len(iptc) % 2)
    return b"Photoshop 3.0\x00" + block


def make_phone_jpeg(path: Path, size: tuple[int, int] = (512, 512), orientation: int = 1, extras: bool = True) -> Path:
    """A JPEG like a phone's: EXIF with GPS, make/model, serial, owner, maker note, thumbnail;
    with `extras` also XMP, IPTC, a comment and an MP4 'motion photo' appended after the picture."""
    img = Image.open(SAMPLE_IMAGE).convert("RGB").resize(size)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, exif=phone_exif(orientation), comment=f"Photo of {OWNER}".encode())
    data = buf.getvalue()
    if extras:
        xmp = _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + XMP.encode())
        data = data[:2] + xmp + _segment(0xED, _iptc()) + data[2:]
        data += b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
    path.write_bytes(data)
    return path


def make_png_with_text(path: Path) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", OWNER)
    info.add_text("Comment", "taken at 12 Rue Example")
    info.add_itxt("Description", "Witness statement photo", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP)
    info.add(b"tIME", struct.pack(">HBBBBB", 2024, 5, 1, 10, 0, 0))
    Image.open(SAMPLE_IMAGE).convert("RGB").save(path, "PNG", pnginfo=info, exif=phone_exif(thumbnail=False))
    return path


def make_webp_with_metadata(path: Path) -> Path:
    Image.open(SAMPLE_IMAGE).convert("RGB").save(path, "WEBP", exif=phone_exif(thumbnail=False), xmp=XMP.encode())
    return path


PHONE_TAGS = {
    "location": "+48.8583+002.2945/",
    "com.apple.quicktime.location.ISO6709": "+48.8583+002.2945+035.000/",
    "com.apple.quicktime.make": "Apple",
    "com.apple.quicktime.model": "iPhone 15 Pro",
    "com.apple.quicktime.software": "17.4.1",
    "com.apple.quicktime.creationdate": "2024-05-01T12:00:00+0200",
    "creation_time": "2024-05-01T10:00:00.000000Z",
    "make": "Apple",
    "model": "iPhone 15 Pro",
    "artist": OWNER,
    "title": f"{OWNER} at the square",
}


def make_phone_video(path: Path, frames: int = 12, data_stream: bool = True, attachment: bool = False) -> Path:
    """An MP4/MOV/MKV with a phone's container tags, device handler names, a creation time on
    the streams, chapters, an audio track, and a data stream (MP4: a GPS-track-like stream)
    or an attachment (MKV)."""
    is_mov = path.suffix.lower() in (".mp4", ".mov")
    options = {"movflags": "use_metadata_tags"} if is_mov else {}
    photo = np.asarray(Image.open(SAMPLE_IMAGE).convert("RGB").resize((96, 96)))
    with av.open(str(path), "w", options=options) as c:
        c.metadata.update(PHONE_TAGS)
        v = c.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 160, 128, "yuv420p"
        v.metadata.update({"handler_name": "Core Media Video", "creation_time": PHONE_TAGS["creation_time"],
                           "encoder": "H.264 (iPhone 15 Pro)"})  # fmt: skip
        a = c.add_stream("aac", rate=44100)
        a.layout = "mono"
        a.metadata.update({"handler_name": "Core Media Audio", "creation_time": PHONE_TAGS["creation_time"]})
        d = c.add_data_stream("bin_data") if data_stream and path.suffix.lower() == ".mp4" else None
        if d is not None:
            d.metadata["handler_name"] = "GoPro MET"
        if attachment:
            c.add_attachment("owner.txt", "text/plain", f"{OWNER} {SERIAL}".encode())
        c.set_chapters([{"id": 1, "start": 0, "end": frames, "time_base": Fraction(1, 10),
                         "metadata": {"title": f"At the home of {OWNER}"}}])  # fmt: skip
        for i in range(frames):
            img = np.full((128, 160, 3), 50, np.uint8)
            img[16:112, 30:126] = photo
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 10)
            for p in v.encode(vf):
                c.mux(p)
            if d is not None:
                pk = av.Packet(f"GPS5 {LAT:.6f} {LON:.6f} {i}".encode())
                pk.stream, pk.pts, pk.dts, pk.time_base = d, i, i, Fraction(1, 10)
                c.mux(pk)
        for p in v.encode(None):
            c.mux(p)
        n = 44100 * frames // 10
        pcm = (np.sin(np.arange(n) * 0.06) * 3000).astype(np.int16)
        for start in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(pcm[start : start + 1024].reshape(1, -1), format="s16", layout="mono")
            af.sample_rate, af.pts, af.time_base = 44100, start, Fraction(1, 44100)
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    return path


# ----------------------------------------------------------------------------- exiftool

# Groups that only describe the file's layout and pixels.
NEUTRAL_GROUPS = {"ExifTool", "System", "File", "Composite", "JFIF", "PNG", "RIFF", "Matroska", "QuickTime",
                  "ICC_Profile", "ICC-header", "ICC-view", "ICC-meas"}  # fmt: skip
IDENTIFYING_NAME = re.compile(
    r"GPS|Serial|^Make$|Model|Owner|Artist|Author|Creator|Copyright|Comment|Thumbnail|Preview|DateTimeOriginal|"
    r"CreationDate|ContentCreateDate|Location|Software|^Encoder$|Title|Description|Keywords|MakerNote|"
    r"CreateDate|ModifyDate|HandlerDescription|Attachment|Chapter|By-line|City|Caption|Text|Warning",
    re.I,
)
ZERO_DATE = re.compile(r"^0000:00:00 00:00:00")
GENERIC = {"VideoHandler", "SoundHandler", "DataHandler", "Lavf", "", "0", "0 s"}


def exiftool_tags(path: Path) -> dict[str, Any]:
    out = subprocess.run(["exiftool", "-j", "-a", "-G1", "-ee", str(path)], capture_output=True, text=True,
                         timeout=60, check=True).stdout  # fmt: skip
    return json.loads(out)[0]


def exiftool_identifying(path: Path) -> dict[str, Any]:
    """Tags exiftool finds that could identify: any tag in a metadata group (EXIF, XMP, IPTC,
    maker notes, GPS, ...), or an identifying-looking name with a real value anywhere."""
    found = {}
    for key, value in exiftool_tags(path).items():
        group, _, name = key.rpartition(":")
        if key == "SourceFile" or group in ("ExifTool", "System") or group.startswith("ICC"):
            continue  # the tool, the file system, the colour profile (kept on purpose)
        text = str(value).strip()
        neutral = group in NEUTRAL_GROUPS or re.fullmatch(r"Track\d+", group)
        real_value = text not in GENERIC and not ZERO_DATE.match(text)
        if not neutral or (IDENTIFYING_NAME.search(name) and real_value):
            found[key] = value
    return found

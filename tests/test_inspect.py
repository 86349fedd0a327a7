"""`veil inspect` finds identifying metadata in images and videos, and says so in its exit code."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
from conftest import SAMPLE_IMAGE, run_cli
from metadata_media import (
    LAT,
    LON,
    OWNER,
    SERIAL,
    exiftool_identifying,
    make_phone_jpeg,
    make_phone_video,
    make_png_with_text,
    make_webp_with_metadata,
    needs_exiftool,
)
from PIL import Image

from veil.media.inspect import inspect_file, main, summarize


def keys(path: Path) -> set[str]:
    return {f.key for f in inspect_file(path) if f.identifying}


def test_phone_jpeg_everything_is_found(tmp_path: Path) -> None:
    path = make_phone_jpeg(tmp_path / "phone.jpg")
    findings = inspect_file(path)
    found = {f.key: f.value for f in findings if f.identifying}
    assert found["GPS position"] == f"{LAT:.6f}, {LON:.6f}"
    assert found["BodySerialNumber"] == SERIAL
    assert found["CameraOwnerName"] == OWNER
    assert found["Make"] == "Apple" and found["Model"] == "iPhone 15 Pro"
    assert "thumbnail" in found and "MakerNote" in found and "comment" in found
    assert "By-line" in found and "City" in found  # IPTC
    assert "XMP packet" in found and "CreatorTool" in found
    assert "motion photo" in found["data after the picture"]
    assert set(summarize(findings)) >= {"location", "person / owner", "serial / unique id", "device / software",
                                        "date / time", "embedded picture", "free text"}  # fmt: skip


def test_png_and_webp_chunks_are_found(tmp_path: Path) -> None:
    png = keys(make_png_with_text(tmp_path / "a.png"))
    assert {"Author", "Comment", "Description", "modification time", "XMP packet", "GPS position"} <= png
    webp = keys(make_webp_with_metadata(tmp_path / "a.webp"))
    assert {"GPS position", "BodySerialNumber", "XMP packet"} <= webp


def test_clean_files_have_nothing_identifying(tmp_path: Path) -> None:
    img = Image.open(SAMPLE_IMAGE).convert("RGB")
    for ext in ("jpg", "png", "webp", "tif"):
        img.save(tmp_path / f"clean.{ext}")
        assert keys(tmp_path / f"clean.{ext}") == set(), ext
    assert main([str(tmp_path / "clean.jpg")]) == 0


def test_phone_video_tags_streams_and_chapters_are_found(tmp_path: Path) -> None:
    mp4 = inspect_file(make_phone_video(tmp_path / "v.mp4"))
    by_key = {(f.where, f.key): f for f in mp4 if f.identifying}
    assert ("container", "com.apple.quicktime.location.ISO6709") in by_key
    assert by_key[("container", "location")].category == "location"
    assert by_key[("container", "creation_time")].category == "time"
    assert by_key[("container", "com.apple.quicktime.model")].value == "iPhone 15 Pro"
    assert by_key[("stream #0 (video)", "handler_name")].value == "Core Media Video"
    assert any(f.key == "data stream" and "GoPro" in f.value for f in mp4)
    assert any(f.key == "chapters" and OWNER in f.value for f in mp4)
    mkv = inspect_file(make_phone_video(tmp_path / "v.mkv", attachment=True))
    assert any(f.key == "attachment stream" and f.value == "owner.txt" for f in mkv)
    assert {"location", "device / software", "date / time", "extra stream"} <= set(summarize(mkv))


def test_generic_muxer_names_are_not_identifying(tmp_path: Path) -> None:
    path = tmp_path / "plain.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=5)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    findings = inspect_file(path)
    assert findings and not [f for f in findings if f.identifying]  # encoder 'Lavf..', 'VideoHandler'


def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    phone = make_phone_jpeg(tmp_path / "phone.jpg")
    clean = tmp_path / "clean.png"
    Image.open(SAMPLE_IMAGE).save(clean)
    proc = run_cli("inspect", phone, clean)
    assert proc.returncode == 1
    assert "GPS position" in proc.stdout and "clean.png: nothing identifying" in proc.stdout
    proc = run_cli("inspect", "--json", phone)
    data = json.loads(proc.stdout)
    assert data[0]["identifying"] is True and "location" in data[0]["categories"]
    assert run_cli("inspect", clean).returncode == 0
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe1\x00")
    proc = run_cli("inspect", broken, tmp_path / "missing.jpg")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("veil: error:")]
    assert len(lines) == 2 and "Traceback" not in proc.stderr


@needs_exiftool
def test_inspect_agrees_with_exiftool_on_inputs(tmp_path: Path) -> None:
    """The test inputs really carry what they claim (checked by an independent reader)."""
    tags = exiftool_identifying(make_phone_jpeg(tmp_path / "phone.jpg"))
    assert "GPS:GPSLatitude" in tags and "ExifIFD:SerialNumber" in tags and "IFD1:ThumbnailImage" in tags
    assert any(k.startswith("XMP") for k in tags) and any(k.startswith("IPTC") for k in tags)
    video = exiftool_identifying(make_phone_video(tmp_path / "v.mp4"))
    assert "Keys:GPSCoordinates" in video and "Keys:Model" in video

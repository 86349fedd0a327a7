"""After veil, nothing identifying is left in the file: checked by `veil inspect` and by exiftool."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import pytest
from conftest import rgb
from metadata_media import (
    LAT,
    OWNER,
    SERIAL,
    exiftool_identifying,
    make_phone_jpeg,
    make_phone_video,
    make_png_with_text,
    make_webp_with_metadata,
    needs_exiftool,
    phone_exif,
)
from PIL import ExifTags, Image

from veil.cli import main
from veil.media.inspect import identifying, inspect_file
from veil.media.metadata import kept_exif
from veil.runners import pipeline as pipeline_module


@pytest.fixture(scope="module")
def veiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One veil run over every kind of input; returns output paths by name (plus the report)."""
    src = tmp_path_factory.mktemp("in")
    out = tmp_path_factory.mktemp("out")
    inputs = [
        make_phone_jpeg(src / "phone.jpg", size=(400, 300), orientation=6),
        make_png_with_text(src / "text.png"),
        make_webp_with_metadata(src / "meta.webp"),
        make_phone_video(src / "phone.mp4"),
        make_phone_video(src / "phone.mov"),
        make_phone_video(src / "attach.mkv", attachment=True),
    ]
    report = out / "report.json"
    assert main([*map(str, inputs), "-o", str(out), "--report", str(report), "-q"]) == 0
    return {p.name: out / p.name for p in inputs} | {"report": report, "src": src}


NAMES = ["phone.jpg", "text.png", "meta.webp", "phone.mp4", "phone.mov", "attach.mkv"]


@pytest.mark.parametrize("name", NAMES)
def test_inspect_finds_nothing_identifying_after_veil(veiled: dict[str, Path], name: str) -> None:
    assert identifying(inspect_file(veiled["src"] / name))  # the input did carry some
    assert identifying(inspect_file(veiled[name])) == []
    assert main(["inspect", str(veiled[name])]) == 0


@needs_exiftool
@pytest.mark.parametrize("name", NAMES)
def test_exiftool_finds_nothing_identifying_after_veil(veiled: dict[str, Path], name: str) -> None:
    assert exiftool_identifying(veiled["src"] / name)
    assert exiftool_identifying(veiled[name]) == {}


def test_orientation_is_applied_to_the_pixels(veiled: dict[str, Path]) -> None:
    out = Image.open(veiled["phone.jpg"])
    assert out.size == (300, 400)  # stored 400x300 with "rotate 90": shown upright, no tag needed
    assert not out.getexif()


def test_video_keeps_only_picture_and_sound(veiled: dict[str, Path]) -> None:
    for name in ("phone.mp4", "phone.mov", "attach.mkv"):
        with av.open(str(veiled[name])) as c:
            assert [s.type for s in c.streams] == ["video", "audio"], name
            assert c.chapters() == []
            assert not {k for k in c.metadata if k.lower() not in ("major_brand", "minor_version",
                                                                    "compatible_brands", "encoder")}  # fmt: skip
            for s in c.streams:
                assert "creation_time" not in s.metadata
                assert s.metadata.get("handler_name", "VideoHandler") in ("VideoHandler", "SoundHandler")


def test_report_records_what_was_removed_without_the_values(veiled: dict[str, Path]) -> None:
    text = veiled["report"].read_text()
    report = json.loads(text)
    files = {Path(f["input"]).name: f for f in report["files"]}
    jpeg = files["phone.jpg"]["metadata"]
    removed = {(r["category"], r["key"]) for r in jpeg["removed"]}
    assert {("location", "GPS position"), ("serial", "BodySerialNumber"), ("thumbnail", "thumbnail")} <= removed
    assert jpeg["left_in_output"] == []
    mp4 = {(r["where"], r["key"]) for r in files["phone.mp4"]["metadata"]["removed"]}
    assert ("container", "com.apple.quicktime.location.ISO6709") in mp4
    assert any(k == "data stream" for _, k in mp4)
    # The audit record must not itself leak what was stripped.
    assert OWNER not in text and SERIAL not in text and f"{LAT:.4f}" not in text
    for f in report["files"]:
        assert f["output_sha256"] == hashlib.sha256(Path(f["output"]).read_bytes()).hexdigest()
        assert f["input_sha256"] == hashlib.sha256(Path(f["input"]).read_bytes()).hexdigest()
        assert set(f["timings"]) >= {"total_s", "detect_s"} and "_thumbnails" not in f
    assert report["veil_version"] and report["settings"]["detectors"][0]["settings"]


def test_keep_metadata_keeps_exif_but_never_pixels(tmp_path: Path) -> None:
    src = make_phone_jpeg(tmp_path / "phone.jpg", size=(400, 300), orientation=6, extras=False)
    out = tmp_path / "kept.jpg"
    report = tmp_path / "r.json"
    assert main([str(src), "-o", str(out), "--keep-metadata", "--report", str(report), "-q"]) == 0
    found = {f.key: f.value for f in identifying(inspect_file(out))}
    assert found["BodySerialNumber"] == SERIAL and "GPS position" in found
    assert "thumbnail" not in found and "MakerNote" not in found  # both can hold the unredacted picture
    img = Image.open(out)
    assert img.size == (300, 400) and img.getexif().get(0x0112) == 1  # not turned a second time
    meta = json.loads(report.read_text())["files"][0]["metadata"]
    assert "location" in meta["kept_on_request"] and meta["left_in_output"]


def test_kept_exif_drops_thumbnail_and_maker_note_and_resets_orientation() -> None:
    raw = phone_exif(orientation=6)
    kept = Image.Exif()
    kept.load(kept_exif(raw))
    assert kept[0x0112] == 1 and kept[0x010F] == "Apple"
    assert 0x927C not in kept.get_ifd(0x8769) and kept.get_ifd(0x8769)[0xA431] == SERIAL
    assert kept.get_ifd(0x8825) and not kept.get_ifd(ExifTags.IFD.IFD1)
    assert kept_exif(None) is None


def test_output_with_identifying_metadata_is_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: if a sink bug let EXIF through, the check refuses the file."""
    src = make_phone_jpeg(tmp_path / "phone.jpg", extras=False)
    raw = Image.open(src).info["exif"]
    original = pipeline_module.write_image

    def leaky(path: Path, image, exif=None):  # type: ignore[no-untyped-def]
        original(path, image, raw)

    monkeypatch.setattr(pipeline_module, "write_image", leaky)
    out = tmp_path / "out.jpg"
    assert main([str(src), "-o", str(out), "-q"]) == 1
    assert not out.exists()
    assert not list(tmp_path.glob(".*veil-tmp*"))


def test_pixels_of_clean_image_unchanged_outside_faces(tmp_path: Path) -> None:
    """Stripping metadata must not alter the picture beyond the masks (PNG is lossless)."""
    src = make_png_with_text(tmp_path / "t.png")
    out = tmp_path / "o.png"
    assert main([str(src), "-o", str(out), "-q"]) == 0
    before, after = rgb(src), rgb(out)
    assert before.shape == after.shape
    assert (before != after).any(axis=-1).mean() < 0.2

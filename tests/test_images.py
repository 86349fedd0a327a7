"""End to end on images: faces end up covered, everything else is left alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    SAMPLE_FACE,
    SAMPLE_IMAGE,
    SHARED,
    covered_fraction,
    load_annotations,
    needs_shared,
    report_frames,
    rgb,
    run_cli,
)
from PIL import Image

from veil.cli import main


def test_sample_face_is_covered_with_solid_black(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    assert main([str(SAMPLE_IMAGE), "-o", str(out), "-q"]) == 0
    before, after = rgb(SAMPLE_IMAGE), rgb(out)
    x, y, w, h = SAMPLE_FACE
    assert (after[y : y + h, x : x + w] == 0).all()
    assert covered_fraction(before, after, SAMPLE_FACE) > 0.99


def test_default_output_name_beside_input(tmp_path: Path) -> None:
    src = tmp_path / "photo.jpg"
    Image.open(SAMPLE_IMAGE).convert("RGB").save(src, quality=95)
    assert main([str(src), "-q"]) == 0
    assert (tmp_path / "photo_veiled.jpg").is_file()
    assert Image.open(tmp_path / "photo_veiled.jpg").format == "JPEG"


def test_output_format_follows_extension(tmp_path: Path) -> None:
    src = tmp_path / "photo.jpg"
    Image.open(SAMPLE_IMAGE).convert("RGB").save(src, quality=95)
    for ext, fmt in [(".png", "PNG"), (".webp", "WEBP"), (".tiff", "TIFF"), (".bmp", "BMP")]:
        out = tmp_path / f"out{ext}"
        assert main([str(src), "-o", str(out), "-q"]) == 0
        assert Image.open(out).format == fmt


@pytest.mark.parametrize("mask", ["blur", "pixelate"])
def test_weaker_masks_change_the_face_but_not_to_a_flat_fill(tmp_path: Path, mask: str) -> None:
    out = tmp_path / "out.png"
    assert main([str(SAMPLE_IMAGE), "-o", str(out), "--mask", mask, "-q"]) == 0
    before, after = rgb(SAMPLE_IMAGE), rgb(out)
    x, y, w, h = SAMPLE_FACE
    face = after[y : y + h, x : x + w].astype(int)
    assert covered_fraction(before, after, SAMPLE_FACE) > 0.9
    assert face.std() > 1  # not a solid fill
    # Far less detail than the original: high-frequency energy mostly gone.
    orig = before[y : y + h, x : x + w].astype(int)
    assert np.abs(np.diff(face, axis=1)).mean() < 0.5 * np.abs(np.diff(orig, axis=1)).mean()


def test_mask_color_and_margin(tmp_path: Path) -> None:
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    assert main([str(SAMPLE_IMAGE), "-o", str(small), "--margin", "0", "--mask-color", "#ff0000", "-q"]) == 0
    assert main([str(SAMPLE_IMAGE), "-o", str(large), "--margin", "0.5", "--mask-color", "255,0,0", "-q"]) == 0
    red_small = (rgb(small) == [255, 0, 0]).all(axis=-1).sum()
    red_large = (rgb(large) == [255, 0, 0]).all(axis=-1).sum()
    assert red_small > 0
    assert red_large > 1.8 * red_small


def test_exif_orientation_is_applied_to_pixels(tmp_path: Path) -> None:
    src = tmp_path / "rotated.jpg"
    img = Image.open(SAMPLE_IMAGE).convert("RGB").rotate(90, expand=True)  # face lies on its side
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90 degrees anticlockwise: viewers turn it clockwise
    img.save(src, exif=exif.tobytes(), quality=95)
    out = tmp_path / "out.png"
    assert main([str(src), "-o", str(out), "-q"]) == 0
    result = Image.open(out)
    assert result.getexif().get(0x0112) is None
    after = np.asarray(result.convert("RGB"))
    x, y, w, h = SAMPLE_FACE
    # Upright again, and the face (at its upright position) is covered.
    assert after.shape[:2] == (512, 512)
    assert (after[y : y + h, x : x + w] == 0).mean() > 0.99


def test_transparent_png_keeps_alpha_and_mask_is_opaque(tmp_path: Path) -> None:
    src = tmp_path / "alpha.png"
    rgba = np.dstack([rgb(SAMPLE_IMAGE), np.full((512, 512), 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(src)
    out = tmp_path / "out.png"
    assert main([str(src), "-o", str(out), "-q"]) == 0
    result = np.asarray(Image.open(out))
    assert result.shape[2] == 4
    x, y, w, h = SAMPLE_FACE
    assert (result[y : y + h, x : x + w, 3] == 255).all()
    assert (result[:20, :20, 3] == 200).all()


def test_report_lists_hashes_settings_and_boxes(tmp_path: Path) -> None:
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    assert main([str(SAMPLE_IMAGE), "-o", str(out), "--report", str(report), "-q"]) == 0
    data = json.loads(report.read_text())
    entry = data["files"][0]
    import hashlib

    assert entry["input_sha256"] == hashlib.sha256(SAMPLE_IMAGE.read_bytes()).hexdigest()
    assert entry["output_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert entry["frames_processed"] == 1
    assert data["settings"]["detectors"][0]["name"] == "ensemble"
    assert data["settings"]["mask"]["name"] == "solid"
    boxes = report_frames(entry)[0]["boxes"]
    assert len(boxes) >= 1
    x1, y1, x2, y2 = boxes[0]["mask"]
    x, y, w, h = SAMPLE_FACE
    assert x1 <= x and y1 <= y and x2 >= x + w and y2 >= y + h


@needs_shared
def test_annotated_faces_are_covered_and_the_rest_untouched(tmp_path: Path) -> None:
    """Real photos (WIDER FACE, dlib examples): large faces all covered, most small ones too,
    and outside the painted boxes not a single pixel changes (solid mask, PNG)."""
    entries = load_annotations()
    src_dir, out_dir = tmp_path / "in", tmp_path / "out"
    src_dir.mkdir()
    for e in entries:
        Image.open(SHARED / e["image"]).convert("RGB").save(src_dir / (Path(e["image"]).stem + ".png"))
    report = tmp_path / "r.json"
    proc = run_cli(src_dir, "-o", out_dir, "--report", report, "-q")
    assert proc.returncode == 0, proc.stderr
    records = {Path(f["input"]).stem: f for f in json.loads(report.read_text())["files"]}
    covered = {"16-64": [0, 0], ">=64": [0, 0]}
    for e in entries:
        stem = Path(e["image"]).stem
        before, after = rgb(src_dir / f"{stem}.png"), rgb(out_dir / f"{stem}.png")
        for box in e["boxes"]:
            h = box[3]
            if h < 16:
                continue
            bucket = ">=64" if h >= 64 else "16-64"
            covered[bucket][1] += 1
            covered[bucket][0] += covered_fraction(before, after, box) >= 0.7
        untouched = np.ones(before.shape[:2], bool)
        for frame in report_frames(records[stem]):
            for b in frame["boxes"]:
                x1, y1, x2, y2 = b["mask"]
                untouched[y1:y2, x1:x2] = False
        assert (before[untouched] == after[untouched]).all(), stem
    assert covered[">=64"][0] / covered[">=64"][1] >= 0.9, covered
    assert covered["16-64"][0] / covered["16-64"][1] >= 0.85, covered


def test_solid_fill_paints_exactly_its_box() -> None:
    """The solid mask fills a box through OpenCV on a contiguous RGB frame and through numpy on
    anything else (a strided view, 16-bit pages): the same pixels either way, the box's and no
    other, and nothing for an empty box."""
    from veil.render.masks import create as create_mask

    mask = create_mask("solid", color="10,200,30")
    rng = np.random.default_rng(7)
    for box in [(0, 0, 1, 1), (5, 7, 40, 33), (60, 40, 64, 48), (0, 0, 64, 48), (10, 10, 10, 20), (30, 5, 20, 9)]:
        image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        expected = image.copy()
        x1, y1, x2, y2 = box
        expected[y1:y2, x1:x2] = (10, 200, 30)
        contiguous = image.copy()
        mask.apply(contiguous, box)
        np.testing.assert_array_equal(contiguous, expected)
        wide = np.zeros((48, 128, 3), np.uint8)
        wide[:, ::2] = image  # a strided view: numpy's path
        view = wide[:, ::2]
        assert not view.flags.c_contiguous
        mask.apply(view, box)
        np.testing.assert_array_equal(view, expected)

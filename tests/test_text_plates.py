"""Text and licence-plate detectors: real network runs on images the tests draw themselves, and
on the CCPD plates of ../shared/data (skipped when that folder is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from veil.analysis.boxes import tiles
from veil.analysis.detectors import create
from veil.analysis.detectors.plates import PlateDetector, join_lines
from veil.analysis.detectors.text import TextDetector, TextRegions, db_postprocess
from veil.types import Detections

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_plates = pytest.mark.skipif(not (SHARED / "plates.json").is_file(), reason="../shared/data absent")


@pytest.fixture(scope="module")
def text() -> TextDetector:
    return TextDetector()


@pytest.fixture(scope="module")
def plates(text: TextDetector) -> PlateDetector:
    return PlateDetector(text_detector=text)


def coverage(found: Detections, box: tuple[float, float, float, float], shape: tuple[int, ...]) -> float:
    """Share of the pixels of `box` (x, y, w, h) inside the union of the found boxes."""
    covered = np.zeros(shape[:2], dtype=bool)
    for x1, y1, x2, y2 in found.xyxy:
        covered[int(np.floor(y1)) : int(np.ceil(y2)), int(np.floor(x1)) : int(np.ceil(x2))] = True
    x, y, w, h = (round(v) for v in box)
    return float(covered[y : y + h, x : x + w].mean())


def scene(seed: int = 0, size: tuple[int, int] = (960, 540), keep_clear: tuple[int, ...] = ()) -> np.ndarray:
    """A textureless "street": a vertical gradient, sensor noise and a few coloured blocks,
    none of them inside `keep_clear` (x1, y1, x2, y2) so they do not touch the car."""
    rng = np.random.default_rng(seed)
    w, h = size
    img = np.repeat(np.linspace(80, 170, h, dtype=np.float32)[:, None, None], w, axis=1).repeat(3, axis=2)
    img += rng.normal(0, 5, img.shape).astype(np.float32)
    for _ in range(6):
        x, y = int(rng.integers(0, w - 100)), int(rng.integers(0, h - 80))
        x2, y2 = x + int(rng.integers(60, 250)), y + int(rng.integers(40, 160))
        if keep_clear and x < keep_clear[2] and x2 > keep_clear[0] and y < keep_clear[3] and y2 > keep_clear[1]:
            continue
        colour = tuple(int(c) for c in rng.integers(30, 220, 3))
        cv2.rectangle(img, (x, y), (x2, y2), colour, -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def plate_image(text: str, width: int) -> np.ndarray:
    """An EU-style plate, RGB: white, thick black frame, blue band, black characters."""
    big_w, big_h = 520, 110
    plate = np.full((big_h, big_w, 3), 240, np.uint8)
    cv2.rectangle(plate, (0, 0), (big_w - 1, big_h - 1), (20, 20, 20), 6)
    cv2.rectangle(plate, (4, 4), (46, big_h - 5), (30, 60, 180), -1)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 2.6, 9)
    cv2.putText(plate, text, (50 + (470 - tw) // 2, (big_h + th) // 2), cv2.FONT_HERSHEY_SIMPLEX, 2.6, (15,) * 3, 9)
    return cv2.resize(plate, (width, round(width * big_h / big_w)), interpolation=cv2.INTER_AREA)


def car_with_plate(width: int, seed: int = 0, at: tuple[int, int] = (400, 300)) -> tuple[np.ndarray, tuple]:
    """A scene with a dark "car" carrying a plate `width` px wide; returns image and plate box."""
    x, y = at
    plate = plate_image("AB 123 CD", width)
    ph = plate.shape[0]
    car = (x - width // 2, y - 2 * ph, x + width + width // 2, y + 3 * ph)
    img = scene(seed, keep_clear=(car[0] - width, car[1] - width, car[2] + width, car[3] + width))
    cv2.rectangle(img, car[:2], car[2:], (40, 45, 60), -1)
    img[y : y + ph, x : x + width] = plate
    return cv2.GaussianBlur(img, (0, 0), 0.7), (x, y, width, ph)


# ----------------------------------------------------------------------------- post-processing


def test_db_postprocess_unclips_like_pyclipper() -> None:
    # A 100 x 20 text core: pyclipper's offset distance is area * 1.6 / perimeter = 13.33 px,
    # and the minimum-area rectangle of the offset outline is the core grown by that on every side.
    prob = np.zeros((200, 300), np.float32)
    prob[90:110, 100:200] = 0.9
    quads, scores = db_postprocess(prob, thresh=0.3, box_thresh=0.5, unclip_ratio=1.6)
    assert len(quads) == 1
    x1, y1 = quads[0].min(axis=0)
    x2, y2 = quads[0].max(axis=0)
    # The rectangle runs through the outer pixels' centres: 100 x 20 after the 2x2 dilation.
    d = 100 * 20 * 1.6 / (2 * (100 + 20))
    assert x2 - x1 == pytest.approx(100 + 2 * d, abs=0.5)
    assert y2 - y1 == pytest.approx(20 + 2 * d, abs=0.5)
    assert scores[0] == pytest.approx(0.9, abs=0.1)


def test_db_postprocess_drops_weak_and_tiny_regions() -> None:
    prob = np.zeros((100, 100), np.float32)
    prob[10:30, 10:60] = 0.4  # above `thresh` but mean below `box_thresh`
    prob[70:72, 70:72] = 1.0  # 2 px: below `min_size`
    quads, _ = db_postprocess(prob, thresh=0.3, box_thresh=0.5, unclip_ratio=1.6)
    assert len(quads) == 0


def test_tiles_cover_the_image_with_overlap() -> None:
    for width, height in [(1920, 1080), (2560, 1920), (1000, 700), (4000, 300)]:
        found = tiles(width, height, 1024, 128)
        seen = np.zeros((height, width), bool)
        for x0, y0, x1, y1 in found:
            assert x1 - x0 <= 1024 and y1 - y0 <= 1024
            seen[y0:y1, x0:x1] = True
        assert seen.all()
        xs = sorted({(x0, x1) for x0, _, x1, _ in found})
        for (_, a_end), (b_start, _) in zip(xs, xs[1:], strict=False):
            assert a_end - b_start >= 128


def test_lines_join_split_regions() -> None:
    # "AB 123" and "CD" found as two regions on one line become one line; a far region does not.
    quads = np.array(
        [
            [[100, 100], [220, 100], [220, 130], [100, 130]],
            [[240, 101], [290, 101], [290, 131], [240, 131]],
            [[100, 300], [200, 300], [200, 330], [100, 330]],
        ],
        np.float32,
    )
    lines = join_lines(TextRegions(quads, np.array([0.9, 0.8, 0.7], np.float32)))
    assert len(lines) == 2
    longest = max(lines, key=lambda line: line.length)
    assert longest.length == pytest.approx(190, abs=2)


# ----------------------------------------------------------------------------- synthetic images


def test_text_drawn_on_a_scene_is_found(text: TextDetector) -> None:
    img = scene(1)
    ink = np.zeros(img.shape[:2], np.uint8)
    for canvas, colour in ((img, (250, 250, 250)), (ink, 255)):
        cv2.putText(canvas, "PRIVATE 42", (120, 260), cv2.FONT_HERSHEY_SIMPLEX, 1.6, colour, 4)
    found = text.detect(img)
    assert len(found) >= 1
    assert set(found.label) == {"text"}
    # Every inked pixel of the text is inside a text box.
    assert coverage(found, cv2.boundingRect(ink), img.shape) >= 0.95
    assert np.all(found.confidence >= 0.5)


@pytest.mark.parametrize("kind", ["black", "grey", "noise"])
def test_blank_and_noise_images_yield_nothing(text: TextDetector, plates: PlateDetector, kind: str) -> None:
    rng = np.random.default_rng(3)
    if kind == "black":
        img = np.zeros((480, 640, 3), np.uint8)
    elif kind == "grey":
        img = np.full((480, 640, 3), 128, np.uint8)
    else:
        img = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert len(text.detect(img)) == 0
    assert len(plates.detect(img)) == 0


@pytest.mark.parametrize("width", [60, 90, 180])
def test_synthetic_plate_is_masked_whole(plates: PlateDetector, width: int) -> None:
    img, box = car_with_plate(width, seed=width)
    found = plates.detect(img)
    assert set(found.label) == {"plate"}
    # The whole plate, frame included, not merely its characters.
    assert coverage(found, box, img.shape) >= 0.95
    # ... and not the whole car: beyond the plate grown 2x about its centre, less than one more
    # plate's area (DB's box around a 13 px high plate is already 20 px high).
    x, y, w, h = box
    far = np.ones(img.shape[:2], bool)
    far[max(0, y - h // 2) : y + h + h // 2, max(0, x - w // 2) : x + w + w // 2] = False
    covered = np.zeros(img.shape[:2], bool)
    for x1, y1, x2, y2 in found.xyxy.astype(int):
        covered[y1:y2, x1:x2] = True
    assert (covered & far).sum() < w * h


def test_plate_is_masked_whole_from_some_of_its_characters(text: TextDetector, plates: PlateDetector) -> None:
    img, box = car_with_plate(160, seed=7)
    regions = text.regions(img)
    x, y, w, h = box
    # Keep only the left half of the text region on the plate, as if DB had found "AB 1" only.
    on_plate = [i for i, q in enumerate(regions.quads) if x <= q[:, 0].mean() <= x + w]
    assert on_plate
    q = regions.quads[on_plate[0]].copy()
    cx = q[:, 0].mean()
    q[:, 0] = np.where(q[:, 0] > cx, cx, q[:, 0])
    partial = TextRegions(q[None], regions.scores[on_plate[:1]])
    assert coverage(Detections.from_boxes(partial.xyxy(), partial.scores, "t"), box, img.shape) < 0.6
    found = plates.detect_from_regions(img, partial)
    assert coverage(found, box, img.shape) >= 0.9


def test_tilted_plate(plates: PlateDetector) -> None:
    img = scene(5)
    plate = plate_image("KX 70 PL", 200)
    ph = plate.shape[0]
    m = cv2.getRotationMatrix2D((100, ph / 2), 12, 1.0)
    m[:, 2] += (450 - 100, 280 - ph / 2)
    size = (img.shape[1], img.shape[0])
    warped = cv2.warpAffine(plate, m, size)
    inside = cv2.warpAffine(np.full(plate.shape[:2], 255, np.uint8), m, size) > 127
    img[inside] = warped[inside]
    ys, xs = np.nonzero(inside)
    box = (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    assert coverage(plates.detect(img), box, img.shape) >= 0.9


def test_large_image_is_tiled_and_text_on_a_tile_seam_found(text: TextDetector) -> None:
    img = scene(2, size=(2600, 1500), keep_clear=(0, 600, 2600, 760))
    # Across the seam of the first two tile columns (tiles of <= 1024 px, 128 px overlap).
    seam = tiles(2600, 1500, text.tile_size, text.overlap)[0][2] - text.overlap // 2
    org = (seam - 150, 700)
    cv2.putText(img, "SEAM 8812", org, cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 4)
    (tw, th), base = cv2.getTextSize("SEAM 8812", cv2.FONT_HERSHEY_SIMPLEX, 1.5, 4)
    found = text.detect(img)
    assert coverage(found, (org[0], org[1] - th, tw, th + base), img.shape) >= 0.9


def test_one_network_run_serves_text_and_plates() -> None:
    text = TextDetector()
    plates = PlateDetector(text_detector=text)
    calls = []
    real_run = text.session.run

    class Counting:
        def run(self, *args: object, **kwargs: object) -> object:
            calls.append(1)
            return real_run(*args, **kwargs)

        def get_providers(self) -> list[str]:
            return ["counting"]

    text.session = Counting()  # type: ignore[assignment]
    img, _ = car_with_plate(120, seed=11)
    text.detect(img)
    plates.detect(img)
    plates.detect(img.copy())  # same content, another array: still cached
    assert len(calls) == 1
    changed = img.copy()
    changed[0, 0] ^= 1
    plates.detect(changed)
    assert len(calls) == 2


def test_registry_and_settings() -> None:
    text = create("text")
    plates = create("plates", text_detector=text)
    assert (text.name, text.label) == ("text", "text")
    assert (plates.name, plates.label) == ("plates", "plate")
    assert plates.text is text  # type: ignore[attr-defined]
    s = plates.settings()
    assert s["text"]["model"] == "ppocrv4_det.onnx"
    assert s["text"]["model_sha256"] == "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"
    assert json.dumps(s)  # the audit report is JSON


# ----------------------------------------------------------------------------- CCPD (shared data)


def ccpd() -> list[tuple[str, np.ndarray, list[list[float]]]]:
    entries = json.loads((SHARED / "plates.json").read_text())
    return [(e["image"], np.asarray(Image.open(SHARED / e["image"]).convert("RGB")), e["boxes"]) for e in entries]


@needs_plates
def test_ccpd_plates_are_covered(plates: PlateDetector) -> None:
    for name, img, boxes in ccpd():
        found = plates.detect(img)
        for box in boxes:
            assert coverage(found, box, img.shape) >= 0.7, name
        # Masks stay near the plate: < 5 % of the pixels outside the plate grown 2x (other
        # plate-like text on the car, e.g. dealer stickers, is masked too).
        far = np.ones(img.shape[:2], bool)
        for x, y, w, h in boxes:
            far[max(0, int(y - h / 2)) : int(y + 1.5 * h), max(0, int(x - w / 2)) : int(x + 1.5 * w)] = False
        covered = np.zeros(img.shape[:2], bool)
        for x1, y1, x2, y2 in found.xyxy.astype(int):
            covered[y1:y2, x1:x2] = True
        assert (covered & far).mean() < 0.05, name


@needs_plates
def test_ccpd_plate_text_is_found(text: TextDetector) -> None:
    for name, img, boxes in ccpd():
        found = text.detect(img)
        for box in boxes:
            # Characters only, not the frame: most of the plate, if not 70 % of it.
            assert coverage(found, box, img.shape) >= 0.5, name


@needs_plates
def test_ccpd_plates_scaled_to_60px_are_covered(plates: PlateDetector) -> None:
    hits = 0
    entries = ccpd()
    for _, img, boxes in entries:
        s = 60 / boxes[0][2]
        small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        found = plates.detect(small)
        hits += coverage(found, tuple(v * s for v in boxes[0]), small.shape) >= 0.7
    assert hits / len(entries) >= 0.9

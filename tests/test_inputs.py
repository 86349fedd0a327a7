"""Every valid input comes out whole: the matrix of file kinds veil reads.

Each case makes a file with Pillow, OpenCV or PyAV from the sample astronaut photo, runs veil,
and checks the output against the input: size, frame or page count and timing; every pixel
outside the painted boxes unchanged at the input's own depth (lossless outputs); and the face
masked.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import SAMPLE_FACE, SAMPLE_IMAGE, report_frames
from PIL import Image

from veil.cli import main
from veil.media.inspect import identifying, inspect_file

PHOTO = np.asarray(Image.open(SAMPLE_IMAGE).convert("RGB"))
FX, FY, FW, FH = SAMPLE_FACE


def veil(*args: str | Path) -> int:
    return main([*map(str, args), "-q"])


def report_boxes(report: Path) -> list[list[list[int]]]:
    """Painted boxes per frame/page of the first file in a report."""
    frames = report_frames(json.loads(report.read_text())["files"][0])
    return [[b["mask"] for b in f["boxes"]] for f in frames]


def outside(shape: tuple[int, ...], boxes: list[list[int]]) -> np.ndarray:
    keep = np.ones(shape[:2], bool)
    for x1, y1, x2, y2 in boxes:
        keep[y1:y2, x1:x2] = False
    return keep


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if "veil-tmp" in p.name]


# ----------------------------------------------------------------------------- bit depth


def deep_photo(kind: str) -> np.ndarray:
    """The photo at 16 bits (with low bits set, so 8-bit rounding would show) or as floats."""
    rng = np.random.default_rng(0)
    base = PHOTO.astype(np.uint16) * 257 + rng.integers(0, 200, PHOTO.shape).astype(np.uint16)
    if kind == "grey16":
        return base.mean(axis=2).astype(np.uint16)
    if kind == "rgb16":
        return base
    if kind == "rgba16":
        return np.dstack([base, np.full(PHOTO.shape[:2], 40000, np.uint16)])
    return (base.mean(axis=2) / 65535.0).astype(np.float32)  # float grey in 0..1


def read_deep(path: Path) -> np.ndarray:
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array.ndim == 3:
        return array[..., [2, 1, 0, 3]] if array.shape[2] == 4 else array[..., ::-1]
    return array


@pytest.mark.parametrize(
    ("kind", "ext"),
    [
        ("grey16", ".png"),
        ("rgb16", ".png"),
        ("rgba16", ".png"),
        ("grey16", ".tif"),
        ("rgb16", ".tif"),
        ("float32", ".tif"),
    ],
)
def test_deep_images_keep_their_depth_and_are_masked_at_it(tmp_path: Path, kind: str, ext: str) -> None:
    pixels = deep_photo(kind)
    src = tmp_path / f"in{ext}"
    if kind == "grey16" and ext == ".png":
        Image.fromarray(pixels).save(src)  # Pillow's own I;16 writer, as the bug report used
    else:
        order = {3: [2, 1, 0], 4: [2, 1, 0, 3]}.get(pixels.shape[-1] if pixels.ndim == 3 else 0)
        cv2.imwrite(str(src), pixels[..., order] if order else pixels)
    out, report = tmp_path / f"out{ext}", tmp_path / "r.json"
    assert veil(src, "-o", out, "--report", report) == 0
    after = read_deep(out)
    assert after.dtype == pixels.dtype and after.shape == pixels.shape
    (boxes,) = report_boxes(report)
    assert boxes, "the face was not found on the deep image"
    keep = outside(pixels.shape, boxes)
    assert np.array_equal(after[keep], pixels[keep])  # untouched, every bit of it
    face = after[FY : FY + FH, FX : FX + FW]
    if kind == "rgba16":  # black and opaque, so the fill shows
        assert (face[..., :3] == 0).all() and (face[..., 3] == 65535).all()
    else:
        assert (face == 0).all()  # black at full depth


def test_deep_image_to_an_8bit_format_is_scaled_not_clipped(tmp_path: Path) -> None:
    """The reported bug: a 16-bit grey PNG came out almost all white."""
    src = tmp_path / "grey16.png"
    pixels = deep_photo("grey16")
    Image.fromarray(pixels).save(src)
    out = tmp_path / "out.jpg"
    assert veil(src, "-o", out) == 0
    after = np.asarray(Image.open(out).convert("L")).astype(float)
    expected = pixels / 257.0
    keep = np.ones(pixels.shape, bool)
    keep[FY - 40 : FY + FH + 40, FX - 40 : FX + FW + 40] = False
    assert abs(after[keep].mean() - expected[keep].mean()) < 2
    assert after[FY + 10 : FY + FH - 10, FX + 10 : FX + FW - 10].max() < 20


# ----------------------------------------------------------------------------- pages


def test_every_page_of_a_tiff_is_redacted_and_written(tmp_path: Path) -> None:
    small = Image.fromarray(PHOTO).resize((256, 256))
    wide = Image.new("RGB", (400, 300), (30, 60, 90))
    wide.paste(small, (100, 20))
    pages = [Image.fromarray(PHOTO), wide, Image.fromarray(PHOTO).convert("L")]
    src = tmp_path / "scan.tif"
    pages[0].save(src, save_all=True, append_images=pages[1:], compression="tiff_deflate")
    out, report = tmp_path / "out.tif", tmp_path / "r.json"
    assert veil(src, "-o", out, "--report", report) == 0
    boxes = report_boxes(report)
    assert len(boxes) == 3 and all(boxes), "each page is detected on its own"
    faces = [SAMPLE_FACE, (100 + FX // 2, 20 + FY // 2, FW // 2, FH // 2), SAMPLE_FACE]
    with Image.open(out) as result:
        assert result.n_frames == 3
        for index, (page, face) in enumerate(zip(pages, faces, strict=True)):
            result.seek(index)
            before, after = np.asarray(page.convert("RGB")), np.asarray(result.convert("RGB"))
            assert after.shape == before.shape
            keep = outside(before.shape, boxes[index])
            assert np.array_equal(after[keep], before[keep])
            x, y, w, h = face
            assert (after[y : y + h, x : x + w] == 0).mean() > 0.99
    assert not identifying(inspect_file(out))


def test_pages_that_cannot_be_written_whole_are_an_error(tmp_path: Path) -> None:
    src = tmp_path / "two.tif"
    Image.fromarray(PHOTO).save(src, save_all=True, append_images=[Image.fromarray(PHOTO)])
    assert veil(src, "-o", tmp_path / "out.png") == 1
    assert not (tmp_path / "out.png").exists() and leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- animations

ANIM_SIZE = (321, 241)  # odd on purpose
DURATIONS = [100, 200, 100, 50, 100, 300]


def animation_frames(transparent: bool) -> list[Image.Image]:
    photo = Image.fromarray(PHOTO).resize((160, 160))
    frames = []
    for i in range(len(DURATIONS)):
        canvas = Image.new("RGBA", ANIM_SIZE, (40, 40, 40, 255))
        canvas.paste(photo, (i * 30, 40))
        if transparent:
            canvas.paste((0, 0, 0, 0), (260, 180, 321, 241))
        frames.append(canvas)
    return frames


def anim_face(i: int) -> tuple[int, int, int, int]:
    s = 160 / 512
    return (i * 30 + int(FX * s), 40 + int(FY * s), int(FW * s), int(FH * s))


def read_animation(path: Path) -> tuple[list[np.ndarray], list[int], int | None]:
    frames, durations = [], []
    with Image.open(path) as img:
        for index in range(img.n_frames):
            img.seek(index)
            img.load()
            frames.append(np.asarray(img.convert("RGBA")).copy())
            durations.append(int(round(img.info.get("duration", 0))))
        loop = img.info.get("loop")
    return frames, durations, loop


@pytest.mark.parametrize(
    ("ext", "transparent", "loop"),
    [(".gif", False, 0), (".gif", True, 3), (".webp", True, 0), (".png", False, 2), (".apng", True, 0)],
)
def test_animations_keep_every_frame_and_their_timing(tmp_path: Path, ext: str, transparent: bool, loop: int) -> None:
    frames = animation_frames(transparent)
    src = tmp_path / f"anim{ext}"
    fmt = {".gif": "GIF", ".webp": "WEBP", ".png": "PNG", ".apng": "PNG"}[ext]
    first = frames[0]
    rest = frames[1:]
    if fmt == "GIF":
        first, *rest = [f.convert("RGB").quantize(255) if not transparent else f for f in frames]
    options: dict[str, object] = {"lossless": True} if fmt == "WEBP" else {}
    if fmt == "GIF":
        options["comment"] = b"filmed by Alice Example on her phone"  # must not survive
    first.save(src, format=fmt, save_all=True, append_images=rest, duration=DURATIONS, loop=loop, **options)
    before, before_durations, before_loop = read_animation(src)
    assert bool(identifying(inspect_file(src))) == (fmt == "GIF")
    assert len(before) == len(DURATIONS)

    out, report = tmp_path / f"out{ext}", tmp_path / "r.json"
    assert veil(src, "-o", out, "--report", report) == 0
    after, after_durations, after_loop = read_animation(out)
    assert len(after) == len(before)
    assert after_durations == before_durations and after_loop == before_loop
    assert not identifying(inspect_file(out))
    boxes = report_boxes(report)
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        assert a.shape == b.shape
        keep = outside(a.shape, boxes[i])
        visible = keep & (a[..., 3] > 0)
        assert np.array_equal(a[visible], b[visible]), f"frame {i} changed away from the masks"
        assert np.array_equal(a[..., 3][keep], b[..., 3][keep]), f"frame {i}: transparency changed"
        x, y, w, h = anim_face(i)
        assert (b[y : y + h, x : x + w, :3] == 0).all(), f"frame {i}: face not masked"


def test_animation_as_video_and_wrong_targets(tmp_path: Path) -> None:
    src = tmp_path / "anim.gif"
    frames = [f.convert("RGB") for f in animation_frames(False)]
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=DURATIONS, loop=0)
    out = tmp_path / "anim.mp4"
    assert veil(src, "-o", out) == 0
    with av.open(str(out)) as c:
        times = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    assert times == pytest.approx(np.cumsum([0, *DURATIONS[:-1]]) / 1000, abs=0.002)
    assert veil(src, "-o", tmp_path / "anim.jpg") == 1
    assert not (tmp_path / "anim.jpg").exists() and leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- odd-sized video

ODD = (641, 361)


def make_odd_video(path: Path, codec: str, pix_fmt: str, frames: int = 6, fps: int = 10) -> list[np.ndarray]:
    w, h = ODD
    photo = np.asarray(Image.fromarray(PHOTO).resize((240, 240)))
    pictures = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = ODD
        stream.pix_fmt = pix_fmt
        for i in range(frames):
            img = np.full((h, w, 3), 50, np.uint8)
            img[60:300, 40 + 40 * i : 280 + 40 * i] = photo
            img[-1, :] = 250  # the last row and column carry content that must survive
            img[:, -1] = 250
            pictures.append(img)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return pictures


def decode(path: Path) -> tuple[list[np.ndarray], list[float]]:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    return [f.to_ndarray(format="rgb24") for f in frames], [float(f.pts * f.time_base) for f in frames]


@pytest.mark.parametrize(
    ("codec", "pix_fmt", "ext", "out_ext"),
    [
        ("libx264", "yuv444p", ".mp4", ".mp4"),
        ("ffv1", "bgr0", ".mkv", ".mkv"),
        ("mjpeg", "yuvj444p", ".avi", ".mp4"),
        ("prores_ks", "yuv444p10le", ".mov", ".webm"),
    ],
)
def test_odd_sized_video_keeps_its_exact_size(tmp_path: Path, codec: str, pix_fmt: str, ext: str, out_ext: str) -> None:
    src = tmp_path / f"odd{ext}"
    make_odd_video(src, codec, pix_fmt)
    before, before_times = decode(src)
    out = tmp_path / f"out{out_ext}"
    assert veil(src, "-o", out) == 0
    after, after_times = decode(out)
    assert len(after) == len(before) and after_times == pytest.approx(before_times, abs=1e-3)
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        assert b.shape == a.shape == (ODD[1], ODD[0], 3)
        assert np.abs(b[-1, :].astype(int) - a[-1, :]).mean() < 12  # last row kept (lossy codec)
        assert np.abs(b[:, -1].astype(int) - a[:, -1]).mean() < 12
        fx, fy, fw, fh = (int(v * 240 / 512) for v in SAMPLE_FACE)
        face = b[60 + fy : 60 + fy + fh, 40 + 40 * i + fx : 40 + 40 * i + fx + fw]
        assert face.mean() < 12, f"frame {i}: face not masked"


def test_allow_crop_writes_even_420(tmp_path: Path) -> None:
    src = tmp_path / "odd.mp4"
    make_odd_video(src, "libx264", "yuv444p", frames=3)
    out = tmp_path / "out.mp4"
    assert veil(src, "-o", out, "--allow-crop") == 0
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (640, 360)
        assert stream.codec_context.pix_fmt == "yuv420p"


# ----------------------------------------------------------------------------- HEIC / AVIF


def phone_exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F], exif[0x0110] = "Apple", "iPhone 15"
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})
    return exif.tobytes()


@pytest.mark.parametrize("ext", [".heic", ".avif"])
def test_heic_and_avif_are_read_upright_and_stripped(tmp_path: Path, ext: str) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    # Stored on its side with orientation 6: viewers turn it clockwise to show it upright.
    wide = Image.fromarray(PHOTO).crop((0, 0, 512, 384)).rotate(90, expand=True)
    src = tmp_path / f"photo{ext}"
    wide.save(src, exif=phone_exif(6), quality=90)
    assert identifying(inspect_file(src)), "the test photo must carry GPS and device data"
    assert veil(src) == 0
    out = tmp_path / "photo_veiled.jpg"  # JPEG beside the input by default
    with Image.open(out) as result:
        assert result.format == "JPEG" and result.size == (512, 384)
        assert not result.getexif()
        after = np.asarray(result.convert("RGB"))
    assert not identifying(inspect_file(out))
    assert after[FY + 5 : FY + FH - 5, FX + 5 : FX + FW - 5].mean() < 10  # upright face, masked
    assert np.abs(after[300:, 300:].astype(int) - PHOTO[300:384, 300:]).mean() < 6
    png = tmp_path / "chosen.png"
    assert veil(src, "-o", png) == 0 and Image.open(png).format == "PNG"
    plain = tmp_path / f"plain{ext}"  # no EXIF at all: pillow-heif then reports "exif": None
    Image.fromarray(PHOTO).save(plain, quality=90)
    assert veil(plain) == 0 and (tmp_path / "plain_veiled.jpg").is_file()


def test_weak_masks_on_a_gif_and_a_deep_image_leave_the_rest_exact(tmp_path: Path) -> None:
    """Blur adds colours a GIF palette cannot all hold, and works on 16-bit samples: in both
    only the masked area may change."""
    gif = tmp_path / "anim.gif"
    first, *rest = [f.convert("RGB").quantize(255) for f in animation_frames(False)]
    first.save(gif, save_all=True, append_images=rest, duration=DURATIONS, loop=0)
    out, report = tmp_path / "out.gif", tmp_path / "r.json"
    assert veil(gif, "-o", out, "--mask", "blur", "--report", report) == 0
    before, after = read_animation(gif)[0], read_animation(out)[0]
    for i, boxes in enumerate(report_boxes(report)):
        keep = outside(before[i].shape, boxes)
        assert np.array_equal(before[i][keep], after[i][keep]), f"frame {i} changed away from the masks"
        x, y, w, h = anim_face(i)
        assert (before[i][y : y + h, x : x + w] != after[i][y : y + h, x : x + w]).any(axis=-1).mean() > 0.5

    src, deep_out = tmp_path / "rgb16.png", tmp_path / "out16.png"
    pixels = deep_photo("rgb16")
    cv2.imwrite(str(src), pixels[..., ::-1])
    assert veil(src, "-o", deep_out, "--mask", "blur", "--report", report) == 0
    result = read_deep(deep_out)
    (boxes,) = report_boxes(report)
    keep = outside(pixels.shape, boxes)
    assert result.dtype == np.uint16 and np.array_equal(result[keep], pixels[keep])
    face = (slice(FY, FY + FH), slice(FX, FX + FW))
    assert (result[face] != pixels[face]).any(axis=-1).mean() > 0.9 and result[face].std() > 257

"""The stop-and-turn figure of docs/cctv.md, made only from what the repo ships.

A walker (the public-domain astronaut photo of samples/, cut as bench/cctv_bench.py cuts people)
crosses a still, made-up scene filmed by a fixed camera (640x480, 10 fps, H.264), stops, turns
away for 2.5 s (face replaced by the colour of the hair, as in the bench), turns back and walks
on. veil runs twice: faces only (`--redact faces`) and the default (`faces,heads`). The figure
shows input and both outputs at a few frames, cropped around the walker.

Run: `.venv/bin/python bench/cctv_figure.py` (writes docs/cctv_stop_turn.png; about a minute).
"""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cctv_bench as cb  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WORK = cb.WORK / "figure"
FACE_PX = 24
STOP_AT, STOP_LEN, TURN = 24, 30, (3, 27)
SHOW = [(18, "walking"), (26, "stopped, turning"), (34, "turned away"), (48, "turned away 2.4 s")]


def scene() -> np.ndarray:
    """A paved square with a wall: texture for the camera-motion estimate, no people."""
    rng = np.random.default_rng(5)
    w, h = cb.SIZE
    img = np.zeros((h, w, 3), np.float32)
    img[:] = (150, 145, 135)
    yy, xx = np.mgrid[:h, :w]
    img[(yy % 24 < 2) | ((xx + 12 * (yy // 24)) % 48 < 2)] = (110, 105, 100)
    img[: h // 3] = (170, 160, 150) - 30 * (np.arange(h // 3)[:, None, None] / (h // 3))
    for _ in range(14):
        x, y = int(rng.integers(0, w - 60)), int(rng.integers(10, h // 3 - 50))
        img[y : y + 40, x : x + 50] = rng.uniform(40, 200, 3)  # windows and signs on the wall
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def make_clip(path: Path, frames: int = 80) -> list[tuple[float, float, float, float]]:
    photo = np.asarray(Image.open(REPO / "samples" / "astronaut.png").convert("RGB"))
    person = cb.cut_person(photo, (190.0, 70.0, 75.0, 100.0))
    assert person is not None
    s = FACE_PX / person.face[3]
    size = (round(person.patch.shape[1] * s), round(person.patch.shape[0] * s))
    normal = np.asarray(Image.fromarray(person.patch).resize(size, Image.LANCZOS))
    turned = np.asarray(Image.fromarray(person.turned).resize(size, Image.LANCZOS))
    fx, fy, fw, fh = (v * s for v in person.face)
    bg = scene()
    top = 300 - size[1] // 2
    speed = cb.WALK * FACE_PX
    rng = np.random.default_rng(1)
    heads = []
    x = 40.0
    with av.open(str(path), "w") as c:
        st = c.add_stream("libx264", rate=cb.FPS)
        st.width, st.height = cb.SIZE
        st.pix_fmt = "yuv420p"
        st.options = {"crf": "23"}
        for i in range(frames):
            if i < STOP_AT or i >= STOP_AT + STOP_LEN:
                x += speed
            away = TURN[0] <= i - STOP_AT <= TURN[1]
            img = bg.copy()
            left = int(round(x - size[0] / 2))
            patch = turned if away else normal
            a, b = max(0, left), min(cb.SIZE[0], left + size[0])
            if b > a:
                img[top : top + size[1], a:b] = patch[:, a - left : b - left]
            heads.append((left + fx, top + fy, left + fx + fw, top + fy + fh))
            img = np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, cb.FPS)
            for p in st.encode(vf):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)
    return heads


def main() -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    src = WORK / "stop_turn.mp4"
    heads = make_clip(src)
    outs = {}
    for name, redact in (("faces only", "faces"), ("default (faces,heads)", "faces,heads")):
        out = WORK / f"out_{redact.replace(',', '+')}.mp4"
        subprocess.run(
            [sys.executable, "-m", "veil", str(src), "-o", str(out), "--overwrite", "-q", "--redact", redact],
            check=True,
        )
        outs[name] = cb.vb.decode(out)
    before = cb.vb.decode(src)
    tiles = []
    for i, label in SHOW:
        x1, y1, x2, y2 = heads[i]
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        box = (int(cx - 80), int(cy - 40), int(cx + 80), int(cy + 120))
        row = [before[i], *(frames[i] for frames in outs.values())]
        crops = [Image.fromarray(f).crop(box).resize((320, 320), Image.NEAREST) for f in row]
        tiles.append((label, i, crops))
    head_h = 22
    sheet = Image.new("RGB", (3 * 320 + 4 * 6, len(tiles) * (320 + head_h) + head_h + 6), "white")
    draw = ImageDraw.Draw(sheet)
    for k, name in enumerate(["input", *outs]):
        draw.text((6 + k * 326 + 4, 4), name, fill="black")
    for r, (label, i, crops) in enumerate(tiles):
        y = head_h + r * (320 + head_h)
        draw.text((10, y + 4), f"frame {i}: {label}", fill="black")
        for k, crop in enumerate(crops):
            sheet.paste(crop, (6 + k * 326, y + head_h))
    target = REPO / "docs" / "cctv_stop_turn.png"
    sheet.save(target, optimize=True)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())

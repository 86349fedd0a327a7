"""The stop-and-turn figure of docs/cctv.md, made only from what the repo ships.

A walker (the public-domain astronaut photo of samples/, cut as bench/cctv_bench.py cuts people)
crosses a still, made-up scene filmed by a fixed camera (640x480, 10 fps, H.264), stops, turns
away for 2.5 s (face replaced by the colour of the hair, as in the bench), turns back and walks
on. veil runs twice: faces only (`--redact faces`) and the default (`faces,heads`). The figure
shows input and both outputs at a few frames, cropped around the walker.

Run: `.venv/bin/python bench/cctv_figure.py` (writes docs/cctv_stop_turn.png; about a minute).

`--persons` makes the person figure of docs/tracking.md instead (docs/cctv_person_ids.png): two
walkers made from the same photo (the second mirrored, its clothes recoloured) cross while the
first stands turned away for 3 s, then walks on. veil runs with its defaults and writes its
plan; every plan track's box is drawn on the input with its `person` number, one colour per
person, so one person kept as one number through the stop and the crossing can be seen.
"""

from __future__ import annotations

import json
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
    normal, turned, (fx, fy, fw, fh) = walker_patches(False)
    size = (normal.shape[1], normal.shape[0])
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


# The person figure: A walks right, stops at frame PA_STOP for PA_LEN frames (turned away for most
# of it), B walks left from frame PB_START, in front of A, and passes A during the stop.
PA_STOP, PA_LEN, PA_TURN = 14, 32, (3, 28)
PB_START = 8
PERSON_SHOW = [
    (12, "A walks in, B enters"),
    (26, "A stopped, turned away"),
    (37, "B passes in front of A"),
    (43, "B walks on"),
    (58, "A walks on"),
]
COLOURS = [(230, 30, 30), (20, 110, 255), (30, 170, 50), (230, 150, 0), (180, 40, 220), (0, 170, 170)]


def walker_patches(flip: bool) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    photo = np.asarray(Image.open(REPO / "samples" / "astronaut.png").convert("RGB"))
    person = cb.cut_person(photo, (190.0, 70.0, 75.0, 100.0))
    assert person is not None
    s = FACE_PX / person.face[3]
    size = (round(person.patch.shape[1] * s), round(person.patch.shape[0] * s))
    normal = np.asarray(Image.fromarray(person.patch).resize(size, Image.LANCZOS))
    turned = np.asarray(Image.fromarray(person.turned).resize(size, Image.LANCZOS))
    fx, fy, fw, fh = (v * s for v in person.face)
    if flip:
        # Another walker: mirrored, the suit below the face recoloured (same face: the figure is
        # about positions, and veil never compares how people look).
        normal, turned = normal[:, ::-1].copy(), turned[:, ::-1].copy()
        fx = size[0] - fx - fw
        for img in (normal, turned):
            body = img[int(fy + fh * 1.3) :]
            body[:] = np.clip(body.astype(np.int16) * [0.5, 0.7, 1.3], 0, 255).astype(np.uint8)
    return normal, turned, (fx, fy, fw, fh)


def make_crossing_clip(path: Path, frames: int = 70) -> None:
    a_normal, a_turned, _ = walker_patches(False)
    b_normal, b_turned, _ = walker_patches(True)
    bg = scene()
    speed = cb.WALK * FACE_PX
    rng = np.random.default_rng(2)
    xa, xb = 40.0, cb.SIZE[0] + 40.0
    with av.open(str(path), "w") as c:
        st = c.add_stream("libx264", rate=cb.FPS)
        st.width, st.height = cb.SIZE
        st.pix_fmt = "yuv420p"
        st.options = {"crf": "23"}
        for i in range(frames):
            if i < PA_STOP or i >= PA_STOP + PA_LEN:
                xa += speed
            if i >= PB_START:
                xb -= speed
            img = bg.copy()
            away = PA_TURN[0] <= i - PA_STOP <= PA_TURN[1]
            for x, patch, top in ((xa, a_turned if away else a_normal, 290), (xb, b_normal, 300)):
                left = int(round(x - patch.shape[1] / 2))
                a, b = max(0, left), min(cb.SIZE[0], left + patch.shape[1])
                t = top - patch.shape[0] // 2
                if b > a:
                    img[t : t + patch.shape[0], a:b] = patch[:, a - left : b - left]
            img = np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, cb.FPS)
            for p in st.encode(vf):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)


def persons_figure() -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    src, plan_path = WORK / "crossing.mp4", WORK / "crossing.plan.json"
    make_crossing_clip(src)
    out = WORK / "crossing_out.mp4"
    subprocess.run(
        [sys.executable, "-m", "veil", str(src), "-o", str(out), "--overwrite", "-q", "--plan", str(plan_path)],
        check=True,
    )
    from veil.plan import load_plan

    plan = load_plan(plan_path)
    persons = sorted({t.person for t in plan.tracks if t.person is not None})
    sizes = {p: sum(t.person == p for t in plan.tracks) for p in persons}
    grouped = [p for p in persons if sizes[p] > 1]
    before = cb.vb.decode(src)
    band = (0, 190, cb.SIZE[0], 390)
    scale = 1.25
    width, height = int((band[2] - band[0]) * scale), int((band[3] - band[1]) * scale)
    head_h = 22
    sheet = Image.new("RGB", (width + 12, len(PERSON_SHOW) * (height + head_h) + 6), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (i, label) in enumerate(PERSON_SHOW):
        tile = Image.fromarray(before[i]).crop(band).resize((width, height), Image.LANCZOS)
        pen = ImageDraw.Draw(tile)
        for track in plan.tracks:
            got = track.box_at(i)
            if got is None:
                continue
            x1, y1, x2, y2 = ((v - o) * scale for v, o in zip(got[0], (band[0], band[1]) * 2, strict=True))
            # Persons of several tracks in colour; a person of one track (a face seen once) grey.
            if track.person in grouped:
                colour, line = COLOURS[grouped.index(track.person) % len(COLOURS)], 3 if track.label == "head" else 2
            else:
                colour, line = (150, 150, 150), 1
            pen.rectangle((x1, y1, x2, y2), outline=colour, width=line)
            if track.person in grouped:
                name = f"person {track.person}"
                pen.text((x1 + 2, y1 - 12 if track.label == "head" else y2 + 2), f"{name} ({track.label})", fill=colour)
        y = r * (height + head_h) + 4
        draw.text((8, y + 4), f"frame {i}: {label}", fill="black")
        sheet.paste(tile, (6, y + head_h))
    target = REPO / "docs" / "cctv_person_ids.png"
    sheet.convert("P", palette=Image.ADAPTIVE, colors=256).save(target, optimize=True)
    summary = {"tracks": len(plan.tracks), "persons": len(persons) + sum(t.person is None for t in plan.tracks)}
    print(target, json.dumps(summary))
    return 0


def main() -> int:
    if "--persons" in sys.argv[1:]:
        return persons_figure()
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

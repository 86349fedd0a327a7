"""Video benchmark: does any frame of a face leak? veil against deface, scored from output pixels.

1. **Clips with ground truth.** `make_clip` films the annotated photos of `faces.json` with a
   virtual camera (pan, zoom, small rotation, shake), adds motion blur, sensor noise and
   brightness changes, cuts to a second photo half-way (a scene cut), and encodes H.264 at
   ordinary quality (CRF 23). Each annotated face box is carried through the same camera
   transform, so every frame has its true face boxes. Seeded: `--seeds` picks other clips.
2. **Runs.** deface (`--replacewith solid`, from `.venv-bench`) and veil (each preset) on the
   same clips, each tool one process over all clips of a seed; speed = frames / wall time.
3. **Scoring** per frame, from pixels only: a face (>= 16 px high in that frame) is covered
   when >= 70 % of its box's pixels changed (`changed_pixels` below); otherwise the
   face-frame leaks. Reported: leaked face-frames per 1,000, the longest run of uncovered
   frames of one face (worst gap), and the longest such run with covered frames on both
   sides (an *interior* gap: the face was found before and after and still leaked between).
4. **Real videos** (`videos/` in the data folder, no annotations): frames in which an
   independent detector (OpenCV's Haar frontal-face cascade, not CenterFace) still finds a
   face in each tool's output, next to the count on the input.

Run: `.venv/bin/python bench/video_bench.py [--seeds 1 2 3] [--presets balanced fast]`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from PIL import Image

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / "work" / "video"
DEFAULT_DATA = REPO.parent / "shared" / "data"
VEIL = [sys.executable, "-m", "veil"]
DEFACE_VENV = REPO / ".venv-bench"
HAAR_VENV = BENCH / "work" / "venv-haar"

# Multiples of 16: deface (imageio) rescales other sizes, which would misalign the scoring.
SIZE = (640, 352)
FPS = 24
FRAMES = 72
CLIPS_PER_SEED = 3
MIN_FACE = 16.0
COVERED = 0.70
# A pixel counts as changed when any channel moved by more than this (both tools' outputs are
# re-encoded, so untouched pixels drift by a few levels), or when it is now near-black (both
# tools paint solid black, and a black face region under black paint does not "change").
CHANGE_LEVEL = 24
BLACK_LEVEL = 16


# ----------------------------------------------------------------------------- clips


@dataclass
class Clip:
    path: Path
    # Per frame: face ids and their boxes (x1, y1, x2, y2) in frame pixels, clipped to the frame.
    faces: list[list[tuple[str, tuple[float, float, float, float]]]]
    cut: int


def _load_photos(data_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    entries = json.loads((data_dir / "faces.json").read_text())
    out = []
    for e in entries:
        boxes = np.asarray(e.get("boxes") or [], dtype=np.float64).reshape(-1, 4)
        # Photos with no face that can reach 16 px under the camera's zoom add nothing.
        if len(boxes) and boxes[:, 3].max() >= 10:
            img = np.asarray(Image.open(data_dir / e["image"]).convert("RGB"))
            out.append((img, boxes))
    return out


def _camera(rng: np.random.Generator, shape: tuple[int, int], n: int) -> list[np.ndarray]:
    """2x3 affine matrices (photo -> frame) for `n` frames of one shot."""
    sh, sw = shape
    w, h = SIZE
    cover = max(w / sw, h / sh)
    z0 = cover * rng.uniform(1.15, 1.9)
    z1 = z0 * rng.uniform(0.8, 1.3)
    z1 = max(z1, cover * 1.05)
    rot_amp = rng.uniform(0.5, 3.0)
    rot_phase = rng.uniform(0, 2 * math.pi)
    shake = rng.uniform(0, 3.0) if rng.random() < 0.5 else 0.0

    def centre_range(z: float) -> tuple[float, float, float, float]:
        hw, hh = w / 2 / z, h / 2 / z
        return hw, sw - hw, hh, sh - hh

    x0lo, x0hi, y0lo, y0hi = centre_range(z0)
    x1lo, x1hi, y1lo, y1hi = centre_range(z1)
    c0 = np.array([rng.uniform(x0lo, max(x0lo, x0hi)), rng.uniform(y0lo, max(y0lo, y0hi))])
    c1 = np.array([rng.uniform(x1lo, max(x1lo, x1hi)), rng.uniform(y1lo, max(y1lo, y1hi))])
    mats = []
    for i in range(n):
        t = i / max(1, n - 1)
        s = 0.5 - 0.5 * math.cos(math.pi * t)  # ease in/out
        z = z0 + (z1 - z0) * s
        c = c0 + (c1 - c0) * s
        if shake:
            c = c + shake / z * np.array([math.sin(i * 1.7), math.cos(i * 2.3)])
        theta = math.radians(rot_amp * math.sin(2 * math.pi * t + rot_phase))
        cos, sin = z * math.cos(theta), z * math.sin(theta)
        m = np.array([[cos, -sin, 0.0], [sin, cos, 0.0]])
        m[:, 2] = np.array([w / 2, h / 2]) - m[:, :2] @ c
        mats.append(m)
    return mats


def _motion_blur(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    length = int(round(math.hypot(dx, dy) * 0.8))
    if length < 3:
        return img
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    ang = math.atan2(dy, dx)
    for j in range(length):
        r = j - c
        k[int(round(c + r * math.sin(ang))), int(round(c + r * math.cos(ang)))] = 1
    return cv2.filter2D(img, -1, k / k.sum())


def make_clip(path: Path, seed: int, photos: list[tuple[np.ndarray, np.ndarray]], frames: int = FRAMES) -> Clip:
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(photos), size=2, replace=False)
    cut = int(rng.integers(int(frames * 0.4), int(frames * 0.6)))
    shots = [(0, cut, photos[picks[0]]), (cut, frames, photos[picks[1]])]
    gain_amp = rng.uniform(0.1, 0.3)
    gain_period = rng.uniform(20, 60)
    step_at = int(rng.integers(0, frames))
    noise = rng.uniform(2, 6)
    w, h = SIZE
    truth: list[list[tuple[str, tuple[float, float, float, float]]]] = []
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "medium"}
        for shot, (start, end, (photo, boxes)) in enumerate(shots):
            mats = _camera(rng, photo.shape[:2], end - start)
            for k, m in enumerate(mats):
                i = start + k
                img = cv2.warpAffine(photo, m, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
                prev = mats[max(0, k - 1)]
                centre = np.array([w / 2, h / 2])
                # Image motion at the frame centre since the previous frame, for the blur.
                src = np.linalg.solve(m[:, :2], centre - m[:, 2])
                moved = centre - (prev[:, :2] @ src + prev[:, 2])
                img = _motion_blur(img, float(moved[0]), float(moved[1]))
                gain = 1 + gain_amp * math.sin(2 * math.pi * i / gain_period) + (0.15 if i >= step_at else 0.0)
                out = img.astype(np.float32) * gain + rng.normal(0, noise, img.shape)
                img = np.clip(out, 0, 255).astype(np.uint8)
                faces = []
                for b, (x, y, bw, bh) in enumerate(boxes):
                    corners = np.array([[x, y], [x + bw, y], [x, y + bh], [x + bw, y + bh]])
                    pts = corners @ m[:, :2].T + m[:, 2]
                    x1, y1 = pts.min(axis=0)
                    x2, y2 = pts.max(axis=0)
                    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
                    if cx2 <= cx1 or cy2 <= cy1:
                        continue
                    # A face mostly out of the frame is not a face-frame to score.
                    if (cx2 - cx1) * (cy2 - cy1) < 0.6 * (x2 - x1) * (y2 - y1):
                        continue
                    faces.append((f"{shot}:{b}", (float(cx1), float(cy1), float(cx2), float(cy2))))
                truth.append(faces)
                vf = av.VideoFrame.from_ndarray(img, format="rgb24")
                vf.pts = i
                vf.time_base = Fraction(1, FPS)
                for packet in stream.encode(vf):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return Clip(path, truth, cut)


# ----------------------------------------------------------------------------- scoring


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def changed_pixels(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    diff = np.abs(before.astype(np.int16) - after.astype(np.int16)).max(axis=2)
    return (diff > CHANGE_LEVEL) | (after.max(axis=2) <= BLACK_LEVEL)


def face_pixels(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """A true face box `(x1, y1, x2, y2)` as integer pixel bounds, rounded, at least 1 px each way."""
    x1, y1, x2, y2 = box
    a, b = int(round(x1)), int(round(y1))
    return a, b, max(int(round(x2)), a + 1), max(int(round(y2)), b + 1)


def far_region(shape: tuple[int, int], faces: list[tuple[str, tuple[float, float, float, float]]]) -> np.ndarray:
    """H x W bool: pixels outside every true face box grown to twice its width and height, as in
    the image benchmark's over-redaction. Faces of every size count, so a mask on a tiny face is
    not over-redaction."""
    far = np.ones(shape, dtype=bool)
    for _, (x1, y1, x2, y2) in faces:
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        far[max(0, int(cy - h)) : int(cy + h) + 1, max(0, int(cx - w)) : int(cx + w) + 1] = False
    return far


def coverage(clip: Clip, before: list[np.ndarray], after: list[np.ndarray]) -> dict[str, list[bool | None]]:
    """Per face id, per frame: True covered, False leaked, None absent or under 16 px."""
    n = len(clip.faces)
    if len(after) != n or len(before) != n:
        raise RuntimeError(f"{clip.path}: {len(after)} output frames for {n} input frames")
    ids = sorted({fid for faces in clip.faces for fid, _ in faces})
    out: dict[str, list[bool | None]] = {fid: [None] * n for fid in ids}
    for i, faces in enumerate(clip.faces):
        if not faces:
            continue
        changed = changed_pixels(before[i], after[i])
        for fid, box in faces:
            if box[3] - box[1] < MIN_FACE:
                continue
            a, b, c, d = face_pixels(box)
            out[fid][i] = bool(changed[b:d, a:c].mean() >= COVERED)
    return out


def far_masked(clip: Clip, before: list[np.ndarray], after: list[np.ndarray]) -> tuple[int, int]:
    """(changed pixels, all pixels) far from every face of each frame (`far_region`)."""
    changed_far = total_far = 0
    for i, faces in enumerate(clip.faces):
        far = far_region(before[i].shape[:2], faces)
        changed_far += int(np.count_nonzero(changed_pixels(before[i], after[i]) & far))
        total_far += int(np.count_nonzero(far))
    return changed_far, total_far


def gaps(series: list[bool | None]) -> tuple[int, int]:
    """(longest run of uncovered frames, longest such run with covered frames on both sides).

    Frames where the face is absent or small do not break a run nor count in it."""
    worst = interior = run = 0
    seen_covered = False
    for v in series:
        if v is None:
            continue
        if v:
            if run and seen_covered:
                interior = max(interior, run)
            run = 0
            seen_covered = True
        else:
            run += 1
            worst = max(worst, run)
    return worst, interior


def score(
    cov: list[dict[str, list[bool | None]]], detected: list[dict[str, list[bool]]] | None = None
) -> dict[str, float]:
    total = leaked = worst = interior = faces = tracked = 0
    for k, clip in enumerate(cov):
        for fid, series in clip.items():
            if detected is not None and fid in detected[k]:
                tracked = max(tracked, tracked_gap(series, detected[k][fid]))
            vals = [v for v in series if v is not None]
            if not vals:
                continue
            faces += 1
            total += len(vals)
            leaked += vals.count(False)
            g, ig = gaps(series)
            worst, interior = max(worst, g), max(interior, ig)
    return {
        "faces": faces,
        "face_frames": total,
        "leaked": leaked,
        "leaks_per_1000": 1000.0 * leaked / max(total, 1),
        "worst_gap": worst,
        "worst_interior_gap": interior,
        "worst_tracked_gap": tracked if detected is not None else float("nan"),
    }


# ----------------------------------------------------------------------------- tools


def ensure_deface() -> Path:
    exe = DEFACE_VENV / "bin" / "deface"
    if not exe.exists():
        subprocess.run(["python3", "-m", "venv", str(DEFACE_VENV)], check=True)
        subprocess.run([str(DEFACE_VENV / "bin" / "pip"), "install", "-q", "deface", "onnxruntime"], check=True)
    return exe


def run_deface(inputs: list[Path], out_dir: Path, reuse: bool = False) -> tuple[list[Path], float]:
    """deface on each input; with `reuse`, earlier outputs and timing of the same clips are kept
    (the clips are a pure function of the seed), to iterate on veil faster."""
    exe = ensure_deface()
    out_dir.mkdir(parents=True, exist_ok=True)
    outs = [out_dir / p.name for p in inputs]
    timing = out_dir / "seconds.json"
    if reuse and timing.exists() and all(o.exists() for o in outs):
        return outs, float(json.loads(timing.read_text()))
    started = time.perf_counter()
    # One process per file: deface's -o names a single output.
    for src, dst in zip(inputs, outs, strict=True):
        subprocess.run(
            [str(exe), str(src), "-o", str(dst), "--replacewith", "solid"],
            check=True,
            capture_output=True,
        )
    elapsed = time.perf_counter() - started
    timing.write_text(json.dumps(elapsed))
    return outs, elapsed


def run_veil(
    inputs: list[Path], out_dir: Path, preset: str, extra: list[str] | None = None
) -> tuple[list[Path], float]:
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    cmd = [*VEIL, *map(str, inputs), "-o", str(out_dir), "--preset", preset, "--overwrite", "-q"]
    cmd += ["--report", str(out_dir / "report.json"), *(extra or [])]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"veil failed: {proc.stderr.strip()}")
    elapsed = time.perf_counter() - started
    return [out_dir / (p.stem + p.suffix) for p in inputs], elapsed


def veil_detections(report: Path) -> dict[str, dict[int, np.ndarray]]:
    """Per input file, per frame: the boxes veil's detector found (not the tracker's fills)."""
    data = json.loads(report.read_text())
    out: dict[str, dict[int, np.ndarray]] = {}
    for f in data.get("files", []):
        frames = {}
        for fr in f.get("frames", []):
            boxes = [b["box"] for b in fr.get("boxes", []) if not b.get("filled")]
            frames[int(fr["frame"])] = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        out[Path(f["input"]).name] = frames
    return out


def detected_series(clip: Clip, found: dict[int, np.ndarray]) -> dict[str, list[bool]]:
    """Per face id, per frame: did the tool's own detector find it (IoU >= 0.3)?"""
    from veil.analysis.boxes import iou_matrix

    out: dict[str, list[bool]] = {}
    for i, faces in enumerate(clip.faces):
        for fid, box in faces:
            series = out.setdefault(fid, [False] * len(clip.faces))
            dets = found.get(i)
            if dets is not None and len(dets):
                series[i] = bool(iou_matrix(np.asarray([box], np.float32), dets).max() >= 0.3)
    return out


def tracked_gap(covered: list[bool | None], detected: list[bool]) -> int:
    """Longest run of uncovered frames between two frames where the face was detected: the
    frames a tracker should have filled."""
    worst = 0
    hits = [i for i, d in enumerate(detected) if d]
    for a, b in zip(hits, hits[1:], strict=False):
        run = 0
        for v in covered[a + 1 : b]:
            run = run + 1 if v is False else 0
            worst = max(worst, run)
    return worst


# ----------------------------------------------------------------------------- real videos

HAAR_SCRIPT = r"""
import json, sys, cv2
cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
out = {}
for path in sys.argv[1:]:
    cap = cv2.VideoCapture(path)
    hits = frames = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames += 1
        scale = min(1.0, 960 / max(img.shape[:2]))
        if scale < 1:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        grey = cv2.equalizeHist(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
        found = cascade.detectMultiScale(grey, scaleFactor=1.15, minNeighbors=6, minSize=(24, 24))
        hits += int(len(found) > 0)
    out[path] = {"frames": frames, "frames_with_face": hits}
print(json.dumps(out))
"""


def ensure_haar() -> Path:
    """OpenCV 5 dropped Haar cascades; the check runs in a small venv with OpenCV 4."""
    py = HAAR_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run(["python3", "-m", "venv", str(HAAR_VENV)], check=True)
        subprocess.run([str(HAAR_VENV / "bin" / "pip"), "install", "-q", "opencv-python-headless<5"], check=True)
    return py


def haar_counts(paths: list[Path]) -> dict[str, dict[str, int]]:
    proc = subprocess.run(
        [str(ensure_haar()), "-c", HAAR_SCRIPT, *map(str, paths)], capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout)


def real_excerpts(data_dir: Path, max_frames: int = 90, max_pixels: float = 6e7) -> list[Path]:
    """The real videos, cut to their first frames (re-encoded at CRF 18): at most `max_frames`,
    and at most `max_pixels` pixels in all, so the check stays a few minutes on a laptop."""
    out = []
    for src in sorted((data_dir / "videos").glob("*.mp4")):
        with av.open(str(src)) as probe:
            ctx = probe.streams.video[0].codec_context
            n = max(8, min(max_frames, int(max_pixels / (ctx.width * ctx.height))))
        dst = WORK / "real" / f"{src.stem}_first{n}.mp4"
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            with av.open(str(src)) as inp, av.open(str(dst), "w") as container:
                vin = inp.streams.video[0]
                rate = vin.average_rate or Fraction(30)
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height = vin.codec_context.width, vin.codec_context.height
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": "18", "preset": "fast"}
                for i, frame in enumerate(inp.decode(vin)):
                    if i >= n:
                        break
                    vf = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
                    vf.pts = i
                    vf.time_base = 1 / Fraction(rate)
                    for packet in stream.encode(vf):
                        container.mux(packet)
                for packet in stream.encode(None):
                    container.mux(packet)
        out.append(dst)
    return out


# ----------------------------------------------------------------------------- the benchmark


def _summary(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std()), "min": float(arr.min()), "max": float(arr.max())}


def run_video_bench(
    data_dir: Path = DEFAULT_DATA,
    seeds: tuple[int, ...] = (1, 2, 3),
    presets: tuple[str, ...] = ("balanced", "fast"),
    real: bool = True,
    log: Any = print,
    reuse_deface: bool = False,
) -> dict[str, Any]:
    """Generate clips per seed, run deface and veil's presets, score; returns per-seed results,
    mean and spread over seeds per tool, and the real-video check."""
    data_dir = Path(data_dir)
    photos = _load_photos(data_dir)
    tools = ["deface", *(f"veil-{p}" for p in presets)]
    per_seed: dict[str, dict[int, dict[str, float]]] = {t: {} for t in tools}
    for seed in seeds:
        clip_dir = WORK / f"seed{seed}" / "clips"
        if clip_dir.exists():
            shutil.rmtree(clip_dir)
        clips = [make_clip(clip_dir / f"clip{k}.mp4", seed * 1000 + k, photos) for k in range(CLIPS_PER_SEED)]
        inputs = [c.path for c in clips]
        before = [decode(p) for p in inputs]
        n_frames = sum(len(b) for b in before)
        for tool in tools:
            out_dir = WORK / f"seed{seed}" / tool
            if tool == "deface":
                outs, elapsed = run_deface(inputs, out_dir, reuse_deface)
            else:
                outs, elapsed = run_veil(inputs, out_dir, tool.removeprefix("veil-"))
            after = [decode(o) for o in outs]
            cov = [coverage(c, b, a) for c, b, a in zip(clips, before, after, strict=True)]
            far = [far_masked(c, b, a) for c, b, a in zip(clips, before, after, strict=True)]
            del after
            detected = None
            if tool != "deface":
                found = veil_detections(out_dir / "report.json")
                detected = [detected_series(c, found.get(c.path.name, {})) for c in clips]
            result = score(cov, detected)
            result["fps"] = n_frames / elapsed
            result["over_redaction_pct"] = 100.0 * sum(f[0] for f in far) / max(1, sum(f[1] for f in far))
            per_seed[tool][seed] = result
            log(
                f"seed {seed} {tool:14s} leaks/1000 {result['leaks_per_1000']:7.2f}  worst gap "
                f"{result['worst_gap']:3d}  interior {result['worst_interior_gap']:3d}  tracked "
                f"{result['worst_tracked_gap']:3.0f}  over-red {result['over_redaction_pct']:5.2f}%  "
                f"{result['fps']:6.1f} fps"
            )
    summary: dict[str, Any] = {}
    for tool in tools:
        rows = list(per_seed[tool].values())
        summary[tool] = {
            k: _summary([r[k] for r in rows])
            for k in (
                "leaks_per_1000",
                "worst_gap",
                "worst_interior_gap",
                "worst_tracked_gap",
                "over_redaction_pct",
                "fps",
                "face_frames",
            )
        }
    ref = summary["deface"]
    for tool in tools:
        summary[tool]["leak_ratio_vs_deface"] = summary[tool]["leaks_per_1000"]["mean"] / max(
            ref["leaks_per_1000"]["mean"], 1e-9
        )
        summary[tool]["speed_ratio_vs_deface"] = summary[tool]["fps"]["mean"] / ref["fps"]["mean"]
    result: dict[str, Any] = {"seeds": list(seeds), "per_seed": per_seed, "summary": summary}
    if real and (data_dir / "videos").is_dir():
        excerpts = real_excerpts(data_dir)
        outputs: dict[str, list[Path]] = {}
        outputs["deface"], _ = run_deface(excerpts, WORK / "real-out" / "deface", reuse_deface)
        for p in presets:
            outputs[f"veil-{p}"], _ = run_veil(excerpts, WORK / "real-out" / f"veil-{p}", p)
        counts = haar_counts([*excerpts, *(o for outs in outputs.values() for o in outs)])
        real_rows: dict[str, dict[str, Any]] = {}
        for i, src in enumerate(excerpts):
            row = {"frames": counts[str(src)]["frames"], "input": counts[str(src)]["frames_with_face"]}
            for tool, outs in outputs.items():
                row[tool] = counts[str(outs[i])]["frames_with_face"]
            real_rows[src.name] = row
        result["real"] = real_rows
    return result


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"Generated clips: {CLIPS_PER_SEED} x {FRAMES} frames {SIZE[0]}x{SIZE[1]} per seed, seeds {result['seeds']}; "
        "mean +- std over seeds",
        f"{'tool':16s} {'leaks/1000':>16s} {'x deface':>9s} {'worst gap':>12s} {'interior gap':>13s} "
        f"{'tracked gap':>12s} {'over-red %':>10s} {'fps':>14s} {'x deface':>9s}",
    ]
    for tool, s in result["summary"].items():
        lines.append(
            f"{tool:16s} {s['leaks_per_1000']['mean']:8.2f} +- {s['leaks_per_1000']['std']:5.2f} "
            f"{s['leak_ratio_vs_deface']:9.2f} {s['worst_gap']['mean']:5.1f} (<={s['worst_gap']['max']:3.0f}) "
            f"{s['worst_interior_gap']['mean']:6.1f} (<={s['worst_interior_gap']['max']:2.0f}) "
            f"{s['worst_tracked_gap']['max']:12.0f} {s['over_redaction_pct']['mean']:10.2f} "
            f"{s['fps']['mean']:6.1f} +- {s['fps']['std']:4.1f} {s['speed_ratio_vs_deface']:9.2f}"
        )
    if "real" in result:
        lines.append("")
        lines.append("Real videos (first frames): frames where a Haar cascade still finds a face")
        tools = [k for k in next(iter(result["real"].values())) if k not in ("frames",)]
        lines.append(f"{'video':36s} {'frames':>6s} " + " ".join(f"{t:>14s}" for t in tools))
        for name, row in result["real"].items():
            lines.append(f"{name:36s} {row['frames']:6d} " + " ".join(f"{row[t]:14d}" for t in tools))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--presets", nargs="+", default=["balanced", "fast"])
    p.add_argument("--no-real", action="store_true", help="skip the real-video check")
    p.add_argument("--json", type=Path, help="also write the full results here")
    p.add_argument("--reuse-deface", action="store_true", help="keep deface outputs from an earlier run")
    args = p.parse_args(argv)
    if not (args.data / "faces.json").is_file():
        print(f"video bench: {args.data}/faces.json not found; skipped")
        return 0
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    result = run_video_bench(
        args.data, tuple(args.seeds), tuple(args.presets), real=not args.no_real, reuse_deface=args.reuse_deface
    )
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

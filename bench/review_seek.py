"""Seek latency of the review page's frame server on a 10-minute 1080p video.

Makes the clip once (build/bench/seek_1080p_10min.mp4: 25 fps, libx264 with its default
250-frame keyframe interval and B-frames, moving texture so decoding costs what real footage
costs), then times random seeks as the page asks for them: decode frame N, scale to the player's
width, encode the JPEG. First on the original (keyframe seek + decode forward), then on the
seek proxy the review server makes when keyframes are far apart. The reference, measured in the
same run, is one sequentially decoded frame (what stepping costs); ratios are against it.

With --parallel-proxy the proxy is made while the original's seeks are measured, as `veil review`
does (its seeks then share the CPU with the proxy, as a reviewer's first minutes do).

Usage: python bench/review_seek.py [--seeks 60] [--minutes 10] [--clip PATH] [--parallel-proxy]
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from veil.review.server.frames import FrameIndex, FrameReader, make_proxy, needs_proxy
from veil.review.server.session import jpeg

REPO = Path(__file__).resolve().parents[1]
PLAYER_WIDTH = 960


def make_clip(path: Path, minutes: float, fps: int = 25, size: tuple[int, int] = (1920, 1080)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(0, 255, (h // 8, (w + 2 * h) // 8, 3), dtype=np.uint8), ((w + 2 * h), h))
    tmp = path.with_name(path.stem + ".tmp.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        stream.thread_count = 2
        for i in range(int(minutes * 60 * fps)):
            # A slow pan over the texture with a moving block and the frame number drawn in.
            shift = (i * 3) % (2 * h)
            img = np.ascontiguousarray(texture[:, shift : shift + w])
            x = (i * 7) % (w - 200)
            img[400:600, x : x + 200] = (230, 200, 160)
            cv2.putText(img, str(i), (40, 120), cv2.FONT_HERSHEY_SIMPLEX, 3, (255, 255, 255), 6)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.rename(path)


def shown(reader: FrameReader, frame: int) -> float:
    started = time.perf_counter()
    image = reader.get(frame)
    if image.shape[1] > PLAYER_WIDTH:
        height = round(image.shape[0] * PLAYER_WIDTH / image.shape[1])
        image = cv2.resize(image, (PLAYER_WIDTH, height), interpolation=cv2.INTER_AREA)
    jpeg(image, 82)
    return time.perf_counter() - started


def measure(reader: FrameReader, targets: list[int]) -> list[float]:
    return [shown(reader, t) for t in targets]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeks", type=int, default=60)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--parallel-proxy", action="store_true", help="make the proxy while the original is measured")
    ap.add_argument("--clip", type=Path, default=REPO / "build" / "bench" / "seek_1080p_10min.mp4")
    args = ap.parse_args()
    if not args.clip.is_file():
        started = time.monotonic()
        make_clip(args.clip, args.minutes)
        print(f"made {args.clip} in {time.monotonic() - started:.0f} s")
    started = time.perf_counter()
    index = FrameIndex(args.clip)
    index_s = time.perf_counter() - started
    print(f"clip: {len(index)} frames, longest GOP {index.max_gop} frames; packet index built in {index_s:.2f} s")
    rng = random.Random(1)
    targets = [rng.randrange(len(index)) for _ in range(args.seeks)]

    proxy = args.clip.with_name(args.clip.stem + ".proxy.mp4")
    proxy.unlink(missing_ok=True)
    proxy_done: list[float] = []

    def build_proxy() -> None:
        started = time.monotonic()
        make_proxy(args.clip, proxy, [0], threading.Event())
        proxy_done.append(time.monotonic() - started)

    maker = threading.Thread(target=build_proxy)
    if args.parallel_proxy:
        # As in `veil review`: the proxy is made in the background while the reviewer seeks.
        maker.start()
    reader = FrameReader(args.clip, index=index)
    # Reference: stepping forward one frame at a time from a decoder already in place.
    reader.get(1000)
    step = [shown(reader, 1001 + i) for i in range(50)]
    ref = statistics.median(step)
    original = measure(reader, targets)
    reader.close()
    print(f"reference (one frame stepped forward): median {ref * 1000:.1f} ms")
    print(
        f"original, {len(targets)} random seeks: p50 {pct(original, 0.5):.3f} s, p95 {pct(original, 0.95):.3f} s, "
        f"max {max(original):.3f} s (p50 = {pct(original, 0.5) / ref:.0f}x a step)"
    )
    print(f"needs a proxy: {needs_proxy(index, 1920, 1080)}")
    if not args.parallel_proxy:
        maker.start()
    maker.join()
    proxy_s = proxy_done[0]
    pindex = FrameIndex(proxy)
    assert len(pindex) == len(index), "proxy frame count differs"
    preader = FrameReader(proxy, index=pindex)
    proxied = measure(preader, targets)
    preader.close()
    print(f"proxy made in {proxy_s:.0f} s ({len(index) / proxy_s:.0f} fps), longest GOP {pindex.max_gop}")
    print(
        f"proxy, same {len(targets)} seeks: p50 {pct(proxied, 0.5):.3f} s, p95 {pct(proxied, 0.95):.3f} s, "
        f"max {max(proxied):.3f} s (p95 = {pct(proxied, 0.95) / pct(original, 0.95):.2f}x the original's p95)"
    )


if __name__ == "__main__":
    main()

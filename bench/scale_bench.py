"""Scaling bench for `veil -j N`, segments and the Ray engine (not run by `make test`).

1. A folder of short videos with -j1, -j2 and --engine ray: wall time and throughput (hours of
   footage per hour) as ratios to -j1, all from one run.
2. One long 720p video with faces moving through it (`--minutes`, 60 for the real figure):
   unsegmented -j1 against segmented -jN; wall time, peak memory of the whole process tree
   sampled through the run (flat = the same at 25 % and at 100 % of the run).
3. A projection to M nodes from the measured per-segment cost and the engine's per-segment
   overhead; docs/scale.md writes down every assumption.

    .venv/bin/python bench/scale_bench.py --minutes 2 --files 4 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "samples" / "astronaut.png"


def make_clip(path: Path, seconds: float, size: tuple[int, int], fps: int, faces: int = 2, seed: int = 0) -> Path:
    """Faces (the sample photo, scaled) moving on a textured background; a keyframe every 2 s, as
    cameras write them; frames are made one at a time (memory stays flat)."""
    rng = np.random.default_rng(seed)
    w, h = size
    side = h // 3
    photo = np.asarray(Image.open(PHOTO).convert("RGB").resize((side, side)))
    background = (rng.integers(30, 90, (h // 8, w // 8, 3), dtype=np.uint8)).repeat(8, 0).repeat(8, 1)
    starts = rng.uniform(0, 1, (faces, 2))
    speeds = rng.uniform(0.02, 0.08, (faces, 2))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = 2 * fps
        stream.options = {"preset": "ultrafast", "crf": "23"}
        for i in range(int(seconds * fps)):
            img = background.copy()
            t = i / fps
            for k in range(faces):
                pos = np.abs(((starts[k] + speeds[k] * t) % 2.0) - 1.0)
                x, y = int(pos[0] * (w - side)), int(pos[1] * (h - side))
                img[y : y + side, x : x + side] = photo
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def tree_rss(pid: int) -> int:
    """Resident memory of `pid` and all its descendants, in bytes."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


def run(veil: list[str], args: list[str], env: dict[str, str] | None = None) -> dict[str, float | list[float]]:
    started = time.monotonic()
    proc = subprocess.Popen([*veil, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    samples: list[tuple[float, int]] = []
    while proc.poll() is None:
        samples.append((time.monotonic() - started, tree_rss(proc.pid)))
        time.sleep(0.25)
    _, err = proc.communicate()
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"veil {' '.join(args)} failed:\n{err[-2000:]}")
    peak = max((r for _, r in samples), default=0)
    # RSS at quarters of the run: flat memory means the last quarter is no higher than the first.
    quarters = [max((r for t, r in samples if q * wall / 4 <= t < (q + 1) * wall / 4), default=0) for q in range(4)]
    return {"wall_s": wall, "peak_mib": peak / 2**20, "quarters_mib": [q / 2**20 for q in quarters]}


def footage_hours(folder: Path) -> float:
    total = 0.0
    for path in folder.iterdir():
        with av.open(str(path)) as c:
            total += c.duration / av.time_base / 3600
    return total


def segment_costs(out: Path) -> tuple[list[float], list[float]]:
    """(seconds each segment took inside its worker, frames of each) from the manifest."""
    secs, frames = [], []
    for line in (out / ".veil-manifest.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["kind"] == "segment" and e["status"] == "done":
            secs.append(e["report"]["seconds"])
            frames.append(e["report"]["frames"])
    return secs, frames


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each video in the folder")
    ap.add_argument("--minutes", type=float, default=60.0, help="length of the long 720p video")
    ap.add_argument("--segment-seconds", type=float, default=20.0)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--skip-folder", action="store_true", help="only the long video and the projection")
    ap.add_argument("--keep", type=Path, help="keep generated media and outputs here")
    a = ap.parse_args()
    veil = [sys.executable, "-m", "veil"]
    work = a.keep or Path(tempfile.mkdtemp(prefix="veil-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    common = ["--preset", a.preset, "-q", "--overwrite"]
    cores = os.cpu_count() or 1
    print(f"# scale bench: {cores} cores, preset {a.preset}; timings are wall clock on a possibly shared machine")

    # 1. A folder of videos.
    if not a.skip_folder:
        folder_runs(a, work, veil, common)
    long_runs(a, work, veil, common, cores)


def folder_runs(a: argparse.Namespace, work: Path, veil: list[str], common: list[str]) -> None:
    folder = work / "folder"
    if not folder.is_dir():
        folder.mkdir()
        for i in range(a.files):
            make_clip(folder / f"clip{i}.mp4", a.seconds, (640, 360), 25, seed=i)
    hours = footage_hours(folder)
    rows = {}
    for name, extra in [("-j1", ["-j1"]), ("-j2", ["-j2"]), ("ray", ["-j2", "--engine", "ray"])]:
        if name == "ray" and a.no_ray:
            continue
        out = work / f"out{name}"
        shutil.rmtree(out, ignore_errors=True)
        rows[name] = run(veil, [str(folder), "-o", str(out), *extra, *common])
    base = rows["-j1"]["wall_s"]
    print(f"\n## folder: {a.files} videos x {a.seconds:.0f} s, 640x360 25 fps ({hours * 3600:.0f} s of footage)")
    print("| run | wall s | h footage / h | speed vs -j1 | peak MiB |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['wall_s']:.1f} | {hours / (r['wall_s'] / 3600):.2f} | {base / r['wall_s']:.2f}x "
            f"| {r['peak_mib']:.0f} |"
        )


def long_runs(a: argparse.Namespace, work: Path, veil: list[str], common: list[str], cores: int) -> None:
    # 2. One long 720p video.
    long_clip = work / "long" / "long.mp4"
    if not long_clip.is_file():
        long_clip.parent.mkdir(exist_ok=True)
        t = time.monotonic()
        make_clip(long_clip, a.minutes * 60, (1280, 720), 30, faces=3, seed=7)
        print(f"\n(made a {a.minutes:g}-minute 720p clip in {time.monotonic() - t:.0f} s)")
    runs = {
        "unsegmented -j1": ["-j1"],
        f"segmented {a.segment_seconds:g} s -j2": ["-j2", "--segment-seconds", str(a.segment_seconds)],
    }
    if not a.no_ray:
        runs[f"segmented {a.segment_seconds:g} s ray"] = [
            "-j2",
            "--engine",
            "ray",
            "--segment-seconds",
            str(a.segment_seconds),
        ]
    long_rows = {}
    for name, extra in runs.items():
        out = work / ("long_out_" + name.replace(" ", "_"))
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        long_rows[name] = run(veil, [str(long_clip), "-o", str(out / "long.mp4"), *extra, *common])
        long_rows[name]["out"] = out  # type: ignore[assignment]
    minutes = a.minutes
    print(f"\n## one {minutes:g}-minute 720p 30 fps video, 3 moving faces")
    print("| run | wall s | x realtime | projected wall for 1 h | peak MiB | RSS by quarter of the run (MiB) |")
    print("|---|---|---|---|---|---|")
    ref = long_rows["unsegmented -j1"]["wall_s"]
    for name, r in long_rows.items():
        quarters = " / ".join(f"{q:.0f}" for q in r["quarters_mib"])  # type: ignore[union-attr]
        wall = float(r["wall_s"])  # type: ignore[arg-type]
        print(
            f"| {name} | {wall:.1f} | {minutes * 60 / wall:.3f} | {wall * (60 / minutes) / 3600:.1f} h "
            f"| {r['peak_mib']:.0f} | {quarters} |"
        )
    seg_name = list(runs)[1]
    print(f"\nsegmented vs unsegmented wall time: {ref / float(long_rows[seg_name]['wall_s']):.2f}x")  # type: ignore[arg-type]

    # 3. Projection: per-segment cost and engine overhead, per engine.
    workers = 2
    summary = {}
    for name in [n for n in runs if n.startswith("segmented")]:
        secs, frames = segment_costs(long_rows[name]["out"])  # type: ignore[arg-type]
        n = len(secs)
        wall = float(long_rows[name]["wall_s"])  # type: ignore[arg-type]
        busy = sum(secs)
        # Worker time the run spent beyond the segments' own work, per segment: process or Ray
        # start, model loading, scheduling, the manifest, the join (stream copy) and the
        # metadata check of the joined file.
        overhead = max(0.0, wall * workers - busy) / max(1, n)
        per_segment = busy / max(1, n)
        footage = (sum(frames) / max(1, n)) / 30.0
        # One segment per core at a time: a node of `cores` cores does cores x footage per
        # (per_segment + overhead) seconds.
        node_rate = cores * footage / (per_segment + overhead)
        summary[name] = {
            "segments": n,
            "per_segment_s": per_segment,
            "overhead_s": overhead,
            "footage_s": footage,
            "node_h_per_h": node_rate,
        }
        print(f"\n## projection from '{name}' ({n} segments)")
        print(
            f"per segment: {per_segment:.1f} s of worker time for {footage:.1f} s of footage; "
            f"engine + join overhead {overhead:.1f} s per segment"
        )
        print(f"hours of footage per node-hour ({cores} cores, as measured): {node_rate:.3f}")
        for m in (1, 4, 16, 64, 256):
            print(f"M={m:>3}: {node_rate * m:.2f} h of footage per wall hour")
    print(
        json.dumps(
            {
                "long": {k: {kk: vv for kk, vv in v.items() if kk != "out"} for k, v in long_rows.items()},
                "projection": summary,
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main()

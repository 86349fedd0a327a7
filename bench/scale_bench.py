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
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "samples" / "astronaut.png"
# Memory is sampled this often; fine enough to catch a peak, coarse enough for an hour of samples.
SAMPLE_S = 0.5


def make_clip(
    path: Path,
    seconds: float,
    size: tuple[int, int],
    fps: int,
    faces: int = 2,
    seed: int = 0,
    workers: int = 1,
) -> Path:
    """Faces (the sample photo, scaled) moving on a textured background; a keyframe every 2 s, as
    cameras write them; frames are made one at a time (memory stays flat). With `workers` > 1 the
    clip is made in pieces of whole keyframe intervals, in parallel, and joined by stream copy:
    the same frames as one process makes (the motion is a function of the frame index)."""
    total = int(seconds * fps)
    gop = 2 * fps
    if workers <= 1 or total < 4 * gop:
        _write_frames(path, 0, total, size, fps, faces, seed)
        return path
    per = -(-total // workers // gop) * gop  # whole keyframe intervals per piece
    pieces = [(k, min(k + per, total)) for k in range(0, total, per)]
    parts = [path.with_name(f"{path.stem}.part{i}.mp4") for i in range(len(pieces))]
    with ProcessPoolExecutor(workers) as pool:
        jobs = [
            pool.submit(_write_frames, part, first, end, size, fps, faces, seed)
            for part, (first, end) in zip(parts, pieces, strict=True)
        ]
        for job in jobs:
            job.result()
    _join(parts, path)
    for part in parts:
        part.unlink()
    return path


def _write_frames(
    path: Path, first: int, end: int, size: tuple[int, int], fps: int, faces: int, seed: int
) -> None:
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
        # ultrafast writes no B-frames, so the pieces join with decode order = display order.
        stream.options = {"preset": "ultrafast", "crf": "23"}
        for i in range(first, end):
            img = background.copy()
            t = i / fps
            for k in range(faces):
                pos = np.abs(((starts[k] + speeds[k] * t) % 2.0) - 1.0)
                x, y = int(pos[0] * (w - side)), int(pos[1] * (h - side))
                img[y : y + side, x : x + side] = photo
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i - first, Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _join(parts: list[Path], path: Path) -> None:
    """Pieces that each start with a keyframe, copied one after the other with shifted times."""
    with av.open(str(path), "w") as out:
        stream = None
        offset = 0
        for part in parts:
            with av.open(str(part)) as src:
                vin = src.streams.video[0]
                if stream is None:
                    stream = out.add_stream_from_template(vin)
                last = offset
                for packet in src.demux(vin):
                    if packet.dts is None:
                        continue
                    packet.pts += offset
                    packet.dts += offset
                    last = max(last, packet.pts + (packet.duration or 0))
                    packet.stream = stream
                    out.mux(packet)
                offset = last


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


def run(veil: list[str], args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run veil, sampling the resident memory of its whole process tree every `SAMPLE_S`; a
    line on stderr every minute shows a long run is alive."""
    started = time.monotonic()
    proc = subprocess.Popen([*veil, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    samples: list[tuple[float, int]] = []
    said = 0.0
    while proc.poll() is None:
        now = time.monotonic() - started
        samples.append((now, tree_rss(proc.pid)))
        if now - said >= 60:
            said = now
            print(f"  ... {now:.0f} s, {samples[-1][1] / 2**20:.0f} MiB", file=sys.stderr, flush=True)
        time.sleep(SAMPLE_S)
    _, err = proc.communicate()
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"veil {' '.join(args)} failed:\n{err[-2000:]}")
    peak = max((r for _, r in samples), default=0)
    # The highest RSS in each tenth of the run: flat memory means the last tenths are no higher
    # than the second (the first holds the start-up).
    tenths = [max((r for t, r in samples if q * wall / 10 <= t < (q + 1) * wall / 10), default=0) for q in range(10)]
    step = max(1, len(samples) // 400)
    return {
        "wall_s": wall,
        "peak_mib": peak / 2**20,
        "tenths_mib": [q / 2**20 for q in tenths],
        "samples": [(round(t, 1), round(r / 2**20)) for t, r in samples[::step]],
    }


def footage_hours(folder: Path) -> float:
    total = 0.0
    for path in folder.iterdir():
        with av.open(str(path)) as c:
            total += c.duration / av.time_base / 3600
    return total


def segment_costs(work_dir: Path) -> tuple[list[float], list[float]]:
    """(seconds each segment took inside its worker, frames of each) from the manifest, which
    the run kept (--keep-work) in its --work-dir."""
    secs, frames = [], []
    manifest = next((work_dir / "jobs").glob("*/manifest.jsonl"))
    for line in manifest.read_text().splitlines():
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
    ap.add_argument(
        "--long-runs",
        default="unsegmented,segmented,ray",
        help="which runs of the long video, comma-separated: unsegmented (-j1), segmented (-jN), ray",
    )
    ap.add_argument("-j", "--jobs", type=int, default=2, help="workers for the segmented and Ray runs")
    ap.add_argument("--json", type=Path, help="write the long runs (with memory samples) here")
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
        make_clip(long_clip, a.minutes * 60, (1280, 720), 30, faces=3, seed=7, workers=cores)
        print(f"\n(made a {a.minutes:g}-minute 720p clip in {time.monotonic() - t:.0f} s)")
    with av.open(str(long_clip)) as c:
        minutes = float(c.duration / av.time_base) / 60
    seg = ["--segment-seconds", f"{a.segment_seconds:g}"]
    every = {
        "unsegmented": ("unsegmented -j1", ["-j1"]),
        "segmented": (f"segmented {a.segment_seconds:g} s -j{a.jobs}", [f"-j{a.jobs}", *seg]),
        "ray": (f"segmented {a.segment_seconds:g} s ray -j{a.jobs}", [f"-j{a.jobs}", "--engine", "ray", *seg]),
    }
    wanted = [w.strip() for w in a.long_runs.split(",") if w.strip()]
    if a.no_ray:
        wanted = [w for w in wanted if w != "ray"]
    runs = {every[w][0]: every[w][1] for w in wanted}
    long_rows: dict[str, dict[str, Any]] = {}
    for name, extra in runs.items():
        out = work / ("long_out_" + name.replace(" ", "_"))
        kept = work / ("long_work_" + name.replace(" ", "_"))
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(kept, ignore_errors=True)
        out.mkdir()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        keep = ["--work-dir", str(kept), "--keep-work"]
        long_rows[name] = run(veil, [str(long_clip), "-o", str(out / "long.mp4"), *extra, *keep, *common])
        long_rows[name]["out"] = out
        long_rows[name]["work"] = kept
        long_rows[name]["frames"], long_rows[name]["duration_s"] = _frames_and_duration(out / "long.mp4")
    print(f"\n## one {minutes:g}-minute 720p 30 fps video, 3 moving faces ({cores} cores)")
    print("| run | wall s | x realtime | wall per footage hour | frames out | peak MiB | RSS by tenth of run (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for name, r in long_rows.items():
        tenths = " / ".join(f"{q:.0f}" for q in r["tenths_mib"])
        wall = float(r["wall_s"])
        print(
            f"| {name} | {wall:.1f} | {minutes * 60 / wall:.3f} | {wall * (60 / minutes) / 3600:.2f} h "
            f"| {r['frames']} | {r['peak_mib']:.0f} | {tenths} |"
        )
    unseg = every["unsegmented"][0]
    for name in [n for n in long_rows if n != unseg]:
        if unseg in long_rows:
            ratio = float(long_rows[unseg]["wall_s"]) / float(long_rows[name]["wall_s"])
            print(f"{name} against unsegmented -j1, wall time: {ratio:.2f}x faster")
            same = (long_rows[name]["frames"], long_rows[name]["duration_s"]) == (
                long_rows[unseg]["frames"],
                long_rows[unseg]["duration_s"],
            )
            print(f"{name}: same frame count and duration as unsegmented: {same}")

    # 3. Projection: per-segment cost and engine overhead, per engine.
    summary = {}
    for name in [n for n in long_rows if n != unseg]:
        secs, frames = segment_costs(long_rows[name]["work"])
        n = len(secs)
        wall = float(long_rows[name]["wall_s"])
        busy = sum(secs)
        # Worker time the run spent beyond the segments' own work, per segment: process or Ray
        # start, model loading, scheduling, idle workers at the end, the manifest, the join
        # (stream copy) and the metadata check of the joined file.
        overhead = max(0.0, wall * a.jobs - busy) / max(1, n)
        per_segment = busy / max(1, n)
        footage = (sum(frames) / max(1, n)) / 30.0
        # One segment per worker at a time: a node of `cores` cores, one worker per core, does
        # cores x footage per (per_segment + overhead) seconds.
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
    result = {
        "cores": cores,
        "minutes": minutes,
        "long": {k: {kk: vv for kk, vv in v.items() if kk not in ("out", "samples")} for k, v in long_rows.items()},
        "projection": summary,
    }
    print(json.dumps(result, default=str))
    if a.json:
        result["samples"] = {k: v["samples"] for k, v in long_rows.items()}
        a.json.write_text(json.dumps(result, default=str))


def _frames_and_duration(path: Path) -> tuple[int, float]:
    """Packets in the output's video stream (one per frame) and its duration, without decoding."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = sum(1 for p in c.demux(stream) if p.size)
        return frames, round(float(c.duration / av.time_base), 3)


if __name__ == "__main__":
    main()

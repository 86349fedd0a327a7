"""Speed bench (`make bench`): whole processes, one clip at a time, everything measured in one run.

On each clip, one after another (never two at once):

* the **I/O floor**: PyAV decodes the clip to RGB and libx264 (veryfast, CRF 18, veil's own
  encoder settings) encodes it again, nothing else, in a process of its own (`--floor`): no
  tool that decodes and re-encodes the same file can beat it on the same machine;
* **deface** 1.5.0 (`.venv-bench`, `--replacewith solid`, defaults otherwise);
* **veil** `fast`, `balanced` and `thorough` (`--mask solid`, defaults otherwise).

Per run: wall time, CPU time (user + system of the process and its children, from
`os.wait4`), peak memory (the largest resident set of the process or a child), fps, the ratio
to deface's speed, and the share of the I/O floor's speed. The median run of `--runs` is shown.

Beside each, what it found, so a speed-up that loses people shows:

* `sd` (the CUHK Mall fixed camera, 640x480, 10 fps): head points covered, with
  `mall_bench.py`'s hand-marked points and its rule (a point is covered when all 81 pixels of
  the 9x9 px around it are masked), on every annotated frame (every 5th) of the part that ran.
  deface paints black only, so every tool paints black here and "masked" is the same for all:
  the pixel changed (`video_bench.changed_pixels`: moved by more than 24 levels, or is now
  near-black). (`mall_bench.py score` wants veil's masks magenta; the pixel rule keeps every
  tool on the same footing.) A run that fails (e.g. `thorough` failing its own verification on
  the first 150 frames of this clip, black or magenta) is listed with its error line.
* `720p`, `1080p` (moving, handheld): `videos/egoblur_gen1_test_video.mp4` (608x1080 portrait,
  30 fps) scaled (bicubic) to 720x1280 and 1080x1920 (portrait 720p and 1080p: the same pixel
  counts as 1280x720 and 1920x1080) and re-encoded at CRF 16. No annotations: the reference
  is what `veil balanced` itself detected (its plan's boxes found by a detector, not the
  tracker's fills, 16 px high or more); a tool leaks a reference face-frame when under 70 %
  of the box's pixels changed. balanced leaks none of its own by construction; the figure
  shows what the others (and a later, faster balanced run against this one's plan) lose.

Machine and load: the figures are of this machine at the time of the run (printed with the
load average before and after); other processes on the machine slow every tool, not equally.

    .venv/bin/python bench/speed_bench.py [--quick] [--runs 3] [--clips sd,720p,1080p]
        [--tools floor,deface,fast,balanced,thorough] [--json bench/results/speed.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
import mall_bench  # noqa: E402
import run as run_bench  # noqa: E402
from video_bench import changed_pixels  # noqa: E402

WORK = BENCH / "work" / "speed"
DEFAULT_DATA = ROOT.parent / "shared" / "data"
MOVING = "videos/egoblur_gen1_test_video.mp4"
MIN_FACE = 16.0
COVERED = 0.70
# (frames of a full run, frames of --quick) per clip, from the start of each (re-encoded at CRF
# 16); the mall clip has 1000 frames at 10 fps, the moving one 600 at 30 fps.
FRAMES = {"sd": (500, 150), "720p": (300, 60), "1080p": (150, 30)}
SIZES = {"720p": (720, 1280), "1080p": (1080, 1920)}
# The slowest preset runs on part of each clip only (its fps then carries more start-up).
SLOW = {"thorough": 0.3}
TOOLS = ["floor", "deface", "fast", "balanced", "thorough"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- the I/O floor


def io_floor(src: Path, dst: Path) -> int:
    """Decode to RGB and encode with veil's x264 settings; nothing else (run as its own process)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"fflags": "+bitexact"}) as out:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"  # as veil's VideoSource decodes
        ctx = vin.codec_context
        stream = out.add_stream("libx264", rate=vin.average_rate or Fraction(30))
        stream.width, stream.height, stream.pix_fmt = ctx.width, ctx.height, "yuv420p"
        stream.time_base = vin.time_base
        stream.options = {"crf": "18", "preset": "veryfast"}
        n = 0
        for frame in inp.decode(vin):
            rgb = frame.to_ndarray(format="rgb24")
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts, vf.time_base = frame.pts, vin.time_base
            for packet in stream.encode(vf):
                out.mux(packet)
            n += 1
        for packet in stream.encode(None):
            out.mux(packet)
    return n


# ----------------------------------------------------------------------------- clips


@dataclass
class Clip:
    name: str
    path: Path
    frames: int
    kind: str  # "fixed" (mall, head points) or "moving" (leaks against balanced)


def write_clip(src: Path, dst: Path, frames: int, size: tuple[int, int] | None) -> int:
    """The first `frames` frames of `src`, scaled to `size` (w, h) if given, at CRF 16."""
    import cv2

    if dst.exists():
        with av.open(str(dst)) as c:
            return c.streams.video[0].frames or sum(1 for _ in c.decode(video=0))
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp.mp4")
    n = 0
    with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
        vin = inp.streams.video[0]
        rate = vin.average_rate or Fraction(30)
        ctx = vin.codec_context
        w, h = size or (ctx.width, ctx.height)
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "16", "preset": "medium"}
        for frame in inp.decode(vin):
            if n >= frames:
                break
            rgb = frame.to_ndarray(format="rgb24")
            if size is not None:
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts, vf.time_base = n, 1 / Fraction(rate)
            for packet in stream.encode(vf):
                out.mux(packet)
            n += 1
        for packet in stream.encode(None):
            out.mux(packet)
    tmp.replace(dst)
    return n


def prepare(data: Path, names: list[str], quick: bool) -> list[Clip]:
    clips = []
    for name in names:
        frames = FRAMES[name][1 if quick else 0]
        if name == "sd":
            src = data / mall_bench.CLIP
            path = WORK / f"mall_first{frames}.mp4"
            clips.append(Clip(name, path, write_clip(src, path, frames, None), "fixed"))
        else:
            path = WORK / f"moving_{name}_first{frames}.mp4"
            clips.append(Clip(name, path, write_clip(data / MOVING, path, frames, SIZES[name]), "moving"))
    return clips


def first_frames(src: Path, frames: int) -> tuple[Path, int]:
    """Part of a clip for the slow presets (same pixels as the clip's first frames: re-encoded
    from the clip at CRF 16)."""
    path = WORK / f"{src.stem}_first{frames}.mp4"
    return path, write_clip(src, path, frames, None)


# ----------------------------------------------------------------------------- running


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    peak_mib: float
    error: str | None = None


def timed(cmd: list[str]) -> Run:
    """Run to completion; wall time, and CPU time and peak RSS of the process and its children.
    A failed run is measured too, with its last error line (the table shows it)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        # wait4 gives this child's rusage (its own children included once it has waited for
        # them), unlike RUSAGE_CHILDREN, which adds up every child this bench ever ran.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
    error = None
    if proc.returncode != 0:
        error = (lines[-1] if lines else f"exit {proc.returncode}")[-300:]
        log(f"  failed ({proc.returncode}): {' '.join(cmd)}: {error}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, error)


def command(tool: str, clip: Clip, src: Path, out: Path, args: argparse.Namespace) -> list[str]:
    if tool == "floor":
        return [sys.executable, str(Path(__file__).resolve()), "--floor", str(src), str(out)]
    if tool == "deface":
        return [args.deface, str(src), "-o", str(out), "--replacewith", "solid"]
    cmd = [args.veil, str(src), "-o", str(out), "--preset", tool, "--mask", "solid", "--quiet", "--overwrite"]
    if tool == "balanced":
        cmd += ["--plan", str(out.with_suffix(".plan.json"))]
    return cmd + args.veil_args


def run_tool(tool: str, clip: Clip, args: argparse.Namespace) -> dict[str, Any]:
    src, frames = clip.path, clip.frames
    if tool in SLOW:
        src, frames = first_frames(clip.path, max(10, int(clip.frames * SLOW[tool])))
    out = WORK / "out" / f"{clip.name}-{tool}.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = []
    n_runs = 1 if tool in SLOW else args.runs
    for i in range(n_runs):
        out.unlink(missing_ok=True)
        runs.append(timed(command(tool, clip, src, out, args)))
        log(f"  {clip.name} {tool}: run {i + 1}/{n_runs} {runs[-1].wall_s:.1f} s, cpu {runs[-1].cpu_s:.1f} s")
    median = sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]
    failed = next((r.error for r in runs if r.error), None)
    return {
        "error": failed,
        "frames": frames,
        "input": str(src),
        "output": str(out),
        "runs": [r.__dict__ for r in runs],
        "wall_s": median.wall_s,
        "cpu_s": median.cpu_s,
        "peak_mib": median.peak_mib,
        "fps": frames / median.wall_s,
        "cores_busy": median.cpu_s / median.wall_s,
    }


# ----------------------------------------------------------------------------- what was found


def frames_of(path: Path) -> Iterator[np.ndarray]:
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def pairs(result: dict[str, Any]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(input frame, output frame) of a run, in order (every tool writes every frame)."""
    yield from zip(frames_of(Path(result["input"])), frames_of(Path(result["output"])), strict=True)


def fit(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """deface's writer (imageio) scales sizes that are not multiples of 16 (1080 -> 1088):
    back to the input's size before comparing pixels."""
    if image.shape == shape:
        return image
    import cv2

    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def heads_covered(result: dict[str, Any], data: Path) -> dict[str, Any]:
    points = mall_bench.load_points(data)
    frames = [i for i in mall_bench.chosen(points, "all", 5) if i < result["frames"]]
    want, hits, total = set(frames), 0, 0
    for i, (before, after) in enumerate(pairs(result)):
        if i in want:
            changed = changed_pixels(before, fit(after, before.shape))
            pts = points[i]
            hits += mall_bench.covered(changed, pts)
            total += len(pts)
    return {"heads_covered": round(hits / max(1, total), 4), "head_points": total}


def reference_boxes(plan_path: Path) -> dict[int, np.ndarray]:
    """Per frame: the boxes balanced's detectors found (not the tracker's fills), >= MIN_FACE px."""
    sys.path.insert(0, str(ROOT / "src"))
    from veil.plan import FrameBoxes, load_plan

    plan = load_plan(plan_path)
    boxes = FrameBoxes(plan)
    out = {}
    for i in range(int(plan.input["frames"])):
        masked, _ = boxes.at(i)
        keep = ~masked.filled & ((masked.xyxy[:, 3] - masked.xyxy[:, 1]) >= MIN_FACE)
        out[i] = masked.xyxy[keep]
    return out


def leaks(result: dict[str, Any], reference: dict[int, np.ndarray]) -> dict[str, Any]:
    leaked = total = 0
    for i, (before, after) in enumerate(pairs(result)):
        boxes = reference.get(i)
        if boxes is None or not len(boxes):
            continue
        changed = changed_pixels(before, fit(after, before.shape))
        h, w = changed.shape
        for x1, y1, x2, y2 in boxes:
            a, b = int(max(0, np.floor(x1))), int(min(w, np.ceil(x2)))
            c, d = int(max(0, np.floor(y1))), int(min(h, np.ceil(y2)))
            if b <= a or d <= c:
                continue
            total += 1
            leaked += changed[c:d, a:b].mean() < COVERED
    return {"leaks_per_1000": round(1000 * leaked / max(1, total), 2), "face_frames": total, "leaked": leaked}


# ----------------------------------------------------------------------------- report


def cell(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(result: dict[str, Any]) -> str:
    lines = [
        f"veil speed bench, {result['date']}, {result['machine']}",
        f"load average before {result['load_before']}, after {result['load_after']}; "
        f"median of {result['runs']} run(s) ({', '.join(SLOW)}: 1 run on part of each clip)",
        "",
        f"{'clip':<6} {'tool':<14}{'frames':>7}{'wall s':>9}{'CPU s':>9}{'cores':>7}{'peak MiB':>10}"
        f"{'fps':>8}{'vs deface':>11}{'CPU vs d.':>10}{'of floor':>10}  found",
    ]
    for clip, tools in result["clips"].items():
        floor, deface = tools.get("floor"), tools.get("deface")
        for tool, t in tools.items():
            vs = t["fps"] / deface["fps"] if deface and tool not in ("deface", "floor") else None
            # Speed by CPU time per frame: what the ratio would be on a machine with idle cores.
            cpu_vs = (
                (deface["cpu_s"] / deface["frames"]) / (t["cpu_s"] / t["frames"])
                if deface and tool not in ("deface", "floor")
                else None
            )
            share = t["fps"] / floor["fps"] if floor and tool != "floor" else None
            if t.get("error"):
                found = f"FAILED: {t['error']}"
            elif "heads_covered" in t:
                found = f"heads covered {t['heads_covered'] * 100:.1f} % of {t['head_points']}"
            elif "leaks_per_1000" in t:
                found = f"leaks {t['leaks_per_1000']:.1f} per 1000 of balanced's {t['face_frames']}"
            else:
                found = ""
            lines.append(
                f"{clip:<6} {tool:<14}{t['frames']:>7}{t['wall_s']:>9.1f}{t['cpu_s']:>9.1f}{t['cores_busy']:>7.2f}"
                f"{t['peak_mib']:>10.0f}{t['fps']:>8.1f}{cell(vs, '.2f'):>10}x{cell(cpu_vs, '.2f'):>9}x"
                f"{cell(share and share * 100, '.1f'):>9}%"
                f"  {found}"
            )
        lines.append("")
    return "\n".join(lines).rstrip()


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--floor", nargs=2, metavar=("IN", "OUT"), help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--quick", action="store_true", help="short clips, one run each (a smoke test)")
    p.add_argument("--runs", type=int, default=None, help="runs per tool (default 3; --quick 1)")
    p.add_argument("--clips", default="sd,720p,1080p")
    p.add_argument("--tools", default=",".join(TOOLS))
    p.add_argument("--veil", default=str(ROOT / ".venv" / "bin" / "veil"))
    p.add_argument("--deface", default=str(ROOT / ".venv-bench" / "bin" / "deface"))
    p.add_argument("--veil-args", default="", help="extra options for every veil run, e.g. '-j 1'")
    p.add_argument("--reference", type=Path, default=None, help="leaks against this balanced plan directory")
    p.add_argument("--json", type=Path, default=None, help="default: bench/results/speed.json (full runs)")
    args = p.parse_args(argv)
    if args.floor:
        io_floor(Path(args.floor[0]), Path(args.floor[1]))
        return 0
    args.runs = args.runs or (1 if args.quick else 3)
    args.veil_args = args.veil_args.split()
    if not (args.data / mall_bench.CLIP).is_file() or not (args.data / MOVING).is_file():
        print(f"speed bench: no {mall_bench.CLIP} or {MOVING} under {args.data}; nothing to measure")
        return 0
    tools = [t for t in args.tools.split(",") if t]
    for exe in [args.veil] + ([args.deface] if "deface" in tools else []):
        if not shutil.which(exe):
            print(f"speed bench: {exe} not found (make bench builds both environments)")
            return 2
    WORK.mkdir(parents=True, exist_ok=True)
    clips = prepare(args.data, [c for c in args.clips.split(",") if c], args.quick)
    result: dict[str, Any] = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": run_bench.machine(),
        "veil": run_bench.tool_version([args.veil, "--version"]),
        "deface": run_bench.tool_version([args.deface, "--version"]) if "deface" in tools else None,
        "load_before": load(),
        "runs": args.runs,
        "quick": args.quick,
        "veil_args": args.veil_args,
        "clips": {},
    }
    for clip in clips:
        log(f"speed bench: {clip.name} ({clip.path.name}, {clip.frames} frames)")
        res: dict[str, Any] = {}
        for tool in tools:
            res[tool] = run_tool(tool, clip, args)
        for tool, t in res.items():
            if tool == "floor" or t["error"]:
                continue
            if clip.kind == "fixed":
                t.update(heads_covered(t, args.data))
            else:
                plan = (args.reference / f"{clip.name}-balanced.plan.json") if args.reference else None
                if plan is None and "balanced" in res:
                    plan = Path(res["balanced"]["output"]).with_suffix(".plan.json")
                if plan is not None and plan.is_file():
                    ref = reference_boxes(plan)
                    # Only the frames both ran on (the slow presets run on the first part).
                    t.update(leaks(t, {i: b for i, b in ref.items() if i < t["frames"]}))
        result["clips"][clip.name] = res
    result["load_after"] = load()
    result["table"] = table(result)
    print(result["table"], flush=True)
    out = args.json or (None if args.quick else BENCH / "results" / "speed.json")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        plain = json.dumps(result, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))
        out.write_text(plain + "\n")
        log(f"speed bench: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

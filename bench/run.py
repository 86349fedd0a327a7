"""`make bench`: veil against deface on the same annotated images and the same video.

Both tools are run as users run them (whole processes, solid fill, PNG output) and are scored
only from their output pixels (see scoring.py). Run it with the bench environment's Python,
which has deface installed; veil is called as an external command (`--veil`, default
`.venv/bin/veil`), so the two never share an environment.

    python bench/run.py [--data DIR] [--presets fast,balanced,thorough] [--quick]

`--data` is a folder holding `faces.json` (a list of `{"image", "boxes": [[x, y, w, h]...],
"ignore": [...]}`, image paths relative to the folder) and, for timing, a video. Point it at
WIDER FACE converted with `bench/wider_to_json.py`, or at your own annotated set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scoring  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_VIDEO = "videos/egoblur_gen1_test_video.mp4"
BUCKET_NAMES = [name for name, _, _ in scoring.BUCKETS]
# Presets too slow to time on the full clip within the bench's ~15 minutes: one run on the
# first SHORT_FRAMES frames (start-up then weighs more, so their fps is a slight underestimate).
SLOW_PRESETS = {"thorough"}
SHORT_FRAMES = 30
# The video and plate benches import veil, so they run in veil's own environment.
VEIL_PYTHON = ROOT / ".venv" / "bin" / "python"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with faces.json (default ../shared/data)")
    p.add_argument("--annotations", default="faces.json", help="annotation file inside --data")
    p.add_argument("--video", default=DEFAULT_VIDEO, help="video inside --data to time ('' to skip timing)")
    p.add_argument("--presets", default="fast,balanced,thorough", help="veil presets to run, comma-separated")
    p.add_argument("--quick", action="store_true", help="one timing run on a 30-frame clip (for a smoke test)")
    p.add_argument("--frames", type=int, default=120, help="frames of the video to time on (default 120)")
    p.add_argument("--runs", type=int, default=3, help="timing runs per tool; the median is reported")
    p.add_argument("--veil", default=str(ROOT / ".venv" / "bin" / "veil"), help="veil executable")
    p.add_argument("--deface", default=str(Path(sys.executable).parent / "deface"), help="deface executable")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    p.add_argument("--video-seeds", type=int, nargs="+", default=[1, 2, 3], help="seeds of the generated clips")
    p.add_argument(
        "--skip", default="", help="comma list of parts to skip: video (generated clips), plates, redact-all"
    )
    p.add_argument(
        "--members",
        default="centerface-only,blazeface-only,yunet-only,balanced-without-heads,balanced-without-edge",
        help="presets scored on images beside balanced ('' for none): one of balanced's face detectors alone "
        "(what each member finds), or balanced less one rule (balanced-without-*: what that rule adds)",
    )
    p.add_argument(
        "--before",
        default="",
        help="another veil executable (e.g. the previous commit's) whose --presets are scored on images in the "
        "same run, as 'before <preset>'",
    )
    p.add_argument("--images-only", action="store_true", help="score images only: no timing, no video or plates")
    args = p.parse_args(argv)
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    if args.images_only:
        args.video = ""
        args.skip |= {"video", "plates"}
    if args.quick:
        args.frames, args.runs = min(args.frames, 30), 1
    return args


# ----------------------------------------------------------------------------- helpers


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_timed(cmd: list[str]) -> float:
    """Run a command to completion (output discarded unless it fails); wall seconds."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return seconds


def tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        return (out.stdout or out.stderr).strip().splitlines()[-1]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


# ----------------------------------------------------------------------------- images


def prepare_inputs(anns: list[scoring.Annotation], data: Path) -> list[Path]:
    """Every annotated image as an RGB PNG under bench/work/inputs (same relative path), so both
    tools start from identical, losslessly stored pixels. Metadata is not copied: the
    annotations are on the stored pixel grid, so no EXIF rotation may apply."""
    inputs = WORK / "inputs"
    out = []
    for ann in anns:
        rel = ann.image.relative_to(data.resolve()).with_suffix(".png")
        target = inputs / rel
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(load_rgb(ann.image)).save(target)
        out.append(target)
    return out


def find_output(out_dir: Path, rel: Path) -> Path | None:
    """veil mirrors the input tree under -o; accept the tree with or without the top folder."""
    for cand in (out_dir / rel, out_dir / "inputs" / rel):
        if cand.exists():
            return cand
    hits = sorted(out_dir.rglob(rel.name))
    return hits[0] if hits else None


def score_outputs(
    anns: list[scoring.Annotation], pngs: list[Path], outputs: list[Path | None]
) -> list[scoring.ImageScore]:
    scores = []
    for ann, png, out in zip(anns, pngs, outputs, strict=True):
        before = load_rgb(png)
        if out is None:
            log(f"  no output for {png.name}: all its faces count as missed")
            scores.append(scoring.missed_image_score(ann, before.shape[:2]))
            continue
        scores.append(scoring.score_image(before, load_rgb(out), ann))
    return scores


def run_veil_images(
    args: argparse.Namespace, preset: str, pngs: list[Path], veil: str = "", tag: str = "veil"
) -> tuple[list[Path | None], float]:
    out_dir = WORK / "out" / f"{tag}-{preset}"
    shutil.rmtree(out_dir, ignore_errors=True)
    inputs = WORK / "inputs"
    # Only the folder holding this set's images (bench/work/inputs may hold other sets too);
    # one image is its own input, and -o then names the output file.
    if len(pngs) > 1:
        source, target = Path(os.path.commonpath(pngs)), out_dir
    else:
        source, target = pngs[0], out_dir / pngs[0].relative_to(inputs)
        target.parent.mkdir(parents=True, exist_ok=True)
    cmd = [veil or args.veil, str(source), "-o", str(target), "--preset", preset]
    cmd += ["--mask", "solid", "--format", "png", "--quiet", "--overwrite"]
    seconds = run_timed(cmd)
    return [find_output(out_dir, p.relative_to(inputs)) for p in pngs], seconds


def run_deface_images(args: argparse.Namespace, pngs: list[Path]) -> tuple[list[Path | None], float]:
    """deface writes `<name>_anonymized.png` next to each input; one process for all images."""
    inputs = WORK / "inputs"
    work = WORK / "out" / "deface"
    shutil.rmtree(work, ignore_errors=True)
    copies = []
    for png in pngs:
        copy = work / png.relative_to(inputs)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, copy)
        copies.append(copy)
    seconds = run_timed([args.deface, *map(str, copies), "--replacewith", "solid"])
    outs: list[Path | None] = []
    for copy in copies:
        out = copy.with_name(copy.stem + "_anonymized.png")
        outs.append(out if out.exists() else None)
    return outs, seconds


# ----------------------------------------------------------------------------- video


def trim_video(src: Path, frames: int) -> tuple[Path, int]:
    """The first `frames` frames of `src`, re-encoded losslessly-enough (H.264 CRF 12) with PyAV."""
    import av

    target = WORK / f"clip_{src.stem}_{frames}.mp4"
    if target.exists():
        with av.open(str(target)) as c:
            n = sum(1 for _ in c.decode(video=0))
        return target, n
    tmp = target.with_suffix(".tmp.mp4")
    with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
        vin = inp.streams.video[0]
        rate = vin.average_rate or 30
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        vout = out.add_stream(codec, rate=rate)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        if codec == "libx264":
            vout.options = {"crf": "12", "preset": "fast"}
        n = 0
        for frame in inp.decode(vin):
            if n >= frames:
                break
            for packet in vout.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
            n += 1
        for packet in vout.encode():
            out.mux(packet)
    tmp.replace(target)
    return target, n


def time_video(args: argparse.Namespace, source: Path, presets: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    clip, frames = trim_video(source, args.frames)
    short_clip, short_frames = trim_video(source, min(args.frames, SHORT_FRAMES))
    log(f"bench: timing on {clip.name} ({frames} frames, {args.runs} runs each)")
    tools: list[tuple[str, Path, int, int, list[str]]] = [("deface", clip, frames, args.runs, [])]
    for preset in presets:
        slow = preset in SLOW_PRESETS
        tools.append(
            (
                f"veil {preset}",
                short_clip if slow else clip,
                short_frames if slow else frames,
                1 if slow else args.runs,
                [],
            )
        )
    if args.before and "balanced" in presets:
        tools.append(("before balanced", clip, frames, args.runs, []))
    if "balanced" in presets and "redact-all" not in args.skip:
        # The cost of redacting plates and text too (issue: at most 3x faces alone).
        tools.append(("veil balanced --redact all", clip, frames, 1, ["--redact", "all"]))
    for name, path, n, runs, extra in tools:
        out = WORK / "out" / f"{name.replace(' ', '-')}_clip.mp4"
        if name == "deface":
            cmd = [args.deface, str(path), "-o", str(out), "--replacewith", "solid"]
        else:
            preset = name.split()[1]
            cmd = [
                args.before if name.startswith("before") else args.veil,
                str(path),
                "-o",
                str(out),
                "--preset",
                preset,
                "--mask",
                "solid",
                "--quiet",
                "--overwrite",
                *extra,
            ]
        times = []
        for i in range(runs):
            times.append(run_timed(cmd))
            log(f"  {name}: run {i + 1}/{runs} {times[-1]:.1f} s ({n} frames)")
        median = statistics.median(times)
        results[name] = {"frames": n, "seconds": times, "median_s": median, "fps": n / median}
    return results


# ----------------------------------------------------------------------------- report


def fmt(v: float | None, digits: int = 3) -> str:
    return "  -  " if v is None else f"{v:.{digits}f}"


def table(result: dict[str, Any]) -> str:
    tools = result["tools"]
    deface = tools["deface"]
    head = f"{'tool':<22}" + "".join(f"{b:>9}" for b in BUCKET_NAMES)
    head += f"{'over-red.':>11}{'images s':>10}{'video fps':>11}{'fps ratio':>11}"
    counts = deface["images"]["recall"]
    lines = [
        f"veil benchmark, {result['date']}, {result['machine']}",
        f"data: {result['data']['annotations']} ({result['data']['images']} images, "
        f"{result['data']['faces']} faces); video: {result['video'].get('clip', 'not timed')}",
        "recall = share of faces with >= 70% of their box's pixels changed, per face height (px);",
        "over-red. = share of pixels outside every face box grown 2x that changed; fps = whole process, median",
        "",
        f"{'faces':<22}" + "".join(f"{counts[b]['faces']:>9}" for b in BUCKET_NAMES),
        head,
    ]
    for name, t in tools.items():
        rec = t["images"]["recall"]
        fps = t.get("video", {}).get("fps")
        ratio = fps / deface["video"]["fps"] if fps and deface.get("video") and name != "deface" else None
        lines.append(
            f"{name:<22}"
            + "".join(f"{fmt(rec[b]['recall']):>9}" for b in BUCKET_NAMES)
            + f"{t['images']['over_redaction'] * 100:>10.2f}%"
            + f"{t['images_seconds']:>10.1f}"
            + f"{fmt(fps, 2):>11}"
            + f"{fmt(ratio, 2):>11}"
        )
    if result.get("holdout"):
        lines += ["", "held-out half (odd-numbered images by sorted name; presets were tuned on the even half):"]
        for name, summary in result["holdout"].items():
            rec = summary["recall"]
            lines.append(
                f"{name:<22}"
                + "".join(f"{fmt(rec[b]['recall']):>9}" for b in BUCKET_NAMES)
                + f"{summary['over_redaction'] * 100:>10.2f}%"
            )
    ablations = [n for n in tools if n.startswith("veil balanced-without-")]
    if ablations and "veil balanced" in tools:
        full = tools["veil balanced"]["images"]
        lines += ["", "what each rule of balanced adds (faces redacted by balanced less by balanced without it):"]
        for name in ablations:
            rec = tools[name]["images"]["recall"]
            added = "".join(f"{full['recall'][b]['redacted'] - rec[b]['redacted']:>+9d}" for b in BUCKET_NAMES)
            over = (full["over_redaction"] - tools[name]["images"]["over_redaction"]) * 100
            lines.append(f"  {name.removeprefix('veil balanced-without-'):<20}{added}{over:>+10.2f} points")
    lines += ["", "veil / deface:"]
    for name, t in tools.items():
        if name == "deface":
            continue
        c = t["vs_deface"]
        lines.append(
            f"  {name:<21} misses >=16 px: {fmt(c['misses_ge16_ratio'], 2)}x   "
            f"recall all: {c['recall_all_diff']:+.3f}   over-redaction: {fmt(c['over_redaction_ratio'], 2)}x   "
            f"fps: {fmt(c['fps_ratio'], 2)}x"
        )
    return "\n".join(lines)


def compare(veil: dict[str, Any], deface: dict[str, Any]) -> dict[str, Any]:
    vr, dr = veil["images"]["recall"], deface["images"]["recall"]
    v_miss = vr["all>=16"]["faces"] - vr["all>=16"]["redacted"]
    d_miss = dr["all>=16"]["faces"] - dr["all>=16"]["redacted"]
    v_over, d_over = veil["images"]["over_redaction"], deface["images"]["over_redaction"]
    v_fps, d_fps = veil.get("video", {}).get("fps"), deface.get("video", {}).get("fps")
    return {
        "misses_ge16": v_miss,
        "deface_misses_ge16": d_miss,
        "misses_ge16_ratio": (v_miss / d_miss) if d_miss else None,
        "recall_all_diff": (vr["all"]["recall"] or 0.0) - (dr["all"]["recall"] or 0.0),
        "over_redaction_ratio": (v_over / d_over) if d_over else None,
        "fps_ratio": (v_fps / d_fps) if v_fps and d_fps else None,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data: Path = args.data
    ann_path = data / args.annotations
    if not ann_path.is_file():
        print(f"bench: no annotations at {ann_path}; nothing to benchmark (pass --data DIR).")
        return 0
    for exe in (args.veil, args.deface, *([args.before] if args.before else [])):
        if not shutil.which(exe):
            print(f"bench: {exe} not found (run `make bench`, which builds both environments)")
            return 2
    presets = [p for p in args.presets.split(",") if p]
    WORK.mkdir(parents=True, exist_ok=True)
    anns = scoring.load_annotations(ann_path)
    log(f"bench: {len(anns)} images from {ann_path}")
    pngs = prepare_inputs(anns, data)

    tools: dict[str, dict[str, Any]] = {}
    per_image: dict[str, list[scoring.ImageScore]] = {}
    log("bench: deface on images")
    outs, seconds = run_deface_images(args, pngs)
    per_image["deface"] = score_outputs(anns, pngs, outs)
    tools["deface"] = {"version": tool_version([args.deface, "--version"]), "images_seconds": seconds}
    members = [m for m in args.members.split(",") if m and m not in presets]
    for preset in presets + members:
        log(f"bench: veil --preset {preset} on images")
        outs, seconds = run_veil_images(args, preset, pngs)
        name = f"veil {preset}"
        per_image[name] = score_outputs(anns, pngs, outs)
        tools[name] = {"images_seconds": seconds}
    for preset in presets if args.before else []:
        log(f"bench: before: {args.before} --preset {preset} on images")
        outs, seconds = run_veil_images(args, preset, pngs, veil=args.before, tag="before")
        name = f"before {preset}"
        per_image[name] = score_outputs(anns, pngs, outs)
        tools[name] = {"images_seconds": seconds}
    for name, scores in per_image.items():
        tools[name]["images"] = scoring.summarize(scores)

    # The split the presets were tuned on: even-numbered images (sorted by file name) for
    # tuning, odd-numbered held out. Reported separately so overfitting would show.
    order = {a.image: i for i, a in enumerate(sorted(anns, key=lambda a: a.image.name))}
    holdout = {
        name: scoring.summarize([s for a, s in zip(anns, scores, strict=True) if order[a.image] % 2 == 1])
        for name, scores in per_image.items()
    }

    video: dict[str, Any] = {}
    if args.video and (data / args.video).is_file():
        timings = time_video(args, data / args.video, presets)
        frames = timings["deface"]["frames"]
        slow = [p for p in presets if p in SLOW_PRESETS]
        note = f" ({', '.join(slow)}: 1 run on the first {SHORT_FRAMES})" if slow else ""
        video = {"source": args.video, "clip": f"{args.video}, first {frames} frames{note}", "frames": frames}
        for name, t in timings.items():
            tools.setdefault(name, {})["video"] = t
    else:
        log(f"bench: no video at {data / args.video}; timing skipped")

    redact_all = tools.pop("veil balanced --redact all", {}).get("video")
    for name in tools:
        if name != "deface":
            tools[name]["vs_deface"] = compare(tools[name], tools["deface"])
    result = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(),
        "veil": tool_version([args.veil, "--version"]),
        "data": {
            "annotations": str(ann_path),
            "images": len(anns),
            "faces": int(sum(len(a.boxes) for a in anns)),
            "ignore_boxes": int(sum(len(a.ignore) for a in anns)),
        },
        "video": video,
        "runs": args.runs,
        "tools": tools,
        "holdout": holdout,
    }
    result["table"] = table(result)
    if redact_all and "video" in tools.get("veil balanced", {}):
        ratio = redact_all["median_s"] / tools["veil balanced"]["video"]["median_s"]
        result["redact_all_video"] = {**redact_all, "time_vs_faces_only": ratio}
        result["table"] += (
            f"\n\nveil balanced --redact all (faces, plates, text) on the same clip: "
            f"{redact_all['fps']:.2f} fps, {ratio:.2f}x the time of faces alone"
        )
    print(result["table"], flush=True)
    for name, script, extra in (
        ("video", "video_bench.py", ["--seeds", *map(str, args.video_seeds)]),
        ("plates", "plates_bench.py", []),
    ):
        if name in args.skip:
            continue
        out = WORK / f"{name}_bench.json"
        log(f"bench: {script} (veil's own environment)")
        proc = subprocess.run(
            [str(VEIL_PYTHON), str(ROOT / "bench" / script), "--data", str(data), "--json", str(out), *extra],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{script} failed: {proc.stderr[-3000:]}")
        print(f"\n{proc.stdout.strip()}", flush=True)
        result[f"{name}_bench"] = json.loads(out.read_text())
        result[f"{name}_table"] = proc.stdout.strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    log(f"bench: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Heads covered by `veil live` on a real fixed camera, streamed in real time.

The shared mall clip (`cctv/mall_dev.mp4`, 640x480 at 10 fps, hand-marked head points on every 5th
frame; see mall_bench.py) is played into `veil live --realtime` (the file paced at its own rate,
as a camera sends it) with magenta masks, once per `--redact` variant, and the output is scored
frame by frame against the input (live writes one output frame per input frame: painted, or
masked whole when its boxes were not final by the deadline):

* frames shown: the share of frames not masked whole (target >= 90 %);
* heads covered in the frames shown (a point counts when its 9x9 px are magenta; target >= 95 %);
* the share of a shown frame masked away from every head (mall_bench.py's rule);
* the ladder's final level from the live log, and the same clip run as a file (the one-shot
  `veil` with the same classes) for reference, in the same run.

Run: `PYTHONPATH=src .venv/bin/python bench/live_cctv.py [--variants faces faces,heads] [--frames 400]`.
Timings depend on the machine's load: on a busy machine live steps down and covers less.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mall_bench as mb  # noqa: E402

MAGENTA = "255,0,255"


def cut_clip(src: Path, dst: Path, frames: int) -> None:
    """The clip's first `frames` frames, re-encoded at its own rate (a short run while tuning)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        rate = stream.average_rate or Fraction(10)
        enc = out.add_stream("libx264", rate=rate)
        enc.width, enc.height, enc.pix_fmt = stream.width, stream.height, "yuv420p"
        enc.options = {"crf": "16", "preset": "veryfast"}
        for i, frame in enumerate(inp.decode(video=0)):
            if i >= frames:
                break
            vf = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            vf.pts, vf.time_base = i, 1 / rate
            for p in enc.encode(vf):
                out.mux(p)
        for p in enc.encode(None):
            out.mux(p)


def magenta_masks(path: Path) -> list[np.ndarray]:
    masks = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24").astype(np.int16)
            masks.append((rgb[..., 0] > 170) & (rgb[..., 1] < 100) & (rgb[..., 2] > 170))
    return masks


def score(masks: list[np.ndarray], points: dict[int, np.ndarray], frames: int, live: bool) -> dict[str, Any]:
    whole = [bool(m.mean() > 0.98) for m in masks]
    tally = mb.Tally()
    for i in sorted(points):
        if i >= min(frames, len(masks)) or (live and whole[i]):
            continue
        tally.add(i, masks[i], points[i])
    out = tally.summary()
    out["frames_out"] = len(masks)
    out["frames_shown"] = round(1 - sum(whole) / max(1, len(whole)), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=["faces,heads"], help="--redact values")
    p.add_argument("--frames", type=int, default=1000, help="the clip's first N frames (10 fps)")
    p.add_argument("--preset", default="balanced")
    p.add_argument("--no-file", action="store_true", help="skip the file-mode reference")
    p.add_argument("--delay", type=float, help="live's --delay (its look-ahead), if not its default")
    p.add_argument("--budget", type=float, help="live's --budget (time for detection on top), if not its default")
    p.add_argument("--data", type=Path, default=mb.DATA)
    p.add_argument("--veil", default=str(Path(sys.executable).parent / "veil"))
    args = p.parse_args(argv)
    if not (args.data / mb.CLIP).is_file():
        print(f"no {mb.CLIP} under {args.data}", file=sys.stderr)
        return 2
    points = {i: v for i, v in mb.load_points(args.data).items() if i < args.frames}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = work / "mall.mp4"
        cut_clip(args.data / mb.CLIP, clip, args.frames)
        for variant in args.variants:
            common = ["--redact", variant, "--preset", args.preset, "--mask-color", MAGENTA]
            out, log = work / "live.mp4", work / "live.jsonl"
            run = subprocess.run(
                [args.veil, "live", str(clip), str(out), "--realtime", "--overwrite", "--log", str(log), *common]
                + (["--delay", str(args.delay)] if args.delay is not None else [])
                + (["--budget", str(args.budget)] if args.budget is not None else []),
                capture_output=True,
                text=True,
            )
            if run.returncode:
                print(run.stderr[-2000:], file=sys.stderr)
                return 1
            records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
            final = records[-1]
            for r in records:
                if r.get("event") == "adapt":  # the ladder's steps, to see why a level was left
                    costs = ", ".join(f"{k} {v} ms" for k, v in r.get("cost_ms", {}).items())
                    level = f"every {r['stride']} at {r['detect_scale']:.0%}, network every {r.get('network_stride')}"
                    print(f"  {variant}: {r['why']} -> {level} ({costs})", file=sys.stderr)
            row = {"mode": "live", "redact": variant, **score(magenta_masks(out), points, args.frames, live=True)}
            row["final_stride"], row["final_scale"] = final.get("stride"), final.get("detect_scale")
            rows.append(row)
            print(json.dumps(row), flush=True)
            if not args.no_file:
                fout = work / "file.mp4"
                subprocess.run([args.veil, str(clip), "-o", str(fout), "--overwrite", *common], check=True,
                               capture_output=True)  # fmt: skip
                row = {"mode": "file", "redact": variant, **score(magenta_masks(fout), points, args.frames, live=False)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print()
    print(f"{'mode':5} {'redact':12} {'shown':>6} {'heads covered':>14} {'away':>6} {'stride':>6} {'scale':>5}")
    for r in rows:
        print(
            f"{r['mode']:5} {r['redact']:12} {r['frames_shown']:6.1%} {r['coverage']:14.1%} "
            f"{r['masked_away_from_heads_mean']:6.1%} {r.get('final_stride') or '':>6} {r.get('final_scale') or '':>5}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

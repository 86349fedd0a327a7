"""What the plan costs: scan + render against the one-shot run, plan size per hour, verify's
share of a render, and peak memory as a video gets longer (it must stay flat).

    .venv/bin/python bench/plan_bench.py [--video PATH] [--repeat 1 4] [--preset balanced]

Every figure comes from separate `veil` processes run here, one after the other; ratios are
taken within this run. The longer videos are the same clip repeated by stream copy (same
content, so any growth of memory with length is the code's, not the picture's).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
VEIL = [sys.executable, "-m", "veil"]
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "videos" / "egoblur_gen1_test_video.mp4"


def repeat(src: Path, dst: Path, times: int) -> Path:
    """`src`'s video packets `times` over, timestamps shifted, no re-encoding."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        ostream = out.add_stream_from_template(stream)
        packets = [p for p in inp.demux(stream) if p.dts is not None]
        span = max(p.pts + (p.duration or 0) for p in packets) - min(p.pts for p in packets)
        for k in range(times):
            for p in packets:
                q = av.Packet(bytes(p))
                q.pts, q.dts, q.duration = p.pts + k * span, p.dts + k * span, p.duration
                q.is_keyframe = p.is_keyframe
                q.time_base = p.time_base
                q.stream = ostream
                out.mux(q)
    return dst


def run(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak resident MB) of one veil process."""
    started = time.monotonic()
    proc = subprocess.Popen([*VEIL, *args, "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    err = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"veil {' '.join(args)} failed: {err}")
    return wall, usage.ru_maxrss / 1024


def frames_and_duration(path: Path) -> tuple[int, float]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = s.frames or sum(1 for _ in c.demux(s) if _.size)
        return n, float(c.duration / av.time_base)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    p.add_argument("--repeat", type=int, nargs="+", default=[1, 4], help="lengths, in copies of the clip")
    p.add_argument("--preset", default="balanced")
    a = p.parse_args()
    if not a.video.is_file():
        print(f"plan bench: {a.video} absent, skipped")
        return 0
    work = Path(tempfile.mkdtemp(prefix="veil-plan-bench-"))
    print(f"plan bench: {a.video.name}, preset {a.preset}, repeats {a.repeat}")
    head = ["clip", "frames", "one-shot s", "scan s", "render s", "(s+r)/one", "verify s", "verify/render"]
    head += ["plan KB", "plan MB/h", "peak MB one/scan/render"]
    print("  ".join(f"{h:>10}" for h in head))
    results = []
    for k in a.repeat:
        clip = a.video if k == 1 else repeat(a.video, work / f"x{k}.mp4", k)
        n, duration = frames_and_duration(clip)
        one_out, plan, two_out = work / f"one{k}.mp4", work / f"p{k}.plan.json", work / f"two{k}.mp4"
        report = work / f"r{k}.json"
        one_s, one_mb = run([str(clip), "-o", str(one_out), "--preset", a.preset, "--report", str(report)])
        scan_s, scan_mb = run(["scan", str(clip), "-o", str(plan), "--preset", a.preset])
        render_report = work / f"rr{k}.json"
        render_s, render_mb = run(["render", str(plan), "-o", str(two_out), "--report", str(render_report)])
        verify_s = json.loads(render_report.read_text())["files"][0]["timings"]["verify_s"]
        size = plan.stat().st_size
        row = {
            "copies": k,
            "frames": n,
            "duration_s": round(duration, 2),
            "one_shot_s": round(one_s, 2),
            "scan_s": round(scan_s, 2),
            "render_s": round(render_s, 2),
            "scan_plus_render_over_one_shot": round((scan_s + render_s) / one_s, 3),
            "verify_s": verify_s,
            "verify_share_of_render": round(verify_s / render_s, 3),
            "plan_bytes": size,
            "plan_mb_per_hour": round(size / duration * 3600 / 1e6, 2),
            "report_bytes": report.stat().st_size,
            "peak_mb": [round(one_mb), round(scan_mb), round(render_mb)],
        }
        results.append(row)
        cells = [f"{k}x", n, f"{one_s:.1f}", f"{scan_s:.1f}", f"{render_s:.1f}"]
        cells += [
            f"{row['scan_plus_render_over_one_shot']:.2f}",
            f"{verify_s:.2f}",
            f"{row['verify_share_of_render']:.2f}",
        ]
        cells += [f"{size / 1e3:.1f}", f"{row['plan_mb_per_hour']:.2f}", "/".join(str(v) for v in row["peak_mb"])]
        print("  ".join(f"{c:>10}" for c in cells))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""End to end on video: same frames, timing, rotation and audio; faces covered in every frame."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import (
    SAMPLE_VIDEO,
    SHARED,
    clip_face_box,
    decode_frames,
    make_video,
    needs_shared,
    probe,
    report_frames,
    run_cli,
)

from veil.cli import main
from veil.media.memory import MemoryRelease


def test_bundled_sample_keeps_frames_timing_and_audio(tmp_path: Path) -> None:
    assert SAMPLE_VIDEO.is_file(), "run `make test` (it builds the sample video first)"
    out = tmp_path / "out.mp4"
    report = tmp_path / "r.json"
    assert main([str(SAMPLE_VIDEO), "-o", str(out), "--report", str(report), "-q"]) == 0
    a, b = probe(SAMPLE_VIDEO), probe(out)
    assert b["frames"] == a["frames"]
    assert b["rate"] == a["rate"]
    assert np.allclose(b["times"], a["times"], atol=1e-3)
    assert b["audio"] == a["audio"] and b["audio"]
    assert abs(b["duration"] - a["duration"]) < 0.05
    frames = report_frames(json.loads(report.read_text())["files"][0])
    assert len(frames) == a["frames"]
    assert all(len(f["boxes"]) >= 1 for f in frames)  # the large face is in every frame


def test_face_covered_in_every_frame_and_audio_dropped_on_request(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", frames=15, audio=True)
    out = tmp_path / "out.mkv"
    assert main([str(src), "-o", str(out), "--no-audio", "-q"]) == 0
    info = probe(out)
    assert info["kinds"] == ["video"]
    assert info["frames"] == 15
    for i, after in enumerate(decode_frames(out)):
        x, y, w, h = clip_face_box(i, 15)
        assert (after[y : y + h, x : x + w].max(axis=-1) < 24).mean() > 0.95, i


def test_rotation_is_kept_and_detection_sees_the_upright_picture(tmp_path: Path) -> None:
    src = make_video(tmp_path / "rot.mp4", frames=6, rotation=90)
    out = tmp_path / "out.mp4"
    assert main([str(src), "-o", str(out), "-q"]) == 0
    a, b = probe(src), probe(out)
    assert a["rotation"] == b["rotation"] == 90
    assert b["frames"] == 6
    shown_before, shown_after = decode_frames(src), decode_frames(out)
    assert shown_before[0].shape == shown_after[0].shape
    changed = np.abs(shown_before[3].astype(int) - shown_after[3].astype(int)).max(axis=-1) > 40
    assert changed.mean() > 0.03  # the face was found (in the upright picture) and masked


@pytest.mark.parametrize("ext", [".webm", ".mov", ".avi"])
def test_other_containers(tmp_path: Path, ext: str) -> None:
    src = make_video(tmp_path / "in.mp4", frames=5, audio=True)
    out = tmp_path / f"out{ext}"
    assert main([str(src), "-o", str(out), "-q"]) == 0
    info = probe(out)
    assert info["frames"] == 5
    assert len(info["audio"]) == 1


def test_attachment_and_data_streams_are_dropped(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", frames=5)
    mkv = tmp_path / "with_extras.mkv"
    with av.open(str(src)) as inp, av.open(str(mkv), "w") as outp:
        v = outp.add_stream_from_template(inp.streams.video[0])
        outp.add_attachment("track.gpx", "application/gpx+xml", b"<gpx><trkpt lat='52.52' lon='13.40'/></gpx>")
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = v
            outp.mux(packet)
    assert "attachment" in probe(mkv)["kinds"]
    out = tmp_path / "out.mkv"
    assert main([str(mkv), "-o", str(out), "-q"]) == 0
    assert probe(out)["kinds"] == ["video"]


@needs_shared
def test_real_video_with_audio_keeps_frames_and_audio(tmp_path: Path) -> None:
    src = SHARED / "videos" / "egoblur_gen2_test_lp_video.mp4"
    out = tmp_path / "out.mp4"
    proc = run_cli(src, "-o", out, "--preset", "fast", "-q")
    assert proc.returncode == 0, proc.stderr
    a, b = probe(src), probe(out)
    assert b["frames"] == a["frames"] == 24
    assert np.allclose(b["times"], a["times"], atol=1e-3)
    assert b["audio"] == a["audio"]
    assert abs(b["duration"] - a["duration"]) < 0.15


def test_memory_stays_flat_on_a_long_video(tmp_path: Path) -> None:
    """Peak memory for 1,500 frames is about that for 150, report included: frames are streamed,
    the plan's boxes go to disk as they are made and the report copies them from there. (Before
    the plan, per-frame records grew memory by about 17 KB a frame: 23 MB over these frames.)"""
    size = (192, 176)  # room for the moving face: one box in every frame
    short = make_video(tmp_path / "short.mp4", frames=150, size=size, fps=25)
    long = make_video(tmp_path / "long.mp4", frames=1500, size=size, fps=25)

    def peak_mb(path: Path) -> float:
        out, report = path.with_suffix(".out.mp4"), path.with_suffix(".json")
        code = (
            "import resource, sys; from veil.cli import main; "
            f"rc = main([{str(path)!r}, '-o', {str(out)!r}, '--report', {str(report)!r}, '-q']); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); sys.exit(rc)"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        return float(proc.stdout.strip().splitlines()[-1])

    assert resource is not None
    small, large = peak_mb(short), peak_mb(long)
    assert large < small + 12, (small, large)


@pytest.mark.skipif(not MemoryRelease.available(), reason="this C library has no malloc_trim")
def test_freed_frame_memory_goes_back_to_the_system() -> None:
    """Frame-sized blocks freed below one still in use stay in glibc's heaps, which is how a
    one-shot run of a long 720p video grew (about 3 MB a second, while scan alone and render alone
    stayed flat); the sink's `MemoryRelease` gives them back. In a fresh process, so the heap
    layout is this test's own."""
    code = """
import numpy as np
from veil.media.memory import MemoryRelease
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
first = np.ones(3 << 20, np.uint8)
del first  # freeing a block glibc had mmapped raises its mmap threshold, as the first frames do
frames = [np.ones(3 << 20, np.uint8) for _ in range(100)]
pinned = np.ones(3 << 20, np.uint8)  # in use above them: the heap cannot shrink from its top
del frames
before = rss()
release = MemoryRelease(every=2)
release.frame_done()
middle = rss()
release.frame_done()
print(before, middle, rss(), release.trims)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    before, middle, after, trims = (float(x) for x in proc.stdout.split())
    assert trims == 1
    assert middle > before - 50, "nothing is released between trims"
    assert after < before - 200, (before, after)

"""The job runner (`veil -j N`): same outputs as the sequential run, resumable after a killed
worker, and long videos cut into segments with no uncovered face at a cut."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from conftest import (
    SAMPLE_IMAGE,
    clip_face_box,
    covered_fraction,
    decode_frames,
    make_video,
    probe,
    run_cli,
    sigint_as_ctrl_c,
)

from veil.config import Settings
from veil.runners.batch import MANIFEST, WORKDIR, Manifest, detector_actor_options, ray_task_options, worker_threads
from veil.runners.cache import Cache
from veil.runners.segments import cut, overlap_frames
from veil.runners.segments import probe as probe_cuts


def regop(src: Path, dst: Path, gop: int, keep_audio: bool = True) -> Path:
    """Re-encode `src` with a keyframe every `gop` frames (make_video's clips have one), copying
    its audio: a long recording in miniature."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
        vout.pix_fmt = "yuv420p"
        vout.codec_context.gop_size = gop
        vout.options = {"x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
        rotation = 0
        audio = {}
        if keep_audio:
            for s in inp.streams.audio:
                audio[s.index] = out.add_stream_from_template(s)
        for packet in inp.demux():
            if packet.stream.type == "audio":
                if packet.dts is not None and packet.stream.index in audio:
                    packet.stream = audio[packet.stream.index]
                    out.mux(packet)
                continue
            for frame in packet.decode():
                if frame.rotation and not rotation:
                    rotation = frame.rotation
                    vout.set_display_rotation(rotation)
                frame.pict_type = av.video.frame.PictureType.NONE
                for p in vout.encode(frame):
                    out.mux(p)
        for p in vout.encode(None):
            out.mux(p)
    return dst


def manifest_path(directory: Path) -> Path:
    """The manifest of the job writing into `directory`: in veil's work directory, not there."""
    job = Cache.at().existing_job_dir(directory)
    return (job if job is not None else Path("/nonexistent")) / MANIFEST


def manifest_lines(directory: Path) -> list[dict]:
    return [json.loads(line) for line in manifest_path(directory).read_text().splitlines()]


def test_worker_threads_share_the_cores() -> None:
    assert worker_threads(2, cores=2) == 1
    assert worker_threads(1, cores=8) == 8
    assert worker_threads(3, cores=8) == 2
    assert worker_threads(16, cores=8) == 1


def test_images_byte_identical_j1_j2(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(SAMPLE_IMAGE, src / "a.png")
    from PIL import Image

    Image.open(SAMPLE_IMAGE).convert("RGB").resize((300, 300)).save(src / "b.jpg", quality=92)
    Image.open(SAMPLE_IMAGE).convert("RGB").rotate(90).save(src / "c.png")
    run_cli(src, "-o", tmp_path / "j1", "-j1", check=True)
    proc = run_cli(src, "-o", tmp_path / "j2", "-j2", "--keep-work", check=True)
    for name in ("a.png", "b.jpg", "c.png"):
        assert (tmp_path / "j1" / name).read_bytes() == (tmp_path / "j2" / name).read_bytes(), name
    # The -j2 run used the runner: a manifest, a summary with throughput.
    lines = manifest_lines(tmp_path / "j2")
    assert Counter(e["status"] for e in lines) == {"running": 3, "done": 3}
    # Photos only: a file count and time, no "0.000 h of video".
    assert "3 files in " in proc.stderr and " h of video" not in proc.stderr
    assert Cache.at().existing_job_dir(tmp_path / "j1") is None  # -j1 is the sequential reference


def test_video_j1_j2_same_frames_and_rerun_skips(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    make_video(src / "one.mp4", frames=12, audio=True)
    make_video(src / "two.mp4", frames=10, rotation=90)
    common = ["--preset", "fast", "--lookahead", "0.5"]
    run_cli(src, "-o", tmp_path / "j1", "-j1", *common, check=True)
    run_cli(src, "-o", tmp_path / "j2", "-j2", "--keep-work", *common, check=True)
    for name in ("one.mp4", "two.mp4"):
        a, b = decode_frames(tmp_path / "j1" / name), decode_frames(tmp_path / "j2" / name)
        assert len(a) == len(b)
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)), name
    before = manifest_lines(tmp_path / "j2")
    # The same command again: nothing to do, nothing redone, not an error.
    again = run_cli(src, "-o", tmp_path / "j2", "-j2", *common)
    assert again.returncode == 0, again.stderr
    assert "already done" in again.stderr
    assert manifest_lines(tmp_path / "j2") == before


def test_segment_boundary_inside_a_face_track(tmp_path: Path) -> None:
    frames, fps = 50, 10
    raw = make_video(tmp_path / "raw.mp4", frames=frames, fps=fps, audio=True)
    (tmp_path / "in").mkdir()
    clip = regop(raw, tmp_path / "in" / "clip.mp4", gop=10)
    info = probe_cuts(clip)
    assert info is not None and [k for k, _ in info.keyframes] == [0, 10, 20, 30, 40]
    segs = cut(info, 1.5, overlap_frames(Settings(lookahead_s=0.5), info.rate, 4))
    assert len(segs) >= 2 and all(s.start % 10 == 0 for s in segs)  # cuts at keyframes
    common = ["--preset", "fast", "--lookahead", "0.5"]
    run_cli(clip, "-o", tmp_path / "one.mp4", "-j1", *common, check=True)
    run_cli(clip, "-o", tmp_path / "seg.mp4", "-j2", "--segment-seconds", "1.5", "--keep-work", *common, check=True)
    lines = manifest_lines(tmp_path)
    cuts = sorted(e["report"]["segment"]["start"] for e in lines if e["kind"] == "segment" and e["status"] == "done")
    assert len(cuts) == len(segs) >= 2
    one, seg, src = probe(tmp_path / "one.mp4"), probe(tmp_path / "seg.mp4"), probe(clip)
    # Frame count, timestamps and duration as the unsegmented run; audio remuxed once.
    assert seg["frames"] == one["frames"] == src["frames"] == frames
    assert seg["times"] == one["times"] == src["times"]
    assert seg["kinds"] == one["kinds"] == ["video", "audio"]
    assert seg["audio"] == src["audio"]
    assert abs(seg["duration"] - one["duration"]) < 0.05
    # The face moves across every frame, so every cut is inside its track: no frame uncovered,
    # in particular the last frame before each cut and the first after it.
    before = decode_frames(clip)
    after = decode_frames(tmp_path / "seg.mp4")
    for i in range(frames):
        assert covered_fraction(before[i], after[i], clip_face_box(i, frames)) > 0.9, f"frame {i} uncovered"
    # The merged plan covers every frame too, and the scratch segments are gone after the join.
    plan = json.loads(Path([e for e in lines if e["kind"] == "join"][-1]["plan"]).read_text())
    covered = set()
    for track in plan["tracks"]:
        covered.update(range(track["boxes"][0]["frame"], track["boxes"][-1]["frame"] + 1))
    assert covered == set(range(frames))
    assert not any(p.name.startswith("segment-") for p in (manifest_path(tmp_path).parent / WORKDIR).rglob("*"))


def test_rotated_video_segmented_keeps_rotation(tmp_path: Path) -> None:
    raw = make_video(tmp_path / "raw.mp4", frames=30, rotation=90)
    (tmp_path / "in").mkdir()
    clip = regop(raw, tmp_path / "in" / "r.mp4", gop=10)
    # The default preset encodes with B-frames (decode order differs from display order), which
    # the join must keep exact: the fast preset's ultrafast encoder has none.
    run_cli(clip, "-o", tmp_path / "seg.mp4", "-j2", "--segment-seconds", "1", "--lookahead", "0.5", check=True)
    got, src = probe(tmp_path / "seg.mp4"), probe(clip)
    assert got["rotation"] == src["rotation"] == probe(raw)["rotation"] != 0
    assert got["frames"] == 30 and got["times"] == src["times"]


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _workers(pid: int) -> list[int]:
    """The pool's worker processes among `pid`'s children (not multiprocessing's resource
    tracker); a child that exits between the listing and the reading of its command line is no
    worker any more (reading it raised ProcessLookupError in a fresh-clone run)."""
    out = []
    for child in _children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_text()
        except OSError:
            continue
        if "resource_tracker" not in cmdline:
            out.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def start_segmented_run(tmp_path: Path) -> tuple[Path, Path, list[Any], subprocess.Popen[str]]:
    """Three 30-frame videos with a keyframe every 10 frames, started at -j2 with 1 s segments:
    (input folder, output folder, the arguments, the running process)."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        regop(make_video(tmp_path / f"raw{i}.mp4", frames=30), src / f"v{i}.mp4", gop=10)
    out = tmp_path / "out"
    args: list[Any] = [
        src, "-o", out, "-j2", "--segment-seconds", "1", "--preset", "fast", "--lookahead", "0.5", "--keep-work"
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "veil", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_ctrl_c,
    )
    return src, out, args, proc


def test_killed_worker_completed_by_rerun(tmp_path: Path) -> None:
    src, out, args, proc = start_segmented_run(tmp_path)
    killed = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        entries = manifest_lines(out) if manifest_path(out).is_file() else []
        last = {e["key"]: e["status"] for e in entries}
        # Kill a worker once some work is finished while some is in flight, until an item has
        # failed under it: a worker killed between items fails nothing (the pool is rebuilt for
        # the next item, by design), which a single kill hit in one CI run.
        in_flight = "running" in last.values()
        if "done" in last.values() and in_flight and "failed" not in last.values():
            workers = _workers(proc.pid)
            if workers:
                killed = workers[-1]
                os.kill(killed, signal.SIGKILL)
                time.sleep(0.5)  # let the run notice and log the failure before the next try
        time.sleep(0.05)
    proc.communicate(timeout=240)
    assert killed is not None, "the run ended before a worker could be killed"
    assert proc.returncode == 1  # some items failed: the worker died under them
    first = manifest_lines(out)
    done_first = {e["key"] for e in first if e["status"] == "done"}
    assert done_first  # finished work was recorded
    assert any(e["status"] == "failed" and "died" in e.get("error", "") for e in first)
    # No output is half written.
    assert not [p for p in out.glob(".*veil-tmp*")]
    rerun = run_cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    lines = manifest_lines(out)
    second = lines[len(first) :]
    # Nothing done twice: no key finished in the first run started again; every key done once.
    assert not {e["key"] for e in second} & done_first
    done_count = Counter(e["key"] for e in lines if e["status"] == "done")
    assert set(done_count.values()) == {1}
    for i in range(3):
        got = probe(out / f"v{i}.mp4")
        assert got["frames"] == 30 and got["times"] == probe(src / f"v{i}.mp4")["times"]
    # Retried items carry their attempt count.
    assert any(e["attempts"] == 2 for e in second if e["status"] == "done")


def test_manifest_last_line_wins_and_torn_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / MANIFEST
    m = Manifest(path)
    m.write({"key": "k", "status": "running", "attempts": 1})
    m.write({"key": "k", "status": "failed", "attempts": 1})
    with open(path, "a") as fh:
        fh.write('{"key": "k", "status": "do')  # a run killed mid-write
    again = Manifest(path)
    assert again.get("k")["status"] == "failed"
    assert again.finished("k") is None


def test_ray_resource_requests() -> None:
    # CPU tasks: the cluster's CPUs shared by the items in flight; detection actors: one GPU each.
    assert ray_task_options({"CPU": 16.0}, 8)["num_cpus"] == 2
    assert ray_task_options({"CPU": 2.0}, 8)["num_cpus"] == 1
    assert "num_gpus" not in ray_task_options({"CPU": 16.0, "GPU": 2.0}, 8)
    assert detector_actor_options()["num_gpus"] == 1


@pytest.mark.parametrize("bad", [["-j", "0"], ["--segment-seconds", "-1"]])
def test_bad_batch_options(tmp_path: Path, bad: list[str]) -> None:
    proc = run_cli(SAMPLE_IMAGE, "-o", tmp_path / "x.png", *bad)
    assert proc.returncode == 2 and "veil: error:" in proc.stderr


def test_default_segments_keep_every_worker_busy() -> None:
    """Without --segment-seconds a long video gets about two segments per worker (an hour on 16
    workers: 32 or more, so no worker idles while one file remains), capped at 300 s so an
    interruption loses little, and never below 60 s, where the overlap decoded twice costs 5 %."""
    from veil.runners.segments import DEFAULT_SEGMENT_S, MIN_DEFAULT_SEGMENT_S, default_segment_seconds

    hour = 3600.0
    assert default_segment_seconds(hour, 1) is None
    for workers in (2, 4, 8, 16, 64, 256):
        length = default_segment_seconds(hour, workers)
        assert length is not None and MIN_DEFAULT_SEGMENT_S <= length <= DEFAULT_SEGMENT_S
        assert hour / length >= min(2 * workers, hour / MIN_DEFAULT_SEGMENT_S) - 1e-9
    assert default_segment_seconds(90.0, 16) is None  # too short to cut in two
    assert default_segment_seconds(5 * 60.0, 2) == 75.0  # a 5-minute clip on this 2-core machine: 4 segments


def test_ctrl_c_stops_workers_leaves_no_partial_file_and_resumes(tmp_path: Path) -> None:
    """Ctrl-C on a `-j2` run of segmented videos: the run ends with 130 within seconds, its
    workers are gone, no temporary file is left (outputs or segments), and the same command
    then finishes the rest without redoing what was done."""
    src, out, args, proc = start_segmented_run(tmp_path)
    workers: list[int] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        done = [e for e in manifest_lines(out) if e["status"] == "done"] if manifest_path(out).is_file() else []
        workers = _workers(proc.pid)
        if done and workers:
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.05)
    assert workers, "the run ended before it could be interrupted"
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err.splitlines()[-1]
    time.sleep(1)
    assert not [w for w in workers if _alive(w)], "a worker outlived the interrupted run"
    assert not [p for p in out.rglob("*veil-tmp*")]
    first = manifest_lines(out)
    done_first = {e["key"] for e in first if e["status"] == "done"}
    assert done_first
    rerun = run_cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    second = manifest_lines(out)[len(first) :]
    assert not {e["key"] for e in second if e["status"] == "running"} & done_first
    for i in range(3):
        assert probe(out / f"v{i}.mp4")["frames"] == 30


def test_workers_die_with_a_killed_main_process(tmp_path: Path) -> None:
    """SIGKILL of the main process of a `-j2` run (no chance to clean up): its workers end within
    seconds instead of running on, and they unwind first, leaving no temporary output."""
    _src, out, _args, proc = start_segmented_run(tmp_path)
    workers: list[int] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        done = [e for e in manifest_lines(out) if e["status"] == "done"] if manifest_path(out).is_file() else []
        workers = _workers(proc.pid)
        # Both workers busy with real work (a segment finished, so their models are loaded).
        if done and len(workers) >= 2:
            break
        time.sleep(0.05)
    assert len(workers) >= 2 and proc.poll() is None, "the run ended before its main process could be killed"
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and [w for w in workers if _alive(w)]:
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)], "a worker outlived its killed main process"
    assert not [p for p in out.rglob("*veil-tmp*")]

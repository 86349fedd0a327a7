"""What a new user meets in the first hour: one line for a full disk, a suggestion for a typo,
a refusal for a file-like folder name, and a word where an option is ignored or weak."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from conftest import SAMPLE_IMAGE, run_cli

import veil.cli
import veil.runners.batch
from veil.cli import main


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("veil: error: ")
    return lines[0]


def test_full_disk_while_writing_the_manifest_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(SAMPLE_IMAGE, src / "a.png")
    shutil.copy(SAMPLE_IMAGE, src / "b.png")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(veil.runners.batch.os, "fsync", full)
    code = main([str(src), "-o", str(tmp_path / "out"), "-j2", "-q"])
    line = one_error_line(capsys.readouterr().err)
    assert code != 0
    assert "manifest.jsonl" in line and "No space left on device" in line
    assert not list((tmp_path / "out").rglob("*")) if (tmp_path / "out").exists() else True


def test_any_os_error_is_one_line_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(argv: list[str]) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "report.json"))

    monkeypatch.setattr(veil.cli, "_redact", full)
    assert main([str(SAMPLE_IMAGE)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert str(tmp_path / "report.json") in line and "no space left" in line


def test_typo_in_an_option_suggests_the_right_one() -> None:
    proc = run_cli(SAMPLE_IMAGE, "--masks", "blur")
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert "did you mean --mask?" in line


@pytest.mark.parametrize("name", ["safe.jpg", "safe.MP4"])
def test_folder_of_inputs_refuses_a_file_like_output_name(tmp_path: Path, name: str) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(SAMPLE_IMAGE, src / "a.png")
    proc = run_cli(src, "-o", tmp_path / name)
    assert proc.returncode == 2
    assert "name a folder" in one_error_line(proc.stderr)
    assert not (tmp_path / name).exists()


def test_reversible_masks_and_ignored_time_range_are_said_once(tmp_path: Path) -> None:
    proc = run_cli(SAMPLE_IMAGE, "-o", tmp_path / "a.png", "--mask", "blur", "--start", "2", "--preset", "fast")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("is reversible") == 1
    assert proc.stderr.count("--start/--end apply to videos only") == 1
    solid = run_cli(SAMPLE_IMAGE, "-o", tmp_path / "b.png", "--preset", "fast")
    assert "is reversible" not in solid.stderr and "warning" not in solid.stderr


def test_help_points_at_documents_that_exist() -> None:
    proc = run_cli("--help")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("documentation:"))
    where = Path(line.split(":", 1)[1].split("*.md")[0].strip())
    assert (where / "audio.md").is_file() and (where / "live.md").is_file()


def test_scan_prints_plain_progress_lines_when_not_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import make_video

    import veil.progress

    monkeypatch.setattr(veil.progress, "PLAIN_EVERY_S", 0.0)  # a line per frame, not per 10 s
    video = make_video(tmp_path / "v.mp4", frames=8)
    assert main(["scan", str(video), "-o", str(tmp_path / "v.plan.json"), "--preset", "fast"]) == 0
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("v.mp4: ")]
    assert len(lines) >= 7 and "/8 frames (" in lines[-1] and " fps" in lines[-1], err
    assert "\x1b[" not in err  # plain text: no terminal control codes in a log
    # Quiet means quiet.
    assert main(["scan", str(video), "-o", str(tmp_path / "w.plan.json"), "--preset", "fast", "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_aac_re_encode_keeps_the_input_bit_rate_where_the_container_records_none(tmp_path: Path) -> None:
    """Matroska records no per-stream bit rate: the re-encoded AAC must not fall back to the
    encoder's default (128 kb/s) but keep the input's (here 64 kb/s)."""
    import av
    import numpy as np

    rate, seconds = 44100, 6
    src = tmp_path / "in.mkv"
    rng = np.random.default_rng(0)
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=rate)
        a.layout, a.bit_rate = "stereo", 64000
        for i in range(seconds * 10):
            for p in v.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i, np.uint8), format="rgb24")):
                c.mux(p)
        t = np.arange(rate * seconds) / rate
        sig = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
        for i in range(0, len(t), 1024):
            frame = av.AudioFrame.from_ndarray(np.stack([sig[i : i + 1024]] * 2), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = rate, i
            for p in a.encode(frame):
                c.mux(p)
        for s in (v, a):
            for p in s.encode():
                c.mux(p)

    def kbps(path: Path) -> float:
        with av.open(str(path)) as c:
            stream = c.streams.audio[0]
            assert stream.codec_context.name == "aac"
            return sum(p.size for p in c.demux(stream) if p.size) * 8 / seconds / 1000

    out = tmp_path / "out.mkv"
    # A range at the very end: nearly the whole track is sound, re-encoded.
    run_cli(src, "-o", out, "--audio", "mute", "--audio-ranges", "5.9-6", "--preset", "fast", check=True)
    assert abs(kbps(out) - kbps(src)) / kbps(src) < 0.15, (kbps(out), kbps(src))


def test_a_dropped_second_video_stream_is_said_on_the_console(tmp_path: Path) -> None:
    import av
    import numpy as np

    src = tmp_path / "two.mp4"
    with av.open(str(src), "w") as c:
        streams = []
        for _ in range(2):
            s = c.add_stream("libx264", rate=10)
            s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
            streams.append(s)
        for i in range(5):
            for s in streams:
                for p in s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i, np.uint8), format="rgb24")):
                    c.mux(p)
        for s in streams:
            for p in s.encode():
                c.mux(p)
    proc = run_cli(src, "-o", tmp_path / "out.mp4", "--preset", "fast", "-j1")
    assert proc.returncode == 0, proc.stderr
    assert "only the first video stream was kept; dropped video#1" in proc.stderr

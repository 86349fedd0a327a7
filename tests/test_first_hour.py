"""What a new user meets in the first hour: one line for a full disk, a suggestion for a typo,
a refusal for a file-like folder name, and a word where an option is ignored or weak."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from conftest import SAMPLE_IMAGE, run_cli

import veil.batch
import veil.cli
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

    monkeypatch.setattr(veil.batch.os, "fsync", full)
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

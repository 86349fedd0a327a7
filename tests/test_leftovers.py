"""An output folder holds outputs (and the report, if asked) and nothing else: no manifest, no
plans, no segment files, no review proxy (an unredacted copy) beside the input. Work files live
in veil's private work directory (VEIL_CACHE_DIR here, per test), user-only, and are gone when
the job completes unless --keep-work."""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

import pytest
from conftest import SAMPLE_IMAGE, make_video, run_cli
from test_batch import regop

from veil.runners.cache import Cache


def files_in(folder: Path) -> set[str]:
    """Every file and directory under `folder`, hidden ones included, relative to it."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_private_and_empty(cache: Path) -> None:
    """The work directory is the user's only, and a completed job left nothing in it but the
    hashes-only record of finished outputs."""
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    for d in [cache, *[p for p in cache.rglob("*") if p.is_dir()]]:
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    left = {str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file()}
    assert left <= {"done.jsonl"}, left
    if left:
        text = (cache / "done.jsonl").read_text()
        assert "/" not in text.replace("\\/", "")  # no path of any input or output


@pytest.fixture
def system_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system's temp folder (TMPDIR) of the CLI this test starts and of its workers: its own,
    so what veil leaves there can be seen."""
    path = tmp_path_factory.mktemp("system-tmp")
    monkeypatch.setenv("TMPDIR", str(path))
    return path


def assert_nothing_in(system_tmp: Path) -> None:
    """Nothing veil made (a one-shot plan's scratch folder, a track spool) is left in the
    system's temp folder: the runner's worker processes, which keep their detectors loaded
    between jobs, left one empty scratch folder each per run before."""
    left = {p.name for p in system_tmp.iterdir()}
    assert not left, left


def test_single_photo(tmp_path: Path, private_cache: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    run_cli(SAMPLE_IMAGE, "-o", out / "safe.png", "--report", out / "r.json", check=True)
    assert files_in(out) == {"safe.png", "r.json", "r.html"}
    assert_private_and_empty(private_cache)


def test_folder_of_photos_on_the_runner(tmp_path: Path, private_cache: Path, system_tmp: Path) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(SAMPLE_IMAGE, src / "a.png")
    shutil.copy(SAMPLE_IMAGE, src / "sub" / "b.png")
    out = tmp_path / "out"
    proc = run_cli(src, "-o", out, "-j2", "--report", out / "r.json", check=True)
    assert files_in(out) == {"a.png", "sub", "sub/b.png", "r.json", "r.html"}
    assert files_in(src) == {"a.png", "sub", "sub/b.png"}  # inputs untouched
    assert_private_and_empty(private_cache)
    assert_nothing_in(system_tmp)
    # Photos only: no hours of video in the summary; each line says what it redacted, and how
    # much of the picture that took.
    assert " h of video" not in proc.stderr
    assert len(re.findall(r"redacted \(\d+\.\d % of the picture\), verified", proc.stderr)) == 2, proc.stderr


def test_segmented_video_j2(tmp_path: Path, private_cache: Path, system_tmp: Path) -> None:
    (tmp_path / "in").mkdir()
    clip = regop(make_video(tmp_path / "raw.mp4", frames=30), tmp_path / "in" / "v.mp4", gop=10)
    out = tmp_path / "out"
    out.mkdir()
    # The sequential one-shot path first, then the segmented runner.
    run_cli(clip, "-o", out / "one.mp4", "-j1", "--preset", "fast", "--lookahead", "0.5", check=True)
    assert files_in(out) == {"one.mp4"}
    assert_private_and_empty(private_cache)
    common = ["-j2", "--segment-seconds", "1", "--preset", "fast", "--lookahead", "0.5"]
    run_cli(clip, "-o", out / "v.mp4", *common, check=True)
    assert files_in(out) == {"one.mp4", "v.mp4"}
    assert_private_and_empty(private_cache)
    assert_nothing_in(system_tmp)
    # Kept when asked: the manifest and the plans are in the job's private directory.
    run_cli(clip, "-o", out / "w.mp4", *common, "--keep-work", check=True)
    assert files_in(out) == {"one.mp4", "v.mp4", "w.mp4"}
    job = Cache.at().existing_job_dir(out)
    assert job is not None and (job / "manifest.jsonl").is_file() and list(job.rglob("*.plan.json"))
    listed = run_cli("cache", "list")
    assert str(job) in listed.stdout and str(out.resolve()) in listed.stdout
    assert run_cli("cache", "clear").returncode == 0
    assert not job.exists()
    assert "nothing kept" in run_cli("cache", "list").stdout


def test_scan_then_render(tmp_path: Path, private_cache: Path, system_tmp: Path) -> None:
    plans, out = tmp_path / "plans", tmp_path / "out"
    run_cli("scan", SAMPLE_IMAGE, "--preset", "fast", "-o", plans / "a.plan.json", check=True)
    assert files_in(plans) == {"a.plan.json"}
    out.mkdir()
    run_cli("render", plans / "a.plan.json", "-o", out / "a.png", "--report", out / "r.json", check=True)
    assert files_in(out) == {"a.png", "r.json", "r.html"}
    assert files_in(plans) == {"a.plan.json"}
    assert_private_and_empty(private_cache)
    assert_nothing_in(system_tmp)


def test_review_proxy_is_not_beside_the_input(
    tmp_path: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from veil.progress import Reporter
    from veil.review.server import frames, plan_for
    from veil.review.server.session import ReviewSession

    monkeypatch.setattr(frames, "PROXY_THRESHOLD_PIXELS", 0)  # this small clip gets a proxy
    video = make_video(tmp_path / "clip.mp4", frames=12)
    plan_path = plan_for(video, rescan=False, preset="fast", reporter=Reporter(quiet=True))
    assert files_in(tmp_path) == {"clip.mp4", "clip.plan.json"}
    proxies = list((private_cache / "proxies").iterdir())
    assert len(proxies) == 1 and stat.S_IMODE((private_cache / "proxies").stat().st_mode) == 0o700
    session = ReviewSession(plan_path)
    session.close(keep_proxy=False)
    assert not list((private_cache / "proxies").iterdir())


def test_work_dir_option_and_permissions(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(SAMPLE_IMAGE, src / "a.png")
    shutil.copy(SAMPLE_IMAGE, src / "b.png")
    work = tmp_path / "work"
    out = tmp_path / "out"
    run_cli(src, "-o", out, "-j2", "--work-dir", work, "--keep-work", check=True)
    assert files_in(out) == {"a.png", "b.png"}
    jobs = list((work / "jobs").iterdir())
    assert len(jobs) == 1 and (jobs[0] / "manifest.jsonl").is_file()
    if os.name == "posix":
        assert stat.S_IMODE(work.stat().st_mode) == 0o700
        assert stat.S_IMODE(jobs[0].stat().st_mode) == 0o700

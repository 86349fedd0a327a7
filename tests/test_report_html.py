"""The HTML audit report: written beside the JSON, self-contained, renders in headless Chromium
without console errors, and shows the frames most worth a human look."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_IMAGE, make_video
from PIL import Image

from veil.cli import main
from veil.plan import FrameBoxes, plan_from_json
from veil.report.html import render_html
from veil.review.log import ReviewLog, ThumbnailSampler
from veil.types import Detections

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium absent (make sysdeps)")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("rep")
    clip = make_video(tmp / "clip.mp4", frames=30, audio=True)
    out = tmp / "out"
    path = out / "report.json"
    assert main([str(clip), str(SAMPLE_IMAGE), "-o", str(out), "--report", str(path), "-q"]) == 0
    return path


def chromium(tmp: Path, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr", "--v=0"]  # fmt: skip
    args += [*extra, page.as_uri()]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_html_is_written_beside_the_json_and_is_self_contained(report: Path) -> None:
    html_path = report.with_suffix(".html")
    html = html_path.read_text()
    data = json.loads(report.read_text())
    assert "Content-Security-Policy" in html and "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)  # no external assets
    assert not re.search(r"url\(", html)
    assert data["veil_version"] in html
    for f in data["files"]:
        assert f["output_sha256"] in html and f["input_sha256"] in html
    # The contact sheet: decodable JPEGs, one outline per recorded box.
    pictures = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', html)
    assert 2 <= len(pictures) <= 2 * (12 + 8)
    for b64 in pictures:
        assert Image.open(io.BytesIO(base64.b64decode(b64))).width <= 320
    frames_shown = [int(n) for n in re.findall(r'<figure id="f0-frame(\d+)"', html)]
    assert frames_shown == sorted(frames_shown) and len(frames_shown) >= 8  # spread over the 30 frames
    assert max(frames_shown) >= 20
    video = data["files"][0]
    # Every box of every frame is in the report, as the file's plan.
    boxes = FrameBoxes(plan_from_json(video["plan_content"]))
    boxes_shown = sum(len(boxes.at(n)[0]) for n in frames_shown)
    figures = re.findall(r'<figure id="f0-frame\d+".*?</figure>', html)
    assert sum(fig.count('class="box') for fig in figures) == boxes_shown > 0
    assert "_thumbnails" not in report.read_text()


def test_review_list_names_doubtful_frames() -> None:
    def face(score: float, filled: bool = False) -> Detections:
        return Detections(np.array([[0, 0, 50, 50]]), np.array([score]), np.array(["face"]), filled=np.array([filled]))

    log = ReviewLog()
    for i, dets in enumerate([face(0.9), face(0.22), face(1.0, filled=True), Detections.empty()]):
        log.offer(i, dets)
    review = log.flags()
    assert [r["frame"] for r in review] == [1, 2]
    assert len(log.warnings()) == 2
    report = {"veil_version": "x", "settings": {}, "files": [
        {"status": "ok", "input": "a.mp4", "output": "b.mp4", "review": review,
         "frames_processed": 4}]}  # fmt: skip
    html = render_html(report)
    assert "low-confidence detection" in html and "filled in by the tracker" in html


def test_sampler_memory_is_bounded_and_keeps_the_worst_frames() -> None:
    sampler = ThumbnailSampler(even=12, flagged=8)
    image = np.zeros((720, 1280, 3), np.uint8)
    for i in range(2000):
        score = 0.21 if i in (1500, 1777) else 0.9
        dets = Detections(np.array([[10, 10, 80, 80]]), np.array([score]), np.array(["face"]))
        priority, reasons = ReviewLog().offer(i, dets)
        painted = np.array([[10, 10, 80, 80]])
        sampler.offer(image, i, dets, painted, np.zeros((0, 4), int), priority, reasons)
    thumbs = sampler.result()
    assert len(thumbs) <= 20
    frames = [t["frame"] for t in thumbs]
    assert {1500, 1777} <= set(frames)
    even = [f for f in frames if f not in (1500, 1777)]
    assert len(even) >= 6 and max(even) >= 1000  # spread over the whole clip, not the start only
    assert all(t["width"] == 1280 and len(t["jpeg_base64"]) < 40_000 for t in thumbs)


@needs_chromium
def test_chromium_detects_console_errors_in_a_control_page(tmp_path: Path) -> None:
    """The check below can fail: a page with a script error is caught by the same method."""
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><body><script>undefinedFunction()</script></body>")
    proc = chromium(tmp_path, page, "--dump-dom")
    assert any("undefinedFunction" in m for m in console_messages(proc.stderr))


@needs_chromium
def test_report_renders_in_headless_chromium_without_console_errors(report: Path, tmp_path: Path) -> None:
    html_path = report.with_suffix(".html")
    proc = chromium(tmp_path, html_path, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_messages(proc.stderr) == []
    dom = proc.stdout
    assert "veil audit report" in dom and dom.count("<figure") >= 8
    shot = tmp_path / "shot.png"
    proc = chromium(tmp_path, html_path, f"--screenshot={shot}", "--window-size=1200,1600")
    assert console_messages(proc.stderr) == []
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.std() > 10  # something was drawn, not a blank page

"""The review page in a real browser (Debian's Chromium driven by Playwright, nothing downloaded).

On the bundled sample video: the page loads with no console errors, a reviewer keeps one
detected track visible and draws a box around something veil did not find, the plan on disk
records both, and the render triggered from the page keeps the kept face's pixels while the
drawn box and every other track are masked. The screenshot in docs/review.png comes from here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from veil.media.source import VideoSource
from veil.plan import load_plan

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SAMPLE = REPO / "build" / "samples" / "astronaut_pan.mp4"
SCREENSHOT = REPO / "build" / "review.png"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Debian chromium is not installed")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A scanned copy of the sample in a temporary folder, served by `veil review` in a thread."""
    from veil.progress import Reporter
    from veil.review.server import plan_for

    folder = tmp_path_factory.mktemp("review")
    video = folder / "astronaut_pan.mp4"
    if SAMPLE.is_file():
        shutil.copyfile(SAMPLE, video)
    else:
        subprocess.run([sys.executable, str(REPO / "samples" / "make_sample_video.py"), str(video)], check=True)
    plan_path = plan_for(video, rescan=True, preset="fast", reporter=Reporter(quiet=True))
    with review_server(plan_path) as got:
        yield {"url": got["url"], "plan": plan_path, "video": video, "folder": folder, "session": got["session"]}


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def clear_region(tracks: list[Any], frame: int, width: int, height: int, size: int = 56) -> list[float]:
    """A box in `frame` at least 24 px from every track's box (so only the drawn box covers it)."""
    boxes = [got[0] for t in tracks if (got := t.box_at(frame)) is not None]
    for y in range(12, height - size - 12, 16):
        for x in range(12, width - size - 12, 16):
            if all(x + size + 24 < b[0] or b[2] + 24 < x or y + size + 24 < b[1] or b[3] + 24 < y for b in boxes):
                return [float(x), float(y), float(x + size), float(y + size)]
    raise AssertionError("no free region in the sample frame")


def wait_js(page: Any, expression: str, timeout: float = 30.0) -> None:
    """Poll `expression` in the page. (Playwright's wait_for_function evaluates its predicate with
    eval, which the page's Content-Security-Policy rightly forbids; page.evaluate does not.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        time.sleep(0.05)


@contextmanager
def review_server(plan_path: Path) -> Iterator[dict[str, Any]]:
    """`veil review` on `plan_path` in a thread, started: yields its url, server and session;
    stopped on the way out."""
    from veil.review.server import serve

    got: dict[str, Any] = {}
    ready = threading.Event()

    def on_ready(url: str, server: Any, session: Any) -> None:
        got.update(url=url, server=server, session=session)
        ready.set()

    thread = threading.Thread(target=serve, args=(plan_path,), kwargs={"ready": on_ready}, daemon=True)
    thread.start()
    assert ready.wait(30), "the review server did not start"
    deadline = time.monotonic() + 10
    while not got["server"].started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield got
    finally:
        got["server"].should_exit = True
        thread.join(10)


def click_person_keep_only_and_render(
    page: Any, session: Any, x: float, y: float, timeout: float
) -> tuple[int, list[int]]:
    """A subject-access request in the page: click the person at picture pixel (x, y), press
    "Keep only these" and "Render", wait for the render; the clicks it took and the track ids
    the click selected."""
    rect = page.locator("#overlay").bounding_box()
    assert rect is not None
    k = rect["width"] / page.evaluate("() => window.veilState.plan.session.width")
    page.mouse.click(rect["x"] + x * k, rect["y"] + y * k)
    wait_js(page, "window.veilState.selected.size > 0")
    selected = page.evaluate("() => [...window.veilState.selected]")
    page.click("#keeponly")
    wait_js(page, "window.veilState.plan.show_only && window.veilState.plan.show_only.tracks.length > 0")
    before = session.render_state
    page.click("#render")
    wait_render(session, before, timeout)
    return 3, selected


def wait_render(session: Any, before: Any, timeout: float) -> None:
    """Wait for the render the page started (its state replaces `before`) to finish; it must be done."""
    deadline = time.monotonic() + timeout
    while (session.render_state is before or session.render_state["state"] == "running") and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert session.render_state["state"] == "done", session.render_state


def test_review_in_browser(served: dict[str, Any]) -> None:
    plan_before = load_plan(served["plan"])
    assert len(plan_before.tracks) >= 2, "the sample should have at least two tracks"
    # The subject to keep: the largest face (the big astronaut); every other track stays masked.
    keep = max(plan_before.tracks, key=lambda t: float(np.mean([(b.box[2] - b.box[0]) for b in t.boxes])))
    width, height = int(plan_before.input["width"]), int(plan_before.input["height"])
    draw_frame = 40
    drawn = clear_region(plan_before.tracks, draw_frame, width, height)

    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            started = time.monotonic()
            page.goto(served["url"])
            wait_js(page, "window.veilState && window.veilState.ready && window.veilState.shownFrame === 0")
            load_s = time.monotonic() - started
            print(f"page load with first frame: {load_s:.2f} s")

            # Step with the keyboard: arrows move one frame, shift+arrow one second.
            page.keyboard.press("ArrowRight")
            wait_js(page, "window.veilState.shownFrame === 1")
            page.keyboard.press("Shift+ArrowRight")
            wait_js(page, "window.veilState.shownFrame === 26")

            # Keep the subject visible, with a reason.
            row = page.locator(f'.row[data-track="{keep.id}"]')
            row.locator("input.why").fill("the data subject")
            row.locator("button.state").click()
            wait_js(page, f"window.veilState.byId.get({keep.id}).redact === false")

            # Draw a box on frame 40 around a patch of background veil had no reason to mask.
            page.fill("#goto", str(draw_frame))
            page.dispatch_event("#goto", "change")
            wait_js(page, f"window.veilState.shownFrame === {draw_frame}")
            rect = page.locator("#overlay").bounding_box()
            assert rect is not None
            k = rect["width"] / width
            page.mouse.move(rect["x"] + drawn[0] * k, rect["y"] + drawn[1] * k)
            page.mouse.down()
            page.mouse.move(rect["x"] + drawn[2] * k, rect["y"] + drawn[3] * k, steps=4)
            page.mouse.up()
            wait_js(page, "window.veilState.tracks.some(t => t.source === 'manual')")
            page.fill("#reviewer", "Test Reviewer")
            page.dispatch_event("#reviewer", "change")
            wait_js(page, "[...document.querySelectorAll('#rows img')].every(i => i.complete && i.naturalWidth > 0)")
            page.screenshot(path=str(SCREENSHOT))

            page.click("#render")
            page.wait_for_selector("#outputlink", timeout=90000)
        finally:
            browser.close()
    assert not errors, f"console errors: {errors}"

    plan_after = load_plan(served["plan"])
    assert Path(str(served["plan"]) + ".bak").is_file(), "autosave keeps the previous plan as .bak"
    kept = next(t for t in plan_after.tracks if t.id == keep.id)
    assert kept.redact is False and kept.reason == "the data subject"
    manual = [t for t in plan_after.tracks if t.source == "manual"]
    assert len(manual) == 1 and manual[0].redact
    assert manual[0].extra["keyframes"][0]["frame"] == draw_frame
    assert {"keep", "add"} <= {d["action"] for d in plan_after.review["decisions"]}

    output = served["folder"] / "astronaut_pan_veiled.mp4"
    assert output.is_file()
    assert (served["folder"] / "astronaut_pan_veiled.report.json").is_file()
    with VideoSource(served["video"], with_audio=False) as src:
        originals = {f.index: f.image for f in src.items() if f.index in (10, draw_frame, 60)}
    with VideoSource(output, with_audio=False) as out:
        rendered = {f.index: f.image for f in out.items() if f.index in (10, draw_frame, 60)}
    for frame, original in originals.items():
        result = rendered[frame]
        x1, y1, x2, y2 = (int(round(v)) for v in kept.box_at(frame)[0])
        # The kept face comes out as it went in (up to the encoder's loss).
        assert mean_abs(result[y1:y2, x1:x2], original[y1:y2, x1:x2]) < 8, f"kept track changed in frame {frame}"
        for track in plan_after.tracks:
            got = track.box_at(frame)
            if track.id == keep.id or got is None:
                continue
            bx1, by1, bx2, by2 = (int(v) for v in np.clip(np.round(got[0]), 0, [width, height, width, height]))
            if bx2 - bx1 < 2 or by2 - by1 < 2:
                continue
            inner = result[by1:by2, bx1:bx2]
            assert float(inner.mean()) < 24, f"track {track.id} not masked in frame {frame}"
    mx1, my1, mx2, my2 = (int(v) for v in drawn)
    before = originals[draw_frame][my1:my2, mx1:mx2]
    after = rendered[draw_frame][my1:my2, mx1:mx2]
    assert float(before.mean()) > 40, "the drawn region should not be black to begin with"
    assert float(after.mean()) < 24, "the drawn box is masked"
    if SCREENSHOT.is_file():
        print(f"screenshot: {SCREENSHOT}")


SUBJECT_SHOT = REPO / "build" / "review_subject.png"


def console_error(errors: list[str], message: Any) -> None:
    if message.type == "error" and "409" not in message.text:
        errors.append(message.text)


REPORT_SHOT = REPO / "build" / "report.png"


def test_subject_access_in_two_tabs(served: dict[str, Any]) -> None:
    """A subject-access request made on the page: one click selects the subject, "Keep only
    these" masks everything else (show_only); a second tab's stale edit is refused and reloaded;
    the render shows only the subject and is marked out of date after a later edit."""
    plan_before = load_plan(served["plan"])
    detected = [t for t in plan_before.tracks if t.source == "detector"]
    subject = max(detected, key=lambda t: float(np.mean([(b.box[2] - b.box[0]) for b in t.boxes])))
    others = [t for t in plan_before.tracks if t.id != subject.id]
    width, height = int(plan_before.input["width"]), int(plan_before.input["height"])
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            pages = []
            for _ in range(2):
                page = browser.new_page(viewport={"width": 1400, "height": 860})
                # The refused stale edit is a 409 the browser logs; anything else is an error.
                page.on("console", lambda m: console_error(errors, m))
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(served["url"])
                wait_js(page, "window.veilState && window.veilState.ready && window.veilState.shownFrame === 0")
                pages.append(page)
            a, b = pages
            a.fill("#reviewer", "Ana")
            a.dispatch_event("#reviewer", "change")
            # Click 1: the subject in the picture selects their track. Click 2: keep only them.
            at = (subject.first + subject.last) // 2
            a.fill("#goto", str(at))
            a.dispatch_event("#goto", "change")
            wait_js(a, f"window.veilState.shownFrame === {at}")
            x1, y1, x2, y2 = subject.box_at(at)[0]
            rect = a.locator("#overlay").bounding_box()
            assert rect is not None
            k = rect["width"] / width
            a.mouse.click(rect["x"] + (x1 + x2) / 2 * k, rect["y"] + (y1 + y2) / 2 * k)
            wait_js(a, f"window.veilState.selected.has({subject.id}) && window.veilState.selected.size === 1")
            a.click("#keeponly")
            wait_js(a, f"window.veilState.plan.show_only && window.veilState.plan.show_only.tracks[0] === {subject.id}")
            assert a.locator("#showonly").is_visible()
            # Tab B still shows the plan before A's edit: its edit is refused, and B reloads.
            b.fill("#reviewer", "Ben")
            b.dispatch_event("#reviewer", "change")
            b.locator(f'.row[data-track="{others[0].id}"] button.state').click()
            wait_js(b, "document.getElementById('message').textContent.includes('another tab')")
            wait_js(b, "window.veilState.plan.show_only !== null && window.veilState.plan.show_only !== undefined")
            a.fill("#goto", "30")
            a.dispatch_event("#goto", "change")
            a.click("input[name=view][value=exported]")
            wait_js(a, "window.veilState.shownFrame === 30")
            time.sleep(0.5)
            a.screenshot(path=str(SUBJECT_SHOT))
            session = served["session"]
            before = session.render_state  # a render started from the page replaces it
            a.click("#render")
            wait_render(session, before, 120)
            a.evaluate("() => pollStatus()")
            a.wait_for_selector("#outputlink", timeout=10000)
            assert a.locator("#outofdate").count() == 0
            report = browser.new_page()
            report.set_viewport_size({"width": 1200, "height": 1600})
            report.goto(served["url"].split("?")[0].rstrip("/") + "/media/report.html?" + served["url"].split("?")[1])
            report.screenshot(path=str(REPORT_SHOT))
            report.close()
            # A later edit makes the rendered file out of date, and the page says so.
            a.fill("#rin", "2")
            a.fill("#rout", "3")
            a.click("#addrange")
            wait_js(a, "window.veilState.plan.frame_ranges.length > 0")
            a.evaluate("() => pollStatus()")
            wait_js(a, "document.getElementById('outofdate') !== null")
        finally:
            browser.close()
    assert not errors, f"console errors: {errors}"
    plan_after = load_plan(served["plan"])
    assert plan_after.show_only is not None and plan_after.show_only.tracks == (subject.id,)
    assert all(t.redact for t in plan_after.tracks if t.id != subject.id)
    assert [r.start for r in plan_after.frame_ranges] == [2]
    # Ben's stale edit changed nothing; Ana's decisions are hers.
    assert not any(d.get("reviewer") == "Ben" for d in plan_after.review["decisions"])
    assert any(d.get("action") == "show only" and d.get("reviewer") == "Ana" for d in plan_after.review["decisions"])
    output = served["folder"] / "astronaut_pan_veiled.mp4"
    with VideoSource(output, with_audio=False) as out:
        rendered = {f.index: f.image for f in out.items() if f.index in (10, 30, 60)}
    with VideoSource(served["video"], with_audio=False) as src:
        originals = {f.index: f.image for f in src.items() if f.index in (10, 30, 60)}
    for frame, result in rendered.items():
        got = subject.box_at(frame)
        if got is None:
            assert float(result.mean()) < 8, f"frame {frame}: no subject, so all masked"
            continue
        x1, y1, x2, y2 = (int(round(v)) for v in got[0])
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
        assert mean_abs(result[y1:y2, x1:x2], originals[frame][y1:y2, x1:x2]) < 8, f"subject hidden in {frame}"
        # Everything far from the subject (beyond its margin) is black, found by the scan or not.
        margin = 0.2 * max(x2 - x1, y2 - y1) + 8
        far = np.ones((height, width), bool)
        far[int(max(0, y1 - margin)) : int(y2 + margin), int(max(0, x1 - margin)) : int(x2 + margin)] = False
        assert float(result[far].mean()) < 6, f"frame {frame}: something outside the subject shows"

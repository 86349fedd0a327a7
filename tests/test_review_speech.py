"""Spoken personal data on the review page: a video whose sound is a real sentence, eight digits
read by a real voice and another real sentence is scanned (`veil scan` proposes what to mute),
and the reviewer reads a proposal's words, adjusts and accepts one, rejects another.

The words are read by the server when asked (POST /api/words) and shown on the page only: the
plan keeps ranges and reasons, never words. Needs the speech extra and ../shared/data/voices.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from test_review import PORT, TOKEN, call
from test_review_browser import ARGS, CHROMIUM, review_server, wait_js
from test_speech import DIGITS, SENTENCE, speech_video

from veil.plan import load_plan
from veil.review.server.app import create_app
from veil.review.server.session import ReviewSession
from veil.speech import available

DIGIT_WORDS = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
DOC_SHOT = Path(__file__).resolve().parents[1] / "docs" / "review_speech.png"

pytestmark = pytest.mark.skipif(
    not available() or not SENTENCE.is_dir() or not DIGITS.is_dir(),
    reason="speech extra (veil[speech]) or ../shared/data/voices absent",
)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from veil.progress import Reporter
    from veil.review.server import plan_for

    folder = tmp_path_factory.mktemp("review_speech")
    video, span = speech_video(folder / "call.mp4")
    plan_path = plan_for(video, rescan=True, preset="fast", reporter=Reporter(quiet=True))
    proposed = load_plan(plan_path).audio.get("proposed") or []
    number = [p for p in proposed if "number" in p["reason"] and p["start"] < span[1] and p["end"] > span[0]]
    assert number, f"the scan proposed no number over {span}: {proposed}"
    return {"plan": plan_path, "span": span, "proposed": proposed, "number": number[0]}


def test_words_are_read_on_request_and_never_saved(scanned: dict[str, Any]) -> None:
    session = ReviewSession(scanned["plan"])
    app = create_app(session, TOKEN, [PORT])
    number = scanned["number"]
    got = call(app, "POST", "/api/words", body={"start": number["start"], "end": number["end"]})
    assert got.status_code == 200, got.text
    heard = [w["text"].strip(".,?!").lower() for w in got.json()["words"]]
    assert sum(w in DIGIT_WORDS or w.isdigit() for w in heard) >= 3, heard
    assert got.headers["cache-control"] == "no-store"
    # Numbers from outside are checked where they enter: one line, nothing run.
    bodies = [{"start": 5.0, "end": 4.0}, {"start": "nan", "end": 4.0}, {"start": 0.0, "end": 61.0}]
    for body in [*bodies, {"start": -1, "end": 2}]:
        bad = call(app, "POST", "/api/words", body=body)
        assert bad.status_code == 400 and "\n" not in bad.json()["detail"], (body, bad.text)
    # The words went to the page only: not into the plan, its backups or the folder.
    said = " ".join(w for w in heard if w not in DIGIT_WORDS) or "seven"
    for path in scanned["plan"].parent.iterdir():
        if path.is_file() and path.suffix in (".json", ".jsonl", ".txt", ".log"):
            text = path.read_text(errors="ignore").lower()
            assert "seven" not in text and said not in text, path


def test_reject_is_recorded_and_versioned(scanned: dict[str, Any], tmp_path: Path) -> None:
    plan_path = tmp_path / "call.plan.json"
    data = json.loads(scanned["plan"].read_text())
    data["input"]["path"] = str((scanned["plan"].parent / data["input"]["path"]).resolve())
    plan_path.write_text(json.dumps(data))
    session = ReviewSession(plan_path)
    app = create_app(session, TOKEN, [PORT])
    p = scanned["number"]
    assert call(app, "POST", "/api/audio", body={"ranges": [], "rejected": [[p["start"], p["end"]]]}).status_code == 200
    plan = load_plan(plan_path)
    assert plan.audio["rejected"] == [[p["start"], p["end"]]] and not plan.audio.get("ranges")
    assert plan.review["decisions"][-1]["action"] == "reject audio proposal"
    # A stale tab cannot undo it, and a bad range is refused.
    stale = call(app, "POST", "/api/audio", body={"ranges": [], "rejected": [], "version": 0})
    assert stale.status_code == 409
    bad = call(app, "POST", "/api/audio", body={"ranges": [], "rejected": [[3.0, 1.0]]})
    assert bad.status_code == 400
    assert call(app, "POST", "/api/audio", body={"ranges": [], "rejected": []}).status_code == 200
    assert "rejected" not in load_plan(plan_path).audio


def test_reviewer_reads_adjusts_accepts_and_rejects_in_the_page(scanned: dict[str, Any]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")
    if not Path(CHROMIUM).is_file():
        pytest.skip("Debian chromium is not installed")
    number = scanned["number"]
    others = [p for p in scanned["proposed"] if p is not number]
    errors: list[str] = []
    with review_server(scanned["plan"]) as served, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(served["url"])
            wait_js(page, "window.veilState && window.veilState.ready")
            items = page.locator("#proposed li")
            assert items.count() == len(scanned["proposed"])
            k = scanned["proposed"].index(number)
            row = items.nth(k)
            row.get_by_role("button", name="Words").click()
            words = f"document.querySelectorAll('#proposed li')[{k}].querySelector('.words').textContent"
            wait_js(page, f"{words} && !{words}.includes('reading')", 60)
            heard = row.locator(".words").inner_text().lower()
            assert sum(w.strip(".,?!") in DIGIT_WORDS for w in heard.split()) >= 3, heard
            # Adjusted before accepting: a tenth of a second earlier.
            start = round(number["start"] - 0.1, 2)
            row.get_by_label("from").fill(f"{start:.2f}")
            row.get_by_role("button", name="Accept").click()
            wait_js(page, "window.veilState.plan.audio.ranges && window.veilState.plan.audio.ranges.length === 1")
            if others:
                other = items.nth(scanned["proposed"].index(others[0]))
                other.get_by_role("button", name="Words").click()
                other.get_by_role("button", name="Reject").click()
                wait_js(page, "(window.veilState.plan.audio.rejected || []).length === 1")
                assert "(rejected)" in other.inner_text()
            if os.environ.get("VEIL_DOC_SHOTS") == "1":
                # docs/review_speech.png: the audio panel after the reviewer's decisions.
                page.locator(".panel", has=page.locator("#proposed")).screenshot(path=str(DOC_SHOT))
        finally:
            browser.close()
    audio = load_plan(scanned["plan"]).audio
    assert audio["ranges"] == [[start, number["end"]]] and audio["mode"] == "mute"
    if others:
        assert audio["rejected"] == [[others[0]["start"], others[0]["end"]]]
    assert not errors, errors

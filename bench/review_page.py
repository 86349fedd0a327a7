"""Review page timings in a real browser (Debian's Chromium via Playwright, nothing downloaded).

1. The shared video (../shared/data/videos/egoblur_gen1_test_video.mp4 by default), copied to a
   temporary folder and scanned: page load time (navigation to the first frame on screen) and
   in-page seek time (a seek asked by the page's own `seek()` until the new picture is shown).
2. The same video with a plan of 500 synthetic tracks: load time, one-frame step, scrolling the
   track list to the end, and one keep/redact round trip (edit, save, reload of the plan).
The reference, measured in the same run, is the first case's load time; ratios are against it.

Usage: python bench/review_page.py [--video PATH] [--seeks 30] [--plan EXISTING.plan.json]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import sync_playwright

from veil.plan import PlanBox, Track, load_plan, write_plan
from veil.progress import Reporter
from veil.review.server import plan_for, serve

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEO = REPO.parent / "shared" / "data" / "videos" / "egoblur_gen1_test_video.mp4"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip

SEEK_JS = """async (n) => {
  const t0 = performance.now();
  seek(n);
  while (window.veilState.shownFrame !== n) await new Promise((r) => setTimeout(r, 5));
  return performance.now() - t0;
}"""
SCROLL_JS = """async () => {
  const t0 = performance.now();
  const list = document.getElementById('list');
  list.scrollTop = list.scrollHeight;
  list.dispatchEvent(new Event('scroll'));
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  return [performance.now() - t0, document.querySelectorAll('#rows .row').length];
}"""


def start(plan_path: Path) -> tuple[str, Any, threading.Thread]:
    got: dict[str, Any] = {}
    ready = threading.Event()

    def on_ready(url: str, server: Any, session: Any) -> None:
        got.update(url=url, server=server)
        ready.set()

    thread = threading.Thread(target=serve, args=(plan_path,), kwargs={"ready": on_ready}, daemon=True)
    thread.start()
    ready.wait(60)
    while not got["server"].started:
        time.sleep(0.05)
    return got["url"], got["server"], thread


def wait_js(page: Any, expression: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        time.sleep(0.01)


def load(page: Any, url: str) -> float:
    started = time.monotonic()
    page.goto(url)
    wait_js(page, "window.veilState && window.veilState.ready && window.veilState.shownFrame === 0")
    return time.monotonic() - started


def synthetic_plan(plan_path: Path, out: Path, tracks: int = 500) -> None:
    plan = load_plan(plan_path)
    frames, w, h = plan.frames, int(plan.input["width"]), int(plan.input["height"])
    rng = random.Random(0)
    made = []
    for i in range(tracks):
        first = rng.randrange(frames)
        last = min(frames - 1, first + rng.randrange(5, 200))
        x, y, s = rng.uniform(0, w - 60), rng.uniform(0, h - 60), rng.uniform(12, 60)
        boxes = []
        for f in sorted({first, last, *(rng.randrange(first, last + 1) for _ in range(12))}):
            dx = rng.uniform(-20, 20)
            bx = float(np.clip(x + dx, 0, w - s - 1))
            boxes.append(PlanBox(f, np.array([bx, y, bx + s, y + s]), rng.random() < 0.7, rng.uniform(0.2, 0.95)))
        made.append(Track(i, "face", boxes))
    plan.tracks = made
    write_plan(plan, out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--video", type=Path, default=SHARED_VIDEO)
    ap.add_argument("--seeks", type=int, default=30)
    ap.add_argument("--plan", type=Path, help="review this existing plan (its folder is used) instead of scanning")
    args = ap.parse_args()
    folder = args.plan.parent if args.plan else Path(tempfile.mkdtemp(prefix="veil-review-bench-"))
    try:
        if args.plan:
            plan_path = args.plan
        else:
            video = folder / args.video.name
            shutil.copyfile(args.video, video)
            started = time.monotonic()
            plan_path = plan_for(video, rescan=True, preset="balanced", reporter=Reporter(quiet=True))
            print(f"scanned in {time.monotonic() - started:.0f} s")
        plan = load_plan(plan_path)
        print(
            f"{Path(plan.input['path']).name}: {plan.frames} frames {plan.input['width']}x{plan.input['height']}, "
            f"{len(plan.tracks)} tracks"
        )
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("requestfailed", lambda r: errors.append(f"failed: {r.url.split('?')[0]} {r.failure}"))

            url, server, thread = start(plan_path)
            loads = [load(page, url) for _ in range(3)]
            ref = statistics.median(loads)
            rng = random.Random(2)
            proxy = page.evaluate("() => api('/api/status')")["proxy"]["state"]
            seeks = [page.evaluate(SEEK_JS, rng.randrange(plan.frames)) / 1000 for _ in range(args.seeks)]
            print(
                f"in-page seek, {len(seeks)} random frames (seek proxy: {proxy} at the start): "
                f"p50 {np.percentile(seeks, 50):.3f} s, p95 {np.percentile(seeks, 95):.3f} s"
            )
            if proxy == "making":
                started = time.monotonic()
                wait_js(page, "true")
                while page.evaluate("() => api('/api/status')")["proxy"]["state"] == "making":
                    time.sleep(1)
                print(f"proxy ready {time.monotonic() - started:.0f} s later")
                seeks = [page.evaluate(SEEK_JS, rng.randrange(plan.frames)) / 1000 for _ in range(args.seeks)]
                print(
                    f"in-page seek with the proxy, {len(seeks)} random frames: "
                    f"p50 {np.percentile(seeks, 50):.3f} s, p95 {np.percentile(seeks, 95):.3f} s"
                )
            steps = []
            for _ in range(20):
                target = page.evaluate("() => window.veilState.shownFrame") + 1
                if target >= plan.frames:
                    break
                steps.append(page.evaluate(SEEK_JS, target) / 1000)
            print(
                f"page load (navigation to first frame shown), 3 loads: median {ref:.2f} s, "
                f"all {', '.join(f'{v:.2f}' for v in loads)}"
            )
            print(f"one-frame step median {statistics.median(steps):.3f} s")
            page.goto("about:blank")  # the page polls its server: leave it before stopping that
            server.should_exit = True
            thread.join(10)

            many = folder / "many.plan.json"
            synthetic_plan(plan_path, many)
            url, server, thread = start(many)
            big = load(page, url)
            step = [page.evaluate(SEEK_JS, i + 1) / 1000 for i in range(10)]
            scroll_ms, rows = page.evaluate(SCROLL_JS)
            started = time.monotonic()
            before = page.evaluate("() => window.veilState.plan.session.version")
            page.locator("#rows .row button.state").first.click()
            wait_js(page, f"window.veilState.plan.session.version > {before}")
            edit_s = time.monotonic() - started
            payload = len(json.dumps(load_plan(many).to_json()))
            page.goto("about:blank")
            print(
                f"500 tracks: load {big:.2f} s ({big / ref:.2f}x the plain load), step median "
                f"{statistics.median(step):.3f} s, scroll to the end {scroll_ms:.0f} ms with {rows} rows in the DOM, "
                f"keep/redact round trip {edit_s:.2f} s (plan {payload / 1e6:.1f} MB)"
            )
            server.should_exit = True
            thread.join(10)
            browser.close()
            print(f"console errors: {len(errors)}: {sorted(set(errors))[:8]}")
    finally:
        (folder / "many.plan.json").unlink(missing_ok=True)
        if not args.plan:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Versioned review edits: two clients editing one plan never silently undo each other (a
stale write is a one-line 409 and changes nothing), each decision is logged under the name sent
with it, a render records the plan version it used and is marked out of date once the plan
changes; "Keep only these" makes a subject-access plan (show_only) by default."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import make_video

from veil.analysis.detectors import sha256_of
from veil.plan import Plan, PlanBox, Track, load_plan, write_plan
from veil.review.server.app import create_app
from veil.review.server.session import ReviewSession

TOKEN = "test-token-0123456789"
PORT = 8766
FRAMES = 12
SIZE = (320, 240)


@pytest.fixture()
def review(tmp_path: Path) -> Any:
    video = make_video(tmp_path / "clip.mp4", frames=FRAMES, size=SIZE, fps=10)
    tracks = [
        Track(0, "face", [PlanBox(f, np.array([10.0 + f, 40, 90 + f, 140]), True, 0.9) for f in range(FRAMES)]),
        Track(1, "face", [PlanBox(0, np.array([200.0, 20, 240, 60]), True, 0.8),
                          PlanBox(8, np.array([210.0, 20, 250, 60]))]),
        Track(2, "person", [PlanBox(2, np.array([150.0, 100, 220, 230]), True, 0.7)]),
    ]  # fmt: skip
    plan = Plan(
        input={"path": str(video), "sha256": sha256_of(video), "kind": "video", "width": SIZE[0],
               "height": SIZE[1], "frames": FRAMES, "frame_rate": "10", "duration_s": 1.2},
        settings={"mask": "solid", "margin": 0.0},
        tracks=tracks,
    )  # fmt: skip
    write_plan(plan, tmp_path / "clip.plan.json")
    session = ReviewSession(tmp_path / "clip.plan.json")
    yield session, create_app(session, TOKEN, [PORT])
    session.close()


def call(app: Any, method: str, path: str, body: Any = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{PORT}") as http:
            return await http.request(method, path, params={"t": TOKEN}, json=body)

    return asyncio.run(go())


def version(app: Any) -> int:
    return int(call(app, "GET", "/api/plan").json()["session"]["version"])


def test_two_clients_a_stale_write_is_refused_and_nothing_is_lost(review: Any) -> None:
    session, app = review
    seen_by_a = seen_by_b = version(app)
    # A masks frames 2-4, B (on the same version) masks 7-9 and mutes some audio: B's whole-list
    # writes would silently drop A's range; instead they are refused.
    body = {"ranges": [{"start": 2, "end": 4}], "reviewer": "Ana", "version": seen_by_a}
    got = call(app, "POST", "/api/ranges", body)
    assert got.status_code == 200
    for path, body in [
        ("/api/ranges", {"ranges": [{"start": 7, "end": 9}]}),
        ("/api/audio", {"ranges": [[0.1, 0.5]]}),
        ("/api/redact", {"ids": [1], "redact": False}),
        ("/api/keep_only", {"ids": [0]}),
        ("/api/history", {"back": True}),
    ]:
        got = call(app, "POST", path, {**body, "reviewer": "Ben", "version": seen_by_b})
        assert got.status_code == 409, (path, got.text)
        detail = got.json()["detail"]
        assert "\n" not in detail and "another tab" in detail
    plan = load_plan(session.plan_path)
    assert [(r.start, r.end) for r in plan.frame_ranges] == [(2, 4)], "A's range survives B's stale writes"
    assert plan.audio["ranges"] == [] and all(t.redact for t in plan.tracks)
    # B reloads (as the page does on a 409) and adds to what A saved.
    state = call(app, "GET", "/api/plan").json()
    ranges = [*state["frame_ranges"], {"start": 7, "end": 9}]
    got = call(app, "POST", "/api/ranges", {"ranges": ranges, "version": state["session"]["version"]})
    assert got.status_code == 200
    plan = load_plan(session.plan_path)
    assert [(r.start, r.end) for r in plan.frame_ranges] == [(2, 4), (7, 9)]
    # Each decision under the name sent with it: B sent none, so none (not A's).
    logged = [(d["action"], tuple(d.get("frames") or ()), d["reviewer"]) for d in plan.review["decisions"]]
    assert logged == [("mask frames", (2, 4), "Ana"), ("mask frames", (7, 9), None)]
    # The version is kept in the plan: a restarted review continues from it.
    assert plan.review["version"] == version(app) == seen_by_a + 2
    assert ReviewSession(session.plan_path).version == plan.review["version"]


def test_a_render_records_its_version_and_goes_out_of_date(review: Any) -> None:
    session, app = review
    assert call(app, "POST", "/api/render", {}).status_code == 202
    deadline = time.monotonic() + 120
    while session.render_state["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    render = call(app, "GET", "/api/status").json()["render"]
    assert render["state"] == "done", render
    assert render["version"] == version(app) and render["out_of_date"] is False
    assert call(app, "POST", "/api/redact", {"ids": [2], "redact": False, "version": version(app)}).status_code == 200
    render = call(app, "GET", "/api/status").json()["render"]
    assert render["out_of_date"] is True
    assert call(app, "GET", "/api/plan").json()["session"]["render"]["out_of_date"] is True


def test_keep_only_makes_a_subject_access_plan(review: Any) -> None:
    session, app = review
    got = call(app, "POST", "/api/keep_only", {"ids": [0], "reviewer": "Ana", "version": version(app)})
    assert got.status_code == 200
    plan = load_plan(session.plan_path)
    assert plan.show_only is not None and plan.show_only.tracks == (0,) and plan.show_only.mask == "solid"
    assert [t.redact for t in plan.tracks] == [False, True, True]
    # The preview paints it: outside track 0's box (grown 20 %) the frame is black.
    frame = call(app, "GET", "/frame/5?view=exported")
    assert frame.status_code == 200
    # Merging a shown track keeps the merged one shown; ending the request is a logged decision.
    assert call(app, "POST", "/api/merge", {"ids": [0, 1], "version": version(app)}).status_code == 200
    assert load_plan(session.plan_path).show_only.tracks == (0,)  # type: ignore[union-attr]
    assert call(app, "POST", "/api/show_only", {"ids": [9], "version": version(app)}).status_code == 400
    assert call(app, "POST", "/api/show_only", {"ids": [], "version": version(app)}).status_code == 200
    plan = load_plan(session.plan_path)
    assert plan.show_only is None and plan.review["decisions"][-1]["action"] == "show everyone"
    # Without show_only, keep-only is the old edit (redact the others, show_only untouched).
    got = call(app, "POST", "/api/keep_only", {"ids": [2], "show_only": False, "version": version(app)})
    assert got.status_code == 200 and load_plan(session.plan_path).show_only is None


def test_exported_preview_masks_outside_the_subject(review: Any) -> None:
    session, app = review
    call(app, "POST", "/api/keep_only", {"ids": [0], "version": version(app)})
    image = session.exported(5)
    x1, y1, x2, y2 = 15, 40, 95, 140  # track 0 at frame 5, margin 0.2 grows it 16 px / 20 px
    outside = np.ones(image.shape[:2], bool)
    outside[y1 - 20 : y2 + 20, max(0, x1 - 16) : x2 + 16] = False
    assert not image[outside].any()
    assert image[y1:y2, x1:x2].any()

"""A subject-access request in three clicks, in a real browser, on a fixed camera.

A synthetic fixed-camera clip: the subject walks left to right, a second walker right to left
(the two cross), and a third person stands still at the bottom. `veil review` scans it with the
defaults; the reviewer clicks the subject once in the picture (which selects every track the
scan linked to them: one person), presses "Keep only these" and "Render". In the output every
other person is masked in every frame (but where they overlap the subject's own region, which
a subject-access output shows by design), and the subject's face is visible in at least 90 % of
the frames. (Where they cross, the face detector finds the subject's face twice near frame 36 and
the tracker carries the second box on as a still face track for a second each way; it is a
duplicate of the subject's own face, `redact.duplicate_faces`, and no longer hides them.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_FACE, SAMPLE_IMAGE, decode_frames, encode_frames
from PIL import Image
from test_review_browser import ARGS, CHROMIUM, click_person_keep_only_and_render, review_server, sync_api, wait_js

from veil.plan import load_plan

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Debian chromium is not installed")

SIZE = (640, 360)
HEAD = 48  # the sprite's head: the sample photo's head and hair, scaled
BODY = (40, 130)  # a dark body under it (w, h): the blob the motion cue sees is a person's shape
CROP = (150, 22, 320, 192)  # the head in the 512 px sample photo
FRAMES = 48
# The walkers come in (through a door, say) at frame ENTER, so the motion cue's background is
# learnt without them; then they walk at 5 px a frame (a quarter of a face) and cross near frame
# 35, the other walker lower in the picture (behind the subject: their bodies overlap, not their
# faces).
ENTER = 8


def walker_a(i: int) -> tuple[int, int]:
    return (120 + 5 * (i - ENTER), 40)


def walker_b(i: int) -> tuple[int, int]:
    return (390 - 5 * (i - ENTER), 110)


STILL = (30, 170)


def face_of(corner: tuple[int, int], pad: int = 1) -> tuple[int, int, int, int]:
    """The face inside the sprite whose top-left corner is `corner` (from SAMPLE_FACE)."""
    x, y = corner
    k = HEAD / (CROP[2] - CROP[0])
    fx, fy, fw, fh = SAMPLE_FACE
    x1, y1 = x + (fx - CROP[0]) * k, y + (fy - CROP[1]) * k
    return (round(x1) + pad, round(y1) + pad, round(x1 + fw * k) - pad, round(y1 + fh * k) - pad)


def sprite() -> np.ndarray:
    """A person: the sample's head on a dark body, on a transparent ground (alpha)."""
    head = np.asarray(Image.open(SAMPLE_IMAGE).convert("RGB").crop(CROP).resize((HEAD, HEAD)))
    out = np.zeros((HEAD + BODY[1], HEAD, 4), np.uint8)
    out[:HEAD, :, :3], out[:HEAD, :, 3] = head, 255
    x = (HEAD - BODY[0]) // 2
    out[HEAD:, x : x + BODY[0], :3], out[HEAD:, x : x + BODY[0], 3] = (40, 45, 70), 255
    return out


def make_clip(path: Path) -> Path:
    person = sprite()
    w, h = SIZE
    ground = np.random.default_rng(1).integers(120, 200, (h // 6 + 1, w // 6 + 1, 3), dtype=np.uint8)
    ground = ground.repeat(6, 0).repeat(6, 1)[:h, :w]

    def frames() -> Iterator[np.ndarray]:
        for i in range(FRAMES):
            img = ground.copy()
            people = [STILL, walker_b(i), walker_a(i)] if i >= ENTER else [STILL]
            for x, y in people:  # the subject last: in front where they cross
                region = img[y : y + person.shape[0], x : x + person.shape[1]]
                solid = person[..., 3:] > 0
                region[:] = np.where(solid, person[..., :3], region)
            yield img

    encode_frames(path, frames(), fps=10, options={"crf": "12"})
    return path


def overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int], margin: int) -> bool:
    return not (a[2] + margin < b[0] or b[2] + margin < a[0] or a[3] + margin < b[1] or b[3] + margin < a[1])


def test_pick_one_walker_in_three_clicks_and_show_only_them(tmp_path: Path) -> None:
    from veil.progress import Reporter
    from veil.review.server import plan_for

    video = make_clip(tmp_path / "walkers.mp4")
    plan_path = plan_for(video, rescan=True, preset="balanced", reporter=Reporter(quiet=True))
    errors: list[str] = []
    clicks = 0
    with review_server(plan_path) as got, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(got["url"])
            wait_js(page, "window.veilState && window.veilState.ready && window.veilState.shownFrame === 0")
            started = time.monotonic()
            # Typed, not clicked: the frame where the subject has come in.
            page.fill("#goto", str(ENTER + 2))
            page.dispatch_event("#goto", "change")
            wait_js(page, f"window.veilState.shownFrame === {ENTER + 2}")
            x1, y1, x2, y2 = face_of(walker_a(ENTER + 2))
            session = got["session"]
            clicks += click_person_keep_only_and_render(page, session, (x1 + x2) / 2, (y1 + y2) / 2, 180)[0]
            seconds = time.monotonic() - started
        finally:
            browser.close()
    assert not errors, errors
    assert clicks == 3
    plan = load_plan(plan_path)
    shown = set(plan.show_only.tracks)  # type: ignore[union-attr]
    persons = {t.person for t in plan.tracks if t.id in shown}
    assert len(persons) == 1, f"one click selected {len(persons)} people"
    source, output = decode_frames(video), decode_frames(plan_path.parent / session.render_state["output"])
    assert len(output) == FRAMES
    visible = 0
    for i in range(FRAMES):
        a, b = face_of(walker_a(i)), face_of(walker_b(i))
        here = i >= ENTER

        def diff(box: tuple[int, int, int, int], i: int = i) -> float:
            x1, y1, x2, y2 = box
            return float(np.abs(output[i][y1:y2, x1:x2].astype(np.int16) - source[i][y1:y2, x1:x2]).mean())

        visible += here and diff(a) < 12
        # Everyone else masked: the one standing still (the motion cue never sees them) always,
        # the other walker whenever their face is outside the subject's shown region.
        assert diff(face_of(STILL)) > 40, f"frame {i}: the person standing still is visible"
        if here and not overlaps(a, b, 20):
            assert diff(b) > 40, f"frame {i}: the other walker is visible"
    assert visible >= 0.9 * (FRAMES - ENTER), f"the subject's face is visible in {visible} of {FRAMES - ENTER} frames"
    print(f"three clicks, {seconds:.1f} s from the page first frame to the rendered file; face shown {visible}/40")

"""A subject-access request on real fixed-camera footage, in a real browser.

The shared CUHK Mall dev clip (`cctv/mall_dev.mp4`, 640x480, 13-53 people in view, heads 10-40
px, frames taken under 2 fps and played at 10) has hand-marked head centre points on every 5th
frame (`cctv/mall_heads.json`) and no identities. A cut of it (CUT_FRAMES frames from
CUT_START, the start of the half `bench/mall_bench.py` reports on rather than the half it tunes
on; 30 annotated frames) is written to a temporary mp4 and scanned once with the defaults by
`veil review`'s own `plan_for`, as `veil review CUT.mp4` does.

The subject is chosen by a rule, never an id. The data has no identities, so a subject's own
head points are the annotated points inside their track boxes, and they are "in view" at every
annotated frame from the first to the last where they have one. Two subjects, one request each
on a copy of the scanned plan:

* `walker` (the issue's case): among the people the scan made (the plan's `person`), the one
  whose boxes hold exactly one head point at the most annotated frames, counting only people
  whose such points move at least WALK_PX from first to last (a walker, not someone seated
  and not a poster the detector keeps finding); ties: the longer span. Only people a click on
  their head point selects at one of those frames count (the page selects the smallest box
  under the pointer, and a reviewer cannot pick a person out from under someone else's box).
* `linked`: the same without the walking condition: the person the scan follows best of all.

The reviewer types the frame where the subject's box around their head point is largest (typed,
not clicked), clicks that head point (the page selects the smallest box under the pointer and
with it every track the scan linked to that person; the rule picks a frame where that box is the
subject's), presses "Keep only these, mask everything else" and "Render": three clicks, timed
from the page's first frame to the rendered file. Then, on the rendered file, at every annotated
frame of the cut:

* every other head point is masked: every pixel of the 9x9 px around it (as the bench counts)
  is the black fill (<= FILL_MAX in each channel), except where that patch touches the
  subject's own shown region (their boxes grown by the request's margin, `ShownRegion`), which
  a subject-access output shows by design; those are counted (`exempt_in_subject_region`);
* the subject's head is visible (one of their head points' 9x9 px unchanged from the cut's own
  frame: mean absolute difference < SAME_MAX) in at least 90 % of the annotated frames where
  they are in view: xfail for both subjects, with the measured figures.

Checked by eye on crops of every annotated frame (2026-12-05, before the person network ran on
fixed cameras; since then `linked` picks a head in a seated group and `walker` someone crossing
the crowd, see the xfail reasons): `linked`
was one seated woman at all 30 annotated frames; `walker` is not one person: its head boxes pass from one passer-by to
another (several different people, the palm's pillar and empty floor over the cut). Five frames
taken under 2 fps are 2.5 s or more: a walker covers metres between annotated frames, and the
scan's `person` links fragments of different people, so "one walker in one click" selects parts
of several people: their heads inside the shown region count as the subject's here, as nothing
tells them apart.

`VEIL_DOC_SHOTS=1` also writes docs/review_mall_{walker,linked}.png (the page after the render,
"As exported", the list filtered to the kept person: no bystander's face on it) and
docs/review_mall_{walker,linked}_output.png (a rendered frame where the subject's head is
visible, else the click frame: everything but the subject masked).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from conftest import REPO, SHARED, decode_frames
from PIL import Image
from test_review_browser import ARGS, CHROMIUM, click_person_keep_only_and_render, review_server, sync_api, wait_js

from veil.plan import Plan, load_plan

CLIP = SHARED / "cctv" / "mall_dev.mp4"
HEADS = SHARED / "cctv" / "mall_heads.json"
CUT_START, CUT_FRAMES = 500, 150
WALK_PX = 60.0
FILL_MAX = 40  # the black fill after H.264: every channel at or below this
SAME_MAX = 12.0  # mean absolute difference of an unmasked patch from the cut's own frame
DOCS = REPO / "docs"

pytestmark = [
    pytest.mark.skipif(not CLIP.is_file() or not HEADS.is_file(), reason="../shared/data/cctv absent"),
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Debian chromium is not installed"),
]


def cut_clip(path: Path) -> Path:
    """Frames CUT_START .. CUT_START + CUT_FRAMES - 1 of the clip, re-encoded near-losslessly."""
    with av.open(str(CLIP)) as source, av.open(str(path), "w") as out:
        ctx = source.streams.video[0].codec_context
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = ctx.width, ctx.height, "yuv420p"
        stream.options = {"crf": "12"}
        n = 0
        for i, frame in enumerate(source.decode(video=0)):
            if i < CUT_START:
                continue
            if n == CUT_FRAMES:
                break
            vf = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            vf.pts, vf.time_base = n, Fraction(1, 10)
            n += 1
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def head_points() -> dict[int, np.ndarray]:
    """The cut's annotated frames (cut frame numbers) and their head points (x, y)."""
    frames = json.loads(HEADS.read_text())["frames"]
    return {
        int(k) - CUT_START: np.asarray(v, np.float64).reshape(-1, 2)
        for k, v in frames.items()
        if CUT_START <= int(k) < CUT_START + CUT_FRAMES
    }


def people_of(plan: Plan) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = defaultdict(list)
    for t in plan.tracks:
        out[t.person if t.person is not None else -1 - t.id].append(t)
    return out


def boxes_at(tracks: list[Any], frame: int) -> list[np.ndarray]:
    return [got[0] for t in tracks if (got := t.box_at(frame)) is not None]


def inside(point: np.ndarray, boxes: list[np.ndarray]) -> bool:
    x, y = point
    return any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes)


def own_points(tracks: list[Any], points: dict[int, np.ndarray]) -> dict[int, list[int]]:
    """Annotated frame -> indices of the head points inside these tracks' boxes there."""
    out = {}
    for f, pts in points.items():
        boxes = boxes_at(tracks, f)
        hits = [j for j, p in enumerate(pts) if inside(p, boxes)]
        if hits:
            out[f] = hits
    return out


def single_points(tracks: list[Any], points: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Annotated frame -> the head point, where exactly one lies inside these tracks' boxes."""
    return {f: points[f][js[0]] for f, js in own_points(tracks, points).items() if len(js) == 1}


def choose_subject(plan: Plan, points: dict[int, np.ndarray], walker: bool = True) -> int:
    """The walker the scan follows best (module docstring): the most annotated frames with
    exactly one head point in their boxes, those points moving WALK_PX from first to last (a
    walker covers metres between annotated frames here, so no bound on a step), among the
    people a click on their head selects at one of those frames (`click_target`; a reviewer
    cannot pick someone else's smaller box out from under the pointer)."""
    best: tuple[int, int, int] | None = None
    for person, tracks in people_of(plan).items():
        single = single_points(tracks, points)
        if len(single) < 3:
            continue
        path = np.asarray([single[f] for f in sorted(single)])
        if walker and float(np.linalg.norm(path[-1] - path[0])) < WALK_PX:
            continue
        try:
            click_target(plan, person, points)
        except AssertionError:
            continue
        first = min(b.frame for t in tracks for b in t.boxes)
        last = max(b.frame for t in tracks for b in t.boxes)
        key = (len(single), last - first, person)
        best = key if best is None or key > best else best
    assert best is not None, "the scan follows no walker over three annotated frames"
    return best[2]


def hit(plan: Plan, frame: int, x: float, y: float) -> int | None:
    """The track the page's click selects at (x, y): the smallest box under the pointer
    (app.js `hitTrack`)."""
    under = []
    for t in plan.tracks:
        got = t.box_at(frame)
        if got is not None and inside(np.asarray([x, y]), [got[0]]):
            b = got[0]
            under.append((float((b[2] - b[0]) * (b[3] - b[1])), t.id))
    return min(under)[1] if under else None


def click_target(plan: Plan, person: int, points: dict[int, np.ndarray]) -> tuple[int, tuple[float, float]]:
    """(frame, point): where a reviewer clicks the subject's head: the annotated frame where
    their box around it is largest and a click on that head point selects one of their tracks."""
    tracks = people_of(plan)[person]
    ids = {t.id for t in tracks}
    candidates = []
    for f, p in single_points(tracks, points).items():
        around = [b for b in boxes_at(tracks, f) if inside(p, [b])]
        candidates.append((max(float((b[2] - b[0]) * (b[3] - b[1])) for b in around), f, p))
    for _, f, p in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if hit(plan, f, float(p[0]), float(p[1])) in ids:
            return f, (float(p[0]), float(p[1]))
    raise AssertionError(f"no annotated frame where a click on the head selects person {person}")


def patch(img: np.ndarray, point: np.ndarray) -> tuple[slice, slice]:
    """The 9x9 px around a head point (clipped), as bench/mall_bench.py counts."""
    h, w = img.shape[:2]
    x, y = int(round(point[0])), int(round(point[1]))
    return slice(max(0, y - 4), min(h, y + 5)), slice(max(0, x - 4), min(w, x + 5))


def save_small(image: Image.Image, path: Path, width: int) -> None:
    """A doc picture under 300 KB: scaled to `width`, 256 colours."""
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The cut, scanned once with the defaults (as `veil review CUT` does), and its frames."""
    from veil.progress import Reporter
    from veil.review.server import plan_for

    folder = tmp_path_factory.mktemp("mall")
    video = cut_clip(folder / "mall_cut.mp4")
    t0 = time.monotonic()
    plan_path = plan_for(video, rescan=True, preset="balanced", reporter=Reporter(quiet=True))
    return {
        "video": video,
        "plan_path": plan_path,
        "plan": load_plan(plan_path),
        "scan_s": time.monotonic() - t0,
        "points": head_points(),
        "source": decode_frames(video),
    }


def make_request(scan: dict[str, Any], walker: bool, name: str) -> dict[str, Any]:
    """Choose the subject, make the request in the page on a copy of the scan's plan, render,
    and score the output (module docstring)."""
    from veil.render.redact import ShownRegion, shown_mask

    points, scanned = scan["points"], scan["plan"]
    subject = choose_subject(scanned, points, walker)
    frame, (cx, cy) = click_target(scanned, subject, points)
    folder = scan["plan_path"].parent / name
    folder.mkdir()
    plan_path = folder / scan["plan_path"].name
    shutil.copyfile(scan["plan_path"], plan_path)

    errors: list[str] = []
    clicks = typed = 0
    shots = os.environ.get("VEIL_DOC_SHOTS") == "1"
    with review_server(plan_path) as got, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(got["url"])
            wait_js(page, "window.veilState && window.veilState.ready && window.veilState.shownFrame === 0", 60)
            started = time.monotonic()
            # Typed, not clicked: the frame where the reviewer sees the subject best.
            page.fill("#goto", str(frame))
            page.dispatch_event("#goto", "change")
            typed += 1
            wait_js(page, f"window.veilState.shownFrame === {frame}")
            session = got["session"]
            done, selected = click_person_keep_only_and_render(page, session, cx, cy, 300)
            clicks += done
            request_s = time.monotonic() - started
            assert session.render_state["state"] == "done", session.render_state
            if shots:
                # Not part of the request: the list filtered to the kept person's row, the
                # picture as exported (only the subject): no bystander's face on the page.
                page.select_option("#filter", "keep")
                page.check("input[name=view][value=exported]")
                wait_js(page, "window.veilState.view === 'exported' && !window.veilState.loading")
                time.sleep(1.0)
                shot = folder / "page.png"
                page.screenshot(path=str(shot))
                save_small(Image.open(shot), DOCS / f"review_mall_{name}.png", 1100)
        finally:
            browser.close()

    plan = load_plan(plan_path)
    source = scan["source"]
    output = decode_frames(folder / session.render_state["output"])
    assert len(output) == len(source)
    assert plan.show_only is not None
    shown_ids = set(plan.show_only.tracks)
    tracks = [t for t in plan.tracks if t.id in shown_ids]
    own = own_points(tracks, points)
    region = ShownRegion(plan)
    h, w = source[0].shape[:2]
    bystanders = masked = exempt = 0
    leaks: list[str] = []
    seen: set[int] = set()
    in_view = [f for f in points if own and min(own) <= f <= max(own)]
    for f in sorted(points):
        show = shown_mask(region.at(f, w, h), h, w)
        for j, p in enumerate(points[f]):
            ys, xs = patch(source[f], p)
            if j in own.get(f, []):
                if np.abs(output[f][ys, xs].astype(np.int16) - source[f][ys, xs]).mean() < SAME_MAX:
                    seen.add(f)
                continue
            bystanders += 1
            if show[ys, xs].any():
                exempt += 1
            elif (output[f][ys, xs] <= FILL_MAX).all():
                masked += 1
            else:
                leaks.append(f"frame {f + CUT_START} ({p[0]:.0f}, {p[1]:.0f})")
    if shots:
        best = max(seen, key=lambda f: max(b[3] - b[1] for b in boxes_at(tracks, f))) if seen else frame
        save_small(Image.fromarray(output[best]), DOCS / f"review_mall_{name}_output.png", 640)
    figures = {
        "case": name,
        "subject": subject,
        "tracks": len(scanned.tracks),
        "people": len(people_of(scanned)),
        "subject_tracks": sorted(shown_ids),
        "selected": sorted(selected),
        "frame": frame,
        "clicks": clicks,
        "typed": typed,
        "request_s": round(request_s, 1),
        "scan_s": round(scan["scan_s"], 1),
        "annotated_frames": len(points),
        "bystander_points": bystanders,
        "masked": masked,
        "exempt_in_subject_region": exempt,
        "leaks": leaks,
        "own_frames": len(own),
        "in_view": len(in_view),
        "visible": len(seen),
        "visible_of_own": len(seen & set(own)),
        # Where the subject's head point is at the first and last annotated frame it lies in
        # their boxes (frame numbers of the cut): a walker moves, a seated person does not.
        "path": {f + CUT_START: [round(float(v)) for v in points[f][own[f][0]]] for f in (min(own), max(own))}
        if own
        else {},
        "errors": errors,
    }
    print(json.dumps({k: v for k, v in figures.items() if k != "leaks"}))
    (folder / "figures.json").write_text(json.dumps(figures))
    return figures


@pytest.fixture(scope="module")
def walker(scan: dict[str, Any]) -> dict[str, Any]:
    return make_request(scan, walker=True, name="walker")


@pytest.fixture(scope="module")
def linked(scan: dict[str, Any]) -> dict[str, Any]:
    return make_request(scan, walker=False, name="linked")


def check_request(r: dict[str, Any]) -> None:
    assert not r["errors"], r["errors"]
    assert r["clicks"] <= 3 and r["typed"] == 1
    assert r["selected"] == r["subject_tracks"], "the click selected someone else, or only part of the person"
    assert r["bystander_points"] > 500, "the cut should have many bystanders"
    assert not r["leaks"], f"{len(r['leaks'])} bystander head points visible: {r['leaks'][:10]}"
    assert r["masked"] + r["exempt_in_subject_region"] == r["bystander_points"]


def test_mall_walker_in_three_clicks_masks_every_bystander(walker: dict[str, Any]) -> None:
    check_request(walker)


@pytest.mark.xfail(
    strict=True,
    reason="measured 2026-12-07 (ninth time, after the motion cue's still rule and the twice and continuations-last "
    "rules of person_ids.py, the walk rule of tracklets.py; docs/review.md): the 'walker' (10 tracks; a head "
    "point in their boxes at 25 annotated frames, from (258, 255) at frame 500 to (323, 254) at 645, in view at "
    "30) is visible at 15; it is now also the best-linked person, and its path ends on the seated group's head "
    "that 'linked' followed before. Before (eighth time): 14 tracks passing between two heads of the seated "
    "group, visible at 0, its boxes there carried, not detected, and a carried box shows nothing through other "
    "tracks' masks (the crowd's head boxes, each 1.4 heads wide, grown by the margin and by the tracker's "
    "uncertainty: issue 23)",
)
def test_mall_walker_visible_in_90_percent(walker: dict[str, Any]) -> None:
    r = walker
    assert r["visible"] >= 0.9 * r["in_view"], f"subject visible in {r['visible']} of {r['in_view']} frames in view"


def test_mall_best_linked_person_masks_every_bystander(linked: dict[str, Any]) -> None:
    check_request(linked)


@pytest.mark.xfail(
    strict=True,
    reason="measured 2026-12-07 (ninth time, after the motion cue's still rule and the twice and continuations-last "
    "rules; docs/review.md): the best-linked person is the 'walker' of the test above (10 tracks, visible at 15 of"
    " 30 annotated frames in view). Before (eighth time) it was a seated woman (5 tracks; a head point in their "
    "boxes at 28 annotated frames, from (321, 251) to (323, 254)), visible at 7: her head track from frame 36 on "
    "was another track, which a neighbour's head track carried over 10 frames onto her head, so it was in the "
    "neighbour's person and masked; her face showed where detected, and other tracks' carried face boxes covered "
    "it at the rest",
)
def test_mall_best_linked_person_visible_in_90_percent(linked: dict[str, Any]) -> None:
    r = linked
    assert r["visible"] >= 0.9 * r["in_view"], f"subject visible in {r['visible']} of {r['in_view']} frames in view"

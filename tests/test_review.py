"""`veil review`: the HTTP API's locks (token, loopback, Host/Origin, no traversal), the edits it
makes to the plan (decisions, autosave with a backup, undo/redo, merge, keep-only, manual
tracks that follow the object, ranges, sign-off), and frame-accurate frame serving."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from conftest import make_video

from veil.analysis.detectors import sha256_of
from veil.media.source import VideoSource
from veil.plan import Plan, PlanBox, Track, load_plan, write_plan
from veil.review.server.app import create_app
from veil.review.server.session import ReviewSession

TOKEN = "test-token-0123456789"
PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"
FRAMES = 20
SIZE = (320, 240)


def face_x(frame: int) -> int:
    """Left edge of the moving photo in make_video's clip (see conftest)."""
    return int((SIZE[0] - 160) * frame / (FRAMES - 1))


@pytest.fixture()
def review(tmp_path: Path) -> Any:
    video = make_video(tmp_path / "clip.mp4", frames=FRAMES, size=SIZE, fps=10)
    y = (SIZE[1] - 160) // 2
    # Track 0 follows the photo (as a detector would have found it); track 1 sits in a corner.
    t0 = Track(
        0,
        "face",
        [PlanBox(f, np.array([face_x(f), y, face_x(f) + 160, y + 160], float), True, 0.9) for f in range(FRAMES)],
    )
    t1 = Track(
        1,
        "face",
        [PlanBox(0, np.array([2.0, 2.0, 30.0, 30.0]), True, 0.3), PlanBox(9, np.array([2.0, 2.0, 30.0, 30.0]))],
    )
    t2 = Track(2, "plate", [PlanBox(12, np.array([250.0, 200.0, 300.0, 230.0]), True, 0.8)])
    plan = Plan(
        input={"path": str(video), "sha256": sha256_of(video), "kind": "video", "size": video.stat().st_size,
               "width": SIZE[0], "height": SIZE[1], "frames": FRAMES, "frame_rate": "10", "duration_s": 2.0},
        settings={"preset": "balanced", "mask": "solid", "margin": 0.0, "classes": ["faces"]},
        tracks=[t0, t1, t2],
        review={"flags": [{"frame": 3, "priority": 1.0, "reasons": ["test"]}]},
    )  # fmt: skip
    plan_path = tmp_path / "clip.plan.json"
    write_plan(plan, plan_path)
    session = ReviewSession(plan_path)
    yield session, create_app(session, TOKEN, [PORT]), tmp_path
    session.close()


def call(
    app: Any,
    method: str,
    path: str,
    *,
    client: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
    token: str | None = TOKEN,
    body: Any = None,
    raw: bytes | None = None,
    host: str | None = None,
) -> httpx.Response:
    """One request through the ASGI app, as from `client`, with the token unless told otherwise."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client, 50000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            # httpx replaces a query string in the path with `params`: carry both.
            path_only, _, query = path.partition("?")
            params = dict(httpx.QueryParams(query))
            if token is not None:
                params["t"] = token
            hdrs = dict(headers or {})
            if host is not None:
                hdrs["host"] = host
            if body is not None:
                return await http.request(method, path_only, params=params, json=body, headers=hdrs)
            return await http.request(method, path_only, params=params, content=raw, headers=hdrs)

    return asyncio.run(go())


# ----------------------------------------------------------------------------- security

ROUTES = ["/", "/static/app.js", "/api/plan", "/api/status", "/frame/3", "/frame/3?view=exported", "/thumb/0",
          "/api/waveform", "/media/input"]  # fmt: skip


def test_every_route_needs_the_token(review: Any) -> None:
    _, app, _ = review
    for route in ROUTES:
        assert call(app, "GET", route).status_code == 200, route
        for token in (None, "", "wrong", TOKEN[:-1], TOKEN + "x"):
            got = call(app, "GET", route, token=token)
            assert got.status_code == 403 and got.content == b"forbidden\n", (route, token)
    # The header works in place of the query string.
    assert call(app, "GET", "/api/plan", token=None, headers={"X-Veil-Token": TOKEN}).status_code == 200
    body = {"ids": [1], "redact": False, "reason": "x"}
    assert call(app, "POST", "/api/redact", token=None, body=body).status_code == 403
    assert call(app, "POST", "/api/render", token="nope", body={}).status_code == 403


def test_foreign_clients_hosts_and_origins_get_nothing(review: Any) -> None:
    session, app, _ = review
    for client in ("10.0.0.1", "192.168.1.20", "8.8.8.8", "::ffff:10.0.0.1", "testclient"):
        for route in ROUTES:
            assert call(app, "GET", route, client=client).status_code == 403, (client, route)
    assert call(app, "GET", "/api/plan", client="::1").status_code == 200
    for host in ("evil.example", f"evil.example:{PORT}", "127.0.0.1:1", f"127.0.0.2:{PORT}", f"0.0.0.0:{PORT}"):
        assert call(app, "GET", "/api/plan", host=host).status_code == 403, host
    assert call(app, "GET", "/api/plan", host=f"localhost:{PORT}").status_code == 200
    for origin in ("http://evil.example", f"http://127.0.0.1:{PORT + 1}", "null", f"https://127.0.0.1:{PORT}"):
        assert call(app, "GET", "/api/plan", headers={"Origin": origin}).status_code == 403, origin
        got = call(app, "POST", "/api/redact", headers={"Origin": origin}, body={"ids": [1], "redact": False})
        assert got.status_code == 403
    assert call(app, "GET", "/api/plan", headers={"Origin": f"http://127.0.0.1:{PORT}"}).status_code == 200
    for site in ("cross-site", "same-site"):
        assert call(app, "GET", "/frame/0", headers={"Sec-Fetch-Site": site}).status_code == 403
    # A form post (no JSON content type) is refused even with the token.
    form = call(app, "POST", "/api/redact", raw=b"ids=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 403
    assert load_plan(session.plan_path).tracks[1].redact is True, "nothing was changed by refused requests"


def test_no_path_reaches_files_other_than_the_plans(review: Any) -> None:
    _, app, folder = review
    (folder / "secret.txt").write_text("do not serve")
    attempts = [
        "/static/../app.py", "/static/..%2Fapp.py", "/static/%2e%2e%2f__init__.py",
        "/static/index.html/../../session.py",
        "/static/..%5C..%5Csecret.txt", "/media/../secret.txt", "/media/..%2Fsecret.txt", "/media/%2e%2e%2fsecret.txt",
        "/media/plan", "/media/output", "/media/report", "/media//etc/passwd", "/media/input/../../secret.txt",
        "/frame/-1", "/frame/20", "/frame/..%2F..%2Fsecret.txt", "/thumb/99", "/secret.txt", "/../secret.txt",
        "/%2e%2e/secret.txt", "/clip.plan.json", "/docs", "/openapi.json",
    ]  # fmt: skip
    for path in attempts:
        got = call(app, "GET", path)
        assert got.status_code in (403, 404, 405, 422), (path, got.status_code)
        assert b"do not serve" not in got.content and b"veil_plan" not in got.content, path
    # The one file route serves exactly the input's bytes.
    assert call(app, "GET", "/media/input").content == (folder / "clip.mp4").read_bytes()


def test_command_listens_on_loopback_only_and_stops_on_sigterm(review: Any) -> None:
    session, _, _ = review
    proc = subprocess.Popen(
        [sys.executable, "-m", "veil", "review", str(session.plan_path), "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = proc.stdout.readline().strip() if proc.stdout else ""
        assert url.startswith("http://127.0.0.1:"), url
        port = int(url.split(":")[2].split("/")[0])
        token = url.split("t=")[1]
        assert len(token) >= 24
        ok = httpx.get(f"http://127.0.0.1:{port}/api/status", params={"t": token}, timeout=10)
        assert ok.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=10).status_code == 403
        # Not reachable on any other address of this machine.
        for addr in _other_addresses():
            with socket.socket() as sock:
                sock.settimeout(1)
                assert sock.connect_ex((addr, port)) != 0, addr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def _other_addresses() -> list[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return []
    return sorted({i[4][0] for i in infos if not i[4][0].startswith("127.")})


def test_bad_target_is_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "veil", "review", str(tmp_path / "missing.mp4"), "--no-browser"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("veil: error:") and len(proc.stderr.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- editing


def test_decisions_autosave_backup_and_undo(review: Any) -> None:
    session, app, folder = review
    path = session.plan_path
    original = path.read_bytes()
    got = call(
        app,
        "POST",
        "/api/redact",
        body={"ids": [1], "redact": False, "reason": "a bystander's poster", "reviewer": "Ana"},
    )
    assert got.status_code == 200
    plan = load_plan(path)
    assert plan.tracks[1].redact is False and plan.tracks[1].reason == "a bystander's poster"
    decision = plan.review["decisions"][-1]
    assert decision["track"] == 1 and decision["action"] == "keep" and decision["reviewer"] == "Ana"
    assert decision["reason"] == "a bystander's poster" and decision["time"].endswith("+00:00")
    assert (folder / "clip.plan.json.bak").read_bytes() == original, "the backup is the previous version"
    after_first = path.read_bytes()
    call(app, "POST", "/api/redact", body={"ids": [1], "redact": True, "reason": None})
    assert (folder / "clip.plan.json.bak").read_bytes() == after_first
    assert load_plan(path).tracks[1].redact is True
    assert call(app, "POST", "/api/history", body={"back": True}).status_code == 200
    assert load_plan(path).tracks[1].redact is False
    call(app, "POST", "/api/history", body={"back": True})
    assert load_plan(path).tracks[1].redact is True and "decisions" not in load_plan(path).review
    call(app, "POST", "/api/history", body={"back": False})
    assert load_plan(path).tracks[1].redact is False
    # Nothing but the plan and its backup was written beside the input; the input is untouched.
    assert sorted(p.name for p in folder.iterdir()) == ["clip.mp4", "clip.plan.json", "clip.plan.json.bak"]
    assert hashlib.sha256((folder / "clip.mp4").read_bytes()).hexdigest() == load_plan(path).input["sha256"]
    assert not list(folder.glob(".*")), "no temporaries left behind"


def test_keep_only_and_merge(review: Any) -> None:
    session, app, _ = review
    got = call(app, "POST", "/api/keep_only", body={"ids": [1], "reason": "subject access request 42"})
    assert got.status_code == 200
    plan = load_plan(session.plan_path)
    assert [t.redact for t in plan.tracks] == [True, False, True]
    assert plan.tracks[1].reason == "subject access request 42"
    # Merging a kept and a masked track never unmasks: the merged track is masked.
    assert call(app, "POST", "/api/merge", body={"ids": [1, 2]}).status_code == 200
    plan = load_plan(session.plan_path)
    assert [t.id for t in plan.tracks] == [0, 1]
    merged = plan.tracks[1]
    assert merged.redact is True and merged.extra["merged_from"] == [2]
    assert [b.frame for b in merged.boxes] == [0, 9, 12]
    assert plan.review["decisions"][-1]["action"] == "merge"
    assert call(app, "POST", "/api/merge", body={"ids": [0]}).status_code == 400
    assert call(app, "POST", "/api/keep_only", body={"ids": [77]}).status_code == 400


def test_drawn_box_follows_the_object_and_keyframes_edit(review: Any) -> None:
    session, app, _ = review
    y = (SIZE[1] - 160) // 2
    start = 8
    box = [face_x(start) + 40, y + 30, face_x(start) + 120, y + 120]  # part of the moving photo
    got = call(app, "POST", "/api/manual", body={"frame": start, "box": box, "reviewer": "Ana"})
    assert got.status_code == 200
    track_id = got.json()["track"]
    track = next(t for t in load_plan(session.plan_path).tracks if t.id == track_id)
    assert track.source == "manual" and track.redact
    assert track.first == 0 and track.last == FRAMES - 1, "followed to both ends of the clip"
    for frame in (0, 3, 15, 19):
        x1 = track.box_at(frame)[0][0]
        assert abs(x1 - (face_x(frame) + 40)) <= 3, f"frame {frame}: box at {x1}, object at {face_x(frame) + 40}"
    # A second keyframe later on; between the two the plan interpolates, outside it follows.
    moved = [v + 4 for v in box]
    second = [moved[0] + 34, moved[1], moved[2] + 34, moved[3]]
    assert call(app, "POST", "/api/keyframe", body={"track": track_id, "frame": 12, "box": second}).status_code == 200
    track = next(t for t in load_plan(session.plan_path).tracks if t.id == track_id)
    assert [k["frame"] for k in track.extra["keyframes"]] == [8, 12]
    assert call(app, "POST", "/api/keyframe", body={"track": track_id, "frame": 12, "box": None}).status_code == 200
    track = next(t for t in load_plan(session.plan_path).tracks if t.id == track_id)
    assert [k["frame"] for k in track.extra["keyframes"]] == [8]
    # Detector tracks take no keyframes; bad boxes are refused.
    assert call(app, "POST", "/api/keyframe", body={"track": 0, "frame": 3, "box": box}).status_code == 400
    assert call(app, "POST", "/api/manual", body={"frame": 3, "box": [5, 5, 5, 50]}).status_code == 400
    assert call(app, "POST", "/api/manual", body={"frame": 99, "box": box}).status_code == 400
    assert call(app, "POST", "/api/keyframe", body={"track": track_id, "frame": 8, "box": None}).status_code == 200
    assert all(t.id != track_id for t in load_plan(session.plan_path).tracks), "last keyframe gone: track gone"


def test_ranges_audio_and_mark_reviewed(review: Any) -> None:
    session, app, _ = review
    assert (
        call(app, "POST", "/api/ranges", body={"ranges": [{"start": 4, "end": 6, "reason": "screen"}]}).status_code
        == 200
    )
    assert call(app, "POST", "/api/ranges", body={"ranges": [{"start": 4, "end": 60}]}).status_code == 400
    assert call(app, "POST", "/api/audio", body={"ranges": [[0.5, 1.25]]}).status_code == 200
    assert call(app, "POST", "/api/audio", body={"ranges": [[2.0, 1.0]]}).status_code == 400
    for frame in range(5):
        assert call(app, "GET", f"/frame/{frame}").status_code == 200
    assert call(app, "POST", "/api/reviewed", body={"reviewer": "  "}).status_code == 400
    assert call(app, "POST", "/api/reviewed", body={"reviewer": "Ana Reviewer"}).status_code == 200
    plan = load_plan(session.plan_path)
    assert [(r.start, r.end, r.reason) for r in plan.frame_ranges] == [(4, 6, "screen")]
    assert plan.audio == {"mode": "mute", "ranges": [[0.5, 1.25]]}
    reviewed = plan.review["reviewed"]
    assert reviewed["by"] == "Ana Reviewer" and reviewed["frames_shown"] == pytest.approx(5 / FRAMES)


# ----------------------------------------------------------------------------- frames


def test_frames_are_the_renderers_frames_in_any_order(review: Any) -> None:
    session, app, _ = review
    with VideoSource(Path(session.plan.input["path"]), with_audio=False) as src:
        originals = [f.image for f in src.items()]
    assert session.frames == len(originals) == FRAMES
    for frame in (17, 2, 19, 0, 10, 11, 12, 5, 5, 18):
        got = call(app, "GET", f"/frame/{frame}")
        assert got.headers["content-type"] == "image/jpeg" and got.headers["cache-control"] == "no-store"
        image = cv2.cvtColor(cv2.imdecode(np.frombuffer(got.content, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        errors = [float(np.abs(image.astype(int) - o.astype(int)).mean()) for o in originals]
        assert int(np.argmin(errors)) == frame, f"asked for {frame}, got the picture of {int(np.argmin(errors))}"
    # "As exported": the photo's track is painted over (solid black), the original is not.
    exported = call(app, "GET", "/frame/10?view=exported")
    image = cv2.imdecode(np.frombuffer(exported.content, np.uint8), cv2.IMREAD_COLOR)
    y = (SIZE[1] - 160) // 2
    assert image[y + 20 : y + 140, face_x(10) + 20 : face_x(10) + 140].mean() < 12
    # A thumbnail is a crop made in memory: nothing is written to the folder.
    before = sorted(os.listdir(session.folder))
    thumb = call(app, "GET", "/thumb/0")
    assert thumb.headers["content-type"] == "image/jpeg" and len(thumb.content) > 500
    assert sorted(os.listdir(session.folder)) == before


def test_page_has_no_outside_references(review: Any) -> None:
    _, app, _ = review
    html = call(app, "GET", "/").text
    js = call(app, "GET", "/static/app.js").text
    css = call(app, "GET", "/static/style.css").text
    for text in (html, js, css):
        assert "https://" not in text and "http://" not in text and "@import" not in text and "//cdn" not in text
    assert TOKEN in html
    csp = call(app, "GET", "/").headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    plan = json.loads(call(app, "GET", "/api/plan").text)
    assert plan["session"]["frames"] == FRAMES


def test_photo_review_and_render(tmp_path: Path) -> None:
    from conftest import SAMPLE_IMAGE

    from veil.progress import Reporter
    from veil.review.server import plan_for

    photo = tmp_path / "astronaut.png"
    photo.write_bytes(SAMPLE_IMAGE.read_bytes())
    plan_path = plan_for(photo, rescan=False, preset="fast", reporter=Reporter(quiet=True))
    assert plan_path == tmp_path / "astronaut.plan.json"
    session = ReviewSession(plan_path)
    app = create_app(session, TOKEN, [PORT])
    try:
        assert call(app, "GET", "/frame/0").status_code == 200
        assert call(app, "GET", "/frame/1").status_code == 404
        drawn = [400.0, 20.0, 470.0, 80.0]  # sky and flag, top right: no face there
        got = call(app, "POST", "/api/manual", body={"frame": 0, "box": drawn})
        assert got.status_code == 200
        assert call(app, "POST", "/api/render", body={}).status_code == 202
        deadline = time.monotonic() + 60
        while session.render_state["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert session.render_state["state"] == "done", session.render_state
        output = call(app, "GET", "/media/output")
        assert output.status_code == 200
        image = cv2.imdecode(np.frombuffer(output.content, np.uint8), cv2.IMREAD_COLOR)
        assert image[25:75, 405:465].max() == 0, "the drawn box is painted solid black"
        assert call(app, "GET", "/media/report").status_code == 200
        names = sorted(p.name for p in tmp_path.iterdir())
        expected = ["astronaut.png", "astronaut.plan.json", "astronaut.plan.json.bak", "astronaut_veiled.png"]
        expected += ["astronaut_veiled.report.json", "astronaut_veiled.report.html"]
        assert names == sorted(expected)
    finally:
        session.close()


def test_merging_manual_tracks_keeps_their_keyframes(review: Any) -> None:
    session, app, _ = review
    a = call(app, "POST", "/api/manual", body={"frame": 2, "box": [2, 2, 40, 40]}).json()["track"]
    b = call(app, "POST", "/api/manual", body={"frame": 15, "box": [280, 2, 318, 40]}).json()["track"]
    assert call(app, "POST", "/api/merge", body={"ids": [a, b]}).status_code == 200
    merged = next(t for t in load_plan(session.plan_path).tracks if t.id == a)
    assert merged.source == "manual" and [k["frame"] for k in merged.extra["keyframes"]] == [2, 15]
    # Merged with a detector's track, the boxes are fixed: no keyframe editing.
    assert call(app, "POST", "/api/merge", body={"ids": [a, 1]}).status_code == 200
    assert call(app, "POST", "/api/keyframe", body={"track": 1, "frame": 3, "box": [1, 1, 9, 9]}).status_code == 400


def test_seek_proxy_is_made_during_the_scan_and_frame_accurate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from veil.progress import Reporter
    from veil.review.server import frames, plan_for

    # Any keyframe interval counts as long here, so this small clip gets a proxy.
    monkeypatch.setattr(frames, "PROXY_THRESHOLD_PIXELS", 0)
    video = make_video(tmp_path / "clip.mp4", frames=FRAMES, size=SIZE, fps=10)
    plan_path = plan_for(video, rescan=False, preset="fast", reporter=Reporter(quiet=True))
    # In veil's private work directory (VEIL_CACHE_DIR, set per test by conftest), not beside the input.
    proxies = list((Path(os.environ["VEIL_CACHE_DIR"]) / "proxies").glob("*.clip.mp4.proxy.mp4"))
    assert len(proxies) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "clip.plan.json"]
    session = ReviewSession(plan_path)
    app = create_app(session, TOKEN, [PORT])
    try:
        assert session.proxy_state["state"] == "ready" and session.proxy is not None
        with VideoSource(video, with_audio=False) as src:
            originals = [f.image for f in src.items()]
        for frame in (13, 1, 19, 7, 8):
            got = call(app, "GET", f"/frame/{frame}")
            image = cv2.cvtColor(
                cv2.imdecode(np.frombuffer(got.content, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
            )
            errors = [float(np.abs(image.astype(int) - o.astype(int)).mean()) for o in originals]
            assert int(np.argmin(errors)) == frame
        assert session.proxy.seeks >= 1 and session.reader is not None and session.reader.seeks == 0
    finally:
        session.close(keep_proxy=False)
    assert not proxies[0].exists()  # an unredacted copy: gone when the review ends


def test_a_drawn_box_extends_the_subject_over_a_stretch_the_tracker_lost(review: Any) -> None:
    session, app, _ = review
    # A subject-access request for track 1 (show only them), then the reviewer draws the
    # subject where the tracker lost them, with their entry selected (the page sends `join`).
    assert call(app, "POST", "/api/keep_only", body={"ids": [1]}).status_code == 200
    got = call(app, "POST", "/api/manual", body={"frame": 15, "box": [200, 20, 240, 60], "join": 1})
    assert got.status_code == 200
    plan = load_plan(session.plan_path)
    new = next(t for t in plan.tracks if t.id == got.json()["track"])
    subject = next(t for t in plan.tracks if t.id == 1)
    # One person: the new track shares the subject's number, state and view.
    assert subject.person is not None and new.person == subject.person
    assert new.redact is False and new.source == "manual"
    assert plan.show_only is not None and set(plan.show_only.tracks) == {1, new.id}
    assert "extends person" in plan.review["decisions"][-1]["reason"]
    # Joining a bystander's masked track keeps the box masked and out of the subject's view.
    got = call(app, "POST", "/api/manual", body={"frame": 15, "box": [20, 20, 60, 60], "join": 0})
    plan = load_plan(session.plan_path)
    other = next(t for t in plan.tracks if t.id == got.json()["track"])
    assert other.redact is True and other.id not in plan.show_only.tracks
    assert other.person == next(t for t in plan.tracks if t.id == 0).person != subject.person
    # A track that is not in the plan: refused, nothing added.
    count = len(plan.tracks)
    assert call(app, "POST", "/api/manual", body={"frame": 15, "box": [20, 20, 60, 60], "join": 99}).status_code == 400
    assert len(load_plan(session.plan_path).tracks) == count


def test_a_plan_of_part_of_a_video_shows_that_part(tmp_path: Path) -> None:
    """A plan scanned with --start/--end numbers its frames from the range's first frame (as
    `veil render` reads them): the page's frame n is that frame of the input, not the input's
    frame n, and the waveform spans the range."""
    from conftest import run_cli

    from veil.timerange import TimeRange

    video = make_video(tmp_path / "clip.mp4", frames=40, fps=10, audio=True)
    plan_path = tmp_path / "clip.plan.json"
    run_cli("scan", video, "-o", plan_path, "--start", "1", "--end", "3", check=True)
    plan = load_plan(plan_path)
    with VideoSource(video, time_range=TimeRange(1.0, 3.0)) as source:
        wanted = [item.image for item in source.items() if hasattr(item, "image")]
    session = ReviewSession(plan_path)
    try:
        assert session.frames == len(wanted) == 20
        assert max(b.frame for t in plan.tracks for b in t.boxes) < session.frames
        for n in (0, 7, 19):
            assert np.array_equal(session.original(n), wanted[n]), n
        with pytest.raises(IndexError):
            session.original(20)
        assert session.waveform()["duration_s"] == pytest.approx(2.0)
    finally:
        session.close()


def test_words_of_a_clip_without_sound_is_one_line(review: Any) -> None:
    """POST /api/words on a clip with no audio: 404 with one line (501 without the speech extra)."""
    from veil.speech import available

    _, app, _ = review
    got = call(app, "POST", "/api/words", body={"start": 0.0, "end": 1.0})
    assert got.status_code == (404 if available() else 501), got.text
    assert "\n" not in got.json()["detail"] and ("no audio" in got.json()["detail"] or not available())
    # Like every route, nothing without the token.
    for token in (None, "wrong"):
        refused = call(app, "POST", "/api/words", token=token, body={"start": 0.0, "end": 1.0})
        assert refused.status_code == 403 and refused.content == b"forbidden\n"

"""The redaction plan: scan -> plan -> render -> verify, on images and on video with audio.

A plan renders the same pixels as the one-shot run that made it; a reviewer's decisions in it
(keep a track, add a manual one, mask whole frames) are honoured; it is refused when it or its
input is not what it claims; verify catches an output that lacks a planned mask.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SAMPLE_FACE, SAMPLE_IMAGE, clip_face_box, decode_frames, make_video, probe, rgb
from PIL import Image

from veil.cli import main
from veil.plan import PlanBox, PlanError, load_plan, plan_from_json, quantize, simplify


def two_faces(path: Path) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """A PNG with the sample photo twice, side by side: two faces, as (x, y, w, h)."""
    photo = Image.open(SAMPLE_IMAGE).convert("RGB").resize((256, 256))
    canvas = Image.new("RGB", (560, 280), (60, 70, 80))
    canvas.paste(photo, (8, 12))
    canvas.paste(photo, (296, 12))
    canvas.save(path)
    x, y, w, h = (v // 2 for v in SAMPLE_FACE)
    return (8 + x, 12 + y, w, h), (296 + x, 12 + y, w, h)


def read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data))
    return path


def region(img: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return img[y : y + h, x : x + w]


def masked(img: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    return bool((region(img, box).max(axis=2) <= 16).mean() > 0.95)


@pytest.fixture(scope="module")
def image_plan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, tuple[Any, Any]]:
    tmp = tmp_path_factory.mktemp("img")
    src = tmp / "two.png"
    faces = two_faces(src)
    assert main(["scan", str(src), "-o", str(tmp / "two.plan.json"), "-q"]) == 0
    return src, tmp / "two.plan.json", faces


def test_scan_then_render_equals_the_one_shot_run_on_an_image(image_plan: Any, tmp_path: Path) -> None:
    src, plan_path, faces = image_plan
    assert main([str(src), "-o", str(tmp_path / "one.png"), "--plan", str(tmp_path / "one.plan.json"), "-q"]) == 0
    assert main(["render", str(plan_path), "-o", str(tmp_path / "two.png"), "-q"]) == 0
    one, two = rgb(tmp_path / "one.png"), rgb(tmp_path / "two.png")
    assert np.array_equal(one, two)
    assert all(masked(one, f) for f in faces)
    # The one-shot's own plan holds the same tracks as the scan's.
    assert [t.to_json() for t in load_plan(tmp_path / "one.plan.json").tracks] == [
        t.to_json() for t in load_plan(plan_path).tracks
    ]


def test_kept_track_is_untouched_and_rendering_is_deterministic(image_plan: Any, tmp_path: Path) -> None:
    src, plan_path, (left, right) = image_plan
    data = read(plan_path)
    assert len(data["tracks"]) == 2
    # Keep the face on the right (the data subject); everyone else stays masked.
    keep = max(data["tracks"], key=lambda t: t["boxes"][0]["box"][0])
    keep.update(redact=False, reason="data subject of the request")
    edited = write(tmp_path / "edited.plan.json", data)
    before = plan_path.read_bytes()
    outs = [tmp_path / "a.png", tmp_path / "b.png"]
    for out in outs:
        assert main(["render", str(edited), "-o", str(out), "--reviewer", "A. Clerk", "-q"]) == 0
    assert plan_path.read_bytes() == before, "plans are never modified"
    assert outs[0].read_bytes() == outs[1].read_bytes(), "the same plan renders byte-identical images"
    original, after = rgb(src), rgb(outs[0])
    assert np.array_equal(region(original, right), region(after, right))
    assert masked(after, left)


def test_manual_track_and_whole_frame_range_on_video_with_audio(tmp_path: Path) -> None:
    frames, size = 20, (320, 240)
    clip = make_video(tmp_path / "clip.mp4", frames=frames, size=size, fps=10, audio=True)
    plan_path = tmp_path / "clip.plan.json"
    assert main(["scan", str(clip), "-o", str(plan_path), "-q"]) == 0
    data = read(plan_path)
    assert data["input"]["frames"] == frames and data["input"]["kind"] == "video"
    # A manual track from two keyframes (a thing the detector cannot know about), and a range.
    data["tracks"].append(
        {
            "id": 1000,
            "label": "face",
            "source": "manual",
            "reason": "missed by the detector",
            "boxes": [{"frame": 4, "box": [10, 10, 40, 40]}, {"frame": 12, "box": [90, 10, 120, 40]}],
        }
    )
    data["frame_ranges"] = [{"start": 16, "end": 17, "reason": "bystander turns to camera"}]
    edited = write(tmp_path / "edited.plan.json", data)
    out = tmp_path / "out.mp4"
    report = tmp_path / "r.json"
    assert main(["render", str(edited), "-o", str(out), "--report", str(report), "-q"]) == 0
    a, b = probe(clip), probe(out)
    assert b["frames"] == a["frames"] == frames
    assert np.allclose(b["times"], a["times"], atol=1e-3)
    assert b["audio"] == a["audio"] and b["audio"]
    assert abs(b["duration"] - a["duration"]) < 0.05
    after = decode_frames(out)
    for i in range(frames):
        x, y, w, h = clip_face_box(i, frames, size)
        assert masked(after[i], (x, y, w, h)), f"face exposed in frame {i}"
        if i in (16, 17):
            assert (after[i].max(axis=2) <= 16).mean() > 0.99, f"frame {i} not wholly masked"
        elif 4 <= i <= 12:
            mx = int(10 + 80 * (i - 4) / 8)
            assert masked(after[i], (mx + 4, 14, 22, 22)), f"manual box not masked in frame {i}"
        else:
            assert not masked(after[i], (14, 14, 22, 22)), f"manual box masked outside its range, frame {i}"
    record = read(report)["files"][0]
    assert record["verify"]["ok"] and record["verify"]["frames_checked"] == frames
    assert record["plan_sha256"] and len(record["plan_sha256"]) == 64
    decisions = {d["decision"] for d in record["decisions"]}
    assert {"added by hand", "whole frames masked"} <= decisions


def test_scan_render_video_matches_one_shot(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", frames=16, fps=8, audio=True)
    assert main([str(clip), "-o", str(tmp_path / "one.mp4"), "-q"]) == 0
    assert main(["scan", str(clip), "-o", str(tmp_path / "p.plan.json"), "-q"]) == 0
    assert main(["render", str(tmp_path / "p.plan.json"), "-o", str(tmp_path / "two.mp4"), "-q"]) == 0
    assert main(["render", str(tmp_path / "p.plan.json"), "-o", str(tmp_path / "three.mp4"), "-q"]) == 0
    one, two, three = (decode_frames(tmp_path / n) for n in ("one.mp4", "two.mp4", "three.mp4"))
    assert len(one) == len(two) == 16
    assert all(np.array_equal(x, y) and np.array_equal(y, z) for x, y, z in zip(one, two, three, strict=True))


def test_render_with_another_mask_needs_no_detector(image_plan: Any, tmp_path: Path, monkeypatch: Any) -> None:
    src, plan_path, faces = image_plan
    import veil.analysis.detectors

    def no_detector(*_: Any, **__: Any) -> None:
        raise AssertionError("render ran a detector")

    monkeypatch.setattr(veil.analysis.detectors, "create", no_detector)
    out = tmp_path / "blur.png"
    assert main(["render", str(plan_path), "-o", str(out), "--mask", "blur", "--margin", "0.3", "-q"]) == 0
    original, after = rgb(src), rgb(out)
    for face in faces:
        assert not np.array_equal(region(original, face), region(after, face))
        assert not masked(after, face)  # blurred, not black
    assert main(["verify", str(plan_path), str(out), "--mask", "blur", "--margin", "0.3", "-q"]) == 0


def test_tampered_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "x.png"
    two_faces(src)
    assert main(["scan", str(src), "-q"]) == 0
    plan_path = tmp_path / "x.plan.json"
    assert plan_path.is_file()
    img = np.asarray(Image.open(src)).copy()
    img[0, 0] ^= 1
    Image.fromarray(img).save(src)
    capsys.readouterr()
    assert main(["render", str(plan_path), "-o", str(tmp_path / "out.png"), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SHA-256 differs" in err[0] and err[0].startswith("veil: error:")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: {**d, "veil_plan": 99}, "newer than this veil"),
        (lambda d: {k: v for k, v in d.items() if k != "veil_plan"}, "not a veil plan"),
        (lambda d: {**d, "tracks": [{**d["tracks"][0], "boxes": [{"frame": 0, "box": [5, 5, 1, 1]}]}]}, "x2 must"),
        (lambda d: {**d, "tracks": [{**d["tracks"][0], "boxes": [{"frame": 0, "box": [1, 2]}]}]}, "box"),
        (lambda d: {**d, "tracks": [d["tracks"][0], d["tracks"][0]]}, "used twice"),
        (lambda d: {**d, "frame_ranges": [{"start": 5, "end": 2}]}, "start <= end"),
        (lambda d: {**d, "audio": {"mode": "louder"}}, "audio.mode"),
        (lambda d: {**d, "input": {**d["input"], "kind": "sound"}}, "input.kind"),
    ],
)
def test_malformed_plans_are_refused_with_one_line(
    image_plan: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, message: str
) -> None:
    _, plan_path, _ = image_plan
    changed = edit(copy.deepcopy(read(plan_path)))
    bad = tmp_path / "bad.plan.json"
    bad.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    capsys.readouterr()
    assert main(["render", str(bad), "-o", str(tmp_path / "out.png"), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out.png").exists()


def test_missing_or_malformed_decision_is_redacted(image_plan: Any, tmp_path: Path) -> None:
    src, plan_path, faces = image_plan
    data = read(plan_path)
    del data["tracks"][0]["redact"]
    data["tracks"][1]["redact"] = "no"
    out = tmp_path / "out.png"
    assert main(["render", str(write(tmp_path / "p.plan.json", data)), "-o", str(out), "-q"]) == 0
    assert all(masked(rgb(out), f) for f in faces)


def test_boxes_outside_the_frame_are_clipped(image_plan: Any, tmp_path: Path) -> None:
    src, plan_path, _ = image_plan
    data = read(plan_path)
    data["tracks"].append(
        {"id": 77, "label": "face", "source": "manual", "boxes": [{"frame": 0, "box": [-50, -40, 30, 20]}]}
    )
    out = tmp_path / "out.png"
    assert main(["render", str(write(tmp_path / "p.plan.json", data)), "-o", str(out), "-q"]) == 0
    assert (rgb(out)[0:20, 0:30].max(axis=2) == 0).all()


def test_verify_lists_what_is_missing(image_plan: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, plan_path, _ = image_plan
    out = tmp_path / "out.png"
    assert main(["render", str(plan_path), "-o", str(out), "-q"]) == 0
    assert main(["verify", str(plan_path), str(out), "-q"]) == 0
    # The input itself lacks every mask; and an output with one mask painted over again.
    assert main(["verify", str(plan_path), str(src), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert not result["ok"] and result["regions_failed"] == 2 and {f["frame"] for f in result["failures"]} == {0}
    img = rgb(out).copy()
    original = rgb(src)
    box = load_plan(plan_path).tracks[0].boxes[0].box.astype(int)
    img[box[1] : box[3], box[0] : box[2]] = original[box[1] : box[3], box[0] : box[2]]
    Image.fromarray(img).save(tmp_path / "leaky.png")
    assert main(["verify", str(plan_path), str(tmp_path / "leaky.png"), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["regions_failed"] == 1


def test_simplify_keeps_every_frame_exact_and_drops_linear_runs() -> None:
    rng = np.random.default_rng(3)
    boxes = []
    for f in range(200):
        if f % 25 == 0 or rng.random() < 0.1:
            box, detected = np.round(rng.uniform(0, 500, 4).cumsum()[[0, 1, 2, 3]], 1), True
            box[2:] = box[:2] + np.round(rng.uniform(10, 50, 2), 1)
            box = quantize(box)
        else:
            a = boxes[-1].box
            box, detected = quantize(a + np.array([1.5, 0.5, 1.5, 0.5])), False
        boxes.append(PlanBox(f, box, detected, 0.9 if detected else None))
    kept = simplify(boxes)
    assert len(kept) < len(boxes) * 0.6
    assert all(b.detected is False or b in kept for b in boxes if b.detected)
    plan = plan_from_json(
        {
            "veil_plan": 1,
            "input": {"sha256": "x", "kind": "video", "frames": 200},
            "tracks": [{"id": 0, "label": "face", "boxes": [b.to_json() for b in kept]}],
        }
    )
    track = plan.tracks[0]
    for b in boxes:
        got = track.box_at(b.frame)
        assert got is not None and np.array_equal(got[0], b.box), b.frame


def test_simplify_drops_what_numpys_interpolate_reproduces() -> None:
    """simplify checks a box against the line in plain floats; it keeps and drops the same boxes
    as a check through `interpolate` (numpy) would, on lines whose points fall on and near the
    plan's rounding boundaries (x.x5), negative ones and large ones included."""
    from veil.plan import MAX_KEYFRAME_GAP, interpolate

    def with_numpy(boxes: list[PlanBox]) -> list[int]:
        kept, anchor, i = [boxes[0].frame], 0, 1
        while i < len(boxes):
            best, j = i, i + 1
            while j < len(boxes) and j - anchor <= MAX_KEYFRAME_GAP and not boxes[j - 1].detected:
                a, b = boxes[anchor], boxes[j]
                if all(
                    np.array_equal(interpolate(a.box, b.box, a.frame, b.frame, boxes[k].frame), boxes[k].box)
                    for k in range(anchor + 1, j)
                ):
                    best, j = j, j + 1
                else:
                    break
            kept.append(boxes[best].frame)
            anchor, i = best, best + 1
        return kept

    rng = np.random.default_rng(8)
    dropped = 0
    for _ in range(300):
        n = int(rng.integers(3, 90))
        a = quantize(rng.uniform(-3000, 3000, 4))
        b = quantize(a + rng.integers(-400, 400, 4) * 0.05)  # steps of 0.05: halves to round
        boxes = []
        for f in range(n + 1):
            off_line = f not in (0, n) and rng.random() < 0.1
            box = quantize(rng.uniform(-3000, 3000, 4)) if off_line else interpolate(a, b, 0, n, f)
            boxes.append(PlanBox(f, box, bool(rng.random() < 0.03)))
        kept = [x.frame for x in simplify(boxes)]
        assert kept == with_numpy(boxes)
        dropped += len(boxes) - len(kept)
    assert dropped > 1000, "the lines were long enough to drop boxes"


def test_second_opinion_flags_a_face_the_plan_left_visible(image_plan: Any, tmp_path: Path) -> None:
    """A track removed from the plan (a face the detector "missed") leaves a face in the output;
    the second detector's look at the output puts that frame on the review list."""
    _, plan_path, _ = image_plan
    data = read(plan_path)
    full, cut = tmp_path / "full.json", tmp_path / "cut.json"
    assert (
        main(["render", str(plan_path), "-o", str(tmp_path / "a.png"), "--second-opinion", "--report", str(full)]) == 0
    )
    data["tracks"] = data["tracks"][:1]
    edited = write(tmp_path / "cut.plan.json", data)
    assert main(["render", str(edited), "-o", str(tmp_path / "b.png"), "--second-opinion", "--report", str(cut)]) == 0
    clean, leaky = read(full)["files"][0], read(cut)["files"][0]
    assert clean["counts"]["second_opinion_frames_checked"] == 1 == leaky["counts"]["second_opinion_frames_checked"]
    assert clean["counts"]["second_opinion_frames_flagged"] == 0
    assert leaky["counts"]["second_opinion_frames_flagged"] == 1
    assert any("second opinion" in r for flag in leaky["review"] for r in flag["reasons"])


def test_zones_and_time_range_travel_in_the_plan(tmp_path: Path) -> None:
    """Zones given as fractions at scan time are stored in pixels; the time range too; render
    (with no options) writes that part only, with the zone masked in every frame."""
    clip = make_video(tmp_path / "clip.mp4", frames=30, size=(320, 240), fps=10, audio=True)
    zones = write(
        tmp_path / "zones.json", {"zones": [{"name": "window", "polygon": [[0, 0], [0.25, 0], [0.25, 0.25]]}]}
    )
    plan_path = tmp_path / "clip.plan.json"
    assert (
        main(["scan", str(clip), "-o", str(plan_path), "--zones", str(zones), "--start", "1", "--end", "2.5", "-q"])
        == 0
    )
    data = read(plan_path)
    assert data["zones"][0]["polygon"] == [[0.0, 0.0], [80.0, 0.0], [80.0, 60.0]]
    assert data["input"]["time_range"] == {"start_s": 1.0, "end_s": 2.5} and data["input"]["frames"] == 15
    out = tmp_path / "out.mp4"
    assert main(["render", str(plan_path), "-o", str(out), "-q"]) == 0
    b = probe(out)
    assert b["frames"] == 15 and abs(b["times"][0]) < 1e-3
    for img in decode_frames(out):
        corner = img[2:20, 40:76]  # inside the triangle (x > 2y from its top-left corner)
        assert (corner.max(axis=2) <= 16).mean() > 0.95
    assert main(["verify", str(plan_path), str(out), "-q"]) == 0


def test_audio_ranges_in_the_plan_are_applied_by_render(tmp_path: Path) -> None:
    """The review page marks audio ranges in the plan; render mutes exactly those."""
    import av

    clip = make_video(tmp_path / "clip.mp4", frames=20, fps=10, audio=True)
    plan_path = tmp_path / "clip.plan.json"
    assert main(["scan", str(clip), "-o", str(plan_path), "-q"]) == 0
    data = read(plan_path)
    assert data["audio"] == {"mode": "keep", "ranges": []}
    data["audio"] = {"mode": "mute", "ranges": [[0.5, 1.2]]}
    out = tmp_path / "out.mp4"
    report = tmp_path / "r.json"
    assert (
        main(["render", str(write(tmp_path / "e.plan.json", data)), "-o", str(out), "--report", str(report), "-q"]) == 0
    )
    with av.open(str(out)) as c:
        rate = c.streams.audio[0].codec_context.sample_rate
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]).astype(np.float64)
    inside = pcm[int(0.55 * rate) : int(1.15 * rate)]
    outside = pcm[int(1.4 * rate) : int(1.9 * rate)]
    assert np.sqrt(np.mean(inside**2)) < 1e-3 * max(1.0, np.abs(pcm).max())
    assert np.sqrt(np.mean(outside**2)) > 0.01 * np.abs(pcm).max()
    assert read(report)["files"][0]["audio"]


def test_plans_are_read_a_track_a_line_and_damage_is_named(image_plan: Any, tmp_path: Path) -> None:
    """veil writes a track a line; it reads them back one at a time (a long plan is never held
    whole as raw JSON), the same tracks as a whole-file read, and names the damaged line."""
    from veil.plan import plan_from_json

    _, plan_path, _ = image_plan
    text = plan_path.read_text()
    lines = text.splitlines()
    assert lines[0].endswith('"tracks": [') and lines[-1] == "]}" and len(lines) == 2 + 2
    lazy, whole = load_plan(plan_path), plan_from_json(json.loads(text))
    assert [t.to_json() for t in lazy.tracks] == [t.to_json() for t in whole.tracks]
    damaged = tmp_path / "damaged.plan.json"
    damaged.write_text("\n".join([*lines[:2], lines[2][:-5], *lines[3:]]) + "\n")
    with pytest.raises(PlanError, match="line 3"):
        load_plan(damaged)
    truncated = tmp_path / "truncated.plan.json"
    truncated.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(PlanError, match="ends before"):
        load_plan(truncated)


def long_plan(path: Path, tracks: int, frames_each: int) -> Path:
    """A plan in veil's layout with `tracks` faces one after another, each on screen for
    `frames_each` frames with a detected box in every frame (nothing to simplify away)."""
    from veil.plan import Plan, Track, write_plan

    plan = Plan(
        input={"sha256": "0" * 64, "kind": "video", "width": 640, "height": 360, "frames": tracks * frames_each},
        settings={},
    )
    for k in range(tracks):
        boxes = [
            PlanBox(f, quantize(np.array([10.0 + f % 300, 20.0, 60.0 + f % 300, 80.0])), True, 0.9)
            for f in range(k * frames_each, (k + 1) * frames_each)
        ]
        plan.tracks.append(Track(k, "face", boxes, redact=k % 3 != 0))
    write_plan(plan, path)
    return path


def test_spooled_plan_renders_the_same_boxes_holding_only_what_is_on_screen(tmp_path: Path) -> None:
    """Render and verify read a plan's tracks from its file as their first frame comes: the same
    boxes per frame as a plan read whole, with memory for the tracks on screen instead of the
    whole plan (the eager read held about 200 bytes a box: hundreds of MB for an hour of crowd)."""
    import tracemalloc

    from veil.plan import FrameBoxes, SpooledTracks

    path = long_plan(tmp_path / "long.plan.json", tracks=200, frames_each=250)  # 50,000 boxes
    eager, spooled = load_plan(path), load_plan(path, spooled=True)
    assert isinstance(spooled.tracks, SpooledTracks) and len(spooled.tracks) == 200
    assert [t.to_json() for t in spooled.tracks] == [t.to_json() for t in eager.tracks]
    a, b = FrameBoxes(eager), FrameBoxes(spooled)
    for frame in range(0, eager.frames, 9):
        (ma, ka), (mb, kb) = a.at(frame), b.at(frame)
        assert np.array_equal(ma.xyxy, mb.xyxy) and np.array_equal(ka.xyxy, kb.xyxy)
        assert list(ma.track_id) == list(mb.track_id) and len(ma) + len(ka) == 1
    del eager, a, b

    def peak_mb(spool: bool) -> float:
        tracemalloc.start()
        boxes = FrameBoxes(load_plan(path, spooled=spool))
        for frame in range(0, 200 * 250, 10):
            boxes.at(frame)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak / 2**20

    whole, streamed = peak_mb(False), peak_mb(True)
    assert whole > 5 and streamed < whole / 10, (whole, streamed)


def test_a_plan_changed_while_it_is_rendered_fails(tmp_path: Path) -> None:
    from veil.plan import FrameBoxes

    path = long_plan(tmp_path / "p.plan.json", tracks=3, frames_each=10)
    boxes = FrameBoxes(load_plan(path, spooled=True))
    boxes.at(0)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"id": 1,', '"id": 7,')  # a different track where track 1 was
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PlanError, match="changed while"):
        boxes.at(10)

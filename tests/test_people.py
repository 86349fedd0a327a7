"""The people cue (detectors/people.py): NanoDet person boxes give head boxes, for people the
motion cue loses (standing still) and faces no face detector sees; on a synthetic still clip and
on a real frame of the shared fixed-camera clip."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import SAMPLE_FACE, SAMPLE_IMAGE, SHARED, covered_fraction, decode_frames, rgb

from veil.analysis.detectors import create, sha256_of
from veil.analysis.detectors.people import MODEL, MODEL_INT8, heads_of, merged_heads
from veil.cli import main

# The shared clip; VEIL_SHARED_DATA points elsewhere (a worktree has no ../shared beside it).
MALL = Path(os.environ.get("VEIL_SHARED_DATA", SHARED)) / "cctv"
needs_mall = pytest.mark.skipif(not (MALL / "mall_dev.mp4").is_file(), reason="shared cctv/mall_dev.mp4 absent")

# The astronaut photo at a quarter size (128 x 128) standing still in a 320 x 240 textured scene.
SCALE = 4
AT = (150, 60)  # x, y of the photo's top-left corner


def still_person_frame() -> np.ndarray:
    rng = np.random.default_rng(3)
    scene = np.kron(rng.integers(0, 256, size=(24, 32, 3)).astype(np.uint8), np.ones((10, 10, 1), np.uint8))
    photo = np.asarray(rgb(SAMPLE_IMAGE)[::SCALE, ::SCALE])
    x, y = AT
    scene[y : y + photo.shape[0], x : x + photo.shape[1]] = photo
    return scene


def face_box() -> tuple[float, float, float, float]:
    """The astronaut's face (x, y, w, h) in `still_person_frame`."""
    fx, fy, fw, fh = SAMPLE_FACE
    return (AT[0] + fx / SCALE, AT[1] + fy / SCALE, fw / SCALE, fh / SCALE)


def covers(box: np.ndarray, target: tuple[float, float, float, float]) -> bool:
    x, y, w, h = target
    return bool(box[0] <= x + 0.1 * w and box[1] <= y + 0.1 * h and box[2] >= x + 0.9 * w and box[3] >= y + 0.9 * h)


def test_head_box_is_the_top_of_the_person_box() -> None:
    standing = np.array([[100, 50, 130, 190]], np.float32)  # 30 x 140 px: head about 20 px
    (x1, y1, x2, y2) = heads_of(standing)[0]
    assert 110 <= (x1 + x2) / 2 <= 120  # centred
    assert 45 <= y1 <= 50 and 70 <= y2 <= 85  # from just above the top to ~1.4 heads down
    assert 20 <= x2 - x1 <= 35  # about one head and a half wide, not the body's width
    sitting = np.array([[100, 100, 160, 170]], np.float32)  # wide and short: head from the width
    (sx1, _, sx2, sy2) = heads_of(sitting)[0]
    assert sx2 - sx1 > x2 - x1 and sy2 < 170


def test_two_person_boxes_of_one_person_give_one_head() -> None:
    # One walker's whole body and a box to the waist with an arm out (IoU 0.44: suppression at
    # 0.55 keeps both; their heads overlap by 0.59), and a neighbour a head's width away.
    persons = np.array([[100, 300, 140, 450], [100, 300, 155, 380], [160, 300, 200, 450]], np.float32)
    scores = np.array([0.29, 0.34, 0.5], np.float32)
    heads = heads_of(persons)
    merged, best = merged_heads(heads, scores)
    assert len(merged) == 2 and sorted(best.tolist()) == pytest.approx([0.34, 0.5])
    one = merged[np.argmax(best == np.float32(0.34))]
    # The box around both heads: every pixel either head box covered is still covered.
    assert (one[:2] <= heads[:2, :2].min(axis=0)).all() and (one[2:] >= heads[:2, 2:].max(axis=0)).all()
    assert np.array_equal(merged[np.argmax(best)], heads[2])  # the neighbour's head is its own


def test_whole_frame_on_every_call_tiles_on_every_fourth() -> None:
    """The default schedule: NanoDet on the whole frame at each call, and on its 2 x 2 tiles at
    the 1st, 5th, ... call (people far away move few pixels; the tracker carries them between).
    A frame too small for tiles runs the whole frame only."""
    people = create("people", mode="head", motion=False)
    seen: list[tuple[int, int]] = []
    run = people._run

    def counted(crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seen.append(crop.shape[:2])
        return run(crop)

    people._run = counted  # type: ignore[method-assign]
    sd = np.zeros((480, 640, 3), np.uint8)
    per_call = []
    for _ in range(8):
        seen.clear()
        people.detect(sd)
        per_call.append(len(seen))
    assert per_call == [5, 1, 1, 1, 5, 1, 1, 1]
    people.reset()
    seen.clear()
    people.detect(sd)
    assert len(seen) == 5, "a new clip starts with the tiles"
    small = np.zeros((240, 320, 3), np.uint8)
    people.reset()
    seen.clear()
    people.detect(small)  # a tile pass, but no tiles at this size
    assert seen == [(240, 320)]


def test_spread_tiles_run_one_a_call_and_each_every_fourth() -> None:
    """Live's schedule (`tiles_spread`): the whole frame at each call and one of the 2 x 2 tiles,
    each tile in turn, so every tile still runs every 4th call but no frame takes five runs of
    the network at once (late frames behind it on a 2-core machine)."""
    people = create("people", mode="head", motion=False)
    people.tiles_spread = True
    windows: list[list[tuple[int, int, int, int]]] = []
    tiles_of = people._windows

    def recorded(w: int, h: int, tiles: object = True) -> list[tuple[int, int, int, int]]:
        windows.append(tiles_of(w, h, tiles))  # type: ignore[arg-type]
        return windows[-1]

    people._windows = recorded  # type: ignore[method-assign]
    people._run = lambda crop: (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))  # type: ignore[method-assign]
    sd = np.zeros((480, 640, 3), np.uint8)
    for _ in range(8):
        people.detect(sd)
    every_tile = tiles_of(640, 480)[1:]
    assert [len(w) for w in windows] == [2] * 8
    assert all(w[0] == (0, 0, 640, 480) for w in windows)
    assert [w[1] for w in windows] == every_tile * 2, "each tile in turn, each every 4th call"


def test_a_weak_box_over_most_of_a_tile_is_texture_a_strong_one_or_a_small_one_is_kept() -> None:
    """The large-box bar (a box over `large_fraction` of what the network saw must score
    `large_threshold`) is judged per window: a weak box filling most of a tile (a car's flank,
    a shadow; at 0.32 it gave a 100 px head mask in a scene of 20 px heads) is dropped though it
    is under a fifth of the frame; the same box scored 0.5, and a weak small one, are kept."""
    people = create("people", mode="head", motion=False)
    sd = np.zeros((480, 640, 3), np.uint8)
    tile = people._windows(640, 480)[1]
    tw, th = tile[2] - tile[0], tile[3] - tile[1]
    big = [20, 10, 20 + 0.7 * tw, 10 + 0.8 * th]  # 56 % of the tile
    assert (big[2] - big[0]) * (big[3] - big[1]) < 0.2 * 640 * 480  # under a fifth of the frame
    small = [60, 100, 90, 200]  # in the bottom right tile, far from the big box of the top left one

    def found(score_big: float) -> list[list[float]]:
        calls = []

        def fake(crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            calls.append(crop.shape[:2])
            if len(calls) == 2:  # the top left tile
                return np.array([big], np.float32), np.array([score_big], np.float32)
            if len(calls) == 5:  # the bottom right tile
                return np.array([small], np.float32), np.array([0.25], np.float32)
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)

        people._run = fake  # type: ignore[method-assign]
        boxes, _ = people.persons(sd, tiles=True)
        assert calls[0] == (480, 640) and calls[1:] == [(th, tw)] * 4
        return sorted(boxes.round().tolist())

    x, y = tile[0] + 640 - tw, tile[1] + 480 - th  # the bottom right tile's offset
    small_at = [small[0] + x, small[1] + y, small[2] + x, small[3] + y]
    assert found(0.32) == [small_at], "the weak box over most of its tile is dropped, the small one kept"
    assert found(0.5) == sorted([[round(v) for v in big], small_at]), "a strong one is a person"


def test_default_heads_run_the_network_while_the_camera_holds_still() -> None:
    """`heads` (a default class) runs the person network once the motion cue has seen the camera
    hold still (its centre and corners) over a window of frames, never while it pans or zooms
    about the centre (the bundled sample does); a caller that schedules the network itself (a
    live stream, `network_due`) decides on which of those frames it runs."""
    import cv2

    from veil.analysis.detect import FrameDetector
    from veil.analysis.motion import HELD_FRAMES
    from veil.config import Settings

    heads = FrameDetector(Settings(classes=("faces", "heads"))).classes[1].video
    runs = 0
    run = heads._run

    def counted(crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nonlocal runs
        runs += 1
        return run(crop)

    heads._run = counted  # type: ignore[method-assign]
    scene = still_person_frame()
    for _ in range(HELD_FRAMES + 4):
        heads.detect(scene)
    # From the window's last frame on, the whole frame each frame (no tiles at 320 x 240).
    assert runs == 5
    for name, moving in (
        ("pan", [np.roll(scene, 12 * i, axis=1) for i in range(1, 25)]),
        # A zoom about the centre, 0.6 % a frame: the centre stays put, the corners move ~1 px.
        ("zoom", [cv2.resize(scene[i : 240 - i, i * 4 // 3 : 320 - i * 4 // 3], (320, 240)) for i in range(24)]),
    ):
        heads.reset()
        runs = 0
        for image in moving:
            heads.detect(image)
        assert runs == 0, f"a {name} is the face detector's"
    heads.reset()
    runs = 0
    for i in range(HELD_FRAMES + 6):
        heads.network_due = i % 3 == 0  # live's own schedule: every 3rd frame
        heads.detect(scene)
    assert runs == len([i for i in range(HELD_FRAMES - 1, HELD_FRAMES + 6) if i % 3 == 0])
    assert heads.network_seconds > 0
    heads.network_due = True
    heads.reset()
    runs = 0
    for image in [np.roll(scene, 12 * i, axis=1) for i in range(1, 25)]:
        heads.detect(image)
    assert runs == 0, "a pan is the face detector's, whatever the schedule"


def test_a_person_standing_still_gets_a_head_box_the_motion_cue_never_gives() -> None:
    frame = still_person_frame()
    people = create("people", mode="head", every=1)
    motion = create("persons", mode="head")
    for _ in range(8):
        found = people.detect(frame)
        assert len(motion.detect(frame)) == 0  # nothing moves: background subtraction sees no one
    assert set(found.label) == {"head"}
    assert any(covers(b, face_box()) for b in found.xyxy)
    # Masks sized by evidence: no head box is much larger than the person's head (the photo's
    # head and helmet are about 50 px across here).
    assert max(float(b[2] - b[0]) for b in found.xyxy) < 90
    bodies = create("people", mode="body", motion=False).detect(frame)
    assert set(bodies.label) == {"person"} and any(covers(b, face_box()) for b in bodies.xyxy)


def test_nothing_on_an_empty_scene_and_no_network_on_stills() -> None:
    empty = np.kron(
        np.random.default_rng(5).integers(0, 256, size=(24, 32, 3)).astype(np.uint8), np.ones((10, 10, 1), np.uint8)
    )
    assert len(create("people", every=1).detect(empty)) == 0
    # The options photos and a shot's first frame get (classes.py): neither cue runs.
    assert len(create("people", motion=False, network=False).detect(still_person_frame())) == 0


@pytest.mark.parametrize(("fps", "network_runs"), [(10, 12), (25, 6)])
def test_redact_people_masks_a_still_person_in_a_video(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fps: int, network_runs: int
) -> None:
    """The person network is paced by the file's frame rate (`PeopleDetector.pace`): on every
    frame at 10 fps, on every 2nd at 25 (a person coming into view is found at most 0.05 s
    late); the tracker carries the still person's head over the frames between, so every frame
    is masked either way."""
    from veil.analysis.detectors.people import PeopleDetector

    frame = still_person_frame()
    src = tmp_path / "still.mp4"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(fps))
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        for i in range(12):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    runs = 0
    run = PeopleDetector._run

    def counted(self: PeopleDetector, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nonlocal runs
        runs += self.motion  # the analysis's detector, not the painter's second opinion (paint.py)
        return run(self, crop)

    monkeypatch.setattr(PeopleDetector, "_run", counted)
    out = tmp_path / "out.mp4"
    assert main([str(src), "-o", str(out), "--redact", "people", "--report", str(tmp_path / "r.json"), "-q"]) == 0
    # All 12 frames at 10 fps; the 1st, 3rd, ... at 25.
    assert runs == network_runs
    frames = decode_frames(out)
    before = decode_frames(src)
    assert len(frames) == 12
    # Every frame has the face masked: at 25 fps the tracker fills the frames between runs.
    for a, b in zip(before, frames, strict=True):
        assert covered_fraction(a, b, face_box()) >= 0.9
    report = json.loads((tmp_path / "r.json").read_text())
    assert [(d["name"], d["label"]) for d in report["settings"]["detectors"]] == [("people", "head")]


@needs_mall
@pytest.mark.parametrize("int8", [False, True], ids=["float32", "int8"])
def test_finds_most_heads_on_a_real_fixed_camera_frame(int8: bool) -> None:
    heads = json.loads((MALL / "mall_heads.json").read_text())["frames"]
    with av.open(str(MALL / "mall_dev.mp4")) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == 500:
                image = f.to_ndarray(format="rgb24")
                break
    points = np.asarray(heads["500"], np.float64)
    found = create("people", motion=False, every=1, int8=int8).detect(image)
    h, w = image.shape[:2]
    mask = np.zeros((h, w), bool)
    for x1, y1, x2, y2 in found.xyxy:  # veil's default 0.2 margin
        mx, my = 0.2 * (x2 - x1), 0.2 * (y2 - y1)
        mask[max(0, int(y1 - my)) : int(np.ceil(y2 + my)), max(0, int(x1 - mx)) : int(np.ceil(x2 + mx))] = True
    hit = [mask[int(y) - 4 : int(y) + 5, int(x) - 4 : int(x) + 5].all() for x, y in points]
    assert np.mean(hit) >= 0.7, f"{sum(hit)} of {len(hit)} heads covered"
    assert mask.mean() < 0.25  # heads, not the picture


def test_the_int8_network_is_the_documented_file() -> None:
    digest = sha256_of(MODEL_INT8)
    assert digest in (MODEL_INT8.parent / "README.md").read_text()
    assert digest != sha256_of(MODEL)


def test_fast_and_live_run_the_int8_network_balanced_photos_and_the_second_opinion_the_float_one() -> None:
    from veil.analysis.detect import FrameDetector
    from veil.config import Settings
    from veil.render.paint import SecondOpinion

    def models(settings: Settings, **kw: bool) -> list:
        return [c.video.model for c in FrameDetector(settings, **kw).classes[1:]]  # type: ignore[attr-defined]

    classes = ("faces", "heads", "persons")
    assert models(Settings(classes=classes, preset="fast")) == [MODEL_INT8, MODEL_INT8]
    assert models(Settings(classes=classes, preset="balanced")) == [MODEL, MODEL]
    assert models(Settings(classes=classes, preset="balanced"), person_int8=True) == [MODEL_INT8, MODEL_INT8]
    fast = FrameDetector(Settings(classes=classes, preset="fast")).classes[1]
    assert MODEL_INT8.name in fast.video.settings()["model"]  # the audit report says which ran
    assert fast.image.model == MODEL_INT8 and not fast.image.network  # type: ignore[attr-defined]
    photo = create("ensemble", heads={"threshold": 0.7, "min_head": 48.0})
    assert photo.people.model == MODEL  # type: ignore[attr-defined]
    second = SecondOpinion(heads=True)
    second._uncovered_heads(still_person_frame(), np.zeros((0, 4), np.float32))
    assert second._people.model == MODEL  # type: ignore[attr-defined]


def agreement(images: list[np.ndarray]) -> tuple[int, int]:
    """Of the people the float32 network scores 0.3 or more, how many the int8 one finds at 0.25
    or more (IoU 0.5), and how many there are: the check the file was built with."""
    from veil.models.make_nanodet_int8 import AGREE_FOUND
    from veil.models.make_nanodet_int8 import agreement as found_by_both

    reference = create("people", mode="body", motion=False, threshold=AGREE_FOUND)
    int8 = create("people", mode="body", motion=False, threshold=AGREE_FOUND, int8=True)
    return found_by_both(reference, int8, images)


def test_the_int8_network_finds_the_person_the_float_one_finds() -> None:
    frame = still_person_frame()
    assert agreement([frame]) == (1, 1)
    bodies = create("people", mode="body", motion=False, int8=True).detect(frame)
    assert any(covers(b, face_box()) for b in bodies.xyxy)


@needs_mall
def test_the_int8_network_finds_the_people_the_float_one_finds_on_held_out_frames() -> None:
    """Frames of the mall clip's held-out half (500-995; the int8 file was calibrated on 0-495)."""
    from veil.models.make_nanodet_int8 import frames

    hits, total = agreement(frames(MALL / "mall_dev.mp4", range(500, 1000, 100)))
    assert total > 100
    assert hits >= 0.93 * total, f"int8 finds {hits} of float32's {total} people"

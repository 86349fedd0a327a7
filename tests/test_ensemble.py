"""The face ensemble: BlazeFace model, fusion rules, the deface floor and the second opinion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_FACE, SAMPLE_IMAGE, SHARED, load_annotations, needs_shared, rgb

from veil.analysis.boxes import iou_matrix
from veil.analysis.detectors import create, sha256_of
from veil.analysis.detectors.blazeface import MODEL_PATH, letterbox
from veil.analysis.detectors.ensemble import MemberRule, fuse, second_opinion, weighted_box_fusion
from veil.analysis.presets import get_preset

BLAZEFACE_SHA256 = "da1b7f7c1332831891324122fdab3c5d6c936c208400966c9be31fb0d8ea6fda"


def xyxy(x: float, y: float, w: float, h: float) -> np.ndarray:
    return np.array([[x, y, x + w, y + h]], dtype=np.float32)


def test_vendored_model_is_the_documented_file() -> None:
    assert sha256_of(MODEL_PATH) == BLAZEFACE_SHA256
    assert BLAZEFACE_SHA256 in (MODEL_PATH.parent / "README.md").read_text()


def test_blazeface_finds_the_sample_face_and_batching_does_not_change_scores() -> None:
    image = rgb(SAMPLE_IMAGE)
    alone = create("blazeface", threshold=0.5, windows=(0,))
    found = alone.detect(image)
    assert len(found) >= 1
    assert iou_matrix(xyxy(*SAMPLE_FACE), found.xyxy).max() > 0.4
    # The same whole-image window inside a batch of several (the converted model's batch
    # dimension is symbolic) must give the same boxes as run alone.
    batched = create("blazeface", threshold=0.5, windows=(0, 256, 128))
    blob, _ = letterbox(image)
    many = np.stack([blob, np.zeros_like(blob), blob[:, ::-1].copy()])
    one = batched.session.run(None, {batched.input_name: blob[None]})
    three = batched.session.run(None, {batched.input_name: many})
    np.testing.assert_allclose(three[0][0], one[0][0], atol=1e-4)
    np.testing.assert_allclose(three[1][0], one[1][0], atol=1e-4)
    assert not np.allclose(three[1][1], one[1][0])


def test_agreement_lets_low_scores_pass_and_single_low_scores_fail() -> None:
    rules = [MemberRule(0.5, agree_threshold=0.1), MemberRule(0.6, agree_threshold=0.3)]
    face = xyxy(100, 100, 40, 50)
    elsewhere = xyxy(300, 100, 40, 50)
    # Both members see the face weakly: passes. Member 0 alone sees another box weakly: fails.
    boxes, _ = fuse([(np.vstack([face, elsewhere]), np.array([0.2, 0.2])), (face + 2, np.array([0.35]))], rules)
    assert len(boxes) == 1
    assert iou_matrix(boxes, face).max() > 0.8
    # Below either member's agree bar: nothing passes.
    boxes, _ = fuse([(face, np.array([0.05])), (face + 2, np.array([0.35]))], rules)
    assert len(boxes) == 0


def test_large_boxes_have_their_own_bar() -> None:
    rule = MemberRule(0.15, large_threshold=0.4, large_height=24)
    small, tall = xyxy(0, 0, 10, 12), xyxy(50, 50, 60, 80)
    passed = rule.alone(np.vstack([small, tall, tall]), np.array([0.2, 0.3, 0.45]))
    assert passed.tolist() == [True, False, True]


def test_weighted_box_fusion_averages_by_score_and_keeps_separate_faces_apart() -> None:
    a, b, far = xyxy(0, 0, 100, 100), xyxy(10, 0, 100, 100), xyxy(500, 500, 20, 20)
    boxes, scores = weighted_box_fusion(np.vstack([a, b, far]), np.array([0.9, 0.3, 0.5]), 0.4)
    assert len(boxes) == 2
    merged = boxes[np.argmax(scores)]
    assert merged[0] == pytest.approx(0.9 / 1.2 * 0 + 0.3 / 1.2 * 10)
    assert scores.max() == pytest.approx(0.9)


def test_ensemble_is_the_balanced_default_and_never_stricter_than_deface() -> None:
    preset = get_preset("balanced")
    assert preset.face_detector == "ensemble"
    ensemble = create(preset.face_detector, threshold=preset.threshold, **preset.face_options)
    deface_like = create("centerface", threshold=0.2)  # deface's detector and threshold
    image = rgb(SAMPLE_IMAGE)
    mine, theirs = ensemble.detect(image), deface_like.detect(image)
    assert len(theirs) >= 1
    assert (iou_matrix(theirs.xyxy, mine.xyxy).max(axis=1) > 0.5).all()
    assert "blazeface" in ensemble.settings()["members"]
    video = ensemble.with_options(**(preset.video_face_options or {}))
    assert video.centerface.session is ensemble.centerface.session


@needs_shared
def test_never_stricter_than_deface_on_real_photos() -> None:
    """Every box deface's setting keeps on a real photo is covered by one of the ensemble's."""
    preset = get_preset("balanced")
    ensemble = create(preset.face_detector, threshold=preset.threshold, **preset.face_options)
    deface_like = create("centerface", threshold=0.2)
    entries = [e for e in load_annotations() if "Press_Conference" in e["image"] or "dlib_2008_0013" in e["image"]]
    assert entries
    for entry in entries[:3]:
        image = rgb(SHARED / entry["image"])
        mine, theirs = ensemble.detect(image), deface_like.detect(image)
        if len(theirs):
            assert (iou_matrix(theirs.xyxy, mine.xyxy).max(axis=1) > 0.3).all(), entry["image"]


def test_second_opinion_flags_unmasked_faces_only() -> None:
    image = rgb(SAMPLE_IMAGE)
    x, y, w, h = SAMPLE_FACE
    # Nothing masked: the face is reported.
    flagged = second_opinion(image, np.zeros((0, 4)))
    assert len(flagged) >= 1
    assert iou_matrix(xyxy(*SAMPLE_FACE), flagged).max() > 0.3
    # The face painted over (as a solid mask would) and its box given: nothing left to flag.
    rendered = image.copy()
    mask = np.array([[x - 20, y - 20, x + w + 20, y + h + 20]])
    rendered[mask[0, 1] : mask[0, 3], mask[0, 0] : mask[0, 2]] = 0
    assert len(second_opinion(rendered, mask)) == 0
    # The face left visible but a mask claimed over it: covered, so not flagged either.
    assert len(second_opinion(image, mask)) == 0


def test_video_runs_blazeface_every_kth_frame_and_keeps_deface_floor_at_native_scale() -> None:
    preset = get_preset("balanced")
    ensemble = create(preset.face_detector, threshold=preset.threshold, **preset.face_options)
    video = ensemble.with_options(**{**(preset.video_face_options or {}), "second_every": 2, "yunet_every": 2})
    image = rgb(SAMPLE_IMAGE)
    counts = [len(video.members(image)[0]) for _ in range(4)]
    assert counts[0] > counts[1] and counts[0] == counts[2] and counts[1] == counts[3]
    # A photo pyramid that upsamples gets deface's native-scale pass as an extra member.
    members, rules = ensemble.members(image)
    assert any(rule.threshold == pytest.approx(0.2) and rule.large_height == 0 for rule in rules[2:])
    # A stricter --threshold raises every bar, the floor included.
    strict = create(preset.face_detector, threshold=0.5, **preset.face_options)
    assert strict.deface_floor == pytest.approx(0.5) and strict.rules[0].large_threshold >= 0.5


def test_yunet_is_the_third_member_of_balanced_and_thorough_on_photos_and_video() -> None:
    image = rgb(SAMPLE_IMAGE)
    for name in ("balanced", "thorough"):
        preset = get_preset(name)
        ensemble = create(preset.face_detector, threshold=preset.threshold, **preset.face_options)
        video = ensemble.with_options(**(preset.video_face_options or {}))
        for detector in (ensemble, video):
            settings = detector.settings()
            assert set(settings["members"]) == {"centerface", "blazeface", "yunet"}
            assert "yunet" in settings["rules"]
            # The network is shared between the photo and the video detector.
            assert video.yunet.session is ensemble.yunet.session
        found = ensemble.detect(image)
        assert iou_matrix(xyxy(*SAMPLE_FACE), found.xyxy).max() > 0.5
    # Video: YuNet on every `yunet_every`-th frame only; CenterFace on every frame.
    preset = get_preset("balanced")
    video = create(preset.face_detector, threshold=preset.threshold, **preset.face_options).with_options(
        **{**(preset.video_face_options or {}), "second_every": 1000, "yunet_every": 3}
    )
    counts = [len(video.members(image)[0]) for _ in range(6)]
    # Frame 0: BlazeFace and YuNet; frame 3: YuNet alone (BlazeFace only every 1000th).
    base = counts[1]
    assert counts == [base + 2, base, base, base + 1, base, base]
    video.reset()
    assert len(video.members(image)[0]) == counts[0]


def test_large_face_rule_lets_tall_boxes_agree_lower_and_leaves_small_ones_alone() -> None:
    rules = [
        MemberRule(0.8, agree_threshold=0.5, face_agree=0.25, face_height=64),
        MemberRule(0.8, agree_threshold=0.5, face_agree=0.25, face_height=64),
    ]
    tall, small = xyxy(100, 100, 60, 80), xyxy(300, 100, 20, 24)
    both = np.vstack([tall, small])
    # Two members each score both boxes 0.3: only the tall one passes (agreement at 0.25).
    boxes, _ = fuse([(both, np.array([0.3, 0.3])), (both + 1, np.array([0.3, 0.3]))], rules)
    assert len(boxes) == 1 and iou_matrix(boxes, tall).max() > 0.9
    # One member alone never passes a tall box under its own bar, however large.
    boxes, _ = fuse([(tall, np.array([0.7])), (small, np.array([0.9]))], rules)
    assert len(boxes) == 1 and iou_matrix(boxes, small).max() > 0.9
    # The rule lowers what the member must report, so the network is asked for those scores.
    assert rules[0].floor == pytest.approx(0.25)


def test_centerface_drops_boxes_that_clip_to_nothing_at_the_edge() -> None:
    """A peak in the last heatmap row whose box lies below the image clips to zero height; it
    masks nothing and the plan rejects it, so the decoder must not return it."""
    from veil.analysis.detectors.centerface import decode

    heat = np.zeros((1, 1, 8, 8), np.float32)
    heat[0, 0, 7, 2] = 0.9  # centre at y = 30 in a 32 px high map
    heat[0, 0, 3, 5] = 0.8  # an ordinary box inside
    scale = np.full((1, 2, 8, 8), np.log(2.0), np.float32)  # 8 x 8 px boxes
    offset = np.zeros((1, 2, 8, 8), np.float32)
    offset[0, 0, 7, 2] = 2.0  # pushes the first centre to y = 38, below the image
    boxes, scores = decode(heat, scale, offset, 0.5, 32, 32)
    assert len(boxes) == 1 and scores[0] == pytest.approx(0.8)
    assert (boxes[:, 3] - boxes[:, 1] >= 1).all() and (boxes[:, 2] - boxes[:, 0] >= 1).all()


def test_floor_cover_masks_every_deface_box_at_least_as_widely_as_deface() -> None:
    """A fused box that averaged deface's box with a tighter one is grown to cover deface's box
    scaled to what deface masks (30 % per side) less veil's margin; a box elsewhere is kept."""
    from veil.analysis.boxes import grow
    from veil.analysis.detectors.ensemble import cover

    fused = np.vstack([xyxy(100, 100, 30, 40), xyxy(300, 300, 20, 20)])
    deface_box = xyxy(95, 96, 40, 50)
    scale = (1 + 2 * 0.3) / (1 + 2 * 0.2)
    boxes, scores = cover(fused, np.array([0.9, 0.8]), deface_box, np.array([0.25]), scale)
    assert len(boxes) == 2 and np.allclose(boxes[1], fused[1])
    veil_mask, deface_mask = grow(boxes[:1], 0.2), grow(deface_box, 0.3)
    assert (veil_mask[0, :2] <= deface_mask[0, :2] + 1e-3).all() and (
        veil_mask[0, 2:] >= deface_mask[0, 2:] - 1e-3
    ).all()
    # A deface box no fused box overlaps is added as it is masked.
    boxes, _ = cover(fused[1:], np.array([0.8]), deface_box, np.array([0.25]), scale)
    assert len(boxes) == 2
    # And the balanced detector uses it: the sample face is still one box.
    preset = get_preset("balanced")
    ensemble = create(preset.face_detector, threshold=preset.threshold, **preset.face_options)
    assert ensemble.floor_cover == pytest.approx(scale)
    assert len(ensemble.detect(rgb(SAMPLE_IMAGE))) == 1


def test_without_a_person_cue_a_new_face_is_found_one_frame_late_at_most_and_a_cut_restarts() -> None:
    """A moving camera (no person cue) at 30 fps: CenterFace sees the whole frame on every 2nd
    frame (`pace`) and in between only around the faces it found since. A face that appears on a frame in
    between is found on the next whole frame (the tracker's look-ahead carries it back); a new
    shot starts with the whole frame, whatever the schedule."""
    import cv2

    from veil.analysis.detect import FrameDetector
    from veil.config import Settings

    face = cv2.resize(rgb(SAMPLE_IMAGE), (160, 160), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(3)
    empty = cv2.resize(rng.integers(90, 140, size=(60, 80, 3)).astype(np.uint8), (640, 480))
    shown = empty.copy()
    shown[200:360, 400:560] = face
    detector = FrameDetector(Settings(classes=("faces",)))
    ensemble = detector.classes[0].video
    assert ensemble.whole_every == 1  # the frame rate unknown: the whole frame, always
    detector.pace(30.0)
    assert ensemble.whole_every == 2

    def found(image: np.ndarray, cut: bool = False) -> bool:
        boxes = detector.finish(detector.start(image, detector.due(0), video=True, cut=cut)).xyxy
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        return bool(((cx > 400) & (cx < 560) & (cy > 200) & (cy < 360)).any())

    # Frame 0 (whole) sees no face; the face appears on frame 1, which searches around no face.
    assert not found(empty)
    assert not found(shown)
    assert found(shown)  # frame 2: the whole frame
    assert found(shown)  # frame 3: around the face found on frame 2
    # The same appearance on a frame that starts a new shot: found at once.
    detector.reset()
    assert ensemble.whole_every == 2  # the pace is the file's, kept across its shots
    assert not found(empty)
    assert found(shown, cut=True)


def test_a_window_around_large_faces_alone_runs_shrunk_and_still_finds_them() -> None:
    """Without a person cue, a window around known faces only has to find them again: it runs at
    the scale that shows its smallest face at about SEARCH_FACE_PX px (never above its own scale),
    so a face that fills much of a 720p frame costs a fraction of the whole frame's pass."""
    import cv2

    from veil.analysis.detectors.ensemble import SEARCH_FACE_PX, search_windows, window_shrink

    faces = np.asarray([[100, 100, 400, 420], [1150, 600, 1172, 622], [1100, 20, 1228, 148]], np.float32)
    windows = search_windows(np.zeros((0, 4)), faces, 1280, 720, max_share=float("inf"))
    shrink = window_shrink(windows, faces)
    by_face = {}
    for k, (x0, y0, x1, y1) in enumerate(windows):
        for f, (a, b, c, d) in enumerate(faces):
            if x0 <= (a + c) / 2 < x1 and y0 <= (b + d) / 2 < y1:
                by_face[f] = float(shrink[k])
    assert by_face[0] == pytest.approx(SEARCH_FACE_PX / 320)  # the large face alone in its window
    assert by_face[1] == 1.0  # a 22 px face keeps its window at full scale
    assert by_face[2] == pytest.approx(SEARCH_FACE_PX / 128)
    # A small face in the same (merged) window as a large one: the window keeps the small one's scale.
    near = np.concatenate([faces[:1], [[420, 300, 442, 322]]]).astype(np.float32)
    merged = search_windows(np.zeros((0, 4)), near, 1280, 720, max_share=float("inf"))
    assert len(merged) == 1 and window_shrink(merged, near)[0] == 1.0
    # A large face found on a whole frame is found again in its shrunk window on the next one.
    preset = get_preset("balanced")
    video = create(preset.face_detector, threshold=preset.threshold, **preset.face_options).with_options(
        **(preset.video_face_options or {})
    )
    video.pace(30.0)
    frame = np.full((720, 1280, 3), 120, np.uint8)
    frame[100:500, 200:600] = cv2.resize(rgb(SAMPLE_IMAGE), (400, 400), interpolation=cv2.INTER_AREA)
    calls: list[tuple[object, object]] = []
    detect = video.centerface.detect

    def spy(image: np.ndarray, regions: object = None, shrink: object = None) -> object:
        calls.append((regions, shrink))
        return detect(image, regions, shrink)

    video.centerface.detect = spy
    first, second = video.detect(frame), video.detect(frame)
    assert calls[0] == (None, None) and calls[1][1] is not None and float(np.min(calls[1][1])) < 1.0
    assert len(first) and len(second)
    assert iou_matrix(first.xyxy, second.xyxy).max() > 0.7


@pytest.mark.parametrize(("fps", "whole_every"), [(10, 1), (25, 2), (5000, 1)])
def test_the_analysis_loop_paces_the_face_search_by_the_files_frame_rate(
    tmp_path: Path, fps: int, whole_every: int
) -> None:
    """The one analysis loop tells the face ensemble the file's frame rate before its first
    frame: at 25 fps (faces only, no person cue) the whole frame runs on every 2nd frame and
    CenterFace searches around the face in between; at 10 fps the whole frame runs on every
    frame (a face found late at CCTV rates has moved too far). A header claiming 5,000 fps is
    not believed (pipeline.MAX_ANALYSIS_FPS): paced by it, the whole frame would run on every
    251st frame. Every frame of the moving face is masked in each case."""
    from conftest import make_video

    from veil.analysis.detectors.centerface import CenterFaceDetector
    from veil.config import Settings
    from veil.plan import FrameBoxes, load_plan
    from veil.runners.pipeline import Pipeline, plan_jobs

    frames = 16
    clip = make_video(tmp_path / f"in{fps}.mp4", frames=frames, size=(320, 240), fps=fps)
    settings = Settings(classes=("faces",), overwrite=True)
    jobs, failed = plan_jobs([str(clip)], str(tmp_path / "out.mp4"), settings, str(tmp_path / "out.plan.json"))
    assert not failed
    windowed: list[bool] = []
    detect = CenterFaceDetector.detect

    def spy(self: CenterFaceDetector, image: np.ndarray, regions: object = None, shrink: object = None) -> object:
        windowed.append(regions is not None)
        return detect(self, image, regions, shrink)  # type: ignore[arg-type]

    CenterFaceDetector.detect = spy  # type: ignore[method-assign]
    pipeline = Pipeline(settings)
    try:
        result = pipeline.run(jobs)[0]
    finally:
        CenterFaceDetector.detect = detect  # type: ignore[method-assign]
        pipeline.close()
    assert result.ok, result.error
    assert pipeline.detect.classes[0].video.whole_every == whole_every
    assert any(windowed) == (whole_every > 1)
    view = FrameBoxes(load_plan(tmp_path / "out.plan.json"))
    assert all(len(view.at(i)[0]) for i in range(frames)), "a frame of the moving face had no box"


def test_a_frame_rate_no_camera_writes_is_named_and_not_believed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The user is told, in one line, that the file's claimed rate was not used."""
    from conftest import make_video

    from veil.cli import main

    clip = make_video(tmp_path / "claims.mp4", frames=6, fps=5000)
    assert main([str(clip), "-o", str(tmp_path / "out.mp4"), "--redact", "faces"]) == 0
    err = capsys.readouterr().err
    assert f"veil: warning: {clip}: the file claims 5000 fps; analysed as if its rate were unknown" in err

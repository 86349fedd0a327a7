"""Issue 25's rules for large faces: mirrored and edge-padded passes map their boxes back onto
the picture, edge padding finds a face cut by the frame edge, per-size bars, witnesses, and the
head of a person without a face."""

from __future__ import annotations

import numpy as np
from conftest import SAMPLE_FACE, SAMPLE_IMAGE, rgb

from veil.analysis.boxes import iou_matrix
from veil.analysis.detectors import create
from veil.analysis.detectors.ensemble import MemberRule, edge_padded, fuse, heads_without_faces, mirrored
from veil.analysis.presets import get_preset


def xyxy(x: float, y: float, w: float, h: float) -> np.ndarray:
    return np.array([[x, y, x + w, y + h]], dtype=np.float32)


def test_mirrored_pass_maps_boxes_back_and_finds_the_same_face() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    # A fake detector that reports one box at a fixed place of whatever it is given.
    boxes, _ = mirrored(lambda im: (xyxy(10, 20, 30, 40), np.array([0.9])), image)
    np.testing.assert_allclose(boxes, xyxy(160, 20, 30, 40))
    photo = rgb(SAMPLE_IMAGE)
    yunet = create("yunet", threshold=0.5)
    plain = yunet.raw(photo, 0.5)
    flipped = mirrored(lambda im: yunet.raw(im, 0.5), photo)
    face = xyxy(*SAMPLE_FACE)
    assert iou_matrix(face, plain[0]).max() > 0.5
    assert iou_matrix(face, flipped[0]).max() > 0.5


def test_edge_padding_maps_boxes_back_and_drops_boxes_in_the_border() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    border = round(0.1 * 200)

    def fake(im: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert im.shape[:2] == (100 + 2 * border, 200 + 2 * border)
        # One box half in the left border, one wholly in the top border.
        return np.vstack([xyxy(border - 10, border + 30, 20, 20), xyxy(50, 0, 20, 10)]), np.array([0.9, 0.8])

    for mode in ("grey", "reflect"):
        boxes, scores = edge_padded(fake, image, 0.1, mode)
        np.testing.assert_allclose(boxes, xyxy(0, 30, 10, 20))
        np.testing.assert_allclose(scores, [0.9])


def test_edge_padding_finds_a_face_cut_by_the_frame_edge() -> None:
    photo = rgb(SAMPLE_IMAGE)
    x, y, w, h = SAMPLE_FACE
    cut = np.ascontiguousarray(photo[:, int(x + 0.6 * w) :])  # 60 % of the face is outside the frame
    visible = xyxy(0, y, 0.4 * w, h)
    for name, options, bar in (("yunet", {"sizes": (0,)}, 0.8), ("blazeface", {"windows": (0,)}, 0.8)):
        detector = create(name, threshold=0.3, **options)

        def best(found: tuple[np.ndarray, np.ndarray]) -> float:
            boxes, scores = found
            hit = iou_matrix(visible, boxes)[0] > 0.4 if len(boxes) else np.zeros(0, bool)
            return float(scores[hit].max()) if hit.any() else 0.0

        plain = best(detector.raw(cut, 0.3))  # type: ignore[attr-defined]
        padded = best(edge_padded(lambda im, d=detector: d.raw(im, 0.3), cut, 0.15, "reflect"))  # type: ignore[attr-defined]
        # The cut face scores under the member's alone bar as it is, above it when the picture is
        # mirrored about its edge (the half face becomes a whole one).
        assert plain < bar <= padded, (name, plain, padded)


def test_balanced_photo_ensemble_adds_edge_boxes_only() -> None:
    preset = get_preset("balanced")
    ensemble = create("ensemble", threshold=preset.threshold, **preset.face_options)
    assert ensemble.edge_pad > 0  # type: ignore[attr-defined]
    photo = rgb(SAMPLE_IMAGE)
    x, y, w, h = SAMPLE_FACE
    cut = np.ascontiguousarray(photo[:, int(x + 0.6 * w) :])
    found = ensemble.detect(cut)
    assert iou_matrix(xyxy(0, y, 0.4 * w, h), found.xyxy).max() > 0.4
    # On the whole photo, where no face touches the edge, the padded passes change nothing.
    whole = ensemble.detect(photo)
    plain = ensemble.with_options(edge_pad=0.0).detect(photo)  # type: ignore[attr-defined]
    np.testing.assert_allclose(np.sort(whole.xyxy, axis=0), np.sort(plain.xyxy, axis=0), atol=1e-3)
    # Video keeps its per-frame cost: no padded passes, no person detector.
    video = ensemble.with_options(**preset.video_face_options)  # type: ignore[attr-defined]
    assert video.edge_pad == 0 and video.heads is None


def test_size_bars_judge_a_box_by_what_the_member_scores_at_its_size() -> None:
    rule = MemberRule(0.8, size_bars=((32.0, 0.6), (64.0, 0.4), (128.0, 0.8)))
    boxes = np.vstack([xyxy(0, 0, 20, 20), xyxy(0, 0, 40, 40), xyxy(0, 0, 80, 80), xyxy(0, 0, 200, 200)])
    assert rule.alone(boxes, np.full(4, 0.5)).tolist() == [False, False, True, False]
    assert rule.alone(boxes, np.full(4, 0.7)).tolist() == [False, True, True, False]
    assert rule.floor == 0.4


def test_a_witness_agrees_but_never_passes_its_own_boxes() -> None:
    face, head = xyxy(100, 100, 40, 50), xyxy(95, 92, 50, 62)
    rules = [MemberRule(0.8, agree_threshold=0.3), MemberRule(2.0, agree_threshold=0.0, witness=True)]
    boxes, _ = fuse([(face, np.array([0.4])), (head, np.array([0.9]))], rules)
    assert len(boxes) == 1 and iou_matrix(boxes, face).max() > 0.99
    boxes, _ = fuse([(np.zeros((0, 4), np.float32), np.zeros(0)), (head, np.array([0.9]))], rules)
    assert len(boxes) == 0


def test_a_large_person_without_a_face_gets_a_head_box() -> None:
    # A standing person 560 px tall: head about 80 px.
    person = np.array([[100, 50, 300, 610]], np.float32)
    heads = heads_without_faces(person, np.array([0.8]), np.zeros((0, 4), np.float32), threshold=0.6, min_head=48)
    assert len(heads) == 1
    x1, y1, x2, y2 = heads[0]
    assert 190 <= (x1 + x2) / 2 <= 210 and y1 <= 50 and 100 <= y2 <= 180
    # The face was found: no head box.
    face = np.array([[170, 60, 230, 130]], np.float32)
    assert len(heads_without_faces(person, np.array([0.8]), face, threshold=0.6, min_head=48)) == 0
    # A face elsewhere does not count.
    other = np.array([[400, 60, 460, 130]], np.float32)
    assert len(heads_without_faces(person, np.array([0.8]), other, threshold=0.6, min_head=48)) == 1
    # Unsure person, or a head too small to identify: left to the face detectors.
    assert len(heads_without_faces(person, np.array([0.5]), np.zeros((0, 4)), threshold=0.6, min_head=48)) == 0
    small = np.array([[100, 50, 130, 190]], np.float32)  # head about 20 px
    assert len(heads_without_faces(small, np.array([0.8]), np.zeros((0, 4)), threshold=0.6, min_head=48)) == 0

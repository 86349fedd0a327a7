"""The benchmark's scoring, on synthetic before/after arrays."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import scoring  # noqa: E402


def image(h: int = 100, w: int = 200) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(1, 255, size=(h, w, 3), dtype=np.uint8)  # no pure-black pixel


def fill(img: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    out = img.copy()
    out[y : y + h, x : x + w] = 0
    return out


def test_changed_pixels_any_channel_and_tolerance() -> None:
    before = np.full((2, 2, 3), 100, dtype=np.uint8)
    after = before.copy()
    after[0, 0, 2] = 101
    after[1, 1] = 0
    assert scoring.changed_pixels(before, after).tolist() == [[True, False], [False, True]]
    assert scoring.changed_pixels(before, after, tolerance=1).tolist() == [[False, False], [False, True]]
    with pytest.raises(ValueError):
        scoring.changed_pixels(before, after[:1])


def test_face_redacted_uses_70_percent_of_box() -> None:
    before = image()
    box = np.array([[20.0, 10.0, 10.0, 20.0]])  # 200 px
    # 14 of 20 rows changed: exactly 70 % -> redacted
    assert scoring.face_redacted(scoring.changed_pixels(before, fill(before, 20, 10, 10, 14)), box).tolist() == [True]
    # 13 of 20 rows: 65 % -> not redacted
    assert scoring.face_redacted(scoring.changed_pixels(before, fill(before, 20, 10, 10, 13)), box).tolist() == [False]
    # a fill next to the face, not on it, does not count
    assert scoring.face_redacted(scoring.changed_pixels(before, fill(before, 40, 10, 10, 20)), box).tolist() == [False]


def test_box_pixels_round_and_clip() -> None:
    px = scoring.box_pixels(np.array([[1.4, 2.6, 3.2, 0.2], [-5, -5, 10, 10], [190, 90, 50, 50]]), 200, 100)
    assert px.tolist() == [[1, 3, 5, 4], [0, 0, 5, 5], [190, 90, 200, 100]]


def test_far_mask_excludes_faces_and_ignore_grown_2x() -> None:
    far = scoring.far_mask((100, 200), np.array([[40.0, 40.0, 10.0, 10.0]]), np.array([[150.0, 0.0, 20.0, 20.0]]))
    # face box grown 2x about its centre: x 35..55, y 35..55
    assert not far[35:55, 35:55].any()
    assert far[34, 45] and far[55, 45] and far[45, 34] and far[45, 55]
    # ignore box grown 2x: x 140..180, y -10..30 (clipped to 0)
    assert not far[0:30, 140:180].any()
    assert far[30, 160] and far[10, 180]
    assert far.sum() == 100 * 200 - 20 * 20 - 40 * 30


def test_score_image_counts_recall_and_over_redaction() -> None:
    before = image()
    ann = scoring.Annotation(Path("x.png"), np.array([[10.0, 10.0, 10.0, 10.0], [100.0, 50.0, 40.0, 40.0]]))
    after = fill(before, 8, 8, 14, 14)  # first face, with a margin that stays inside its 2x box
    after = fill(after, 0, 90, 10, 10)  # 100 px far from every face
    s = scoring.score_image(before, after, ann)
    assert s.redacted.tolist() == [True, False]
    # first face grown 2x: 20 x 20; second grown 2x: x 80..160, y 30..110, clipped to 70 rows
    assert s.far_total == 100 * 200 - 20 * 20 - 80 * 70
    assert s.far_changed == 100


def test_unchanged_output_scores_zero() -> None:
    before = image()
    ann = scoring.Annotation(Path("x.png"), np.array([[10.0, 10.0, 30.0, 30.0]]))
    s = scoring.score_image(before, before.copy(), ann)
    assert s.redacted.tolist() == [False]
    assert s.far_changed == 0
    summary = scoring.summarize([s])
    assert summary["over_redaction"] == 0.0
    assert summary["recall"][">=64"]["recall"] is None
    assert summary["recall"]["16-32"] == {"faces": 1, "redacted": 0, "recall": 0.0}


def test_recall_by_bucket_edges() -> None:
    heights = np.array([15.9, 16.0, 31.9, 32.0, 63.9, 64.0, 200.0])
    redacted = np.array([True, False, True, True, False, True, False])
    r = scoring.recall_by_bucket(heights, redacted)
    assert r["<16"] == {"faces": 1, "redacted": 1, "recall": 1.0}
    assert r["16-32"] == {"faces": 2, "redacted": 1, "recall": 0.5}
    assert r["32-64"] == {"faces": 2, "redacted": 1, "recall": 0.5}
    assert r[">=64"] == {"faces": 2, "redacted": 1, "recall": 0.5}
    assert r["all>=16"]["faces"] == 6 and r["all>=16"]["redacted"] == 3
    assert r["all"]["faces"] == 7 and r["all"]["redacted"] == 4


def test_summarize_pools_pixels_over_images() -> None:
    a = scoring.ImageScore(np.array([20.0]), np.array([True]), far_changed=10, far_total=100)
    b = scoring.ImageScore(np.array([20.0]), np.array([False]), far_changed=0, far_total=900)
    s = scoring.summarize([a, b])
    assert s["over_redaction"] == pytest.approx(0.01)
    assert s["recall"]["all"]["recall"] == 0.5


def test_missed_image_score() -> None:
    ann = scoring.Annotation(Path("x.png"), np.array([[0.0, 0.0, 10.0, 10.0]]))
    s = scoring.missed_image_score(ann, (50, 50))
    assert s.redacted.tolist() == [False] and s.far_changed == 0 and s.far_total == 2500 - 15 * 15


def test_load_annotations(tmp_path: Path) -> None:
    (tmp_path / "faces.json").write_text(
        json.dumps(
            [
                {"image": "a/b.jpg", "boxes": [[1, 2, 3, 4]]},
                {"image": "c.jpg", "boxes": [], "ignore": [[0, 0, 1, 1]]},
            ]
        )
    )
    anns = scoring.load_annotations(tmp_path / "faces.json")
    assert anns[0].image == (tmp_path / "a" / "b.jpg").resolve()
    assert anns[0].boxes.shape == (1, 4) and anns[0].ignore.shape == (0, 4)
    assert anns[1].boxes.shape == (0, 4) and anns[1].ignore.tolist() == [[0, 0, 1, 1]]

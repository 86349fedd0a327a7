"""YuNet, the ensemble's third face model: the vendored file, its decoder, and real faces."""

from __future__ import annotations

import cv2
import numpy as np
from conftest import SAMPLE_FACE, SAMPLE_IMAGE, SHARED, load_annotations, needs_shared, rgb

from veil.analysis.boxes import iou_matrix
from veil.analysis.detectors import create, sha256_of
from veil.analysis.detectors.yunet import MODEL_PATH

YUNET_SHA256 = "c59d4fa40b669ee29cf243d5f450ad8af19d9b809b842bd46fb18704325dbd83"


def xyxy(x: float, y: float, w: float, h: float) -> np.ndarray:
    return np.array([[x, y, x + w, y + h]], dtype=np.float32)


def test_vendored_model_is_the_documented_file_with_its_licence() -> None:
    assert sha256_of(MODEL_PATH) == YUNET_SHA256
    assert YUNET_SHA256 in (MODEL_PATH.parent / "README.md").read_text()
    assert "Shiqi Yu" in (MODEL_PATH.parent / "LICENSE-yunet.txt").read_text()


def test_decoder_matches_opencvs_on_the_sample_at_two_sizes() -> None:
    """OpenCV's FaceDetectorYN runs the same file with its own C++ decoder: same boxes, same
    scores, also at a size that is not a multiple of 32 (padded, never stretched)."""
    image = rgb(SAMPLE_IMAGE)
    ours = create("yunet", threshold=0.3, sizes=(0,))
    for width, height in ((image.shape[1], image.shape[0]), (300, 200)):
        view = np.ascontiguousarray(cv2.resize(image, (width, height)) if width != image.shape[1] else image)
        reference = cv2.FaceDetectorYN.create(str(MODEL_PATH), "", (width, height), 0.3, 0.3, 5000)
        _, faces = reference.detect(np.ascontiguousarray(view[:, :, ::-1]))
        assert faces is not None
        theirs = faces[:, :4].copy()
        theirs[:, 2:] += theirs[:, :2]
        boxes, scores = ours.raw(view, 0.3)
        assert len(boxes) == len(theirs)
        theirs[:, 0::2] = np.clip(theirs[:, 0::2], 0, width)
        theirs[:, 1::2] = np.clip(theirs[:, 1::2], 0, height)
        np.testing.assert_allclose(boxes, theirs, atol=0.05)
        np.testing.assert_allclose(scores, faces[:, 14], atol=1e-4)


def test_finds_the_sample_face_and_mirroring_and_batching_agree() -> None:
    image = rgb(SAMPLE_IMAGE)
    detector = create("yunet", threshold=0.6, sizes=(0,))
    found = detector.detect(image)
    assert len(found) == 1
    assert iou_matrix(xyxy(*SAMPLE_FACE), found.xyxy).max() > 0.5
    # The mirrored image gives the mirrored box (the `flip` option relies on it).
    mirrored = detector.detect(np.ascontiguousarray(image[:, ::-1]))
    back = mirrored.xyxy.copy()
    back[:, [0, 2]] = image.shape[1] - back[:, [2, 0]]
    assert iou_matrix(found.xyxy, back).max() > 0.8
    # A batch of two runs (the vendored graph's batch is symbolic) and gives the same scores.
    blob = image[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32)
    one = detector.session.run(["cls_8"], {"input": blob})[0]
    two = detector.session.run(["cls_8"], {"input": np.concatenate([blob, np.zeros_like(blob)])})[0]
    np.testing.assert_allclose(two[0], one[0], atol=1e-5)


def test_a_face_filling_the_frame_is_found_at_a_smaller_pass() -> None:
    """The sample face cropped so it fills the picture: a downscaled pass keeps it a face."""
    x, y, w, h = SAMPLE_FACE
    close = cv2.resize(rgb(SAMPLE_IMAGE)[y - 10 : y + h + 10, x - 5 : x + w + 5], None, fx=6, fy=6)
    detector = create("yunet", threshold=0.6, sizes=(0, 320))
    found = detector.detect(close)
    height, width = close.shape[:2]
    assert len(found) >= 1
    assert (found.xyxy[:, 3] - found.xyxy[:, 1]).max() > 0.6 * height
    assert found.xyxy[:, 2].max() <= width


@needs_shared
def test_finds_most_large_faces_on_real_photos() -> None:
    """On the shared WIDER photos, YuNet alone at its default bar finds most faces of 64 px and
    more (its published WIDER val easy AP is 0.884) and puts few boxes far from any face."""
    detector = create("yunet")
    large, found, stray = 0, 0, 0
    for entry in load_annotations():
        boxes = np.asarray(entry["boxes"], dtype=np.float32).reshape(-1, 4)
        tall = boxes[boxes[:, 3] >= 64]
        if not len(tall):
            continue
        got = detector.detect(rgb(SHARED / entry["image"])).xyxy
        truth = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
        tall_xyxy = np.concatenate([tall[:, :2], tall[:, :2] + tall[:, 2:]], axis=1)
        large += len(tall)
        if len(got):
            found += int((iou_matrix(tall_xyxy, got).max(axis=1) > 0.3).sum())
            stray += int((iou_matrix(got, truth).max(axis=1) < 0.1).sum())
    assert large >= 10
    assert found >= 0.8 * large
    assert stray <= large

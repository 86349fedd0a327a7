"""Camera motion: the estimate recovers a known pan and zoom, says "no motion" when it cannot
tell, and lets the tracker follow a face through a detector gap while the camera accelerates."""

from __future__ import annotations

import cv2
import numpy as np

from veil.analysis.motion import IDENTITY, CameraMotion, transform_boxes
from veil.analysis.track import LookaheadTracker
from veil.types import Detections, Frame

W, H = 320, 240


def scene(width: int = 900, height: int = H, seed: int = 0) -> np.ndarray:
    """A textured scene wider than the frame (blurred noise: corners everywhere)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, size=(height, width, 3)).astype(np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 2.0)


def view(canvas: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The frame a camera sees: canvas pixels mapped through a 2x3/3x3 matrix into a W x H frame."""
    return cv2.warpAffine(canvas, np.asarray(matrix, dtype=np.float64)[:2], (W, H), flags=cv2.INTER_LINEAR)


def similarity(scale: float, dx: float, dy: float, centre: tuple[float, float] = (W / 2, H / 2)) -> np.ndarray:
    cx, cy = centre
    m = np.eye(3)
    m[0, 0] = m[1, 1] = scale
    m[0, 2] = cx - scale * cx + dx
    m[1, 2] = cy - scale * cy + dy
    return m


def test_recovers_a_known_pan_and_zoom() -> None:
    canvas = scene()
    camera = CameraMotion()
    first = np.eye(3)
    step = similarity(1.03, -6.5, 2.25)  # frame-1 pixels -> frame-2 pixels
    assert np.allclose(camera(view(canvas, first)), IDENTITY)
    got = camera(view(canvas, step @ first))
    assert abs(got[0, 0] - 1.03) < 0.01 and abs(got[1, 1] - 1.03) < 0.01
    # Where the frame centre moved: within half a pixel of the truth.
    centre = np.array([W / 2, H / 2, 1.0])
    assert np.linalg.norm((got @ centre)[:2] - (step @ centre)[:2]) < 0.5


def test_no_texture_or_a_reset_means_no_motion() -> None:
    camera = CameraMotion()
    flat = np.full((H, W, 3), 128, dtype=np.uint8)
    camera(flat)
    assert np.allclose(camera(flat), IDENTITY)
    canvas = scene()
    camera(view(canvas, np.eye(3)))
    camera.reset()  # a scene cut: the next frame has no predecessor
    assert np.allclose(camera(view(canvas, similarity(1.0, 20.0, 0.0))), IDENTITY)


def test_transform_boxes_maps_corners() -> None:
    boxes = np.array([[10, 20, 30, 60]], dtype=np.float32)
    shifted = transform_boxes(similarity(1.0, 5.0, -3.0), boxes)
    assert np.allclose(shifted, [[15, 17, 35, 57]])
    doubled = transform_boxes(similarity(2.0, 0.0, 0.0, centre=(0.0, 0.0)), boxes)
    assert np.allclose(doubled, [[20, 40, 60, 120]])


def test_tracker_follows_an_accelerating_pan_through_a_detector_gap() -> None:
    """The camera speeds up while the detector misses a still face for 15 frames: interpolating in
    frame pixels would cut the corner; in scene coordinates every frame is covered."""
    canvas = scene()
    face_in_scene = np.array([575.0, 90.0, 605.0, 124.0])
    n, seen = 25, {0, 24}  # the face stays in the picture throughout

    def offset(i: int) -> float:
        return 0.3 * i * i  # accelerating pan to the right: the picture moves left

    def run(follow: bool) -> list[bool]:
        tracker = LookaheadTracker(window=24, follow_camera=follow)
        covered: dict[int, bool] = {}
        truth = {}
        for i in range(n):
            shift = -300.0 - offset(i)
            image = view(canvas, similarity(1.0, shift, 0.0))
            box = face_in_scene + np.array([shift, 0.0, shift, 0.0])
            truth[i] = box
            dets = Detections.from_boxes(box[None], np.array([0.9]), "face") if i in seen else Detections.empty()
            for f, d in tracker.push(Frame(image, i), dets):
                covered[f.index] = _covers(d, truth[f.index])
        for f, d in tracker.flush():
            covered[f.index] = _covers(d, truth[f.index])
        return [covered[i] for i in range(n)]

    assert all(run(follow=True))
    assert not all(run(follow=False)), "the test scene must be one that frame-space interpolation gets wrong"


def _covers(dets: Detections, box: np.ndarray) -> bool:
    return any(
        d[0] <= box[0] + 0.5 and d[1] <= box[1] + 0.5 and d[2] >= box[2] - 0.5 and d[3] >= box[3] - 0.5
        for d in dets.xyxy
    )


def _people_walking_apart(i: int) -> np.ndarray:
    """Frame `i` of a still camera over a plain wall with ten small fixtures spread over it, and
    three textured people walking away from the middle (two apart, one towards the camera): on
    their own they move as a zoom about the middle would."""
    img = np.full((H, W, 3), 120, np.uint8)
    spots = [(30, 25), (150, 20), (280, 30), (20, 120), (290, 110)]
    spots += [(40, 215), (160, 220), (285, 210), (100, 80), (220, 160)]
    for k, (x, y) in enumerate(spots):
        img[y : y + 10, x : x + 10] = scene(10, 10, seed=100 + k)
    ways, sizes = [(-1, 0), (1, 0), (0.3, 1)], [(70, 36), (70, 36), (60, 30)]
    for k, ((dx, dy), (h, w)) in enumerate(zip(ways, sizes, strict=True)):
        person = scene(w, h, seed=7 + k)
        x = int(W / 2 + dx * (25 + 3 * i) - w / 2)
        y = int(H / 2 + dy * (10 + 3 * i) - h / 2)
        y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + h, H), min(x + w, W)
        img[y0:y1, x0:x1] = person[y0 - y : y1 - y, x0 - x : x1 - x]
    return cv2.GaussianBlur(img, (3, 3), 0)


def test_people_moving_in_front_of_a_still_camera_are_not_a_camera_move() -> None:
    """Most corners on the people, who each move their own way: a fit with a pixel's tolerance
    takes them for a zoom of 1-7 % a frame (what motion.py did before the still-camera check);
    the background's corners standing still all over the picture say the camera held still."""
    camera = CameraMotion()
    for i in range(12):
        assert np.allclose(camera(_people_walking_apart(i)), IDENTITY), f"frame {i}: a still camera reported a move"


def test_a_pan_behind_a_burned_in_clock_is_still_a_pan() -> None:
    """A few corners that stand still (an overlay the camera burns in) do not stop a real pan
    from being seen: the moving corners share one motion over most of the picture. That holds
    too when the camera first stood still for longer than the held-still history (HELD_FRAMES)
    and then starts to pan."""
    from veil.analysis.motion import HELD_FRAMES

    canvas = scene()
    clock = scene(70, 16, seed=5)
    camera = CameraMotion()
    still = HELD_FRAMES + 2
    for i in range(still + 3):
        frame = view(canvas, similarity(1.0, -5.0 * max(0, i - still), 0.0))
        frame[4:20, 4:74] = clock
        got = camera(frame)
        if i <= still:
            assert np.allclose(got, IDENTITY), f"frame {i}: a still camera reported a move"
        else:
            assert abs(got[0, 2] + 5.0) < 0.5 and abs(got[1, 2]) < 0.5, f"frame {i}: {got}"


def test_a_camera_that_held_still_needs_a_wider_move() -> None:
    """The still-camera check on corner flows made up to sit on its bar: 8 corners stand still in
    4 cells of the 4 x 4 grid, 24 move together as a 3 % zoom over 5 cells. With no history that is a
    move (the moving corners spread wider than the still ones); once the camera has held still
    for HELD_FRAMES frames it needs HELD_CELLS more cells, and the same flow is people moving."""
    from veil.analysis.motion import HELD_CELLS, HELD_FRAMES, _cells

    width, height = 160, 120
    still = np.asarray(
        [[x, y] for x in (10, 50) for y in (10, 20, 70, 80)], np.float64
    )  # cells (0,0),(0,1),(2,0),(2,1)
    walkers = [[x, y] for x in (90, 100) for y in (12, 20, 40, 50, 75, 80, 100, 110)]  # 4 cells in column 2
    walkers += [[x, y] for x in (125, 140) for y in (10, 15, 20, 25)]  # and cell (0, 3)
    moving = np.asarray(walkers, np.float64)
    zoom = (moving - [width / 2, height / 2]) * 1.03 + [width / 2, height / 2]
    before = np.concatenate([still, moving])
    after = np.concatenate([still, zoom])
    assert HELD_CELLS >= 2 and _cells(still, (height, width)) == 4 and _cells(moving, (height, width)) == 5
    fresh = CameraMotion()
    assert not fresh._still(before, after, (height, width))
    held = CameraMotion()
    held._recent.extend([True] * HELD_FRAMES)
    assert held._still(before, after, (height, width))

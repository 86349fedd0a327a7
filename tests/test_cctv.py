"""CCTV footage: privacy zones blanked in every frame, time ranges, a stopped walker's box holding
still on a fixed camera, the motion head cue, and ordinary recorder exports."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import SAMPLE_IMAGE, decode_frames, make_video, probe, report_frames, rgb, run_cli

from veil.analysis.detectors import create
from veil.analysis.track import LookaheadTracker
from veil.analysis.zones import ZonePainter, from_json, load_zones, parse_zones, rasterise, to_json
from veil.errors import VeilError
from veil.timerange import TimeRange, parse_time
from veil.types import Detections, Frame

# --------------------------------------------------------------------------- zones


def write_zones(path: Path, zones: list[dict]) -> Path:
    path.write_text(json.dumps({"zones": zones}))
    return path


def test_fraction_and_pixel_zones_rasterise_to_the_same_area() -> None:
    frac = parse_zones({"zones": [{"name": "w", "polygon": [[0.25, 0.5], [0.5, 0.5], [0.5, 1], [0.25, 1]]}]})
    pix = parse_zones({"zones": [{"name": "w", "polygon": [[80, 120], [160, 120], [160, 240], [80, 240]]}]})
    assert frac[0].fractional and not pix[0].fractional
    a, b = rasterise(frac, 320, 240), rasterise(pix, 320, 240)
    assert (a == b).all()
    assert a[120:240, 80:160].all() and not a[:119].any() and not a[:, :79].any()


def test_zones_round_trip_through_json() -> None:
    zones = parse_zones({"zones": [{"name": "garden", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.5, 0.8]]}]})
    again = from_json(json.loads(json.dumps(to_json(zones))))
    assert again == zones
    # A pixel zone near the origin keeps its units when read back from a plan.
    tiny = parse_zones({"zones": [{"name": "t", "polygon": [[0, 0], [1, 0], [1, 1]]}]})
    assert from_json({**to_json(tiny), "units": "pixels"})[0].fractional is False


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('{"zones": []}', "no zones"),
        ('{"zone": [{"polygon": [[0,0],[1,0],[1,1]]}]}', "expected"),
        ('{"zones": [{"name": "x", "polygon": [[0,0],[5,5]]}]}', "at least 3 points"),
        ('{"zones": [{"name": "x", "polygon": [[0,0],[5,"a"],[9,9]]}]}', "two numbers"),
        ('{"zones": [{"name": "x", "polygon": [[0,0],[-5,5],[9,9]]}]}', ">= 0"),
        ('{"zones": [{"name": "x", "polygon": [[0,0],[5,5],[9,9]]}]}', "no area"),
    ],
)
def test_bad_zone_files_give_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "zones.json"
    path.write_text(content)
    with pytest.raises(VeilError, match=message) as info:
        load_zones(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_bad_zone_file_on_the_command_line_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "zones.json"
    bad.write_text('{"zones": [{"name": "door", "polygon": [[0, 0], [10, 10]]}]}')
    proc = run_cli(SAMPLE_IMAGE, "-o", tmp_path / "out.png", "--zones", bad)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("veil: error:") and "door" in lines[0]
    assert not (tmp_path / "out.png").exists()
    missing = run_cli(SAMPLE_IMAGE, "-o", tmp_path / "out.png", "--zones", tmp_path / "nope.json")
    assert missing.returncode == 2 and "zone file not found" in missing.stderr


def test_zone_outside_the_frame_fails_the_file_not_silently() -> None:
    painter = ZonePainter(parse_zones({"zones": [{"name": "far", "polygon": [[900, 900], [990, 900], [990, 990]]}]}))
    with pytest.raises(VeilError, match="outside the 320x240 frame"):
        painter.paint(np.zeros((240, 320, 3), np.uint8))


def test_zones_are_masked_in_every_frame_of_a_video_and_on_a_photo(tmp_path: Path) -> None:
    """A bright textured scene (no near-black pixels of its own), one zone in fractions and one in
    pixels: every output frame is black inside both, and the report records them."""
    src = tmp_path / "cam.mp4"
    rng = np.random.default_rng(1)
    scene = (rng.integers(90, 230, size=(30, 40, 3))).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(25, 2))  # a recorder's 12.5 fps
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        for i in range(25):
            noisy = np.clip(scene + rng.normal(0, 3, scene.shape), 0, 255).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(noisy, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(2, 25)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    zones = write_zones(
        tmp_path / "z.json",
        [
            {"name": "window", "polygon": [[0.6, 0.1], [0.9, 0.1], [0.9, 0.4], [0.6, 0.4]]},
            {"name": "garden", "polygon": [[20, 150], [120, 150], [70, 230]]},
        ],
    )
    out = tmp_path / "out.mp4"
    run_cli(src, "-o", out, "--zones", zones, "--report", tmp_path / "r.json", check=True)
    mask = rasterise(load_zones(zones), 320, 240)
    # Compression smears 2-3 px at the zone's edge; the interior must be black in every frame.
    inner = cv2.erode(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    frames = decode_frames(out)
    assert len(frames) == 25
    for i, frame in enumerate(frames):
        assert frame[inner].max() <= 20, f"frame {i}: a zone shows"
        assert frame[~mask].mean() > 80, "the rest of the picture is kept"
    report = json.loads((tmp_path / "r.json").read_text())
    assert [z["name"] for z in report["settings"]["zones"]["zones"]] == ["window", "garden"]

    photo = tmp_path / "photo.png"
    run_cli(SAMPLE_IMAGE, "-o", photo, "--zones", zones, check=True)
    img = rgb(photo)
    exact = rasterise(load_zones(zones), img.shape[1], img.shape[0])
    assert (img[exact] == 0).all()


# --------------------------------------------------------------------------- time ranges


@pytest.mark.parametrize(
    "text, seconds", [("90", 90.0), ("90.5", 90.5), ("1:30", 90.0), ("01:02:03.5", 3723.5), ("75:00", 4500.0)]
)
def test_times_parse(text: str, seconds: float) -> None:
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["abc", "-3", "1:75", "1:61:00", "nan"])
def test_bad_times_are_refused(text: str) -> None:
    with pytest.raises(VeilError):
        parse_time(text, "--start")


def test_end_before_start_is_refused() -> None:
    with pytest.raises(VeilError, match="after --start"):
        TimeRange.from_options("5", "4")


def test_start_end_writes_only_that_part_with_audio_in_step(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", frames=40, fps=10, audio=True)
    out = tmp_path / "out.mp4"
    run_cli(src, "-o", out, "--start", "1", "--end", "0:02.5", "--report", tmp_path / "r.json", check=True)
    info = probe(out)
    assert info["frames"] == 15  # frames 10-24 of the input
    assert info["times"][0] == pytest.approx(0.0, abs=1e-6)
    assert np.allclose(np.diff(info["times"]), 0.1, atol=1e-3)
    with av.open(str(out)) as c:
        audio = [float(f.time) + f.samples / f.sample_rate for f in c.decode(audio=0)]
    assert 1.3 <= audio[-1] <= 1.6, "audio trimmed to the same 1.5 s"
    # The first output frame is input frame 10: the astronaut has moved to its position there.
    before, after = decode_frames(src), decode_frames(out)
    diffs = [np.abs(after[5].astype(int) - b.astype(int)).mean() for b in before]
    assert int(np.argmin(diffs)) == 15
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["settings"]["time_range"] == {"start_s": 1.0, "end_s": 2.5}


def test_a_range_past_the_end_fails_cleanly(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", frames=20, fps=10)
    proc = run_cli(src, "-o", tmp_path / "out.mp4", "--start", "30")
    assert proc.returncode == 1
    assert "no frames between 30 s and the end" in proc.stderr
    assert not (tmp_path / "out.mp4").exists()


# --------------------------------------------------------------------------- tracker on a fixed camera


def still_scene() -> np.ndarray:
    rng = np.random.default_rng(3)
    small = rng.integers(0, 256, size=(24, 32, 3)).astype(np.uint8)
    return np.kron(small, np.ones((10, 10, 1), dtype=np.uint8))


def test_a_stopped_walkers_box_holds_still_on_a_fixed_camera() -> None:
    """The face is detected while walking right at 6 px/frame, then stops and turns away (no more
    detections). The coasting box must keep covering where it stopped for the whole window and
    must not slide on at walking speed."""
    img = still_scene()
    tracker = LookaheadTracker(window=20)
    stop = 12

    def walker(i: int) -> np.ndarray:
        x = 40.0 + 6.0 * min(i, stop)
        return np.array([x, 100.0, x + 16.0, 116.0], dtype=np.float32)

    out: dict[int, Detections] = {}
    for i in range(40):
        noisy = np.clip(img.astype(np.int16) + np.random.default_rng(i).integers(-3, 4, img.shape), 0, 255)
        dets = Detections.from_boxes(walker(i)[None], np.array([0.3]), "face") if i <= stop else Detections.empty()
        for f, d in tracker.push(Frame(noisy.astype(np.uint8), i), dets):
            out[f.index] = d
    for f, d in tracker.flush():
        out[f.index] = d
    held = walker(stop)
    for i in range(stop + 1, stop + 21):
        boxes = out[i].xyxy
        assert len(boxes), f"frame {i}: nothing covers the stopped walker"
        assert any(b[0] <= held[0] and b[1] <= held[1] and b[2] >= held[2] and b[3] >= held[3] for b in boxes), (
            f"frame {i}: the box slid off the stopped face"
        )
        # Full velocity would put the box's left edge 6 px/frame further right every frame.
        assert boxes[:, 0].min() < held[0], f"frame {i}: box ran ahead"


def test_velocity_decays_when_detections_stop() -> None:
    policy = LookaheadTracker(window=30).policy
    half_life = policy.config.velocity_half_life
    assert policy._decayed_steps(1) == pytest.approx(0.5 ** (1 / half_life))
    # However long it coasts, the box travels at most a bounded number of frames' worth.
    assert policy._decayed_steps(30) < policy._decayed_steps(1) / (1 - 0.5 ** (1 / half_life))
    assert policy._decayed_steps(30) < 8


# --------------------------------------------------------------------------- the motion head cue


def test_motion_cue_finds_a_walker_head_on_a_fixed_camera_and_nothing_when_it_pans() -> None:
    scene = still_scene()
    body = np.random.default_rng(7).integers(0, 60, size=(90, 24, 3)).astype(np.uint8)  # dark figure
    cue = create("persons", mode="head")
    heads = []
    for i in range(20):
        img = scene.copy()
        x = 40 + 8 * i
        img[100:190, x : x + 24] = body
        found = cue.detect(img)
        heads.append((x, found))
    for x, found in heads[6:]:  # the model learns its background over the first frames
        assert len(found) >= 1 and set(found.label) == {"head"}
        b = found.xyxy[0]
        # The head box holds the top of the figure (its top 15 px) across its middle, not its legs.
        assert b[1] <= 101 and 115 <= b[3] <= 150
        assert x <= (b[0] + b[2]) / 2 <= x + 24 and b[2] - b[0] >= 16
    panning = create("persons", mode="head")
    for i in range(10):
        assert len(panning.detect(np.roll(scene, 15 * i, axis=1))) == 0
    assert len(create("persons", mode="head", motion=False).detect(scene)) == 0


def test_motion_cue_drops_the_ghost_of_a_walker_it_was_built_with_and_keeps_the_walker() -> None:
    """A model built from a frame with someone in view takes them for background: once they walk
    off, the floor they stood on is foreground (a ghost) for hundreds of frames. Foreground that
    has not changed for `still_frames` frames is dropped; the walker, who moves, is still found."""
    scene = still_scene()
    body = np.random.default_rng(7).integers(0, 60, size=(90, 24, 3)).astype(np.uint8)
    cue = create("persons", mode="head")
    cue.pace(10.0)  # a pixel unchanged for a second (10 frames) is still
    assert cue.still_frames == 10
    ghost_x, found = 40, []
    for i in range(36):
        img = scene.copy()
        x = ghost_x if i < 6 else ghost_x + 60 + 5 * (i - 6)  # stands for the warm-up, then walks
        img[100:190, x : x + 24] = body
        found.append((x, cue.detect(img)))

    def at(x: int, heads: Detections) -> bool:
        return any(b[0] - 4 <= x + 12 <= b[2] + 4 for b in heads.xyxy)

    # Right after the walker leaves, the ghost is reported (nothing has been still for long) ...
    assert any(at(ghost_x, heads) for _, heads in found[7:12])
    # ... and from `still_frames` frames after they left, never again, while they are found.
    for x, heads in found[6 + 10 + 1 :]:
        assert not at(ghost_x, heads), "the ghost of where the walker stood is still a head"
        assert at(x, heads), f"the walker at x={x} is lost"


def test_search_windows_cover_every_place_once_and_give_way_to_the_whole_frame_in_a_crowd() -> None:
    from veil.analysis.detectors.ensemble import SEARCH_ALIGN, SEARCH_GROW, SEARCH_PAD, search_windows

    people = np.asarray([[100, 100, 140, 200], [130, 110, 170, 210], [500, 50, 520, 90]], np.float32)
    faces = np.asarray([[300, 300, 310, 312]], np.float32)
    windows = search_windows(people, faces, 640, 480)
    assert windows is not None and len(windows) == 3  # the two people overlap: one window
    assert (windows % SEARCH_ALIGN == 0)[:, :2].all() and (windows[:, 2:] <= [640, 480]).all()
    grown_face = faces[0] + np.asarray([-1, -1, 1, 1]) * (12 * SEARCH_GROW + SEARCH_PAD)
    for place in [*(p + np.asarray([-1, -1, 1, 1]) * SEARCH_PAD for p in people), grown_face]:
        assert any((w[:2] <= place[:2]).all() and (w[2:] >= np.minimum(place[2:], [640, 480])).all() for w in windows)
    for i in range(len(windows)):  # no pixel is searched twice
        for j in range(i + 1, len(windows)):
            a, b = windows[i], windows[j]
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
    crowd = np.asarray([[x, y, x + 60, y + 150] for x in range(0, 640, 80) for y in (0, 200)], np.float32)
    assert search_windows(crowd, faces, 640, 480) is None
    assert len(search_windows(np.zeros((0, 4)), np.zeros((0, 4)), 640, 480)) == 0


def test_a_still_face_stays_found_while_the_face_detector_searches_around_people() -> None:
    """On a fixed camera, between whole-frame passes, CenterFace searches only around people,
    motion and recent faces (ensemble.py, `region_search`). A face that never moves and that no
    person cue sees is found by a whole-frame pass and searched again where it was, so every
    frame still finds it; a walker the person cue sees is searched around."""
    from veil.analysis.detect import FrameDetector
    from veil.config import Settings

    scene = cv2.resize(still_scene(), (640, 480), interpolation=cv2.INTER_NEAREST)
    face = cv2.resize(rgb(SAMPLE_IMAGE), (120, 120), interpolation=cv2.INTER_AREA)
    body = np.random.default_rng(7).integers(0, 60, size=(150, 40, 3)).astype(np.uint8)  # a walker
    frame_detector = FrameDetector(Settings(classes=("faces", "heads")))
    ensemble = frame_detector.classes[0].video
    searched: list[np.ndarray | None] = []
    detect = ensemble.centerface.detect

    def spy(image: np.ndarray, regions: np.ndarray | None = None, shrink: np.ndarray | None = None) -> object:
        searched.append(regions)
        return detect(image, regions, shrink)

    ensemble.centerface.detect = spy

    def frame(i: int) -> np.ndarray:
        img = scene.copy()
        img[300:420, 60:180] = face
        img[100:250, 300 + 10 * i : 340 + 10 * i] = body
        return img

    def finds_the_face(found: object) -> bool:
        boxes = found.xyxy[found.label == "face"]  # type: ignore[attr-defined]
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        return bool(((cx > 60) & (cx < 180) & (cy > 300) & (cy < 420)).any())

    # The face detector alone, told that no person or motion is anywhere.
    for i in range(12):
        ensemble.search_regions = np.zeros((0, 4), np.float32)
        assert finds_the_face(ensemble.detect(frame(i))), f"frame {i}: the still face was not found"
    assert sum(r is not None for r in searched) == 9  # every frame but the whole-frame passes
    assert all(r is None or len(r) == 1 for r in searched)  # one window: around the face
    # With the person cue: the walker it sees is searched around, once the camera is known still.
    ensemble.reset()
    searched.clear()
    for i in range(24):
        assert finds_the_face(frame_detector.run(frame(i), frame_detector.due(i), video=True)), f"frame {i}"
    walker = [r for i, r in enumerate(searched) if r is not None and i >= 12]
    assert len(walker) >= 6
    for i, windows in enumerate(searched):
        if windows is not None and i >= 12:
            x = 300 + 10 * i
            assert any(w[0] <= x and w[2] >= x + 40 and w[1] <= 100 and w[3] >= 250 for w in windows), i
    # Without a person cue (`--redact faces`, or a moving camera) nothing says where people are:
    # at 10 fps the whole frame, always; at 25 fps the whole frame on every 2nd frame (`pace`),
    # and around the faces found in between.
    faces_only = FrameDetector(Settings(classes=("faces",)))
    alone = faces_only.classes[0].video
    faces_only.pace(10.0)
    assert alone.whole_every == 1
    faces_only.pace(25.0)
    assert alone.region_search  # the same preset: it would search if it were told where
    alone_detect, alone_searched = alone.centerface.detect, []

    def alone_spy(image: np.ndarray, regions: np.ndarray | None = None, shrink: np.ndarray | None = None) -> object:
        alone_searched.append(regions)
        return alone_detect(image, regions, shrink)

    alone.centerface.detect = alone_spy
    for i in range(12):
        assert finds_the_face(faces_only.run(frame(i), faces_only.due(i), video=True)), f"faces alone, frame {i}"
    assert len(alone_searched) == 12
    assert [r is None for r in alone_searched] == [i % alone.whole_every == 0 for i in range(12)]
    assert alone.whole_every == 2 and all(r is None or len(r) == 1 for r in alone_searched)


def test_redact_persons_masks_whole_bodies(tmp_path: Path) -> None:
    src = recorder_clip(tmp_path / "in.mp4", "libx264", Fraction(10), background=still_scene())
    out = tmp_path / "out.mp4"
    run_cli(src, "-o", out, "--redact", "persons", "--report", tmp_path / "r.json", check=True)
    labels = {
        b["label"] for f in report_frames(json.loads((tmp_path / "r.json").read_text())["files"][0]) for b in f["boxes"]
    }
    assert labels == {"person"}


# --------------------------------------------------------------------------- recorder formats


def recorder_clip(
    path: Path, codec: str, rate: Fraction, frames: int = 16, background: np.ndarray | None = None
) -> Path:
    """What a recorder exports: no audio, an odd frame rate, H.264 or H.265; the sample photo
    moves across a still `background` (320 x 240; flat grey by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        if codec == "libx265":
            s.options = {"x265-params": "log-level=error"}
        photo = np.asarray(rgb(SAMPLE_IMAGE)[::4, ::4])
        for i in range(frames):
            img = np.full((240, 320, 3), 60, np.uint8) if background is None else background.copy()
            x = 4 * i
            img[40 : 40 + photo.shape[0], x : x + photo.shape[1]] = photo[:, : 320 - x]
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = i, 1 / rate
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


RECORDER_EXPORTS = [
    ("libx264", ".mp4", Fraction(30000, 1001)),
    ("libx264", ".mkv", Fraction(7)),
    ("libx265", ".mp4", Fraction(25, 2)),
    ("libx265", ".mkv", Fraction(15)),
]


def test_recorder_exports_keep_every_frame_and_their_timing(tmp_path: Path) -> None:
    """H.264 and H.265 in MP4 and MKV at 29.97, 7, 12.5 and 15 fps, no audio; one veil run."""
    sources = []
    for k, (codec, ext, rate) in enumerate(RECORDER_EXPORTS):
        if codec in av.codecs_available:
            sources.append(recorder_clip(tmp_path / "in" / f"rec{k}{ext}", codec, rate))
    assert len(sources) >= 2, "this PyAV build cannot even write H.264"
    run_cli(tmp_path / "in", "-o", tmp_path / "out", check=True)
    for src in sources:
        a, b = probe(src), probe(tmp_path / "out" / src.name)
        assert b["frames"] == a["frames"] == 16, src.name
        assert np.allclose(a["times"], b["times"], atol=2e-3), src.name
        assert "audio" not in b["kinds"]

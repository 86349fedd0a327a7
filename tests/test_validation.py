"""Numbers and plans from outside are checked once, where they enter (src/veil/schema.py): a
non-finite, out-of-range or wrong-typed value is refused with one line naming the field, on
the command line, in a plan (render, verify, the review page) and in a library call; never a
traceback, never a "verified" output with nothing painted.

The property test generates plans and settings with NaN, infinities, huge, negative and
wrong-typed values: each either is refused with one line, or every planned box is painted and
verify agrees. `make test` runs VEIL_PLAN_EXAMPLES (default 150) of them; `make fuzz-plans` runs
10,000. A second one sends generated edits to the review page's API: each is a 4xx with one
line, or saved as a plan veil reads back."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SAMPLE_IMAGE, run_cli
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from veil.analysis.detectors import sha256_of
from veil.analysis.zones import ZonePainter, load_zones, parse_zones
from veil.cli import main
from veil.config import Settings
from veil.errors import VeilError
from veil.plan import load_plan
from veil.schema import MAX_COORD, REACH

W, H = 64, 48
# Generated scene pixels stay within these levels, so a solid black mask is never the scene's own.
LOW, HIGH = 60, 200
TRACEBACK = re.compile(r"Traceback|failed \(\w*(Error|Exception)")


def make_image(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(LOW, HIGH, size=(H, W, 3)).astype(np.uint8)).save(path)
    return path


def base_plan(image: Path) -> dict[str, Any]:
    return {
        "veil_plan": 1,
        "input": {
            "path": image.name,
            "sha256": sha256_of(image),
            "kind": "image",
            "width": W,
            "height": H,
            "frames": 1,
        },
        "settings": {"mask": "solid", "margin": 0.0},
        "frame_ranges": [],
        "zones": [],
        "audio": {"mode": "keep", "ranges": []},
        "tracks": [{"id": 0, "label": "face", "source": "manual", "boxes": [{"frame": 0, "box": [10, 10, 30, 30]}]}],
    }


def run(argv: list[str]) -> tuple[int, list[str]]:
    """`veil ARGV` in this process: (exit code, stderr lines). An exception escaping `main` is a
    traceback a user would see, and fails the test by propagating."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, [line for line in err.getvalue().splitlines() if line.strip()]


def one_line_refusal(code: int, lines: list[str]) -> str:
    assert code != 0, lines
    assert len(lines) == 1 and lines[0].startswith("veil: error:"), lines
    assert not TRACEBACK.search(lines[0]), lines
    return lines[0]


@pytest.fixture()
def image(tmp_path: Path) -> Path:
    return make_image(tmp_path / "in.png")


# ----------------------------------------------------------------------------- command line

BAD_NUMBERS = ["nan", "inf", "-inf", "NaN", "1e400"]


@pytest.mark.parametrize(
    "option, values",
    [
        ("--margin", [*BAD_NUMBERS, "-0.1", "6", "abc"]),
        ("--threshold", [*BAD_NUMBERS, "0", "1.5"]),
        ("--lookahead", [*BAD_NUMBERS, "-1"]),
        ("--segment-seconds", [*BAD_NUMBERS, "0", "-1"]),
        ("--jobs", ["0", "1.5", "nan", "9" * 400]),
        ("--start", [*BAD_NUMBERS, "9" * 400 + ":00", "9" * 5000 + ":00:00"]),
        ("--end", [*BAD_NUMBERS, "1" * 5000]),
    ],
)
def test_one_shot_options_refuse_non_finite_numbers(
    image: Path, tmp_path: Path, option: str, values: list[str]
) -> None:
    out = tmp_path / "out.png"
    for value in values:
        line = one_line_refusal(*run([str(image), "-o", str(out), f"{option}={value}"]))
        assert option in line, line
        assert not out.exists()


def test_render_and_verify_refuse_a_non_finite_margin(image: Path, tmp_path: Path) -> None:
    plan = tmp_path / "in.plan.json"
    plan.write_text(json.dumps(base_plan(image)))
    out = tmp_path / "out.png"
    for value in BAD_NUMBERS:
        assert "--margin" in one_line_refusal(*run(["render", str(plan), "-o", str(out), f"--margin={value}"]))
        assert not out.exists()
        # Today's bug: `--margin nan` verified the unredacted input itself.
        assert "--margin" in one_line_refusal(*run(["verify", str(plan), str(image), f"--margin={value}"]))
    assert run(["render", str(plan), "-o", str(out), "-q"])[0] == 0
    assert run(["verify", str(plan), str(image), "-q"])[0] == 1  # the input lacks the mask


@pytest.mark.parametrize(
    "args",
    [["--delay", "nan"], ["--delay", "inf"], ["--delay", "-1"], ["--budget", "nan"], ["--budget", "0"],
     ["--duration", "inf"], ["--log-interval", "nan"], ["--margin", "nan"], ["--threshold", "nan"]],
)  # fmt: skip
def test_live_refuses_non_finite_numbers(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "live.mp4"
    line = one_line_refusal(*run(["live", str(SAMPLE_IMAGE), str(out), "--realtime", *args]))
    assert args[0] in line and not out.exists()


def test_review_refuses_a_bad_port_in_one_line() -> None:
    for port in ("70000", "-1", "nan"):
        code, lines = run(["review", str(SAMPLE_IMAGE), f"--port={port}", "--no-browser"])
        assert "--port" in one_line_refusal(code, lines)


def test_a_real_process_prints_one_line_and_writes_nothing(image: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    for args in (["--margin", "nan"], ["--segment-seconds", "inf"], ["--start", "nan"]):
        proc = run_cli(image, "-o", out, *args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert args[0] in lines[0] and not out.exists()
    proc = run_cli("live", image, tmp_path / "live.mp4", "--realtime", "--delay", "inf")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize(
    "field, value",
    [("margin", math.nan), ("margin", math.inf), ("margin", -1.0), ("margin", "0.2"), ("threshold", math.nan),
     ("threshold", True), ("lookahead_s", math.nan), ("lookahead_s", math.inf), ("audio_ranges", ((0, math.nan),)),
     ("preset", 5), ("classes", "faces"), ("mask", None), ("zones", ({"polygon": [[0, 0], [1, 0], [1, 1]]},))],
)  # fmt: skip
def test_library_settings_refuse_what_the_command_line_refuses(field: str, value: Any) -> None:
    extra = {"audio": "mute"} if field == "audio_ranges" else {}
    with pytest.raises(VeilError) as info:
        Settings(**{field: value, **extra})
    assert "\n" not in str(info.value)


def test_one_time_parser_and_one_zone_loader() -> None:
    import veil.media.audio
    import veil.runners.live
    import veil.timerange

    assert veil.media.audio.parse_time is veil.timerange.parse_time
    assert veil.runners.live.load_zones is load_zones
    assert veil.media.audio.parse_ranges("1:00-1:02.5,90-95") == [(60.0, 62.5), (90.0, 95.0)]
    with pytest.raises(VeilError, match="--audio-ranges"):
        veil.media.audio.parse_ranges("nan-5")


# ----------------------------------------------------------------------------- plans

DEEP = {"a": None}
for _ in range(100_000):
    DEEP = {"a": DEEP}


def track_with(box: Any = None, frame: Any = 0) -> dict[str, Any]:
    return {"id": 0, "label": "face", "source": "manual", "boxes": [{"frame": frame, "box": box or [10, 10, 30, 30]}]}


BAD_PLANS: list[tuple[str, Any, str]] = [
    ("margin nan", lambda p: p["settings"].update(margin=math.nan), "settings.margin"),
    ("margin inf", lambda p: p["settings"].update(margin=math.inf), "settings.margin"),
    ("margin negative", lambda p: p["settings"].update(margin=-0.5), "settings.margin"),
    ("margin text", lambda p: p["settings"].update(margin="0.2"), "settings.margin"),
    ("threshold nan", lambda p: p["settings"].update(threshold=math.nan), "settings.threshold"),
    ("classes number", lambda p: p["settings"].update(classes=5), "settings.classes"),
    ("box nan", lambda p: p.update(tracks=[track_with([10, 10, math.nan, 30])]), "box[2]"),
    ("box inf", lambda p: p.update(tracks=[track_with([-math.inf, 10, 30, 30])]), "box[0]"),
    ("box 1e39", lambda p: p.update(tracks=[track_with([10, 10, 1e39, 30])]), "box[2]"),
    ("box 1e19", lambda p: p.update(tracks=[track_with([1e19, 1e19, 2e19, 2e19])]), "box[0]"),
    ("box 400 digits", lambda p: p.update(tracks=[track_with([10, 10, 10**400, 30])]), "box[2]"),
    ("box text", lambda p: p.update(tracks=[track_with([10, "10", 30, 30])]), "box[1]"),
    ("box bool", lambda p: p.update(tracks=[track_with([10, 10, True, 30])]), "box[2]"),
    ("box far outside", lambda p: p.update(tracks=[track_with([5000, 5000, 5100, 5100])]), "64x48 frame"),
    ("box wholly outside", lambda p: p.update(tracks=[track_with([100, 60, 120, 80])]), "wholly outside"),
    ("box beyond reach", lambda p: p.update(tracks=[track_with([10, 10, 30, W * (REACH + 2)])]), "frame sizes"),
    ("frame past the image", lambda p: p.update(tracks=[track_with(frame=7)]), "past the plan"),
    ("frame negative", lambda p: p.update(tracks=[track_with(frame=-1)]), "frame"),
    ("frame 400 digits", lambda p: p.update(tracks=[track_with(frame=10**400)]), "frame"),
    ("frame float", lambda p: p.update(tracks=[track_with(frame=0.0)]), "frame"),
    ("id 400 digits", lambda p: p["tracks"][0].update(id=10**400), "id"),
    ("id text", lambda p: p["tracks"][0].update(id="0"), "id"),
    ("boxes not a list", lambda p: p["tracks"][0].update(boxes={"frame": 0}), "boxes"),
    ("tracks not a list", lambda p: p.update(tracks=7), "tracks"),
    ("label list", lambda p: p["tracks"][0].update(label=["face"]), "label"),
    ("width nan", lambda p: p["input"].update(width=math.nan), "input.width"),
    ("frames 400 digits", lambda p: p["input"].update(frames=10**400), "input.frames"),
    ("zone nan", lambda p: p.update(zones=[{"name": "z", "polygon": [[0, 0], [math.nan, 0], [5, 5]]}]), "zones[0]"),
    ("zone 2e8", lambda p: p.update(zones=[{"name": "z", "polygon": [[0, 0], [2e8, 0], [5, 5]]}]), "zones[0]"),
    ("zone far", lambda p: p.update(zones=[{"name": "z", "polygon": [[0, 0], [W * 6, 0], [5, 5]]}]), "zones[0]"),
    ("range nan", lambda p: p.update(frame_ranges=[{"start": 0, "end": math.nan}]), "frame_ranges[0].end"),
    ("range past the image", lambda p: p.update(frame_ranges=[{"start": 3, "end": 4}]), "frame_ranges[0]"),
    ("audio range inf", lambda p: p.update(audio={"mode": "mute", "ranges": [[0, math.inf]]}), "audio.ranges"),
    ("audio ranges text", lambda p: p.update(audio={"mode": "mute", "ranges": "all"}), "audio.ranges"),
    ("review list", lambda p: p.update(review=[1]), "review"),
    ("decisions not a list", lambda p: p.update(review={"decisions": 5}), "review.decisions"),
    ("decision track list", lambda p: p.update(review={"decisions": [{"track": [1]}]}), "review.decisions[0].track"),
    ("reviewed text", lambda p: p.update(review={"reviewed": "yes"}), "review.reviewed"),
    ("input path NUL", lambda p: p["input"].update(path="in\x00.png"), "input.path"),
    ("input path number", lambda p: p["input"].update(path=5), "input.path"),
    ("deep nesting", lambda p: p.update(review=DEEP), "nested too deeply"),
    ("deep nesting in a track", lambda p: p["tracks"][0].update(note=DEEP), "nested too deeply"),
]


def dump(plan: dict[str, Any]) -> str:
    """The plan as veil writes it (header line, then a track a line), deep nesting included."""

    def text(value: Any) -> str:
        if value is DEEP:
            return '{"a": ' * 100_000 + "null" + "}" * 100_000
        if isinstance(value, dict):
            return "{" + ", ".join(f"{json.dumps(k)}: {text(v)}" for k, v in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ", ".join(text(v) for v in value) + "]"
        return json.dumps(value)

    header = {k: v for k, v in plan.items() if k != "tracks"}
    tracks = plan["tracks"] if isinstance(plan["tracks"], list) else None
    if tracks is None:
        return text(plan)
    lines = ",\n".join(text(t) for t in tracks)
    return text(header)[:-1] + ', "tracks": [\n' + lines + "\n]}\n"


@pytest.mark.parametrize(("name", "edit", "where"), BAD_PLANS, ids=[b[0] for b in BAD_PLANS])
def test_bad_plans_are_refused_with_one_line_by_render_verify_and_review(
    image: Path, tmp_path: Path, name: str, edit: Any, where: str
) -> None:
    from veil.review.server.session import ReviewSession

    plan = base_plan(image)
    edit(plan)
    path = tmp_path / "in.plan.json"
    path.write_text(dump(plan))
    out = tmp_path / "out.png"
    line = one_line_refusal(*run(["render", str(path), "-o", str(out), "-q"]))
    assert where in line and str(path) in line, line
    assert not out.exists()
    line = one_line_refusal(*run(["verify", str(path), str(image)]))
    assert where in line, line
    with pytest.raises(VeilError) as info:
        ReviewSession(path).close()
    assert where in str(info.value) and "\n" not in str(info.value)


def test_boxes_partly_outside_are_kept_and_painted_inside(image: Path, tmp_path: Path) -> None:
    plan = base_plan(image)
    plan["tracks"] = [track_with([-30, -20, 10, 12]), {**track_with([W - 8, H - 6, W + 90, H + 40]), "id": 1}]
    path = tmp_path / "in.plan.json"
    path.write_text(json.dumps(plan))
    out = tmp_path / "out.png"
    assert run(["render", str(path), "-o", str(out), "-q"])[0] == 0
    img = np.asarray(Image.open(out).convert("RGB"))
    assert (img[0:12, 0:10] == 0).all() and (img[H - 6 :, W - 8 :] == 0).all()
    assert run(["verify", str(path), str(out), "-q"])[0] == 0


def test_a_redact_flag_of_the_wrong_type_still_masks(image: Path, tmp_path: Path) -> None:
    plan = base_plan(image)
    plan["tracks"][0]["redact"] = math.nan  # fail closed: only `false` keeps a track visible
    path = tmp_path / "in.plan.json"
    path.write_text(json.dumps(plan))
    assert load_plan(path).tracks[0].redact is True


# ----------------------------------------------------------------------------- zones


@pytest.mark.parametrize(
    "polygon, message",
    [([[0, 0], [math.nan, 0], [5, 5]], "finite"), ([[0, 0], [2e8, 0], [5, 5]], "at most"),
     ([[0, 0], [10**400, 0], [5, 5]], "finite"), ([[0, 0], [True, 0], [5, 5]], "two numbers")],
)  # fmt: skip
def test_zone_files_refuse_non_finite_and_huge_coordinates(tmp_path: Path, polygon: Any, message: str) -> None:
    path = tmp_path / "z.json"
    path.write_text(json.dumps({"zones": [{"name": "door", "polygon": polygon}]}))
    with pytest.raises(VeilError, match=message) as info:
        load_zones(path)
    assert "\n" not in str(info.value) and "door" in str(info.value)


def test_a_zone_far_beyond_the_frame_is_refused_not_wrapped() -> None:
    """A vertex at 5e5 px on a 64 px frame wrapped around in cv2's fixed point and blanked the
    wrong part of the picture; it is refused once the frame size is known."""
    (zone,) = parse_zones({"zones": [{"name": "far", "polygon": [[0, 0], [5e5, 0], [5e5, 40], [0, 40]]}]})
    assert MAX_COORD > 5e5
    with pytest.raises(VeilError, match="frame sizes beyond the 64x48 frame"):
        ZonePainter([zone]).paint(np.zeros((H, W, 3), np.uint8))


def test_the_zone_file_forms_live_read_are_read_by_the_one_loader(tmp_path: Path) -> None:
    path = tmp_path / "z.json"
    path.write_text(json.dumps([[[0, 0], [20, 0], [20, 20]]]))
    (zone,) = load_zones(path)
    assert zone.name == "zone 1" and not zone.fractional


# ----------------------------------------------------------------------------- review API


REVIEW_BODIES = [
    ("/api/manual", {"frame": 0, "box": [10, 10, math.nan, 30]}, "box"),
    ("/api/manual", {"frame": 0, "box": [10, 10, 1e39, 30]}, "box"),
    ("/api/manual", {"frame": 0, "box": [5000, 5000, 5100, 5100]}, "64x48 frame"),
    ("/api/manual", {"frame": 0, "box": [100, 60, 120, 80]}, "wholly outside"),
    ("/api/manual", {"frame": 0, "box": [10, 10, 10**400, 30]}, "box"),
    ("/api/manual", {"frame": 7, "box": [10, 10, 30, 30]}, "frame"),
    ("/api/manual", {"frame": "0", "box": [10, 10, 30, 30]}, "frame"),
    ("/api/manual", {"frame": 0, "box": [10, 10, 30]}, "box"),
    ("/api/redact", {"ids": [10**400], "redact": True}, "ids"),
    ("/api/redact", {"ids": [0], "redact": "yes"}, "redact"),
    ("/api/ranges", {"ranges": [{"start": 0, "end": math.inf}]}, "ranges"),
    ("/api/ranges", {"ranges": [{"start": 0.5, "end": 0}]}, "ranges"),
    ("/api/audio", {"ranges": [[0, math.nan]]}, "ranges"),
    ("/api/audio", {"ranges": [[0, 1e39]]}, "ranges"),
    ("/api/audio", {"ranges": "all"}, "ranges"),
    ("/api/keyframe", {"track": 0, "frame": 0, "box": [math.inf, 0, 1, 1]}, "box"),
    ("/api/history", {"back": None}, "back"),
    ("/api/reviewed", {"reviewer": 5}, "reviewer"),
]


def test_review_api_refuses_bad_bodies_with_one_line(image: Path, tmp_path: Path) -> None:
    from test_review import call

    from veil.review.server.app import create_app
    from veil.review.server.session import ReviewSession

    plan = base_plan(image)
    plan["zones"] = [{"name": "corner", "polygon": [[40, 30], [64, 30], [64, 48], [40, 48]]}]
    path = tmp_path / "in.plan.json"
    path.write_text(json.dumps(plan))
    session = ReviewSession(path)
    try:
        app = create_app(session, "test-token-0123456789", [8765])
        # The page's "as exported" view paints the plan's zones (it was an HTTP 500 with any zone).
        shown = call(app, "GET", "/frame/0?view=exported")
        assert shown.status_code == 200, shown.text
        import cv2

        exported = cv2.imdecode(np.frombuffer(shown.content, np.uint8), cv2.IMREAD_COLOR)
        assert exported[34:46, 44:62].max() < 30 and exported[2:8, 2:8].min() > 30
        before = path.read_text()
        for route, body, field in REVIEW_BODIES:
            got = call(app, "POST", route, raw=json.dumps(body).encode(), headers={"content-type": "application/json"})
            assert 400 <= got.status_code < 500, (route, body, got.status_code, got.text)
            detail = got.json()["detail"]
            assert isinstance(detail, str) and "\n" not in detail and field in detail, (route, body, detail)
        deep = b'{"ids": ' + b"[" * 100_000 + b"]" * 100_000 + b', "redact": true}'
        got = call(app, "POST", "/api/redact", raw=deep, headers={"content-type": "application/json"})
        assert 400 <= got.status_code < 500
        assert path.read_text() == before  # nothing was applied
        ok = call(app, "POST", "/api/manual", body={"frame": 0, "box": [-20, 30, 12, 60]})
        assert ok.status_code == 200, ok.text
        assert load_plan(path).tracks[-1].boxes[0].box.tolist() == [-20, 30, 12, 60]
    finally:
        session.close()


# ----------------------------------------------------------------------------- property test

FUZZ_EXAMPLES = int(os.environ.get("VEIL_PLAN_EXAMPLES", "150"))

weird = st.one_of(
    st.just(math.nan),
    st.just(math.inf),
    st.just(-math.inf),
    st.just(10**400),
    st.just(-(10**40)),
    st.sampled_from([1e19, 1e39, -1e39, 2e8, 5000, -5000]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.text(max_size=4),
    st.booleans(),
    st.none(),
    st.lists(st.integers(0, 5), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


def maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, one time in 40 anything: a plan draws about fifteen of these,
    and about half the plans should be good enough to be painted and verified."""
    # Drawn by number: hypothesis folds repeated branches of one_of into one. Shrinking goes to
    # 0, the plausible value.
    return st.sampled_from(range(40)).flatmap(lambda i: weird if i == 7 else good)


def with_one_weird(values: list[Any], index: int, value: Any) -> list[Any]:
    return [value if i == index else v for i, v in enumerate(values)]


# Boxes anywhere from partly outside to inside the picture, tiny to large; sometimes one
# coordinate replaced by anything (NaN, 1e39, a 400-digit number, a string...).
good_box = st.builds(
    lambda x, y, w, h: [x, y, round(x + w, 1), round(y + h, 1)],
    st.floats(-20, W + 10).map(lambda v: round(v, 1)),
    st.floats(-20, H + 10).map(lambda v: round(v, 1)),
    st.floats(0.5, 40),
    st.floats(0.5, 40),
)
box = st.sampled_from(range(10)).flatmap(
    lambda i: st.builds(with_one_weird, good_box, st.integers(0, 3), weird) if i == 3 else maybe(good_box)
)
plan_box = st.fixed_dictionaries({"frame": maybe(st.just(0)), "box": box})
track = st.fixed_dictionaries(
    {"id": maybe(st.integers(0, 50)), "boxes": maybe(st.lists(plan_box, min_size=1, max_size=1))},
    optional={"label": maybe(st.sampled_from(["face", "plate", "text"])), "redact": maybe(st.booleans()),
              "source": maybe(st.sampled_from(["manual", "detector"]))},
)  # fmt: skip
point = st.tuples(maybe(st.integers(0, W)), maybe(st.integers(0, H))).map(list)
zone = st.fixed_dictionaries({"name": maybe(st.just("z")), "polygon": maybe(st.lists(point, min_size=3, max_size=4))})
plan_settings = st.fixed_dictionaries(
    {},
    optional={"margin": maybe(st.sampled_from([0.0, 0.1, 0.5])), "threshold": maybe(st.just(0.3)),
              "mask_color": maybe(st.sampled_from(["black", "#000000", "0,0,0"])), "mask": maybe(st.just("solid")),
              "classes": maybe(st.just(["faces"])), "preset": maybe(st.just("balanced"))},
)  # fmt: skip


def painted_boxes(plan: dict[str, Any]) -> list[tuple[int, int, int, int]]:
    """The in-frame part of every box the accepted plan masks, in whole pixels inside the box."""
    out = []
    for t in plan["tracks"]:
        if t.get("redact", True) is False:
            continue
        for b in t["boxes"]:
            x1, y1, x2, y2 = (float(v) for v in b["box"])
            # Inside the box by a pixel's rounding, clipped to the picture.
            a, c = max(0, math.ceil(x1)), min(W, math.floor(x2))
            r, d = max(0, math.ceil(y1)), min(H, math.floor(y2))
            if c > a and d > r:
                out.append((a, r, c, d))
    return out


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(
    tracks=maybe(st.lists(track, min_size=1, max_size=3)),
    zones=maybe(st.lists(zone, max_size=1)),
    plan_settings=maybe(plan_settings),
    margin=st.sampled_from(range(4)).flatmap(
        lambda i: st.sampled_from(["0", "0.3", *BAD_NUMBERS, "-1", "x"]) if i == 2 else st.none()
    ),
)
def test_generated_plans_are_refused_in_one_line_or_painted_and_verified(
    fuzz_dir: Path, tracks: Any, zones: Any, plan_settings: Any, margin: str | None
) -> None:
    image = fuzz_dir / "in.png"
    plan = base_plan(image)
    plan.update(tracks=tracks, zones=zones, settings=plan_settings)
    path = fuzz_dir / "in.plan.json"
    path.write_text(json.dumps(plan))
    out = fuzz_dir / "out.png"
    out.unlink(missing_ok=True)
    extra = [f"--margin={margin}"] if margin is not None else []
    code, lines = run(["render", str(path), "-o", str(out), "-q", "--overwrite", *extra])
    if code != 0:
        # Statistics (--hypothesis-show-statistics): what refused it, numbers and indices folded.
        event("refused: " + re.sub(r"\d+", "N", lines[0].split(".json: ")[-1] if lines else "")[:50])
        one_line_refusal(code, lines)
        assert not out.exists()
        code, lines = run(["verify", str(path), str(image), *extra])
        assert code != 0, "verify passed the unredacted input of a refused plan"
        assert len(lines) >= 1 and not any(TRACEBACK.search(line) for line in lines), lines
        return
    event("painted and verified")
    # Accepted: every box the plan masks is painted (solid black) wherever it is in the picture.
    img = np.asarray(Image.open(out).convert("RGB"))
    for a, r, c, d in painted_boxes(plan):
        assert (img[r:d, a:c] == 0).all(), (a, r, c, d, plan)
    assert run(["verify", str(path), str(out), "-q", *extra])[0] == 0
    painted = painted_boxes(plan)
    if painted or (plan.get("zones") or []):
        assert run(["verify", str(path), str(image), "-q", *extra])[0] == 1


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    make_image(folder / "in.png")
    return folder


def test_dump_keeps_the_layout_veil_reads_a_line_at_a_time(image: Path, tmp_path: Path) -> None:
    plan = copy.deepcopy(base_plan(image))
    path = tmp_path / "p.plan.json"
    path.write_text(dump(plan))
    assert path.read_text().splitlines()[0].endswith('"tracks": [')
    assert len(load_plan(path, spooled=True).tracks) == 1


@pytest.fixture(scope="module")
def review_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from veil.review.server.app import create_app
    from veil.review.server.session import ReviewSession

    folder = tmp_path_factory.mktemp("review")
    image = make_image(folder / "in.png")
    path = folder / "in.plan.json"
    path.write_text(json.dumps(base_plan(image)))
    session = ReviewSession(path)
    yield create_app(session, "test-token-0123456789", [8765]), path
    session.close()


review_value = st.one_of(weird, st.integers(-5, 70), st.floats(-100, 100))
review_body = st.one_of(
    st.fixed_dictionaries(
        {"frame": maybe(st.just(0)), "box": st.one_of(good_box, st.lists(review_value, max_size=5))}
    ).map(lambda b: ("/api/manual", b)),
    st.fixed_dictionaries({"ranges": st.lists(st.lists(review_value, max_size=3), max_size=2)}).map(
        lambda b: ("/api/audio", b)
    ),
    st.fixed_dictionaries(
        {"ranges": st.lists(st.fixed_dictionaries({"start": review_value, "end": review_value}), max_size=2)}
    ).map(lambda b: ("/api/ranges", b)),
    st.fixed_dictionaries({"ids": st.lists(review_value, max_size=2), "redact": maybe(st.booleans())}).map(
        lambda b: ("/api/redact", b)
    ),
)


@settings(max_examples=max(30, FUZZ_EXAMPLES // 3), deadline=None, suppress_health_check=list(HealthCheck))
@given(request=review_body)
def test_generated_review_edits_are_refused_in_one_line_or_saved_as_a_valid_plan(
    review_app: Any, request: tuple[str, dict[str, Any]]
) -> None:
    """An edit the page's API accepts leaves a plan that `veil render` reads; any other is a 4xx
    with one line. Never a 500."""
    from test_review import call

    app, path = review_app
    route, body = request
    got = call(app, "POST", route, raw=json.dumps(body).encode(), headers={"content-type": "application/json"})
    if got.status_code == 200:
        event("accepted")
        load_plan(path)  # raises PlanError if the page saved something veil then refuses
    else:
        event("refused")
        detail = got.json().get("detail")
        assert 400 <= got.status_code < 500 and isinstance(detail, str) and "\n" not in detail, (got, body)

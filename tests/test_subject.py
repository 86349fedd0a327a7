"""Subject-access requests (the plan's `show_only`): the output shows only the chosen tracks'
regions and masks everything else, bystanders the scan never found included; verify checks
the complement; `--require-review` refuses a plan nobody signed off."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from conftest import SAMPLE_IMAGE, decode_frames, rgb, run_cli
from PIL import Image

from veil.analysis.detectors import sha256_of
from veil.plan import content_digest, plan_from_json

SIZE = (320, 240)
PHOTO = 96
FRAMES = 16
# The subject walks along the top until frame SUBJECT_LAST, the bystander along the bottom all
# clip long; their paths never meet, so everything of the bystander must be masked.
SUBJECT_LAST = 11


def subject_box(i: int) -> tuple[int, int, int, int]:
    x = 8 + 12 * i
    return (x, 8, x + PHOTO, 8 + PHOTO)


def bystander_box(i: int) -> tuple[int, int, int, int]:
    x = SIZE[0] - PHOTO - 8 - 12 * i
    return (x, SIZE[1] - PHOTO - 8, x + PHOTO, SIZE[1] - 8)


def two_people(path: Path) -> Path:
    """Two moving copies of the astronaut photo on a textured background (so an unmasked
    background is not flat either)."""
    photo = np.asarray(Image.open(SAMPLE_IMAGE).convert("RGB").resize((PHOTO, PHOTO)))
    w, h = SIZE
    rng = np.random.default_rng(0)
    ground = rng.integers(60, 200, (h // 8, w // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        for i in range(FRAMES):
            img = ground.copy()
            if i <= SUBJECT_LAST:
                x1, y1, x2, y2 = subject_box(i)
                img[y1:y2, x1:x2] = photo
            x1, y1, x2, y2 = bystander_box(i)
            img[y1:y2, x1:x2] = photo[:, ::-1]
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = i
            vf.time_base = Fraction(1, 10)
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def subject_plan(clip: Path, path: Path, show_only: dict[str, Any] | None = None) -> Path:
    """A plan with one track, the subject's, kept visible: the scan "never found" the bystander."""
    track = {
        "id": 4,
        "label": "person",
        "redact": False,
        "source": "manual",
        "boxes": [{"frame": 0, "box": list(map(float, subject_box(0)))}]
        + [{"frame": SUBJECT_LAST, "box": list(map(float, subject_box(SUBJECT_LAST)))}],
    }
    plan = {
        "veil_plan": 1,
        "input": {
            "path": str(clip),
            "sha256": sha256_of(clip),
            "kind": "video",
            "frames": FRAMES,
            "width": SIZE[0],
            "height": SIZE[1],
        },
        "settings": {"mask": "solid", "margin": 0.0},
        "tracks": [track],
    }
    if show_only is not None:
        plan["show_only"] = show_only
    path.write_text(json.dumps(plan))
    return path


def inner(img: np.ndarray, box: tuple[int, int, int, int], pad: int = 3) -> np.ndarray:
    x1, y1, x2, y2 = box
    return img[y1 + pad : y2 - pad, x1 + pad : x2 - pad].astype(np.float32)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_people(tmp_path_factory.mktemp("subject") / "two.mp4")


def test_show_only_masks_a_bystander_the_scan_never_found(clip: Path, tmp_path: Path) -> None:
    plan = subject_plan(clip, tmp_path / "s.plan.json", {"tracks": [4], "margin": 0.1})
    out = tmp_path / "out.mp4"
    proc = run_cli("render", plan, "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr
    before, after = decode_frames(clip), decode_frames(out)
    assert len(after) == FRAMES
    for i in range(FRAMES):
        by = inner(after[i], bystander_box(i))
        assert by.mean() < 12 and by.std() < 4, f"frame {i}: the bystander shows (mean {by.mean():.0f})"
        if i <= SUBJECT_LAST:
            diff = np.abs(inner(after[i], subject_box(i)) - inner(before[i], subject_box(i))).mean()
            assert diff < 6, f"frame {i}: the subject is not shown as in the input ({diff:.1f})"
            # The background far from the subject is masked too (people the scan missed there).
            assert inner(after[i], (0, 150, 60, 230), 0).max() < 40
        else:
            assert after[i].astype(np.float32).mean() < 8, f"frame {i}: no subject, yet not masked whole"
    assert run_cli("verify", plan, out).returncode == 0


def test_verify_fails_an_output_that_shows_more_than_the_subject(clip: Path, tmp_path: Path) -> None:
    plain = subject_plan(clip, tmp_path / "plain.plan.json")
    out = tmp_path / "plain.mp4"
    assert run_cli("render", plain, "-o", out, "-q").returncode == 0
    asked = subject_plan(clip, tmp_path / "asked.plan.json", {"tracks": [4]})
    proc = run_cli("verify", asked, out)
    assert proc.returncode == 1
    assert "show_only" in proc.stderr and "not masked" in proc.stderr


def test_render_option_sets_show_only_and_blur_warns(clip: Path, tmp_path: Path) -> None:
    plain = subject_plan(clip, tmp_path / "plain.plan.json")
    out = tmp_path / "opt.mp4"
    proc = run_cli("render", plain, "-o", out, "--show-only", "4", "--show-margin", "0.1")
    assert proc.returncode == 0, proc.stderr
    frames = decode_frames(out)
    assert all(inner(f, bystander_box(i)).mean() < 12 for i, f in enumerate(frames))
    blurred = tmp_path / "blur.mp4"
    proc = run_cli("render", plain, "-o", blurred, "--show-only", "4", "--show-outside", "blur")
    assert proc.returncode == 0, proc.stderr
    assert "reversible" in proc.stderr
    before, after = decode_frames(clip), decode_frames(blurred)
    # Blurred, not filled: the bystander's region changed but is not black.
    by_before, by_after = inner(before[3], bystander_box(3)), inner(after[3], bystander_box(3))
    assert by_after.mean() > 30 and by_after.std() < 0.6 * by_before.std()
    bad = run_cli("render", plain, "-o", tmp_path / "x.mp4", "--show-only", "9")
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "no track 9" in bad.stderr, bad.stderr


@pytest.mark.parametrize(
    ("show_only", "words"),
    [
        ({"tracks": []}, "show_only.tracks"),
        ({"tracks": [5]}, "no track 5"),
        ({"tracks": [4], "margin": -1}, "show_only.margin"),
        ({"tracks": [4], "mask": "pixelate"}, "show_only.mask"),
    ],
)
def test_bad_show_only_is_one_line(clip: Path, tmp_path: Path, show_only: dict[str, Any], words: str) -> None:
    plan = subject_plan(clip, tmp_path / "b.plan.json", show_only)
    proc = run_cli("render", plan, "-o", tmp_path / "b.mp4")
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and words in errors[0], proc.stderr


def test_show_only_on_a_photo_is_exact(tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    Image.open(SAMPLE_IMAGE).convert("RGB").save(src)
    w, h = Image.open(src).size
    plan = {
        "veil_plan": 1,
        "input": {"path": str(src), "sha256": sha256_of(src), "kind": "image", "width": w, "height": h},
        "settings": {"mask": "solid"},
        "show_only": {"tracks": [0], "margin": 0},
        "tracks": [{"id": 0, "label": "person", "redact": False, "boxes": [{"frame": 0, "box": [100, 50, 300, 400]}]}],
    }
    (tmp_path / "a.plan.json").write_text(json.dumps(plan))
    assert run_cli("render", tmp_path / "a.plan.json", "-o", tmp_path / "o.png", "-q").returncode == 0
    before, after = rgb(src), rgb(tmp_path / "o.png")
    assert np.array_equal(after[50:400, 100:300], before[50:400, 100:300])
    outside = np.ones((h, w), bool)
    outside[50:400, 100:300] = False
    assert not after[outside].any(), "every pixel outside the subject is black"


def test_require_review_refuses_an_unsigned_or_changed_plan(clip: Path, tmp_path: Path) -> None:
    path = subject_plan(clip, tmp_path / "r.plan.json", {"tracks": [4]})
    proc = run_cli("render", path, "-o", tmp_path / "r.mp4", "--require-review")
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
    assert "nobody marked this plan reviewed" in proc.stderr
    assert not (tmp_path / "r.mp4").exists()
    data = json.loads(path.read_text())
    plan = plan_from_json(data)
    data["review"] = {"reviewed": {"by": "Ana", "at": "2026-12-05T16:00:00+00:00", "digest": content_digest(plan)}}
    path.write_text(json.dumps(data))
    report = tmp_path / "r.json"
    proc = run_cli("render", path, "-o", tmp_path / "r.mp4", "--require-review", "--report", report)
    assert proc.returncode == 0, proc.stderr
    signed = json.loads(report.read_text())["files"][0]["sign_off"]
    assert signed["signed_off"] and signed["by"] == "Ana"
    assert "Ana" in report.with_suffix(".html").read_text()
    # Any change after the sign-off (here: the subject's margin) voids it.
    data["show_only"]["margin"] = 0.5
    path.write_text(json.dumps(data))
    proc = run_cli("render", path, "-o", tmp_path / "r2.mp4", "--require-review")
    assert proc.returncode != 0 and "changed after Ana marked it reviewed" in proc.stderr


def render_request(clip: Path, tmp_path: Path, data: dict[str, Any], name: str = "s") -> tuple[Path, Path, Any, Any]:
    """`data` as a plan that shows only track 4 (margin 0.1), rendered: (the plan, the output,
    the input's frames, the output's frames)."""
    data["show_only"] = {"tracks": [4], "margin": 0.1}
    plan = tmp_path / f"{name}.plan.json"
    plan.write_text(json.dumps(data))
    out = tmp_path / f"{name}.mp4"
    proc = run_cli("render", plan, "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr
    return plan, out, decode_frames(clip), decode_frames(out)


def test_the_subjects_detected_face_shows_through_another_tracks_head_box(clip: Path, tmp_path: Path) -> None:
    """An unlinked head track over the subject's detected face (the subject's own head, which the
    scan did not link to them) does not hide the subject; another face over it stays masked."""
    data = json.loads(subject_plan(clip, tmp_path / "base.plan.json").read_text())

    def boxes(last: int, grow: int = 0) -> list[dict[str, Any]]:
        out = []
        for i in range(last + 1):
            x1, y1, x2, y2 = subject_box(i)
            out.append({"frame": i, "box": [x1 - grow, y1 - grow, x2 + grow, y2 + grow], "detected": True})
        return out

    data["tracks"] = [
        {"id": 4, "label": "face", "redact": False, "source": "detector", "boxes": boxes(SUBJECT_LAST)},
        {"id": 5, "label": "head", "redact": True, "source": "detector", "boxes": boxes(SUBJECT_LAST, 6)},
        {"id": 6, "label": "face", "redact": True, "source": "detector", "boxes": boxes(3, 2)},
    ]
    plan, out, before, after = render_request(clip, tmp_path, data)
    for i in range(SUBJECT_LAST + 1):
        diff = np.abs(inner(after[i], subject_box(i)) - inner(before[i], subject_box(i))).mean()
        if i <= 3:  # another face over the subject's: masked
            assert diff > 40, f"frame {i}: another face over the subject's shows ({diff:.1f})"
        else:  # only the head box: the subject's face shows
            assert diff < 6, f"frame {i}: the subject's face is hidden by another track's head box ({diff:.1f})"
        by = inner(after[i], bystander_box(i))
        assert by.mean() < 12, f"frame {i}: the bystander shows"
    assert run_cli("verify", plan, out).returncode == 0


def test_a_face_track_seen_once_on_the_subjects_face_does_not_hide_them(clip: Path, tmp_path: Path) -> None:
    """A second detection of the subject's own face, which the tracker kept as its own track and
    carried on as a still box (seen once at frame 5, inferred to frame 9), does not mask the
    subject walking through it (redact.duplicate_faces); the same track detected twice is another
    face and stays masked, and in both the bystander stays masked and verify passes."""
    base = json.loads(subject_plan(clip, tmp_path / "base.plan.json").read_text())
    subject = [{"frame": i, "box": list(map(float, subject_box(i))), "detected": True} for i in range(SUBJECT_LAST + 1)]
    x1, y1, x2, y2 = subject_box(5)
    still = [{"frame": i, "box": [x1 + 1.0, y1 + 1.0, x2 - 1.0, y2 - 1.0]} for i in range(5, 10)]
    for seen, hidden in ((1, False), (2, True)):
        twin = [dict(b, detected=True) if b["frame"] < 5 + seen else b for b in still]
        data = dict(base)
        data["tracks"] = [
            {"id": 4, "label": "face", "redact": False, "source": "detector", "boxes": subject},
            {"id": 6, "label": "face", "redact": True, "source": "detector", "boxes": twin},
        ]
        plan, out, before, after = render_request(clip, tmp_path, data, f"seen{seen}")
        for i in range(5, 10):
            diff = np.abs(inner(after[i], subject_box(i)) - inner(before[i], subject_box(i))).mean()
            if hidden:
                assert diff > 20, f"seen {seen}, frame {i}: another face over the subject's shows ({diff:.1f})"
            else:
                assert diff < 6, f"seen {seen}, frame {i}: a duplicate of the subject's face hides them ({diff:.1f})"
            assert inner(after[i], bystander_box(i)).mean() < 12, f"frame {i}: the bystander shows"
        assert run_cli("verify", plan, out).returncode == 0


def test_the_subjects_detected_head_shows_through_a_neighbours_head_box(clip: Path, tmp_path: Path) -> None:
    """A neighbour's head box (1.4 heads wide) reaching over the subject's head does not hide the
    subject's head where a detector found it (`ShownRegion.seen`: the head inside the subject's
    head box); the neighbour's own head beside it stays masked, and a frame where the subject's
    head box was only carried spares nothing."""
    from veil.analysis.detectors.people import head_within

    data = json.loads(subject_plan(clip, tmp_path / "base.plan.json").read_text())
    head = 64.0  # the subject's head: inside the photo, 16 px from its left and top

    def head_box(i: int, shift: float = 0.0) -> list[float]:
        x = subject_box(i)[0] + 16 + shift
        return [x - 0.2 * head, 24 - 0.1 * head, x + 1.2 * head, 24 + 1.4 * head]

    data["tracks"] = [
        {
            "id": 4,
            "label": "head",
            "redact": False,
            "source": "detector",
            "boxes": [{"frame": i, "box": head_box(i), "detected": i % 2 == 0} for i in range(SUBJECT_LAST + 1)],
        },
        {
            "id": 5,
            "label": "head",
            "redact": True,
            "source": "detector",
            "boxes": [{"frame": i, "box": head_box(i, 0.9 * head), "detected": True} for i in range(SUBJECT_LAST + 1)],
        },
    ]
    plan, out, before, after = render_request(clip, tmp_path, data)
    for i in range(SUBJECT_LAST + 1):
        x1, y1, x2, y2 = head_within(np.asarray([head_box(i)]))[0]
        # The subject's head where the neighbour's box lies over it.
        under = (round(x1 + 0.75 * head), round(y1), round(x2), round(y2))
        diff = np.abs(inner(after[i], under) - inner(before[i], under)).mean()
        if i % 2 == 0:
            assert diff < 6, f"frame {i}: the neighbour's head box hides the subject's detected head ({diff:.1f})"
        else:
            assert diff > 20, f"frame {i}: a carried head box spared its neighbour's mask ({diff:.1f})"
        # The neighbour's head, beside the subject's and inside the shown region.
        beside = (round(x2) + 1, round(y1), round(head_box(i)[2] + 0.1 * 1.4 * head), round(y2))
        assert inner(after[i], beside).mean() < 12, f"frame {i}: the neighbour's head shows"
        assert inner(after[i], bystander_box(i)).mean() < 12, f"frame {i}: the bystander shows"
    assert run_cli("verify", plan, out).returncode == 0
    # The subject's head track left redact: true is shown as a region, its own box still masked.
    data["tracks"][0]["redact"] = True
    plan, out, before, after = render_request(clip, tmp_path, data, "masked")
    for i in range(0, SUBJECT_LAST + 1, 2):
        x1, y1, x2, y2 = head_within(np.asarray([head_box(i)]))[0]
        own = (round(x1), round(y1), round(x2), round(y2))
        assert inner(after[i], own).mean() < 12, f"frame {i}: a masked head shows"
    assert run_cli("verify", plan, out).returncode == 0


def test_the_head_inside_a_head_box_is_where_heads_of_put_it() -> None:
    """`head_within` reads `heads_of`'s box backwards: one head wide at the box's middle, from the
    person box's top to one head below; a box of two heads side by side is not `one_head`."""
    from veil.analysis.detectors.people import HEADS_TALL, head_within, heads_of, one_head

    person = np.asarray([[100.0, 50.0, 150.0, 50.0 + 7 * 20.0]])  # 20 px heads, 7 heads tall
    assert 7 * 20.0 / HEADS_TALL == 20.0
    boxes = heads_of(person)
    np.testing.assert_allclose(head_within(boxes), [[115.0, 50.0, 135.0, 70.0]], atol=1e-4)
    assert one_head(boxes).tolist() == [True]
    two = boxes.copy()
    two[:, 2] += 20.0  # the box around two heads side by side
    assert one_head(two).tolist() == [False]

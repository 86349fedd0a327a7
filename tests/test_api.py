"""The public library API (docs/api.md), used only through `import veil`: the same results as
the command line, one-line `VeilError`s, and a frame-by-frame redactor that masks every face."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from conftest import SAMPLE_FACE, SAMPLE_IMAGE, clip_face_box, covered_fraction, make_video, rgb

import veil


def test_anonymize_a_photo(tmp_path: Path) -> None:
    before = SAMPLE_IMAGE.read_bytes()
    result = veil.anonymize(SAMPLE_IMAGE, tmp_path / "safe.png", preset="fast", report=tmp_path / "r.json")
    assert isinstance(result, veil.Result)
    assert result.output == tmp_path / "safe.png" and result.output.is_file()
    assert result.verified and result.regions >= 1 and result.frames == 1
    assert covered_fraction(rgb(SAMPLE_IMAGE), rgb(result.output), SAMPLE_FACE) > 0.9
    assert SAMPLE_IMAGE.read_bytes() == before  # the input is never modified
    assert (tmp_path / "r.json").is_file() and (tmp_path / "r.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json", "safe.png"]


def test_errors_are_one_line_veil_errors(tmp_path: Path) -> None:
    with pytest.raises(veil.VeilError, match="unknown mask"):
        veil.anonymize(SAMPLE_IMAGE, tmp_path / "a.png", mask="nope")
    with pytest.raises(veil.VeilError, match="margin"):
        veil.settings(margin=-1)
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(veil.VeilError) as info:
        veil.anonymize(SAMPLE_IMAGE, tmp_path / "a.png", preset="fast")
    assert "\n" not in str(info.value)
    assert (tmp_path / "a.png").read_bytes() == b"x"  # not overwritten without overwrite=True
    with pytest.raises(veil.VeilError, match="no such file"):
        veil.scan_to_plan(tmp_path / "missing.png")


def test_scan_then_render_equals_the_one_shot_run(tmp_path: Path) -> None:
    plan = veil.scan_to_plan(SAMPLE_IMAGE, tmp_path / "a.plan.json", preset="fast")
    assert plan == tmp_path / "a.plan.json" and plan.is_file()
    rendered = veil.render_plan(plan, tmp_path / "rendered.png", mask_color="white")
    assert rendered.verified and rendered.regions >= 1
    one_shot = veil.anonymize(SAMPLE_IMAGE, tmp_path / "one.png", preset="fast", mask_color="white")
    a, b = rgb(rendered.output), rgb(one_shot.output)
    assert a.shape == b.shape and np.array_equal(a, b)
    x, y, w, h = SAMPLE_FACE
    assert (a[y + h // 2, x + w // 2] == 255).all()  # the face is under a white mask


def test_stream_redactor_masks_every_frame(tmp_path: Path) -> None:
    frames = 20
    video = make_video(tmp_path / "clip.mp4", frames=frames)
    with av.open(str(video)) as c:
        images = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    copies = [im.copy() for im in images]
    out: list[np.ndarray] = []
    with veil.StreamRedactor(fps=10, lookahead=0.5, preset="fast") as redactor:
        for image in images:
            out.extend(redactor.push(image))
        assert len(out) < frames  # the look-ahead holds frames back ...
        out.extend(redactor.flush())  # ... until the end
        assert redactor.regions >= frames
    assert len(out) == frames
    for i, (before, after) in enumerate(zip(images, out, strict=True)):
        assert covered_fraction(before, after, clip_face_box(i, frames)) > 0.9, f"frame {i}"
    assert all(np.array_equal(a, b) for a, b in zip(images, copies, strict=True))  # inputs untouched


def test_stream_redactor_immediate(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", frames=6)
    with av.open(str(video)) as c:
        images = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    redactor = veil.StreamRedactor(lookahead=0, preset="fast")
    for i, image in enumerate(images):
        painted = redactor.redact(image)
        assert covered_fraction(image, painted, clip_face_box(i, len(images))) > 0.9
    with pytest.raises(veil.VeilError, match="uint8"):
        redactor.push(np.zeros((4, 4), np.float32))
    with pytest.raises(veil.VeilError, match="differs"):
        redactor.push(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(veil.VeilError, match="lookahead=0"):
        veil.StreamRedactor(fps=10, preset="fast").redact(images[0])

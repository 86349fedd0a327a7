"""`--redact faces,plates,text` end to end: each class reaches the output pixels and the report,
on images and on video (where the text network runs on a stride and the tracker fills in)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import SAMPLE_FACE, SAMPLE_IMAGE, SHARED, covered_fraction, decode_frames, report_frames, rgb
from PIL import Image

from veil.cli import main, parse_classes
from veil.errors import VeilError


def sign_scene(offset: int = 0) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The astronaut photo beside a white sign with black lettering; returns the text box (x, y, w, h)."""
    img = np.full((360, 960, 3), 90, np.uint8)
    img[:, :360] = np.asarray(Image.open(SAMPLE_IMAGE).convert("RGB").resize((360, 360)))
    x, y = 560 + offset, 140
    cv2.rectangle(img, (x, y), (x + 330, y + 70), (250, 250, 250), -1)
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 1.5, 4
    cv2.putText(img, "MAIN ST 42", (x + 12, y + 52), font, scale, (0, 0, 0), thick, cv2.LINE_AA)
    (tw, th), base = cv2.getTextSize("MAIN ST 42", font, scale, thick)
    return img, (x + 12, y + 52 - th, tw, th + base)


def test_parse_classes() -> None:
    assert parse_classes("faces") == ("faces",)
    assert parse_classes("all") == ("faces", "plates", "text", "heads")
    assert parse_classes("text,faces,text") == ("text", "faces")
    with pytest.raises(VeilError):
        parse_classes("faces,cars")


def test_text_is_redacted_only_when_asked(tmp_path: Path) -> None:
    img, sign = sign_scene()
    src = tmp_path / "sign.png"
    Image.fromarray(img).save(src)
    faces_only, everything = tmp_path / "faces.png", tmp_path / "all.png"
    report = tmp_path / "r.json"
    assert main([str(src), "-o", str(faces_only), "-q"]) == 0
    args = ["--redact", "all", "--mask-color", "#ff00ff", "--report", str(report), "-q"]
    assert main([str(src), "-o", str(everything), *args]) == 0
    assert covered_fraction(img, rgb(faces_only), sign) < 0.1
    assert covered_fraction(img, rgb(everything), sign) > 0.9
    labels = {b["label"] for f in report_frames(json.loads(report.read_text())["files"][0]) for b in f["boxes"]}
    assert {"face", "text"} <= labels
    assert json.loads(report.read_text())["settings"]["classes"] == ["faces", "plates", "text", "heads"]


def test_face_still_covered_with_other_classes(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    assert main([str(SAMPLE_IMAGE), "-o", str(out), "--redact", "faces,text", "-q"]) == 0
    assert covered_fraction(rgb(SAMPLE_IMAGE), rgb(out), SAMPLE_FACE) > 0.99


@pytest.mark.skipif(not (SHARED / "plates.json").is_file(), reason="../shared/data absent")
def test_real_plates_are_masked_whole(tmp_path: Path) -> None:
    entries = json.loads((SHARED / "plates.json").read_text())
    for entry in entries[:3]:
        out = tmp_path / (Path(entry["image"]).stem + ".png")
        assert main([str(SHARED / entry["image"]), "-o", str(out), "--redact", "plates", "-q"]) == 0
        before, after = rgb(SHARED / entry["image"]), rgb(out)
        for box in entry["boxes"]:
            assert covered_fraction(before, after, box) >= 0.95, entry["image"]


def test_text_covered_in_every_video_frame(tmp_path: Path) -> None:
    """The text network runs on a stride; the frames between must be covered by the tracker."""
    src = tmp_path / "sign.mp4"
    boxes = []
    with av.open(str(src), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height = 960, 360
        stream.pix_fmt = "yuv420p"
        for i in range(14):
            img, sign = sign_scene(offset=-4 * i)
            boxes.append(sign)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    out = tmp_path / "out.mp4"
    report = tmp_path / "r.json"
    assert main([str(src), "-o", str(out), "--redact", "text", "--report", str(report), "-q"]) == 0
    before, after = decode_frames(src), decode_frames(out)
    assert len(after) == 14
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        x, y, w, h = boxes[i]
        assert (b[y : y + h, x : x + w].max(axis=-1) < 40).mean() > 0.9, i
        assert a[y : y + h, x : x + w].max() > 200
    record = json.loads(report.read_text())
    tracks = record["files"][0]["tracks"]
    assert any(t["label"] == "text" and t["frames_filled"] > 0 for t in tracks)
    detectors = {d["name"]: d for d in record["settings"]["detectors"]}
    assert detectors["text"]["video_stride"] > 1

"""Shared test helpers: real data from ../shared/data (skipped when absent) and small media
that the tests make themselves."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SAMPLE_IMAGE = REPO / "samples" / "astronaut.png"
SAMPLE_VIDEO = REPO / "build" / "samples" / "astronaut_pan.mp4"
# The astronaut's face in samples/astronaut.png, annotated by hand: x, y, w, h.
SAMPLE_FACE = (190, 70, 75, 100)

needs_shared = pytest.mark.skipif(not (SHARED / "faces.json").is_file(), reason="../shared/data absent")


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own veil work directory (cache.py), inherited by the CLI it starts:
    nothing is written to the user's ~/.cache, and a test sees only its own leftovers."""
    path = tmp_path_factory.mktemp("veil-cache")
    monkeypatch.setenv("VEIL_CACHE_DIR", str(path))
    return path


def sigint_as_ctrl_c() -> None:
    """`preexec_fn` for a veil started to be interrupted: a child inherits an ignored SIGINT when
    the tests run as a background job (`cmd &` in a script ignores it), and Python then never
    raises KeyboardInterrupt. The default disposition, set before exec, lets Python install its
    handler, as in a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str | Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run `python -m veil` as a user would, in a fresh process."""
    proc = subprocess.run([sys.executable, "-m", "veil", *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"veil exited {proc.returncode}: {proc.stderr}")
    return proc


def load_annotations(name: str = "faces.json") -> list[dict[str, Any]]:
    return json.loads((SHARED / name).read_text())


def covered_fraction(before: np.ndarray, after: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """Share of a box's pixels [x, y, w, h] that changed between two images."""
    x, y, w, h = box
    x1, y1 = max(0, int(round(x))), max(0, int(round(y)))
    x2, y2 = min(before.shape[1], int(round(x + w))), min(before.shape[0], int(round(y + h)))
    if x2 <= x1 or y2 <= y1:
        return 1.0
    diff = np.any(before[y1:y2, x1:x2] != after[y1:y2, x1:x2], axis=-1)
    return float(diff.mean())


def rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def encode_frames(
    path: Path, frames: Iterable[np.ndarray], fps: int = 10, options: dict[str, str] | None = None
) -> Path:
    """RGB frames (all one size) as an H.264 clip at `fps`, frame i at time i / fps."""
    with av.open(str(path), "w") as container:
        stream = None
        for i, img in enumerate(frames):
            if stream is None:
                stream = container.add_stream("libx264", rate=fps)
                stream.width, stream.height, stream.pix_fmt = img.shape[1], img.shape[0], "yuv420p"
                if options:
                    stream.options = dict(options)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for packet in stream.encode(vf):
                container.mux(packet)
        assert stream is not None, "no frames to encode"
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def make_video(
    path: Path,
    frames: int = 20,
    size: tuple[int, int] = (320, 240),
    fps: int = 10,
    audio: bool = False,
    rotation: int = 0,
    face: bool = True,
) -> Path:
    """A small H.264 clip; with `face`, the sample astronaut photo moves across a dark scene."""
    photo = np.asarray(Image.open(SAMPLE_IMAGE).convert("RGB").resize((160, 160)))
    w, h = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        astream = None
        if audio:
            astream = container.add_stream("aac", rate=44100)
            astream.layout = "mono"
        for i in range(frames):
            img = np.full((h, w, 3), 40, np.uint8)
            if face:
                x = int((w - 160) * i / max(1, frames - 1))
                img[(h - 160) // 2 : (h - 160) // 2 + 160, x : x + 160] = photo
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = i
            vf.time_base = Fraction(1, fps)
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        if astream is not None:
            n = int(44100 * frames / fps)
            pcm = (0.1 * np.sin(np.arange(n) * 2 * np.pi * 440 / 44100) * 32767).astype(np.int16)
            for start in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(pcm[start : start + 1024].reshape(1, -1), format="s16", layout="mono")
                af.sample_rate = 44100
                af.pts = start
                af.time_base = Fraction(1, 44100)
                for packet in astream.encode(af):
                    container.mux(packet)
            for packet in astream.encode(None):
                container.mux(packet)
    return path


def probe(path: Path) -> dict[str, Any]:
    """Frame count, timestamps (s), rotation and stream kinds, from decoding the whole file."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        times, rotation = [], 0
        for frame in c.decode(v):
            times.append(float(frame.pts * frame.time_base))
            rotation = frame.rotation
        kinds = [s.type for s in c.streams]
        audio = [(s.codec_context.name, s.codec_context.sample_rate) for s in c.streams.audio]
        duration = c.duration / av.time_base if c.duration else None
        rate = v.average_rate
    return {
        "frames": len(times),
        "times": times,
        "rotation": rotation,
        "kinds": kinds,
        "audio": audio,
        "duration": duration,
        "rate": rate,
    }


def decode_frames(path: Path) -> list[np.ndarray]:
    """Every frame as displayed (display rotation applied)."""
    out = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            img = frame.to_ndarray(format="rgb24")
            if frame.rotation:
                img = np.rot90(img, k=frame.rotation // 90)
            out.append(img)
    return out


def clip_face_box(i: int, frames: int, size: tuple[int, int] = (320, 240)) -> tuple[int, int, int, int]:
    """The astronaut's face (x, y, w, h) in frame i of a `make_video` clip (photo scaled to 160 px)."""
    w, h = size
    x = int((w - 160) * i / max(1, frames - 1))
    s = 160 / 512
    fx, fy, fw, fh = SAMPLE_FACE
    return (x + int(fx * s), (h - 160) // 2 + int(fy * s), int(fw * s), int(fh * s))


def report_frames(file_record: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-frame boxes of one file of a JSON report, read back from the plan it embeds:
    [{"frame": i, "boxes": [{"label", "box", "score", "filled", "mask"}]}] for every frame."""
    from veil.plan import FrameBoxes, plan_from_json
    from veil.render.masks import create as create_mask
    from veil.render.redact import Redactor

    plan = plan_from_json(file_record["plan_content"])
    redactor = Redactor(create_mask("solid"), float(plan.settings.get("margin") or 0.0))
    boxes = FrameBoxes(plan)
    w, h = plan.input["width"], plan.input["height"]
    out = []
    for i in range(plan.frames):
        masked, _ = boxes.at(i)
        painted = redactor.mask_boxes(masked, w, h)
        out.append(
            {
                "frame": i,
                "boxes": [
                    {
                        "label": str(masked.label[k]),
                        "box": [float(v) for v in masked.xyxy[k]],
                        "score": float(masked.confidence[k]),
                        "filled": bool(masked.filled[k]),
                        "mask": [int(v) for v in painted[k]],
                    }
                    for k in range(len(masked))
                ],
            }
        )
    return out

"""Every option on every runner: the one-shot run (-j 1), segments (-j 2 with short segments),
Ray, scan then render, the review page's render through its API, and live on a file. Each cell
looks at the output itself (zone pixels, frames and duration, audio samples inside and outside
the muted span, masks where the face is, the second opinion's count), or checks that the runner
refuses the option with one line. Before the frame path was shared, segments dropped zones,
audio edits and time ranges and still said "verified"."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from conftest import SAMPLE_IMAGE, clip_face_box, decode_frames, probe, run_cli
from PIL import Image

FPS = 10
FRAMES = 40  # 4 s
SIZE = (320, 240)
START_S, END_S = 1.0, 3.0  # --start/--end: frames 10..29 of the input
SPAN = int((END_S - START_S) * FPS)
ZONE = (0, 0, 96, 64)  # x1, y1, x2, y2: a corner the face never enters
MUTE = (0.5, 1.0)  # --audio-ranges, seconds
RATE = 16000


def make_clip(path: Path, size: tuple[int, int] = SIZE, pix_fmt: str = "yuv420p") -> Path:
    """make_video's scene (the astronaut crossing a dark room) with a keyframe every 5 frames, so
    a 1 s segment is possible, and a steady 440 Hz tone as its audio."""
    photo = np.asarray(Image.open(SAMPLE_IMAGE).convert("RGB").resize((160, 160)))
    w, h = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        stream.options = {"x264-params": "keyint=5:min-keyint=5:scenecut=0"}
        audio = container.add_stream("pcm_s16le", rate=RATE) if path.suffix == ".mkv" else None
        if audio is None:
            audio = container.add_stream("aac", rate=RATE)
        audio.layout = "mono"
        for i in range(FRAMES):
            img = np.full((h, w, 3), 40, np.uint8)
            x = int((w - 160) * i / (FRAMES - 1))
            img[(h - 160) // 2 : (h - 160) // 2 + 160, x : x + 160] = photo
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, FPS)
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        n = RATE * FRAMES // FPS
        pcm = (0.3 * np.sin(np.arange(n) * 2 * np.pi * 440 / RATE) * 32767).astype(np.int16)
        for start in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(pcm[start : start + 1024].reshape(1, -1), format="s16", layout="mono")
            af.sample_rate, af.pts, af.time_base = RATE, start, Fraction(1, RATE)
            for packet in audio.encode(af):
                container.mux(packet)
        for packet in audio.encode(None):
            container.mux(packet)
    return path


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        chunks = [f.to_ndarray().astype(np.float64).reshape(f.to_ndarray().shape[0], -1)[0] for f in c.decode(stream)]
        rate = stream.codec_context.sample_rate
    data = np.concatenate(chunks)
    if data.dtype.kind != "f" and np.abs(data).max() > 2:
        data = data / 32768.0
    return data, rate


def loudness(samples: np.ndarray, rate: int, start: float, end: float) -> float:
    part = samples[int(start * rate) : int(end * rate)]
    return float(np.sqrt(np.mean(part**2))) if len(part) else 0.0


def dominant_hz(samples: np.ndarray, rate: int, start: float, end: float) -> float:
    part = samples[int(start * rate) : int(end * rate)]
    spectrum = np.abs(np.fft.rfft(part * np.hanning(len(part))))
    return float(np.fft.rfftfreq(len(part), 1 / rate)[int(np.argmax(spectrum))])


# ----------------------------------------------------------------------------- runners


def oneshot(src: Path, out: Path, opts: list[str], scan_opts: list[str]) -> subprocess.CompletedProcess[str]:
    return run_cli(src, "-o", out, "-j", "1", *scan_opts, *opts, "--report", out.with_suffix(".json"))


def segmented(src: Path, out: Path, opts: list[str], scan_opts: list[str]) -> subprocess.CompletedProcess[str]:
    return run_cli(src, "-o", out, "-j", "2", "--segment-seconds", "0.5", *scan_opts, *opts,
                   "--report", out.with_suffix(".json"))  # fmt: skip


def ray(src: Path, out: Path, opts: list[str], scan_opts: list[str]) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("ray")
    return run_cli(src, "-o", out, "--engine", "ray", "-j", "2", "--segment-seconds", "0.5", *scan_opts, *opts,
                   "--report", out.with_suffix(".json"))  # fmt: skip


def scan_render(src: Path, out: Path, opts: list[str], scan_opts: list[str]) -> subprocess.CompletedProcess[str]:
    plan = out.with_suffix(".plan.json")
    scanned = run_cli("scan", src, "-o", plan, *scan_opts)
    if scanned.returncode != 0:
        return scanned
    return run_cli("render", plan, "-o", out, "--second-opinion", *opts, "--report", out.with_suffix(".json"))


RUNNERS = {"oneshot": oneshot, "segmented": segmented, "ray": ray, "scan-render": scan_render}

# (name, analysis options, painting options): every option of the matrix, in three runs a runner.
REQUEST = ["--start", str(START_S), "--end", str(END_S)]
CASES = {
    "zones-range-mute": (["--zones", "ZONES", *REQUEST, "--redact", "faces,heads"],
                         ["--audio", "mute", "--audio-ranges", f"{MUTE[0]}-{MUTE[1]}"]),
    "blur-margin-bleep": (["--redact", "faces,plates,text"], ["--mask", "blur", "--margin", "0.3", "--audio", "bleep"]),
    "pixelate-disguise": (["--redact", "all"], ["--mask", "pixelate", "--audio", "disguise"]),
}  # fmt: skip


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("matrix")
    zones = root / "zones.json"
    x1, y1, x2, y2 = ZONE
    zones.write_text(json.dumps({"zones": [{"name": "window", "polygon": [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]}]}))
    src = make_clip(root / "clip.mp4")
    return {"root": root, "src": src, "zones": zones, "frames": decode_frames(src), "audio": read_audio(src)}


def _options(opts: list[str], zones: Path) -> list[str]:
    return [str(zones) if o == "ZONES" else o for o in opts]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("runner", list(RUNNERS))
def test_every_option_reaches_the_output(media: dict[str, Any], runner: str, case: str, tmp_path: Path) -> None:
    scan_opts, opts = (_options(o, media["zones"]) for o in CASES[case])
    out = tmp_path / "out.mp4"
    proc = RUNNERS[runner](media["src"], out, opts, scan_opts)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    (record,) = report["files"]
    assert record["verify"]["ok"]
    if runner in ("segmented", "ray"):
        assert record.get("segments", 0) >= 2, "the runner did not cut the video: the cell tests nothing"
    ranged = "--start" in scan_opts
    first = int(START_S * FPS) if ranged else 0
    expected = SPAN if ranged else FRAMES
    info = probe(out)
    assert info["frames"] == expected
    assert info["times"][0] == pytest.approx(0.0, abs=1e-6)
    assert info["times"][-1] == pytest.approx((expected - 1) / FPS, abs=1e-3)
    frames = decode_frames(out)
    originals = media["frames"][first : first + expected]
    # Masks where the face is, in every frame.
    for i, (img, orig) in enumerate(zip(frames, originals, strict=True)):
        x, y, w, h = clip_face_box(first + i, FRAMES)
        face, before = img[y : y + h, x : x + w].astype(int), orig[y : y + h, x : x + w].astype(int)
        if "--mask" not in opts:
            assert float((face.max(axis=-1) < 48).mean()) > 0.9, f"frame {i}: face not masked"
        else:
            assert np.abs(face - before).mean() > 8, f"frame {i}: face unchanged"
    if "--zones" in scan_opts:
        x1, y1, x2, y2 = ZONE
        for i, img in enumerate(frames):
            assert img[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].max() < 24, f"frame {i}: zone not masked"
    # Audio: as long as the video, edited as asked, untouched elsewhere.
    samples, rate = read_audio(out)
    assert len(samples) / rate == pytest.approx(expected / FPS, abs=0.1)
    before, in_rate = media["audio"]
    level = loudness(before, in_rate, 0.5, 3.5)
    if "mute" in opts:
        a, b = MUTE
        assert loudness(samples, rate, a + 0.05, b - 0.05) == 0.0, "the muted span is not silent"
        assert loudness(samples, rate, b + 0.1, expected / FPS - 0.1) > 0.5 * level, "audio outside the span lost"
        assert loudness(samples, rate, 0.05, a - 0.1) > 0.5 * level
    elif "bleep" in opts:
        assert dominant_hz(samples, rate, 0.5, 1.5) == pytest.approx(1000, abs=20), "no bleep tone"
    elif "disguise" in opts:
        assert loudness(samples, rate, 0.5, 1.5) > 0.01
        assert np.abs(samples[: len(before)] - before[: len(samples)]).mean() > 0.01, "audio not disguised"
    # Second opinion: the output was looked at by a second detector.
    assert record["counts"]["second_opinion_frames_checked"] > 0


def test_review_render_honours_zones_range_and_audio(media: dict[str, Any], tmp_path: Path) -> None:
    """The review page's render, through its API: the plan's zones and time range, and audio
    ranges set on the page."""
    from test_review import call

    from veil.review.server.app import create_app
    from veil.review.server.session import ReviewSession

    src = tmp_path / "clip.mp4"
    src.write_bytes(media["src"].read_bytes())
    plan = tmp_path / "clip.plan.json"
    scan_opts = _options(CASES["zones-range-mute"][0], media["zones"])
    run_cli("scan", src, "-o", plan, *scan_opts, check=True)
    session = ReviewSession(plan)
    app = create_app(session, "test-token-0123456789", [8765])
    try:
        assert call(app, "GET", "/frame/3?view=exported").status_code == 200
        assert call(app, "POST", "/api/audio", body={"ranges": [list(MUTE)]}).status_code == 200
        assert call(app, "POST", "/api/render", body={}).status_code == 202
        deadline = time.monotonic() + 120
        while session.render_state["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert session.render_state["state"] == "done", session.render_state
    finally:
        session.close()
    out = tmp_path / "clip_veiled.mp4"
    assert probe(out)["frames"] == SPAN
    x1, y1, x2, y2 = ZONE
    assert all(img[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].max() < 24 for img in decode_frames(out))
    samples, rate = read_audio(out)
    assert loudness(samples, rate, MUTE[0] + 0.05, MUTE[1] - 0.05) == 0.0
    assert loudness(samples, rate, MUTE[1] + 0.1, SPAN / FPS - 0.1) > 0.05


def test_allow_crop_on_every_file_runner(tmp_path: Path) -> None:
    """An odd-sized video: with --allow-crop every runner writes 4:2:0 one pixel smaller."""
    src = make_clip(tmp_path / "odd.mp4", size=(321, 241), pix_fmt="yuv444p")
    for name, runner in RUNNERS.items():
        if name == "ray":
            continue  # the same worker code as segments; Ray's start-up is paid once above
        out = tmp_path / f"{name}.mp4"
        proc = runner(src, out, ["--allow-crop"], [])
        assert proc.returncode == 0, (name, proc.stderr)
        with av.open(str(out)) as c:
            ctx = c.streams.video[0].codec_context
            assert (ctx.width, ctx.height, ctx.pix_fmt) == (320, 240, "yuv420p"), name


@pytest.mark.parametrize(
    "option",
    [
        ["--start", "1"],
        ["--end", "2"],
        ["--audio", "mute"],
        ["--audio-ranges", "1-2"],
        ["--allow-crop"],
        ["--audio-pii", "mute"],
        ["--transcript", "words.json"],
    ],  # fmt: skip
)
def test_live_refuses_what_it_cannot_do_in_one_line(tmp_path: Path, option: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "veil", "live", "in.mp4", str(tmp_path / "o.mp4"), "--realtime", *option],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert option[0] in proc.stderr.strip().splitlines()[-1]


def test_live_on_a_file_masks_zones_and_faces(media: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "live.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "veil", "live", str(media["src"]), str(out), "--realtime", "--zones",
         str(media["zones"]), "--redact", "faces,text", "--log", str(tmp_path / "log.jsonl"), "-q"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    frames = decode_frames(out)
    assert len(frames) >= FRAMES * 0.8
    x1, y1, x2, y2 = ZONE
    for i, img in enumerate(frames):
        assert img[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].max() < 24, f"live frame {i}: zone not masked"

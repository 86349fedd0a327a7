"""One video's stages run in threads (runners/stages.py): the encoder gets exactly the frames,
timestamps and audio the serial run (VEIL_SERIAL=1) gives it, and a failure in any stage ends
the run with the usual one-line error, nothing written and no thread left behind."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import SAMPLE_IMAGE, make_video
from PIL import Image

import veil.runners.stages as stages
from veil.analysis.detect import FrameDetector
from veil.cli import main
from veil.config import Settings
from veil.media.sink import VideoSink
from veil.media.source import AudioPacket, VideoSource
from veil.render.paint import FrameRenderer
from veil.runners.pipeline import Pipeline
from veil.runners.segments import plan_segments, redact_segment
from veil.types import Frame


class Encoded:
    """Everything handed to the encoder and muxer, in order: each frame's pixels and timestamp,
    each audio packet's bytes and timestamps. That is what veil makes; libx264 itself is not
    byte-reproducible from run to run (the same frames, encoded 12 times in a row by one thread
    with threads=1, gave two different files), so output bytes would test the encoder."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.items: list[tuple[object, ...]] = []
        self.painted_in: set[str] = set()
        write_frame, write_audio, paint = VideoSink.write_frame, VideoSink.write_audio, FrameRenderer.paint
        record = self

        def frame(sink: VideoSink, item: Frame) -> None:
            digest = hashlib.sha256(item.image.tobytes()).hexdigest()
            record.items.append(("frame", item.index, item.pts, item.image.shape, digest))
            write_frame(sink, item)

        def audio(sink: VideoSink, item: AudioPacket) -> None:
            packet = item.packet
            record.items.append(("audio", item.stream_index, packet.pts, packet.dts, bytes(packet)))
            write_audio(sink, item)

        def painted(renderer: FrameRenderer, *args: object, **kwargs: object) -> None:
            record.painted_in.add(threading.current_thread().name)
            paint(renderer, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(VideoSink, "write_frame", frame)
        monkeypatch.setattr(VideoSink, "write_audio", audio)
        monkeypatch.setattr(FrameRenderer, "paint", painted)

    def take(self) -> tuple[list[tuple[object, ...]], set[str]]:
        out = (self.items, self.painted_in)
        self.items, self.painted_in = [], set()
        return out


def both_ways(monkeypatch: pytest.MonkeyPatch, run: Callable[[str], None]) -> None:
    """`run(mode)` serially and threaded: the same frames and audio reach the encoder."""
    encoded = Encoded(monkeypatch)
    got = {}
    for mode in ("serial", "threaded"):
        if mode == "serial":
            monkeypatch.setenv("VEIL_SERIAL", "1")
        else:
            monkeypatch.delenv("VEIL_SERIAL", raising=False)
        run(mode)
        got[mode] = encoded.take()
        assert stages.threads_alive() == []
    (serial, serial_threads), (threaded, threaded_threads) = got["serial"], got["threaded"]
    # The serial run paints in the calling thread, the threaded one in the paint stage's.
    assert serial_threads == {"MainThread"} and threaded_threads == {"veil-stage-paint"}
    assert sum(item[0] == "frame" for item in serial) >= 10
    assert serial == threaded


@pytest.mark.parametrize(
    "options",
    [
        pytest.param((), id="balanced"),
        pytest.param(("--preset", "fast", "--mask", "blur", "--start", "0.3", "--end", "1.6"), id="fast-blur-trimmed"),
    ],
)
def test_threaded_run_encodes_exactly_what_the_serial_run_encodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: tuple[str, ...]
) -> None:
    # A face in every frame, and audio (which passes through every stage).
    src = make_video(tmp_path / "in.mp4", frames=20, audio=True)
    plans = {}

    def run(mode: str) -> None:
        out, plan = tmp_path / f"{mode}.mp4", tmp_path / f"{mode}.plan.json"
        assert main([str(src), "-o", str(out), "--plan", str(plan), "-q", "-j", "1", *options]) == 0
        plans[mode] = json.loads(plan.read_text())

    both_ways(monkeypatch, run)
    for plan in plans.values():
        plan.pop("created", None)
    assert plans["serial"] == plans["threaded"]


def test_threaded_segments_encode_exactly_what_serial_segments_encode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A segment runs the same loop, stopping at its last frame while decoding runs ahead."""
    src = tmp_path / "in.mp4"
    make_keyed_video(src, frames=30)
    settings = Settings(preset="fast", lookahead_s=0.5, overwrite=True)
    pipeline = Pipeline(settings)
    found = plan_segments(src, settings, 1.0, pipeline.detect.max_stride)
    assert found is not None and len(found[1]) >= 2
    sha = hashlib.sha256(src.read_bytes()).hexdigest()

    def run(mode: str) -> None:
        for segment in found[1]:
            out, plan = tmp_path / f"{mode}{segment.index}.mp4", tmp_path / f"{mode}{segment.index}.plan.json"
            redact_segment(pipeline, src, sha, segment, out, plan)

    try:
        both_ways(monkeypatch, run)
    finally:
        pipeline.close()


def test_threaded_scan_writes_the_serial_scan_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """veil scan: decoding and analysis run ahead of the review's second opinion."""
    src = make_video(tmp_path / "in.mp4", frames=20)
    plans = {}
    for mode in ("serial", "threaded"):
        if mode == "serial":
            monkeypatch.setenv("VEIL_SERIAL", "1")
        else:
            monkeypatch.delenv("VEIL_SERIAL", raising=False)
        plan = tmp_path / f"{mode}.plan.json"
        assert main(["scan", str(src), "-o", str(plan), "-q", "--preset", "fast"]) == 0
        plans[mode] = json.loads(plan.read_text())
        plans[mode].pop("created", None)
        assert stages.threads_alive() == []
    assert plans["serial"]["tracks"] and plans["serial"] == plans["threaded"]


def make_keyed_video(path: Path, frames: int, fps: int = 10) -> None:
    """make_video's scene with a keyframe every 5 frames, so it can be cut into segments."""
    photo = np.asarray(Image.open(SAMPLE_IMAGE).convert("RGB").resize((160, 160)))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"x264-params": "keyint=5:min-keyint=5:scenecut=0"}
        for i in range(frames):
            img = np.full((240, 320, 3), 40, np.uint8)
            x = int(160 * i / (frames - 1))
            img[40:200, x : x + 160] = photo
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def fail_at(monkeypatch: pytest.MonkeyPatch, cls: type, name: str, after: int) -> None:
    """Make `cls.name` raise on its `after`-th call."""
    real = getattr(cls, name)
    calls = {"n": 0}

    def flaky(self: object, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == after:
            raise RuntimeError(f"{name} broke")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, flaky)


@pytest.mark.parametrize(
    ("stage", "cls", "name"),
    [
        ("decode", VideoSource, "_to_frame"),
        ("people", FrameDetector, "start"),
        ("detect", FrameDetector, "finish"),
        ("paint", FrameRenderer, "paint"),
        ("encode", VideoSink, "write_frame"),
    ],
)
def test_a_failing_stage_ends_the_run_cleanly(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stage: str,
    cls: type,
    name: str,
) -> None:
    monkeypatch.delenv("VEIL_SERIAL", raising=False)
    src = make_video(tmp_path / "in.mp4", frames=20, audio=True)
    fail_at(monkeypatch, cls, name, after=5)
    before = set(threading.enumerate())
    out = tmp_path / "out.mp4"
    capsys.readouterr()
    assert main([str(src), "-o", str(out), "-q", "-j", "1", "--preset", "fast"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1, errors
    assert errors[0].startswith("veil: error:") and f"RuntimeError: {name} broke" in errors[0], errors
    assert "Traceback" not in errors[0]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]  # no temporary output left
    assert stages.threads_alive() == []
    assert set(threading.enumerate()) <= before


def test_an_early_stop_stops_the_stages_before_it() -> None:
    """A consumer that stops early (a segment's last frame) ends every thread upstream."""
    produced = []

    def endless() -> object:
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    def doubled() -> object:
        upstream = stages.prefetch(endless, "veil-stage-test-a")
        try:
            for i in upstream:
                yield 2 * i
        finally:
            upstream.close()

    items = stages.prefetch(doubled, "veil-stage-test-b")
    got = [next(items) for _ in range(5)]
    items.close()
    assert got == [0, 2, 4, 6, 8]
    assert stages.threads_alive() == []
    # Bounded: the stages ran at most a few queues' worth ahead of what was taken.
    assert len(produced) <= 5 + 3 * (stages.QUEUE_ITEMS + 1)

"""Voices: --audio mute/bleep/disguise on audio-only files and on video, and keep copying packets."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import SHARED, make_video, probe, run_cli

from veil.errors import VeilError
from veil.media.audio import AudioEdit, Editor, parse_ranges

SPEECH = SHARED / "voices" / "speakers" / "1688" / "1688-142285-0000.flac"
needs_speech = pytest.mark.skipif(not SPEECH.is_file(), reason="../shared/data/voices absent")


def write_audio(path: Path, samples: np.ndarray, rate: int, codec: str = "pcm_s16le") -> Path:
    """(channels, n) int16 samples into a lossless file."""
    layout = {1: "mono", 2: "stereo"}[samples.shape[0]]
    with av.open(str(path), "w") as c:
        stream = c.add_stream(codec, rate=rate)
        stream.layout = layout
        for start in range(0, samples.shape[1], 4096):
            chunk = np.ascontiguousarray(samples[:, start : start + 4096].T).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                c.mux(packet)
        for packet in stream.encode(None):
            c.mux(packet)
    return path


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Every decoded sample as (channels, n) float in [-1, 1], and the sample rate."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        rate = stream.codec_context.sample_rate
        blocks = []
        for frame in c.decode(stream):
            data = frame.to_ndarray()
            if not frame.format.is_planar:
                data = data.reshape(-1, frame.layout.nb_channels).T
            if np.issubdtype(data.dtype, np.integer):
                data = data / 32768.0
            blocks.append(data.astype(np.float64))
    return np.concatenate(blocks, axis=1), rate


def noise_signal(seconds: float, rate: int, channels: int) -> np.ndarray:
    """Loud band-limited noise: every sample non-zero, so a zero can only come from muting."""
    rng = np.random.default_rng(7)
    x = rng.integers(1000, 12000, size=(channels, int(seconds * rate))) * rng.choice([-1, 1], (channels, 1))
    return x.astype(np.int16)


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


# ----------------------------------------------------------------------------- ranges


def test_parse_ranges_accepts_clock_times_and_merges() -> None:
    assert parse_ranges("00:01:02.5-00:01:05, 90-95") == [(62.5, 65.0), (90.0, 95.0)]
    assert parse_ranges("1:00-1:30,1:20-2:00") == [(60.0, 120.0)]
    assert parse_ranges(".5-1") == [(0.5, 1.0)]
    for bad in ["5-3", "1-2-3", "a-b", "00:61-00:62", "", "1:2:3:4-5"]:
        with pytest.raises(VeilError):
            parse_ranges(bad)


def test_edit_round_trips_through_json() -> None:
    edit = AudioEdit("bleep", [(3.0, 4.0), (1.0, 2.0)])
    assert AudioEdit.from_json(json.loads(json.dumps(edit.to_json()))) == edit
    assert edit.ranges == [(1.0, 2.0), (3.0, 4.0)]
    assert "alpha" not in json.dumps(AudioEdit("disguise").describe())


@pytest.mark.parametrize(
    "argv",
    [
        ["--audio", "mute", "--audio-ranges", "5-2"],  # ends before it starts
        ["--audio-ranges", "1-2"],  # ranges without a mode
        ["--audio", "mute", "--no-audio"],
    ],
)
def test_bad_audio_options_are_a_one_line_error(tmp_path: Path, argv: list[str]) -> None:
    src = write_audio(tmp_path / "a.wav", noise_signal(0.2, 8000, 1), 8000)
    proc = run_cli(src, "-o", tmp_path / "out.wav", *argv)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("veil: error: ")
    assert not (tmp_path / "out.wav").exists()


# ----------------------------------------------------------------------------- audio-only files


@pytest.mark.parametrize("ext", [".wav", ".flac"])
def test_mute_is_exact_silence_inside_and_untouched_outside(tmp_path: Path, ext: str) -> None:
    rate = 48000
    original = noise_signal(2.0, rate, 2)
    codec = "flac" if ext == ".flac" else "pcm_s16le"
    src = write_audio(tmp_path / f"in{ext}", original, rate, codec)
    out = tmp_path / f"out{ext}"
    run_cli(src, "-o", out, "--audio", "mute", "--audio-ranges", "0.25-0.5,1.5-1.75", check=True)
    before, _ = read_audio(src)
    after, out_rate = read_audio(out)
    assert out_rate == rate and after.shape == before.shape
    changed = np.flatnonzero(np.any(after != before, axis=0))
    for start, end in [(0.25, 0.5), (1.5, 1.75)]:
        a, b = int(start * rate), int(end * rate)
        assert np.all(after[:, a:b] == 0), "a muted range must be digital silence"
        near = changed[(changed > a - rate // 10) & (changed < b + rate // 10)]
        # Edges: fades lie outside the range and end within 10 ms of it.
        assert a - near.min() <= 0.010 * rate and near.max() - b <= 0.010 * rate
    untouched = np.ones(before.shape[1], bool)
    for start, end in [(0.25, 0.5), (1.5, 1.75)]:
        untouched[int(start * rate) - 480 : int(end * rate) + 480] = False
    assert np.array_equal(after[:, untouched], before[:, untouched]), "samples outside must be bit-identical"
    # No click: at the fade, the step between neighbouring samples is no larger than the signal's own.
    assert np.abs(np.diff(after, axis=1)).max() <= np.abs(np.diff(before, axis=1)).max() + 1e-9


def test_bleep_is_a_tone_at_the_stated_frequency(tmp_path: Path) -> None:
    rate = 16000
    src = write_audio(tmp_path / "in.wav", noise_signal(1.0, rate, 1), rate)
    out = tmp_path / "out.wav"
    run_cli(src, "-o", out, "--audio", "bleep", "--audio-ranges", "0.2-0.8", check=True)
    after, _ = read_audio(out)
    tone = after[0, int(0.2 * rate) : int(0.8 * rate)]
    spectrum = np.abs(np.fft.rfft(tone * np.hanning(len(tone))))
    peak_hz = np.fft.rfftfreq(len(tone), 1 / rate)[spectrum.argmax()]
    assert abs(peak_hz - 1000) < 5
    assert abs(20 * np.log10(np.abs(tone).max()) - -20) < 0.5, "peak level is the stated -20 dBFS"


def test_keep_copies_audio_packets(tmp_path: Path) -> None:
    src = write_audio(tmp_path / "in.flac", noise_signal(1.0, 16000, 1), 16000, "flac")
    out = tmp_path / "out.flac"
    run_cli(src, "-o", out, check=True)
    assert audio_packets(out) == audio_packets(src)


@needs_speech
def test_disguise_changes_the_voice_but_keeps_timing(tmp_path: Path) -> None:
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.flac"
        report = tmp_path / f"{name}.json"
        run_cli(SPEECH, "-o", out, "--audio", "disguise", "--report", report, check=True)
        assert "alpha" not in report.read_text()
        outs.append(read_audio(out))
    before, rate = read_audio(SPEECH)
    (after, out_rate), (again, _) = outs
    assert out_rate == rate and after.shape == before.shape

    def frames(x: np.ndarray) -> np.ndarray:
        n = 512
        return x[0, : x.shape[1] // n * n].reshape(-1, n)

    def log_spectra(x: np.ndarray) -> np.ndarray:
        return np.log(np.abs(np.fft.rfft(frames(x) * np.hanning(512), axis=1)) + 1e-6)

    loud = np.sqrt((frames(before) ** 2).mean(axis=1)) > 0.02
    # Same words at the same times: the loudness envelope follows the original.
    env_in, env_out = (np.sqrt((frames(x) ** 2).mean(axis=1)) for x in (before, after))
    assert np.corrcoef(env_in, env_out)[0, 1] > 0.9
    # A different voice: the spectral envelope of speech moved (formants shifted).
    distance = np.abs(log_spectra(after) - log_spectra(before))[loud, 8:160].mean()
    assert distance > 0.5
    # Randomised per file: two runs disguise differently.
    assert not np.allclose(after, again, atol=1e-3)


def test_disguise_does_not_depend_on_how_the_stream_is_cut() -> None:
    x = noise_signal(0.5, 16000, 2)
    whole = Editor(AudioEdit("disguise"), 16000, 2, alpha=0.8)
    pieces = Editor(AudioEdit("disguise"), 16000, 2, alpha=0.8)
    a = np.concatenate([whole.push(x), whole.flush()], axis=1)
    b = np.concatenate([*(pieces.push(x[:, i : i + 777]) for i in range(0, x.shape[1], 777)), pieces.flush()], axis=1)
    assert a.shape == x.shape and a.dtype == x.dtype and np.array_equal(a, b)
    identity = Editor(AudioEdit("disguise"), 16000, 2, alpha=1.0)
    same = np.concatenate([identity.push(x), identity.flush()], axis=1)
    assert np.abs(same.astype(int) - x).max() <= 2, "alpha 1 leaves the signal as it was"


# ----------------------------------------------------------------------------- video


def test_video_keep_copies_audio_and_mute_keeps_the_track_shape(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", frames=20, audio=True)
    kept = tmp_path / "kept.mp4"
    run_cli(src, "-o", kept, check=True)
    assert audio_packets(kept) == audio_packets(src)

    muted = tmp_path / "muted.mp4"
    report = tmp_path / "report.json"
    run_cli(src, "-o", muted, "--audio", "mute", "--audio-ranges", "0.5-1.5", "--report", report, check=True)
    a, b = probe(src), probe(muted)
    assert b["frames"] == a["frames"] and b["audio"] == a["audio"]
    assert b["duration"] == pytest.approx(a["duration"], abs=1e-3)
    before, rate = read_audio(src)
    after, _ = read_audio(muted)
    assert after.shape == before.shape
    inside = after[:, int(0.55 * rate) : int(1.45 * rate)]
    outside = after[:, int(1.6 * rate) : int(1.9 * rate)]
    assert np.abs(inside).max() < 1e-3, "AAC decodes the muted range to (near) silence"
    assert np.sqrt((outside**2).mean()) > 0.05, "the tone outside the range is still there"
    record = json.loads(report.read_text())["files"][0]
    assert record["audio"] == ["mute: re-encoded aac -> aac"]

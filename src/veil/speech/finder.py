"""Rules that pick spoken personal data out of recognized words, as padded time ranges.

What is found, and why these rules (docs/audio.md has the measured recall):
- Spoken numbers: runs of number words (digits, "oh", "double", teens, tens, hundred,
  thousand) with pauses under MAX_GAP_S between them. A run is personal data when it holds
  at least MIN_DIGITS digit-equivalents (phone, account and ID numbers, PINs, spelled-out
  digits), or any number word follows a cue such as "phone", "account" or "born" closely, or
  sits next to a month name (dates of birth). Words that sound like digits ("to", "for",
  "ate", "won") count only inside a run: alone they are ordinary speech.
- E-mail addresses: "dot com/org/net/..." with an "at" shortly before; the range runs from the
  words before "at" to the domain's end.
- Street addresses: a number followed closely by "street", "road", "avenue" and the like, or
  the word before such a street word.
- Names: the words after a naming phrase ("my name is", "name's", "call me", "mister",
  "doctor", ...). A name the recognizer does not know comes out as other short words, so
  after a strong phrase the words are taken whatever they are; after a weak one ("I'm",
  "this is", "called") only when the next word is not a common English word.
Not found: names said without such a phrase, numbers said as words the recognizer misses,
places, and anything in a language other than English.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from veil.speech.recognizer import Word

# Each range grows by this much on both sides: word edges from the recognizer are ~10-30 ms
# off, and speech sounds (a plosive's burst, a trailing fricative) reach past them.
PAD_S = 0.15
MAX_GAP_S = 0.8
MIN_DIGITS = 3
CUE_WINDOW_S = 4.0
NAME_WINDOW_S = 1.5
NAME_PAUSE_S = 0.5

DIGITS = {
    "zero": 1, "oh": 1, "o": 1, "one": 1, "two": 1, "three": 1, "four": 1, "five": 1,
    "six": 1, "seven": 1, "eight": 1, "nine": 1, "double": 1, "triple": 2, "ten": 2,
    "eleven": 2, "twelve": 2, "thirteen": 2, "fourteen": 2, "fifteen": 2, "sixteen": 2,
    "seventeen": 2, "eighteen": 2, "nineteen": 2, "twenty": 2, "thirty": 2, "forty": 2,
    "fifty": 2, "sixty": 2, "seventy": 2, "eighty": 2, "ninety": 2, "hundred": 1, "thousand": 1,
    "million": 1, "first": 1, "second": 1, "third": 1, "fourth": 1, "fifth": 1, "sixth": 1,
    "seventh": 1, "eighth": 1, "ninth": 1, "tenth": 1, "twentieth": 2, "thirtieth": 2,
}  # fmt: skip
# Sound like digits: count only between number words.
WEAK_DIGITS = {"to": 1, "too": 1, "for": 1, "fore": 1, "ate": 1, "won": 1, "nought": 1, "and": 0}
# Ordinals and "oh" alone are ordinary speech; a run made only of these is never flagged.
ORDINARY = {"oh", "o", "first", "second", "third", "hundred", "thousand", "million", "double", "ten"}
NUMBER_CUES = {
    "number", "numbers", "phone", "telephone", "mobile", "cell", "call", "account", "born",
    "birthday", "birth", "code", "pin", "zip", "postcode", "id", "social", "security", "card",
    "passport", "license", "licence", "extension", "reference", "digits", "dial", "plate",
}  # fmt: skip
MONTHS = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
}  # fmt: skip
TLDS = {"com", "org", "net", "edu", "gov", "io", "uk", "co", "de", "fr", "info"}
MAIL_HOSTS = {"gmail", "hotmail", "yahoo", "outlook", "icloud", "proton", "protonmail", "aol"}
STREETS = {"street", "road", "avenue", "lane", "drive", "boulevard", "crescent", "terrace", "highway", "st"}
STRONG_NAME_CUES = [
    ("my", "name", "is"), ("my", "name's"), ("name's",), ("names",), ("name", "is"),
    ("first", "name"), ("last", "name"), ("surname",), ("mister",), ("mr",), ("mrs",), ("missus",),
    ("ms",), ("miss",), ("doctor",), ("dr",), ("officer",), ("detective",), ("sergeant",),
]  # fmt: skip
WEAK_NAME_CUES = [
    ("call", "me"), ("i'm",), ("i", "am"), ("this", "is"), ("it's",), ("called",), ("named",), ("speaking",),
]  # fmt: skip
# Common English words: after a weak cue ("I'm going", "this is the") they are not a name.
COMMON = set(
    """a about above after again against all almost also always am an and any are around as at away
    back bad be because been before being best better big both but by can can't come could did didn't
    do does doing don't done down each enough even ever every fine for from gave get getting give go
    going gone good got great had has have having he her here him his home how i if in into is it its
    it's just keep kind know last least less let like little long look made make many may me might
    more most much must my never new next no not nothing now of off ok okay old on once one only or
    other our out over own please pretty quite rather ready really right said same saw say see seen
    she should so some something soon sorry still such sure take tell than thank thanks that the
    their them then there these they thing think this those though through time to too told trying
    under up us very want was way we well went were what when where which while who why will with
    without would yeah yes yet you your afraid glad happy calling here's there's talking looking""".split()  # noqa: SIM905
)


@dataclass(frozen=True)
class Finding:
    """A proposed range to mute, with why; never the words themselves."""

    start: float
    end: float
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "reason": self.reason}


def _clean(text: str) -> str:
    return re.sub(r"[^a-z']", "", text.lower())


def _numbers(words: Sequence[Word], texts: list[str]) -> list[Finding]:
    found: list[Finding] = []
    i, n = 0, len(words)
    while i < n:
        if texts[i] not in DIGITS:
            i += 1
            continue
        # Grow the run both ways over number words and, between them, digit sound-alikes.
        lo = i
        while lo > 0 and texts[lo - 1] in WEAK_DIGITS and words[lo].start - words[lo - 1].end < MAX_GAP_S:
            lo -= 1
        hi = i
        while hi + 1 < n and words[hi + 1].start - words[hi].end < MAX_GAP_S:
            nxt = texts[hi + 1]
            if nxt in DIGITS or (nxt in WEAK_DIGITS and hi + 2 < n and texts[hi + 2] in DIGITS):
                hi += 1
            else:
                break
        run = texts[lo : hi + 1]
        weight = sum(DIGITS.get(t, WEAK_DIGITS.get(t, 0)) for t in run)
        start, end = words[lo].start, words[hi].end
        ordinary = all(t in ORDINARY or t in WEAK_DIGITS for t in run)
        before = [texts[k] for k in range(max(0, lo - 6), lo) if start - words[k].end < CUE_WINDOW_S]
        near = texts[max(0, lo - 2) : lo] + texts[hi + 1 : hi + 3]
        reason = None
        if not ordinary and weight >= MIN_DIGITS:
            reason = "spoken number"
        elif any(m in MONTHS for m in near) and not ordinary:
            reason = "spoken date"
        elif any(c in NUMBER_CUES for c in before):
            reason = "spoken number after a cue (phone, account, born, ...)"
        if reason and any(m in MONTHS for m in near):
            # A month next to the number is part of the date.
            for k in range(max(0, lo - 2), min(n, hi + 3)):
                if texts[k] in MONTHS:
                    start, end = min(start, words[k].start), max(end, words[k].end)
        if reason:
            found.append(Finding(start, end, reason))
        i = hi + 1
    return found


def _mail(words: Sequence[Word], texts: list[str]) -> list[Finding]:
    found = []
    for k, t in enumerate(texts):
        host = t in MAIL_HOSTS
        if not (t in TLDS and k > 0 and texts[k - 1] == "dot") and not host:
            continue
        ats = [j for j in range(max(0, k - 8), k) if texts[j] == "at" and words[k].start - words[j].end < CUE_WINDOW_S]
        if not ats and not host:
            continue
        first = ats[0] if ats else k
        # The user part: up to three words before "at" said without a long pause.
        lo = first
        while lo > 0 and first - lo < 3 and words[lo].start - words[lo - 1].end < NAME_PAUSE_S:
            lo -= 1
        hi = k
        # "dot co dot uk", "gmail dot com": take the rest of the address.
        while hi + 2 < len(texts) and texts[hi + 1] == "dot" and texts[hi + 2] in TLDS:
            hi += 2
        if host and hi + 2 < len(texts) and texts[hi + 1] == "dot":
            hi += 2
        found.append(Finding(words[lo].start, words[hi].end, "e-mail address"))
    return found


def _streets(words: Sequence[Word], texts: list[str]) -> list[Finding]:
    found = []
    for k, t in enumerate(texts):
        if t not in STREETS or k == 0:
            continue
        lo = k - 1
        # A house number within the four words before: from there.
        for j in range(max(0, k - 4), k):
            if texts[j] in DIGITS and words[k].start - words[j].end < CUE_WINDOW_S:
                lo = j
                break
        if lo == k - 1 and texts[lo] in COMMON:
            continue
        found.append(Finding(words[lo].start, words[k].end, "street address"))
    return found


def _match(texts: list[str], k: int, cue: tuple[str, ...]) -> bool:
    return tuple(texts[k : k + len(cue)]) == cue


def _names(words: Sequence[Word], texts: list[str]) -> list[Finding]:
    found = []
    n = len(words)
    for k in range(n):
        for strong, cues in ((True, STRONG_NAME_CUES), (False, WEAK_NAME_CUES)):
            cue = next((c for c in cues if _match(texts, k, c)), None)
            if cue is None:
                continue
            first = k + len(cue)
            if first >= n or words[first].start - words[first - 1].end > NAME_PAUSE_S * 2:
                break
            if not strong and (texts[first] in COMMON or texts[first] in DIGITS):
                break
            limit = words[first - 1].end + (NAME_WINDOW_S if strong else NAME_WINDOW_S * 2 / 3)
            last = first
            while (
                last + 1 < n
                and last + 1 - first < (3 if strong else 2)
                and words[last + 1].start < limit
                and words[last + 1].start - words[last].end < NAME_PAUSE_S
                and (strong or texts[last + 1] not in COMMON)
            ):
                last += 1
            found.append(Finding(words[first].start, words[last].end, "name after a naming phrase"))
            break
    return found


def find(words: Sequence[Word], duration: float | None = None) -> list[Finding]:
    """Padded, merged ranges of spoken personal data in `words`, with their reasons."""
    texts = [_clean(w.text) for w in words]
    raw = _numbers(words, texts) + _mail(words, texts) + _streets(words, texts) + _names(words, texts)
    end = float("inf") if duration is None else duration
    padded = sorted(
        (Finding(max(0.0, f.start - PAD_S), min(end, f.end + PAD_S), f.reason) for f in raw), key=lambda f: f.start
    )
    merged: list[Finding] = []
    for f in padded:
        if merged and f.start <= merged[-1].end:
            last = merged[-1]
            reasons = last.reason if f.reason in last.reason.split("; ") else f"{last.reason}; {f.reason}"
            merged[-1] = Finding(last.start, max(last.end, f.end), reasons)
        else:
            merged.append(f)
    return [f for f in merged if f.end > f.start]

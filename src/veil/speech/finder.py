"""Rules that pick spoken personal data out of recognized words, as padded time ranges.

The recognizer writes words as a person would (case, punctuation, sometimes digits and e-mail
addresses as one word); each word is first cut into tokens: lower case, hyphenated and
slashed parts split ("eighty-five", "417-5529"), each part given its share of the word's time.
What is found, and why these rules (docs/audio.md has the measured recall):
- Spoken numbers: runs of number words (digits, "oh", "double", teens, tens, hundred,
  thousand) or numerals with pauses under MAX_GAP_S between them. A run is personal data when
  it holds at least MIN_DIGITS digit-equivalents (phone, account and ID numbers, PINs, spelled-out
  digits), or any number word follows a cue such as "phone", "account", "reach" or "born" closely, or
  sits next to a month name (dates of birth). Words that sound like digits ("to", "for",
  "ate", "won", "free", "fine") count only inside a run: alone they are ordinary speech; up to BRIDGE of them,
  or of words the recognizer is unsure of, may stand between two number words of a run. A
  numeral's time from the recognizer can be squeezed (one token for seven digits), so a run
  with numerals reaches towards its neighbouring words by the time its digits lack (DIGIT_S each).
  Where the recognizer lost digits, a run also takes in speech beside it that no word accounts
  for (recognizer.UNHEARD: a swallowed first digit, digits written as "Chapter 17."), unless
  that speech runs on into the word beyond it, and up to one digit's time (DIGIT_S) of one word
  it is unsure of said right against its edge (a digit heard as "And"); after a pause, it
  reaches one digit's time into such a word when the alignment stretched it. After a phrase
  that announces a number ("number is", STRONG_NUMBER_CUES), the words said in the same breath
  up to the last that can be part of a number are that number, whatever they came out as.
- E-mail addresses: a word with "@" or a domain ("gmail.com"), or "dot com/org/net/..." with an
  "at" shortly before; the range runs from the words before "at" to the domain's end.
- Street addresses: a number followed closely by "street", "road", "avenue" and the like, or
  the word before such a street word.
- Names: the words after a naming phrase. After "my name is", "name's", "surname" they are
  taken whatever they are (a name the recognizer does not know comes out as other words);
  after a title ("mister", "doctor") or a weaker phrase ("call me", "I'm", "this is") only
  when the next word is capitalised or not a common English word. And any
  capitalised word inside a sentence that is not a common word, a month, a day or "I": the
  recognizer capitalises proper nouns, and a name said without a phrase is found this way
  (places too: they are muted as well). A name after a phrase goes on into a stretched word
  right after it (_stretched).
- Speech the recognizer could not make out, a second or more of it, in one stretch or in
  several with only short pauses between them, or under a word it is unsure of that the
  alignment stretched over a second or more of sound (_unheard); its range runs on over the
  sound past its edges, as a number's does.
Not found: names the recognizer writes in lower case or as common words without a phrase,
numbers said as words the recognizer misses, and anything in a language other than English.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.speech.recognizer import FRAME_S, UNHEARD, UNHEARD_PAUSE_S, Word, frames_s

# Each range grows by PAD_S before and PAD_END_S after: word edges from the recognizer are
# ~20-100 ms off, more often early than late at a word's end, and speech sounds (a plosive's
# burst, a trailing fricative) reach past them.
PAD_S = 0.15
PAD_END_S = 0.25
MAX_GAP_S = 0.8
MIN_DIGITS = 3
CUE_WINDOW_S = 4.0
NAME_WINDOW_S = 1.5
NAME_PAUSE_S = 0.5
NAME_WORDS = 3
# Below this confidence a word after a naming phrase is taken as a misheard name.
UNSURE = 0.5
BRIDGE = 2
# A pause this long starts a new sentence, whatever the punctuation says.
SENTENCE_PAUSE_S = 1.0
# Speech the recognizer could not put into words (recognizer.UNHEARD) next to a number is
# taken as more of it, counted as one digit per DIGIT_S (a digit said alone lasts 0.3-0.5 s).
DIGIT_S = 0.4
# Numbers are read out in groups ("four one seven, two nine five"): a group this soon after a
# found number is more of it, however short, even with misheard words between them.
NEXT_GROUP_S = 1.5
# A number's range goes on over loud audio past its words' edges until this much quiet (_run_on).
RUN_ON_QUIET_S = 0.06
# A word lasting longer than STRETCHED_S and twice its typical time (TYPICAL_S + TYPICAL_S_PER_LETTER
# a letter: the median of held-out LibriSpeech words of 3-8 letters, 0.22-0.44 s, as Whisper
# times them) is stretched: the recognizer gave it time it heard nothing else in (_stretched).
STRETCHED_S = 0.5
TYPICAL_S = 0.1
TYPICAL_S_PER_LETTER = 0.045
NAMED = "name after a naming phrase"
# Unheard speech this long is muted on its own (_unheard): measured, the unheard stretches that
# are loose word edges last under 0.6 s; a number Whisper dropped whole lasts seconds.
UNHEARD_ALONE_S = 1.0
# The reasons given for speech the recognizer could not put into words (_unheard). Under a
# stretched word, the range runs on over the sound past its edges (_run_on), as a number's
# does: its edges are the alignment's, as loose as a digit's (unheard speech's edges are the
# audio's own loud runs already).
UNMADE = "speech the recognizer could not make out"
UNMADE_STRETCHED = "speech the recognizer could not make out, under a word stretched over it"
# Word times closer than this are taken as touching, not overlapping (the alignment's rounding).
EPS_S = 0.01

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
# "or" is "four" with its f lost ("six or zero seven"); like "and" it only bridges (weight 0), so
# "one or two" alone is not three digits.
WEAK_DIGITS = {
    "to": 1, "too": 1, "for": 1, "fore": 1, "ate": 1, "won": 1, "nought": 1, "and": 0, "or": 0, "free": 1, "tree": 1,
    "fine": 1,
}  # fmt: skip
# Ordinals and "oh" alone are ordinary speech; a run made only of these is never flagged.
ORDINARY = {"oh", "o", "first", "second", "third", "hundred", "thousand", "million", "double", "ten"}
NUMBER_CUES = {
    "number", "numbers", "phone", "telephone", "mobile", "cell", "call", "account", "born",
    "birthday", "birth", "code", "pin", "zip", "postcode", "id", "social", "security", "card",
    "passport", "license", "licence", "extension", "reference", "digits", "dial", "plate",
    "reach", "contact", "ring", "text", "whatsapp",
}  # fmt: skip
# Phrases that announce a number's value ("my phone number is ..."): what follows in the same
# breath is that number whatever the recognizer wrote, as a name is after "my name is"; a number
# it could not read comes out as other words ("time for it, for it, for seven").
STRONG_NUMBER_CUES = [
    ("number", "is"), ("number's",), ("number", "was"), ("numbers", "are"), ("pin", "is"), ("code", "is"),
    ("reach", "me", "on"), ("call", "me", "on"), ("text", "me", "on"), ("ring", "me", "on"),
]  # fmt: skip
# The longest a number's value takes to say after such a phrase: ten or twelve digits in groups.
NUMBER_VALUE_S = 6.0
MONTHS = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
}  # fmt: skip
DAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
TLDS = {"com", "org", "net", "edu", "gov", "io", "uk", "co", "de", "fr", "info"}
MAIL_HOSTS = {"gmail", "hotmail", "yahoo", "outlook", "icloud", "proton", "protonmail", "aol"}
STREETS = {"street", "road", "avenue", "lane", "drive", "boulevard", "crescent", "terrace", "highway", "st"}
STRONG_NAME_CUES = [
    ("my", "name", "is"), ("my", "name's"), ("name's",), ("names",), ("name", "is"),
    ("first", "name"), ("last", "name"), ("surname",),
]  # fmt: skip
# Titles and weaker phrases: "the doctor to inform", "I'm going", "this is the" are not names.
WEAK_NAME_CUES = [
    ("mister",), ("mr",), ("mrs",), ("missus",), ("ms",), ("miss",), ("doctor",), ("dr",), ("officer",),
    ("detective",), ("sergeant",), ("call", "me"), ("i'm",), ("i", "am"), ("this", "is"), ("it's",), ("called",),
    ("named",), ("speaking",),
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
# Capitalised inside a sentence without being anyone's name.
CAPITALISED_WORDS = set(
    """i i'm i'll i've i'd mr mrs ms dr sir madam god lord english christmas easter o oh ok okay
    mister miss missus doctor officer detective sergeant""".split()  # noqa: SIM905
)
NOT_NAMES = COMMON | MONTHS | DAYS | CAPITALISED_WORDS
# A run of only these is ordinary speech ("at first", "oh"), unheard speech beside it or not.
PLAIN_RUN_WORDS = ORDINARY | set(WEAK_DIGITS) | {UNHEARD}


@dataclass(frozen=True)
class Finding:
    """A proposed range to mute, with why; never the words themselves."""

    start: float
    end: float
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "reason": self.reason}


@dataclass(frozen=True)
class Token:
    """A word or a part of one: lower case, with whether it was capitalised inside a sentence."""

    text: str
    start: float
    end: float
    digits: int = 0  # how many digits, for a numeral ("417", "3rd")
    capital: bool = False
    sentence_start: bool = False
    word: int = 0  # which recognized word it is part of
    probability: float = 1.0

    @property
    def unheard(self) -> bool:
        return self.text == UNHEARD


def _clean(text: str) -> str:
    return re.sub(r"[^a-z0-9'@.]", "", text.lower()).strip("'.")


def tokens(words: Sequence[Word]) -> list[Token]:
    """`words` cut into tokens; a part of a hyphenated word gets its share of the word's time."""
    out: list[Token] = []
    prev: Word | None = None
    for index, w in enumerate(words):
        raw = w.text.strip()
        if raw == UNHEARD:
            # Not a word: the sentence around it goes on (or ends) as if it were not there.
            out.append(Token(UNHEARD, w.start, w.end, word=index, probability=0.0))
            continue
        # "A." or "Dr." ends an initial or a title, not a sentence.
        ended = prev is not None and bool(re.search(r"[.?!:;\"]$", prev.text.strip()))
        ended = ended and not re.fullmatch(r"[A-Za-z]{1,2}\.|(mr|mrs|ms|dr|st)\.", prev.text.strip(), re.IGNORECASE)
        starts = prev is None or ended or w.start - prev.end >= SENTENCE_PAUSE_S
        prev = w
        parts = [p for p in re.split(r"[-/\u2013\u2014]+", raw) if _clean(p)]
        if not parts:
            continue
        total = sum(len(p) for p in parts)
        t = w.start
        for k, part in enumerate(parts):
            span = (w.end - w.start) * len(part) / total
            text = _clean(part)
            letters = re.sub(r"^[^A-Za-z]+", "", part)
            capital = bool(letters) and letters[0].isupper() and not (starts and k == 0)
            digits = sum(c.isdigit() for c in text)
            out.append(Token(text, t, t + span, digits, capital, starts and k == 0, index, w.probability))
            t += span
    return out


def _is_number(t: Token) -> bool:
    return t.digits > 0 or t.text in DIGITS


def _weight(t: Token) -> int:
    if t.unheard:
        return max(1, round((t.end - t.start) / DIGIT_S))
    return t.digits or DIGITS.get(t.text, WEAK_DIGITS.get(t.text, 0))


def _unheard_beside(toks: Sequence[Token], edge: int, step: int) -> int | None:
    """The index of unheard speech reached from a run's `edge` going `step` (-1 or +1) within
    MAX_GAP_S per pause, across up to BRIDGE words the recognizer is unsure of; None if a
    confident word or a number comes first, or if the unheard speech runs on into the word
    beyond it (under UNHEARD_PAUSE_S between them): then it is that word's edge, which the
    recognizer's times often leave out around a sentence's end or start."""
    k = edge + step
    while 0 <= k < len(toks) and abs(k - edge) <= BRIDGE + 1:
        near, far = (toks[k], toks[k - step]) if step > 0 else (toks[k + 1], toks[k])
        if near.start - far.end >= MAX_GAP_S:
            return None
        if toks[k].unheard:
            j = k + step
            if 0 <= j < len(toks) and not toks[j].unheard:
                pause = toks[k].start - toks[j].end if step < 0 else toks[j].start - toks[k].end
                if pause < UNHEARD_PAUSE_S:
                    return None
            return k
        if not _unsure_word(toks[k]):
            return None
        k += step
    return None


def _unsure_word(t: Token) -> bool:
    """A word the recognizer is unsure of, not a number word nor unheard speech: beside a
    number, possibly a misheard digit."""
    return t.probability < UNSURE and not t.unheard and not _is_number(t)


def _stretched_word(t: Token) -> bool:
    """A word the alignment stretched (over STRETCHED_S and twice its typical time): it was
    given time it did not fill with itself."""
    return not t.unheard and t.end - t.start > max(STRETCHED_S, 2 * _typical_s(t))


def _stretched_unsure(t: Token) -> bool:
    """An unsure word (`_unsure_word`) the alignment stretched (`_stretched_word`)."""
    return _unsure_word(t) and _stretched_word(t)


def _numbers(toks: Sequence[Token]) -> list[Finding]:
    found: list[Finding] = []
    loose: list[tuple[float, float]] = []  # runs of number words too short to be a number alone
    texts = [t.text for t in toks]
    i, n = 0, len(toks)
    while i < n:
        if not _is_number(toks[i]):
            i += 1
            continue
        # Grow the run both ways over number words and, between them, digit sound-alikes.
        lo = i
        while lo > 0 and texts[lo - 1] in WEAK_DIGITS and toks[lo].start - toks[lo - 1].end < MAX_GAP_S:
            lo -= 1
        hi = i
        while hi + 1 < n and toks[hi + 1].start - toks[hi].end < MAX_GAP_S:
            if _is_number(toks[hi + 1]):
                hi += 1
                continue
            # Up to BRIDGE words between number words, each a digit sound-alike or one the
            # recognizer is unsure of: misheard digits ("seven, eight, you will, seven").
            k = hi + 1
            while (
                k < n
                and k - hi <= BRIDGE
                and not _is_number(toks[k])
                and (toks[k].text in WEAK_DIGITS or toks[k].probability < UNSURE)
                and toks[k].start - toks[k - 1].end < MAX_GAP_S
            ):
                k += 1
            if k < n and k > hi + 1 and _is_number(toks[k]) and toks[k].start - toks[k - 1].end < MAX_GAP_S:
                hi = k
            else:
                break
        ordinary = all(t.text in PLAIN_RUN_WORDS and not t.digits for t in toks[lo : hi + 1])
        if not ordinary:
            # Speech the recognizer could not make out just before or after a number is taken as
            # part of it: a swallowed first digit, or digits written as other words.
            before, after = _unheard_beside(toks, lo, -1), _unheard_beside(toks, hi, +1)
            lo = lo if before is None else before
            hi = hi if after is None else after
            # So is a word the recognizer is unsure of said right against the number's edge
            # (no pause a speaker makes between words): a digit misheard as a word ("And"). Its
            # time counts up to one digit's (DIGIT_S) from the number: the alignment stretches
            # such a word over the pause after it ("and" lasting 1.3 s into the next sentence).
            if hi + 1 < n and _unsure_word(toks[hi + 1]) and toks[hi + 1].start - toks[hi].end < UNHEARD_PAUSE_S:
                hi += 1
            if lo > 0 and _unsure_word(toks[lo - 1]) and toks[lo].start - toks[lo - 1].end < UNHEARD_PAUSE_S:
                lo -= 1
        run = toks[lo : hi + 1]
        weight = sum(_weight(t) for t in run)
        start, end = toks[lo].start, toks[hi].end
        if _unsure_word(toks[lo]):
            start = max(start, toks[lo].end - DIGIT_S)
        if _unsure_word(toks[hi]):
            end = min(end, toks[hi].start + DIGIT_S)
        before = [texts[k] for k in range(max(0, lo - 6), lo) if start - toks[k].end < CUE_WINDOW_S]
        near = texts[max(0, lo - 2) : lo] + texts[hi + 1 : hi + 3]
        reason = None
        if not ordinary and weight >= MIN_DIGITS:
            reason = "spoken number"
        elif any(m in MONTHS for m in near) and not ordinary:
            reason = "spoken date"
        elif any(c in NUMBER_CUES for c in before):
            reason = "spoken number after a cue (phone, account, born, ...)"
        elif not ordinary and found and start - found[-1].end < NEXT_GROUP_S and "number" in found[-1].reason:
            reason = "spoken number (a group after one)"
        if reason and any(t.unheard for t in run):
            reason += ", with speech beside it the recognizer could not make out"
        if reason and any(t.digits for t in run):
            # Written as digits, the run's time may be squeezed ("4177763" as one word of 0.3 s):
            # reach towards the neighbouring words by the time its digits lack, a digit's time
            # (DIGIT_S) each. Digits written one word each ("9, 3, 6, ...") keep most of their
            # own time: reaching 0.35 s a digit whatever the run's length took in the next
            # sentence's first words (docs/audio.md).
            reach = max(0.0, DIGIT_S * sum(t.digits for t in run) - (end - start))
            start = max(toks[lo - 1].end if lo > 0 else 0.0, start - reach)
            end = min(toks[hi + 1].start if hi + 1 < n else end + reach, end + reach)
        if reason:
            # A word the recognizer is unsure of just beside the number, after a pause, may
            # hold a digit at its near edge (its time stretched over it: "egg?" lasting 1.3 s
            # before "eight"): reach one digit's time into it.
            if lo > 0 and _stretched_unsure(toks[lo - 1]) and 0 <= start - toks[lo - 1].end < MAX_GAP_S:
                start = min(start, max(toks[lo - 1].start, toks[lo - 1].end - DIGIT_S))
            if hi + 1 < n and _stretched_unsure(toks[hi + 1]) and 0 <= toks[hi + 1].start - end < MAX_GAP_S:
                end = max(end, min(toks[hi + 1].end, toks[hi + 1].start + DIGIT_S))
        if reason and any(m in MONTHS for m in near):
            # A month next to the number is part of the date.
            for k in range(max(0, lo - 2), min(n, hi + 3)):
                if texts[k] in MONTHS:
                    start, end = min(start, toks[k].start), max(end, toks[k].end)
        if reason:
            found.append(Finding(start, end, reason))
        elif not ordinary:
            loose.append((start, end))
        i = hi + 1
    return _groups_before(found, loose)


def _groups_before(found: list[Finding], loose: list[tuple[float, float]]) -> list[Finding]:
    """Each number taken back over the runs of number words too short to be one alone that end
    under MAX_GAP_S before it, one after another: its first groups, said in the same breath
    (the pause that joins number words into one run) with words Whisper made of digits between
    them ("Two, that is eight." before "zero four nine three zero"). Within NEXT_GROUP_S, as a
    group after a number is taken (`_numbers`), it took a sentence's number words before the
    pause in front of a number too: 0.1-0.6 points more of the other speech on four held-out
    draws, no number more (docs/audio.md)."""
    out = []
    for f in found:
        start = f.start
        if "number" in f.reason:
            for a, b in reversed([run for run in loose if run[1] <= f.start]):
                if start - b >= MAX_GAP_S:
                    break
                start = a
        out.append(f if start == f.start else Finding(start, f.end, f"{f.reason}, with a group said before it"))
    return out


def _after_number_cue(toks: Sequence[Token]) -> list[Finding]:
    """The words after a phrase that announces a number (STRONG_NUMBER_CUES), said in the same
    breath (no pause of MAX_GAP_S, no new sentence, within NUMBER_VALUE_S), up to the last of
    them that can be part of a number: a number word, a digit sound-alike, a word the recognizer
    is unsure of, or speech it could not make out. Sure words after that ("... and I live
    here") are left; the sure words before it are the number heard as other words."""
    found = []
    texts = [t.text for t in toks]
    n = len(toks)
    for k in range(n):
        cue = next((c for c in STRONG_NUMBER_CUES if _match(texts, k, c)), None)
        if cue is None:
            continue
        first = k + len(cue)
        if first >= n or toks[first].start - toks[first - 1].end >= MAX_GAP_S:
            continue
        last = None
        j = first
        while j < n and toks[j].start - toks[first].start <= NUMBER_VALUE_S:
            if j > first and (toks[j].start - toks[j - 1].end >= MAX_GAP_S or toks[j].sentence_start):
                break
            t = toks[j]
            if _is_number(t) or t.text in WEAK_DIGITS or t.unheard or t.probability < UNSURE:
                last = j
            j += 1
        if last is not None:
            found.append(Finding(toks[first].start, toks[last].end, f'spoken number after "{" ".join(cue)}"'))
    return found


def _mail(toks: Sequence[Token]) -> list[Finding]:
    found = []
    texts = [t.text for t in toks]
    for k, t in enumerate(texts):
        written = "@" in t or bool(re.search(r"[a-z0-9]\.(" + "|".join(sorted(TLDS)) + r")$", t))
        if written:
            # "jane.doe@gmail.com" as one word, or "jane at gmail.com": take the word and an "at" before.
            lo = k
            if "@" not in t and k > 0 and texts[k - 1] == "at":
                lo = max(0, k - 2)
            found.append(Finding(toks[lo].start, toks[k].end, "e-mail address"))
            continue
        host = t in MAIL_HOSTS
        if not (t in TLDS and k > 0 and texts[k - 1] == "dot") and not host:
            continue
        ats = [j for j in range(max(0, k - 8), k) if texts[j] == "at" and toks[k].start - toks[j].end < CUE_WINDOW_S]
        if not ats and not host:
            continue
        first = ats[0] if ats else k
        # The user part: up to three words before "at" said without a long pause.
        lo = first
        while lo > 0 and first - lo < 3 and toks[lo].start - toks[lo - 1].end < NAME_PAUSE_S:
            lo -= 1
        hi = k
        # "dot co dot uk", "gmail dot com": take the rest of the address.
        while hi + 2 < len(texts) and texts[hi + 1] == "dot" and texts[hi + 2] in TLDS:
            hi += 2
        if host and hi + 2 < len(texts) and texts[hi + 1] == "dot":
            hi += 2
        found.append(Finding(toks[lo].start, toks[hi].end, "e-mail address"))
    return found


def _streets(toks: Sequence[Token]) -> list[Finding]:
    found = []
    texts = [t.text for t in toks]
    for k, t in enumerate(texts):
        if t not in STREETS or k == 0:
            continue
        lo = k - 1
        # A house number within the four words before: from there.
        for j in range(max(0, k - 4), k):
            if _is_number(toks[j]) and toks[k].start - toks[j].end < CUE_WINDOW_S:
                lo = j
                break
        if lo == k - 1 and texts[lo] in COMMON and not toks[lo].capital:
            continue
        found.append(Finding(toks[lo].start, toks[k].end, "street address"))
    return found


def _match(texts: list[str], k: int, cue: tuple[str, ...]) -> bool:
    return tuple(texts[k : k + len(cue)]) == cue


def _names(toks: Sequence[Token]) -> list[Finding]:
    found = []
    texts = [t.text for t in toks]
    n = len(toks)
    for k in range(n):
        for strong, cues in ((True, STRONG_NAME_CUES), (False, WEAK_NAME_CUES)):
            cue = next((c for c in cues if _match(texts, k, c)), None)
            if cue is None:
                continue
            first = k + len(cue)
            if first >= n or toks[first].start - toks[first - 1].end > NAME_PAUSE_S * 2:
                break

            def plausible(j: int) -> bool:
                # A name the recognizer did not know comes out as words it is unsure of.
                t = toks[j]
                unknown = t.text not in COMMON and not _is_number(t)
                return t.capital or unknown or t.probability < UNSURE

            if not strong and not plausible(first):
                break
            limit = toks[first - 1].end + (NAME_WINDOW_S if strong else NAME_WINDOW_S * 2 / 3)

            # A name is one to NAME_WORDS words, and the recognizer often knows only part of
            # it: after a weak cue a word it is sure of is still taken between two that can be
            # a name ("so much fun", "life with field" for names it did not know).
            def bridged(j: int, limit: float = limit) -> bool:
                # A word that can be a name, said in the same breath, follows the sure one.
                return (
                    j < n and toks[j].start < limit and not (toks[j].unheard or toks[j].sentence_start) and plausible(j)
                )

            last = first
            while last + 1 < n:
                nxt = toks[last + 1]
                if nxt.word == toks[last].word:
                    last += 1  # the rest of a hyphenated word ("Ha-ha-ver-you")
                    continue
                if (
                    nxt.word - toks[first].word >= NAME_WORDS
                    or nxt.start >= limit
                    or nxt.start - toks[last].end >= NAME_PAUSE_S
                    or nxt.sentence_start
                    or not (strong or plausible(last + 1) or bridged(last + 2))
                ):
                    break
                last += 1
            found.append(Finding(toks[first].start, toks[last].end, NAMED))
            break
    return found


def _capitalised(toks: Sequence[Token]) -> list[Finding]:
    """Runs of capitalised words inside a sentence that are not common words: proper nouns."""
    found = []
    k, n = 0, len(toks)
    while k < n:
        t = toks[k]
        if not (t.capital and t.text not in NOT_NAMES and not t.digits):
            k += 1
            continue
        last = k
        while last + 1 < n and (
            toks[last + 1].word == toks[last].word or (toks[last + 1].capital and toks[last + 1].text not in NOT_NAMES)
        ):
            last += 1
        found.append(Finding(t.start, toks[last].end, "name (a capitalised word)"))
        k = last + 1
    return found


def _unheard(toks: Sequence[Token], loud: np.ndarray | None = None) -> list[Finding]:
    """Speech the recognizer could not put into words, on its own: UNHEARD_ALONE_S or more of
    it (a word's loose edge is never that long: something was said that cannot be checked), or
    after a number cue ("account number ...": the number itself, lost). Stretches of it with
    only pauses under MAX_GAP_S between them and no word but a stretched one (`_stretched_word`)
    are one stretch (a number read out in groups), less an end piece running on into the word
    beyond it (that word's edge). With `loud` (the audio's loud frames), a word the recognizer
    is unsure of that holds UNHEARD_ALONE_S of sound past its typical time counts too: the
    alignment stretched it over speech no word was written for."""
    found = []
    texts = [t.text for t in toks]
    n = len(toks)
    for k, t in enumerate(toks):
        placed = (k == 0 or toks[k - 1].end <= t.start + EPS_S) and (k + 1 == n or toks[k + 1].start >= t.end - EPS_S)
        held = loud is not None and frames_s(loud, t.start, t.end) - _typical_s(t) >= UNHEARD_ALONE_S
        if placed and held and _stretched_unsure(t):
            # A word the recognizer is unsure of holding a second or more of sound past its
            # typical time: the alignment handed it speech no word was written for ("A
            # stitching" over 3.3 s of digits before "A stitch in time"). Stretched over a pause
            # instead ("and" over the silence after a number), it holds nothing to mute. A word
            # whose time overlaps its neighbours' is not placed by what was said: Whisper put a
            # phrase it made up over words it also wrote ("I'm" over 1.5 s across "surprised"
            # and "Mrs.", then "going to use the right hand side." in no time at all). Its own
            # typical time sits against the word it runs into, where there is one on one side
            # only (as names, `_stretched`).
            start, end = t.start, t.end
            joined_before = k > 0 and t.start - toks[k - 1].end < UNHEARD_PAUSE_S
            joined_after = k + 1 < n and toks[k + 1].start - t.end < UNHEARD_PAUSE_S
            if joined_after and not joined_before:
                end -= _typical_s(t)
            elif joined_before and not joined_after:
                start += _typical_s(t)
            found.append(Finding(start, end, UNMADE_STRETCHED))
        if not t.unheard:
            continue
        before = [texts[j] for j in range(max(0, k - 3), k) if t.start - toks[j].end < CUE_WINDOW_S]
        if t.end - t.start >= UNHEARD_ALONE_S:
            found.append(Finding(t.start, t.end, UNMADE))
        elif t.end - t.start >= UNHEARD_PAUSE_S and any(c in NUMBER_CUES for c in before):
            found.append(Finding(t.start, t.end, "speech after a number cue the recognizer could not make out"))
    k = 0
    while k < n:
        last = k
        while toks[k].unheard and last + 1 < n:
            step = last + 1
            # A word the alignment stretched between two unheard stretches is one too: it was
            # given time it did not fill ("The" over 0.74 s between two seconds of digits).
            if _stretched_word(toks[step]) and step + 1 < n and toks[step + 1].unheard:
                step += 1
            if not toks[step].unheard or any(toks[j + 1].start - toks[j].end >= MAX_GAP_S for j in range(last, step)):
                break
            last = step
        if last > k:
            lo, hi = k, last
            if k > 0 and toks[k].start - toks[k - 1].end < UNHEARD_PAUSE_S:
                lo += 1
            if last + 1 < n and toks[last + 1].start - toks[last].end < UNHEARD_PAUSE_S:
                hi -= 1
            if hi > lo and sum(t.end - t.start for t in toks[lo : hi + 1]) >= UNHEARD_ALONE_S:
                found.append(Finding(toks[lo].start, toks[hi].end, UNMADE))
        k = last + 1
    return found


def find(words: Sequence[Word], duration: float | None = None, loud: np.ndarray | None = None) -> list[Finding]:
    """Padded, merged ranges of spoken personal data in `words`, with their reasons. `loud`: which
    20 ms frames of the audio are loud (recognizer.speech_frames), to carry a number's edges
    over the sound that goes on past its words' times (`_run_on`)."""
    toks = tokens(words)
    raw = [*_numbers(toks), *_after_number_cue(toks), *_mail(toks), *_streets(toks)]
    raw += [*_names(toks), *_capitalised(toks), *_unheard(toks, loud)]
    raw = [_stretched(f, toks) if f.reason == NAMED else f for f in raw]
    end = float("inf") if duration is None else duration
    padded = [Finding(max(0.0, f.start - PAD_S), min(end, f.end + PAD_END_S), f.reason) for f in raw]
    if loud is not None:
        padded = [_run_on(f, loud, end) if "number" in f.reason or f.reason == UNMADE_STRETCHED else f for f in padded]
    padded.sort(key=lambda f: f.start)
    merged: list[Finding] = []
    for f in padded:
        if merged and f.start <= merged[-1].end:
            last = merged[-1]
            reasons = last.reason if f.reason in last.reason.split("; ") else f"{last.reason}; {f.reason}"
            merged[-1] = Finding(last.start, max(last.end, f.end), reasons)
        else:
            merged.append(f)
    return [f for f in merged if f.end > f.start]


def _typical_s(t: Token) -> float:
    return TYPICAL_S + TYPICAL_S_PER_LETTER * len(re.sub(r"[^a-z]", "", t.text))


def _stretched(f: Finding, toks: Sequence[Token]) -> Finding:
    """A name `f` carried into the word said right after it (under UNHEARD_PAUSE_S) when that
    word is stretched (over STRETCHED_S and twice its typical time): the recognizer's alignment
    hands time it could not place to a neighbouring word, so the end of a name it did not know
    sits at the start of the word after it ("Therman" then "from" lasting 0.72 s). The range
    goes on up to where that word would start if it lasted its typical time. (Names only: after
    numbers and capitalised words inside sentences it muted more of the other speech than it
    found; docs/audio.md.)"""
    end = f.end
    for t in toks:
        if 0 <= t.start - f.end < UNHEARD_PAUSE_S and _stretched_word(t):
            end = max(end, t.end - _typical_s(t))
    return Finding(f.start, end, f.reason) if end != f.end else f


def _run_on(f: Finding, loud: np.ndarray, duration: float) -> Finding:
    """`f` carried over the sound that runs on, unbroken, past either edge: the alignment often
    ends a digit's word early and starts one late (its sound runs on until the speaker pauses,
    "eight" ending 0.4 s before the voice did), so a number's range goes on while the audio stays
    loud, until RUN_ON_QUIET_S of quiet, at most one digit's time (DIGIT_S) each way."""

    def edge(t: float, step: int) -> float:
        k = int(t / FRAME_S) if step > 0 else int(t / FRAME_S) - 1
        last, quiet = t, 0
        for _ in range(int(round(DIGIT_S / FRAME_S))):
            if not 0 <= k < len(loud):
                break
            if loud[k]:
                quiet = 0
                last = (k + 1) * FRAME_S if step > 0 else k * FRAME_S
            else:
                quiet += 1
                if quiet * FRAME_S >= RUN_ON_QUIET_S:
                    break
            k += step
        return last

    start, end = min(f.start, edge(f.start, -1)), max(f.end, edge(f.end, +1))
    return Finding(max(0.0, start), min(duration, end), f.reason)

"""Spoken personal data (veil.speech, --audio-pii): the finder's rules on word lists, the
recognizer's second look at what it skipped, and a number read out by a real voice between real
sentences muted end to end through the CLI."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import SHARED, run_cli

from veil.speech.apply import pii_edit
from veil.speech.finder import DIGIT_S, PAD_END_S, PAD_S, find
from veil.speech.recognizer import Word, available

# VEIL_SHARED_DATA: where ../shared/data is not beside the checkout (a worktree elsewhere).
DATA = Path(os.environ.get("VEIL_SHARED_DATA", SHARED))
SENTENCE = DATA / "voices" / "speakers" / "1998"
DIGITS = DATA / "voices" / "digits"
needs_speech = pytest.mark.skipif(
    not available() or not SENTENCE.is_dir() or not DIGITS.is_dir(),
    reason="speech extra (veil[speech]) or ../shared/data/voices absent",
)
RATE = 16000


def words(text: str, start: float = 1.0, step: float = 0.35, pause_after: dict[int, float] | None = None) -> list[Word]:
    """One Word per token, 0.3 s long, every `step` seconds (plus the given pauses)."""
    out, t = [], start
    for i, token in enumerate(text.split()):
        out.append(Word(token, round(t, 3), round(t + 0.3, 3)))
        t += step + (pause_after or {}).get(i, 0.0)
    return out


def spans(ws: list[Word], first: int, last: int) -> tuple[float, float]:
    return ws[first].start, ws[last].end


def covered(findings: list, span: tuple[float, float]) -> bool:
    return any(f.start <= span[0] and f.end >= span[1] for f in findings)


def test_phone_number_run_is_found_padded() -> None:
    ws = words("please call me back my number is four one seven double five oh two nine thanks")
    found = find(ws)
    number = spans(ws, 7, 14)
    assert covered(found, number)
    assert found[0].start == pytest.approx(number[0] - PAD_S)
    assert "number" in found[0].reason
    # "please call me back" and "thanks" stay audible, but for the padding.
    assert all(f.start > ws[3].end for f in found) and all(f.end <= ws[14].end + PAD_END_S + 1e-6 for f in found)


def test_ordinary_number_words_are_left_alone() -> None:
    for text in ["i waited for two hours at the station", "the first time i saw him he was ten", "oh well"]:
        assert find(words(text)) == [], text


def test_short_number_after_cue_and_date() -> None:
    ws = words("my pin is four two")
    assert covered(find(ws), spans(ws, 3, 4))
    ws = words("i was born on the third of march nineteen eighty")
    assert covered(find(ws), spans(ws, 7, 9))


def test_a_digit_run_broken_by_a_long_pause_is_two_runs() -> None:
    ws = words("one two nine", pause_after={1: 2.0})
    # Two digit-equivalents, a pause, one more: neither side holds three.
    assert find(ws) == []


def test_a_first_group_said_among_other_words_in_the_same_breath() -> None:
    """A number's first digits written among other words ("Two, that is eight." before "zero
    four nine three zero", FSDD's theo on a held-out draw: 70 % of the number muted) are runs
    too short to be a number alone; ending under MAX_GAP_S before the number, one after
    another, they are its first groups. After a longer pause a lone number word is the end of
    the sentence before, and is left."""
    number = words("zero four nine three zero.", 4.74)
    ws = [Word("Two,", 2.98, 3.64, 0.19), Word("that", 3.76, 3.88, 0.74), Word("is", 3.88, 4.04, 0.52),
          Word("eight.", 4.04, 4.24, 0.67), Word("are", 4.6, 4.74, 0.97), *number]  # fmt: skip
    (found,) = find(ws)
    assert found.start == pytest.approx(2.98 - PAD_S) and "with a group said before it" in found.reason
    assert found.end >= ws[-1].end
    sentence = [Word("It", 1.0, 1.2), Word("was", 1.2, 1.4), Word("one.", 1.4, 1.7)]
    apart = [*sentence, *words("zero four nine three zero.", 2.6)]
    (found,) = find(apart)
    assert found.start == pytest.approx(2.6 - PAD_S) and "group" not in found.reason


def test_names_after_naming_phrases() -> None:
    ws = words("hello my name is maria gonzalez and i live here")
    assert covered(find(ws), spans(ws, 4, 5))
    # Strong phrases take whatever the recognizer made of an unknown name.
    ws = words("my name is the old and i work here")
    assert covered(find(ws), spans(ws, 3, 4))
    # Weak phrases need an uncommon word next.
    assert find(words("i'm going home now")) == []
    ws = words("this is okafor speaking")
    assert covered(find(ws), spans(ws, 2, 2))


def test_a_number_runs_on_over_unbroken_sound_at_most_a_digit() -> None:
    """The alignment ends a last digit early: the range goes on while the audio stays loud,
    until 60 ms of quiet, at most one digit's time (DIGIT_S) past the padded edge."""
    from veil.speech.recognizer import FRAME_S

    ws = words("please call me on four one seven five five two nine thanks", pause_after={2: 1.0, 10: 1.0})
    plain = find(ws, 12.0)
    end = plain[0].end
    loud = np.zeros(int(12.0 / FRAME_S), bool)
    # The last digit's sound goes on 0.3 s past the padded end, then a pause.
    loud[int(ws[4].start / FRAME_S) : int((end + 0.3) / FRAME_S)] = True
    assert find(ws, 12.0, loud)[0].end == pytest.approx(end + 0.3, abs=FRAME_S)
    assert find(ws, 12.0, loud)[0].start == pytest.approx(plain[0].start, abs=FRAME_S)
    # Sound that never pauses: one digit's time and no more.
    loud[:] = True
    assert find(ws, 12.0, loud)[0].end == pytest.approx(end + DIGIT_S, abs=FRAME_S)
    assert find(ws, 12.0, loud)[0].start == pytest.approx(plain[0].start - DIGIT_S, abs=FRAME_S)
    # A name is not carried: only numbers lose digits at their edges.
    ws = words("hello my name is maria gonzalez and i live here")
    assert find(ws, 6.0, loud) == find(ws, 6.0)


def test_a_misheard_name_after_a_weak_phrase_is_taken_whole() -> None:
    """A name the recognizer did not know comes out as words, some of them sure ones: a sure
    word between two that can be a name is part of it; a sure word after the last one is not."""

    def heard(text: str, sure: list[float]) -> list[Word]:
        return [Word(w.text, w.start, w.end, p) for w, p in zip(words(text), sure, strict=True)]

    # "this is so much fun": 'so' and 'fun' unsure, 'much' sure.
    ws = heard("this is so much fun and i live here", [0.4, 1, 0.48, 0.9, 0.22, 0.9, 0.9, 0.9, 0.9])
    found = find(ws)
    assert covered(found, spans(ws, 2, 4)) and not covered(found, spans(ws, 5, 5)), found
    # "called unto do so." then a new sentence: two unsure words, not the sure one ending the sentence.
    ws = heard("called unto do so. The patient lived", [0.8, 0.37, 0.31, 0.99, 0.9, 0.9, 0.9])
    found = find(ws)
    assert covered(found, spans(ws, 1, 2)) and not any(f.end > ws[3].start + 0.3 for f in found), found


def test_email_and_street() -> None:
    ws = words("write to jane doe at gmail dot com today")
    assert covered(find(ws), spans(ws, 2, 7))
    ws = words("we live at twelve baker street now")
    assert covered(find(ws), spans(ws, 3, 5))


def test_numerals_and_hyphenated_numbers() -> None:
    # The recognizer sometimes writes digits: "417-5529" is two numerals, seven digits.
    ws = words("my number is 417-5529 thanks")
    found = find(ws)
    assert covered(found, spans(ws, 3, 3)) and "number" in found[0].reason
    # A squeezed numeral reaches to its neighbours' edges, never past them.
    assert found[0].start >= ws[2].end - PAD_S - 1e-6 and found[0].end <= ws[4].start + PAD_END_S + 1e-6
    ws = words("i was born on March 3rd, 1985 in a small town")
    assert covered(find(ws), spans(ws, 4, 6))
    ws = words("the code is four-one-seven nine thanks")
    assert covered(find(ws), spans(ws, 3, 4))
    # Digits written one word each keep their own times: no reach past them into the next
    # sentence ("9, 3, 6, 7, 3, 2, 6, 1, 9." then "He should" after a pause).
    ws = [*words("9, 3, 6, 7, 3, 2, 6, 1, 9.", start=1.0), *words("He should make", start=5.0)]
    found = find(ws)
    assert covered(found, spans(ws, 0, 8)) and ws[8].end + PAD_END_S <= found[0].end < ws[9].start


def test_capitalised_names_inside_a_sentence() -> None:
    ws = words("Yesterday I met Maria Gonzalez at the station.")
    found = find(ws)
    assert covered(found, spans(ws, 3, 4)) and "capitalised" in found[0].reason
    assert not covered(found, spans(ws, 0, 0)), "a sentence's first word is capitalised anyway"
    assert find(words("Then I saw him in March, on a Monday. Okay.")) == []
    # A title alone does not make a name of the common words after it.
    assert find(words("is it the duty of the doctor to inform the police")) == []


def test_words_the_recognizer_is_unsure_of() -> None:
    # Misheard digits between number words keep the run together; sure words do not.
    unsure = [
        Word(w.text, w.start, w.end, 0.2 if w.text in ("you", "will") else 0.9)
        for w in words("seven eight you will seven two")
    ]
    assert covered(find(unsure), spans(unsure, 0, 5))
    sure = words("seven eight you will seven two")
    assert not covered(find(sure), spans(sure, 0, 5))
    # After a weaker naming phrase, a name heard as a common word is taken when it is unsure.
    heard = [Word(w.text, w.start, w.end, 0.3 if w.text in ("all", "in") else 0.9) for w in words("I'm all in here")]
    assert covered(find(heard), spans(heard, 1, 2))
    assert find(words("I'm all in here")) == []


def test_written_email_address() -> None:
    ws = words("write to jane.doe@gmail.com today")
    assert covered(find(ws), spans(ws, 2, 2))
    ws = words("it's jane at example.org")
    assert covered(find(ws), spans(ws, 1, 3))


def test_second_look_at_what_the_recognizer_skipped() -> None:
    from veil.speech.recognizer import FRAME_S, _gaps

    duration = 12.0
    loud = np.zeros(int(duration / FRAME_S), bool)
    loud[int(1 / FRAME_S) : int(3 / FRAME_S)] = True  # a sentence
    loud[int(4 / FRAME_S) : int(7 / FRAME_S)] = True  # digits the recognizer skipped
    loud[int(8 / FRAME_S) : int(10 / FRAME_S)] = True  # another sentence
    before = [Word(w, 1 + i * 0.4, 1.4 + i * 0.4) for i, w in enumerate(["he", "said", "it", "to", "me"])]
    after = [Word(w, 8 + i * 0.4, 8.4 + i * 0.4) for i, w in enumerate(["and", "then", "he", "left", "us"])]
    assert _gaps([*before, *after], loud, duration) == [pytest.approx((3.8, 7.2), abs=0.03)]
    # The alignment stretched a short word over them: the same stretch is looked at again.
    assert _gaps([*before, Word("don't", 3.0, 7.9), *after], loud, duration) == [pytest.approx((3.8, 7.2), abs=0.03)]
    # Words that account for the speech leave nothing to look at.
    digits = [Word("nine", 4 + i * 0.5, 4.5 + i * 0.5) for i in range(6)]
    assert _gaps([*before, *digits, *after], loud, duration) == []


def test_speech_nobody_could_make_out() -> None:
    from veil.speech.recognizer import FRAME_S, UNHEARD, _unheard

    duration = 10.0
    loud = np.zeros(int(duration / FRAME_S), bool)

    def voiced(a: float, b: float) -> None:
        loud[round(a / FRAME_S) : round(b / FRAME_S)] = True

    voiced(1, 3.1)  # a sentence, its last 0.1 s past its last word's end
    voiced(4.0, 4.16)  # a short digit the recognizer swallowed, with a one-frame break in it
    loud[round(4.04 / FRAME_S)] = False
    voiced(4.3, 4.6)  # ... said 0.14 s before the next one
    before = [Word(w, 1 + i * 0.4, 1.4 + i * 0.4) for i, w in enumerate(["he", "said", "it", "to", "me."])]
    digits = [Word(w, 4.7 + i * 0.4, 5.0 + i * 0.4) for i, w in enumerate(["nine", "eight", "five", "eight."])]
    unheard = _unheard([*before, *digits], loud, duration)
    # The sentence's loose end is within GAP_EDGE_S of its last word: not unheard speech.
    assert [(w.text, w.probability) for w in unheard] == [(UNHEARD, 0.0)]
    # (up to GAP_EDGE_S before the next word: word edges are loose)
    assert (unheard[0].start, unheard[0].end) == pytest.approx((4.0, 4.55), abs=0.03)
    # Words that account for all the speech leave nothing unheard.
    assert _unheard([*before, Word("six", 3.9, 4.65), *digits], loud, duration) == []


def test_unheard_speech_reaches_over_the_loud_runs_chained_to_it() -> None:
    """The voice-activity detector says whether a stretch is speech, loudness how far it goes:
    loud runs before the first voiced one, each under UNHEARD_PAUSE_S from the next, are part of
    it (Silero called a real 8 kHz digit string speech only from its fourth digit); a loud run a
    longer pause away is not, nor are loud runs alone."""
    from veil.speech.recognizer import FRAME_S, _unheard

    duration = 12.0
    n = int(duration / FRAME_S)
    loud, voiced = np.zeros(n, bool), np.zeros(n, bool)

    def mark(frames: np.ndarray, a: float, b: float) -> None:
        frames[round(a / FRAME_S) : round(b / FRAME_S)] = True

    for a, b in [(3.74, 3.94), (4.04, 4.16), (4.30, 4.46), (4.62, 4.76), (4.90, 5.70)]:
        mark(loud, a, b)  # digits 0.1-0.16 s apart
    mark(voiced, 4.62, 5.70)  # what the detector called speech
    mark(loud, 2.9, 3.2)  # a noise 0.54 s before the digits
    before = [Word(w, 0.5 + i * 0.4, 0.9 + i * 0.4) for i, w in enumerate(["the", "matter", "at", "hand."])]
    after = [Word("In", 6.24, 6.8)]
    (got,) = _unheard([*before, *after], voiced & loud, duration, loud)
    assert (got.start, got.end) == pytest.approx((3.74, 5.70), abs=0.03)
    (alone,) = _unheard([*before, *after], voiced & loud, duration)
    assert (alone.start, alone.end) == pytest.approx((4.62, 5.70), abs=0.03)
    assert _unheard([*before, *after], np.zeros(n, bool), duration, loud) == []
    # Two voiced stretches apart (a pause of 0.46 s) that the loud runs between them join: one.
    mark(voiced, 3.74, 3.94)
    voiced[round(4.04 / FRAME_S) : round(4.62 / FRAME_S)] = False
    (joined,) = _unheard([*before, *after], voiced & loud, duration, loud)
    assert (joined.start, joined.end) == pytest.approx((3.74, 5.70), abs=0.03)
    assert len(_unheard([*before, *after], voiced & loud, duration)) == 2


def test_a_decoding_loop_is_unheard_speech() -> None:
    """A segment whose own text repeats itself (compressing more than faster-whisper's
    threshold), or the same text three segments in a row, is speech Whisper could not read, not
    words: it comes back as unheard speech. A sentence said twice is words, though the window's
    compression ratio (which faster-whisper reports for every segment of it) fails the check."""
    from types import SimpleNamespace

    from veil.speech.recognizer import LOOPED, UNHEARD, _transcribe

    def segment(text: str, start: float, end: float) -> SimpleNamespace:
        parts = text.split()
        step = (end - start) / len(parts)
        ws = [SimpleNamespace(word=w, start=start + i * step, end=start + (i + 1) * step, probability=0.9)
              for i, w in enumerate(parts)]  # fmt: skip
        # The window's ratio, as faster-whisper gives it: over the loop's threshold for them all.
        return SimpleNamespace(start=start, end=end, text=" " + text, words=ws, compression_ratio=LOOPED + 0.04)

    def transcribed(*segments: SimpleNamespace) -> list[Word]:
        model = SimpleNamespace(transcribe=lambda *_a, **_k: (iter(segments), None))
        return _transcribe(model, np.zeros(RATE * 4, np.int16), 10.0, {})

    got = transcribed(segment("my name is", 1.0, 2.0), segment("I'm not sure " * 20, 2.0, 3.3))
    # A loop written without spaces is one "word" 20 s long with a number under it.
    unspaced = transcribed(segment("Tell me what happened,", 0.0, 1.4), segment("何三" + "八" * 300, 1.98, 22.0))
    assert [w.text for w in unspaced] == ["Tell", "me", "what", "happened,", UNHEARD]
    assert [w.text for w in got] == ["my", "name", "is", UNHEARD]
    assert (got[-1].start, got[-1].end, got[-1].probability) == (12.0, 13.3, 0.0)
    said = "he should obtain technical assistance from someone."
    twice = transcribed(segment(said, 0.0, 3.0), segment(said, 5.0, 8.0))
    assert [w.text for w in twice] == said.split() * 2
    # Sentences said twice inside one segment compress as well as a loop does (2.7 here).
    said = (
        "a single moment served to convince the youth that he was mistaken. a hand was laid with a powerful "
        "pressure on his arm, and the low voice of his mother muttered in his ear."
    )
    assert [w.text for w in transcribed(segment(f"{said} {said}", 0.0, 20.0))] == said.split() * 2
    thrice = transcribed(
        segment("my name is", 0.0, 1.0), *(segment("I can get a number.", t, t + 1) for t in (1, 2, 3))
    )
    assert [w.text for w in thrice] == ["my", "name", "is", UNHEARD, UNHEARD, UNHEARD]


def test_a_second_look_is_bounded_by_its_length() -> None:
    """A second look may write LOOK_TOKENS_PER_S tokens a second of its clip (twice what anyone
    says): a loop over a 3 s clip no longer runs on to Whisper's 448 tokens (6 s of decoding on
    2 cores). What comes back with more words than anyone says in that time is the loop cut
    short: unheard speech over the clip. A long clip, whose bound would near the model's limit,
    is not bounded; a clip's ordinary words come back as they are."""
    from types import SimpleNamespace

    from veil.speech.recognizer import LOOK_TOKENS_MAX, LOOK_TOKENS_PER_S, UNHEARD, _heard

    asked: list[object] = []

    def model_saying(text: str) -> SimpleNamespace:
        def transcribe(audio: np.ndarray, **options: object) -> tuple[object, None]:
            asked.append(options.get("max_new_tokens"))
            parts, seconds = text.split(), len(audio) / RATE
            step = seconds / len(parts)
            ws = [SimpleNamespace(word=w, start=i * step, end=(i + 1) * step, probability=0.9)
                  for i, w in enumerate(parts)]  # fmt: skip
            return iter([SimpleNamespace(start=0.0, end=seconds, text=" " + text, words=ws)]), None

        return SimpleNamespace(transcribe=transcribe)

    samples = np.zeros(RATE * 40, np.int16)
    sentence = "Following this stitch, when news are out."
    said = _heard(model_saying(sentence), samples, 10.0, 13.3)
    assert [w.text for w in said] == sentence.split()
    # 3.3 s may write 20 + 15 x 3.3 tokens; 30 words in it (9 a second, no phrase said thrice,
    # so `_looped` does not see it) are a loop cut short.
    assert asked[-1] == 20 + int(LOOK_TOKENS_PER_S * 3.3)
    cut = _heard(model_saying(" ".join(f"w{i}" for i in range(30))), samples, 10.0, 13.3)
    assert [(w.text, w.start, w.end, w.probability) for w in cut] == [(UNHEARD, 10.0, 13.3, 0.0)]
    _heard(model_saying("a long clip"), samples, 0.0, 30.0)
    assert asked[-1] is None and 20 + LOOK_TOKENS_PER_S * 30.0 > LOOK_TOKENS_MAX


def test_a_decoding_loop_is_heard_again_in_pieces() -> None:
    """A loop over a whole window (whisper-base wrote "二 二 二 ..." for two sentences and a number)
    is transcribed again in pieces cut at the pauses, which Whisper reads; a piece that loops
    again is cut in two, and what loops down to LOOP_MIN_S stays unheard speech."""
    from types import SimpleNamespace

    from veil.speech.recognizer import LOOP_MIN_S, LOOP_PIECE_S, UNHEARD, _relisten_loops

    duration, pause_at = 24.0, (6.0, 13.0, 19.0)
    samples = np.zeros(int(duration * RATE), np.int16)
    loud = np.ones(int(duration / 0.02), bool)
    for t in pause_at:  # 0.4 s pauses between the sentences
        loud[int(t / 0.02) : int((t + 0.4) / 0.02)] = False
    heard: list[float] = []

    def transcribe(audio: np.ndarray, **_options: object) -> tuple[object, None]:
        seconds = len(audio) / RATE
        heard.append(seconds)
        if seconds > LOOP_PIECE_S or stubborn:
            text = "二 " * 60
            w = [SimpleNamespace(word="二", start=0.0, end=seconds, probability=0.5)]
            return iter([SimpleNamespace(start=0.0, end=seconds, text=text, words=w)]), None
        w = [SimpleNamespace(word="word", start=0.1, end=seconds - 0.1, probability=0.9)]
        return iter([SimpleNamespace(start=0.0, end=seconds, text="word", words=w)]), None

    model = SimpleNamespace(transcribe=transcribe)
    first = [Word("my", 0.0, 0.3), Word(UNHEARD, 0.3, 23.9, 0.0)]
    stubborn = False
    got = _relisten_loops(model, samples, first, loud)
    assert UNHEARD not in [w.text for w in got]
    assert all(s <= LOOP_PIECE_S for s in heard) and len(heard) >= 3
    # Cut in the middle of the pauses: no piece starts or ends inside a sentence.
    cuts = sorted({round(w.start - 0.1, 1) for w in got if w.text == "word"} - {0.3})
    assert all(any(t <= c <= t + 0.4 for t in pause_at) for c in cuts), cuts
    # Whisper loops on every piece: each is cut in two once (at least LOOP_MIN_S a half), and the
    # stretch stays unheard speech from end to end (so it is still muted).
    pieces, stubborn, heard[:] = len(heard), True, []
    got = _relisten_loops(model, samples, first, loud)
    assert [w.text for w in got][0] == "my" and all(w.text == UNHEARD for w in got[1:])
    assert got[1].start == pytest.approx(0.3) and got[-1].end == pytest.approx(23.9)
    assert all(b.start == pytest.approx(a.end) for a, b in zip(got[1:], got[2:], strict=False))
    assert len(heard) == 3 * pieces and min(heard) >= LOOP_MIN_S


def test_a_long_skipped_stretch_is_heard_again_in_pieces() -> None:
    """Whisper skipped 21 s of a window (two sentences and the number between them) and skipped
    them again when they were heard as one clip: the second look then hears them in pieces."""
    from types import SimpleNamespace

    from veil.speech.recognizer import LOOP_PIECE_S, _look_again

    duration = 30.0
    samples = np.zeros(int(duration * RATE), np.int16)
    loud = np.ones(int(duration / 0.02), bool)
    for t in (15.0, 20.0):  # pauses
        loud[int(t / 0.02) : int((t + 0.4) / 0.02)] = False
    heard: list[float] = []

    def transcribe(audio: np.ndarray, **_options: object) -> tuple[object, None]:
        seconds = len(audio) / RATE
        heard.append(seconds)
        if seconds > LOOP_PIECE_S:  # a long clip: skipped again
            return iter([]), None
        w = [SimpleNamespace(word="four", start=0.1, end=seconds - 0.1, probability=0.9)]
        return iter([SimpleNamespace(start=0.0, end=seconds, text="four", words=w)]), None

    first = [Word("before.", 8.7, 9.2), Word("of", 30.0, 30.2)]
    got = _look_again(SimpleNamespace(transcribe=transcribe), samples, first, [(9.2, 29.9)], lambda o, n: True, loud)
    texts = [w.text for w in got]
    assert texts[0] == "before." and texts[-1] == "of" and set(texts[1:-1]) == {"four"} and len(texts) >= 5
    assert heard[0] == pytest.approx(20.7) and max(heard[1:]) <= LOOP_PIECE_S  # whole, then pieces
    # The pieces are cut in the pauses.
    assert any(15.0 <= w.start - 0.1 <= 15.4 for w in got) and any(20.0 <= w.start - 0.1 <= 20.4 for w in got)

    # A long stretch that Whisper reads whole keeps those words (more context): no pieces.
    def reads(covered: float) -> SimpleNamespace:
        """A model that, for a clip of more than LOOP_PIECE_S, writes words over its first
        `covered` share (and over all of a shorter clip), one every 0.5 s."""

        def transcribe(audio: np.ndarray, **_options: object) -> tuple[object, None]:
            seconds = len(audio) / RATE
            heard.append(seconds)
            until = seconds * (covered if seconds > LOOP_PIECE_S else 1.0)
            ws = [SimpleNamespace(word=f"w{i}", start=t, end=t + 0.45, probability=0.9)
                  for i, t in enumerate(np.arange(0.0, until - 0.45, 0.5))]  # fmt: skip
            text = " ".join(w.word for w in ws)  # no loop: every word differs
            return iter([SimpleNamespace(start=0.0, end=seconds, text=text, words=ws)]), None

        return SimpleNamespace(transcribe=transcribe)

    heard.clear()
    got = _look_again(reads(1.0), samples, first, [(9.2, 29.9)], lambda o, n: True, loud)
    assert len(heard) == 1 and len(got) > 30
    # ... but words over only a sixth of it (Whisper read 3 s of 17 and skipped the rest): the
    # pieces, which account for more of the speech, are taken.
    heard.clear()
    got = _look_again(reads(1 / 6), samples, first, [(9.2, 29.9)], lambda o, n: True, loud)
    assert len(heard) > 1 and got[-2].end > 29.0


@needs_speech
def test_a_tone_is_not_unheard_speech() -> None:
    """Loud is not speech: two seconds of a 440 Hz tone (no words in it) come back as nothing,
    so nothing is muted (Silero VAD decides what unheard speech is)."""
    from veil.speech.recognizer import recognize_samples

    tone = (np.sin(2 * np.pi * 440 * np.arange(2 * RATE) / RATE) * 8000).astype(np.int16)
    words = recognize_samples(tone)
    assert find(words, 2.0) == [], words


def test_unheard_speech_beside_a_number_is_part_of_it() -> None:
    from veil.speech.recognizer import UNHEARD

    def heard(text: str, start: float) -> list[Word]:
        return words(text, start=start)

    before, digits = heard("he said it to me.", 1.0), heard("nine eight five eight.", 4.7)
    # A swallowed first digit, a pause away from the sentence before: the number starts there.
    found = find([*before, Word(UNHEARD, 4.0, 4.6, 0.0), *digits])
    assert covered(found, (4.0, digits[-1].end)) and "could not make out" in found[-1].reason
    # Unheard speech running on from the sentence's last word (under 0.3 s) is that word's end.
    found = find([*before, Word(UNHEARD, before[-1].end + 0.15, 3.1, 0.0), *digits])
    assert [f.start for f in found] == [pytest.approx(digits[0].start - PAD_S)]
    # Digits written as other words ("Chapter 17."): the unheard speech before the unsure word
    # makes a short numeral a number.
    chapter = [Word("Chapter", 4.7, 5.9, 0.3), Word("17.", 5.9, 6.5, 0.9)]
    found = find([*before, Word(UNHEARD, 3.4, 4.6, 0.0), *chapter])
    assert covered(found, (3.4, 6.5))
    assert find([*before, *chapter]) == []
    # Alone, or beside ordinary words, unheard speech is not muted; nor does it make the next
    # sentence's first word a name.
    assert find([*before, Word(UNHEARD, 3.4, 4.3, 0.0), *heard("Everybody was there.", 5.0)]) == []
    assert find([*heard("at first", 1.0), Word(UNHEARD, 2.0, 2.5, 0.0)]) == []
    # A second or more of it is muted on its own: a number dropped whole, or anything else.
    found = find([*before, Word(UNHEARD, 3.4, 4.6, 0.0), *heard("Everybody was there.", 5.0)])
    assert covered(found, (3.4, 4.6)) and found[0].reason == "speech the recognizer could not make out"
    # ... and after a number cue, even a short stretch: the number itself, lost.
    cue = heard("my account number is", 1.0)
    assert covered(find([*cue, Word(UNHEARD, 3.0, 3.5, 0.0), *heard("thanks", 4.0)]), (3.0, 3.5))


def test_a_number_heard_as_other_words_after_number_is() -> None:
    """After "number is" the words said in the same breath are the number, whatever they came
    out as, up to the last one that can be part of a number; sure words after it stay."""
    ws = words("my phone number is time for it, for it, for seven. and i live here", pause_after={10: 0.2})
    found = find(ws)
    assert covered(found, spans(ws, 4, 10)) and "after" in found[0].reason
    assert all(f.end < ws[12].start for f in found), "the words after the number are not muted"
    # Nothing number-like after the phrase: nothing found; nor after a pause of a second.
    assert find(words("the number is growing every year")) == []
    assert find(words("my number is time for it", pause_after={3: 1.0})) == []


def test_unheard_stretches_with_short_pauses_are_one_stretch() -> None:
    """Two stretches nobody could make out, under MAX_GAP_S apart with no word between, are one
    (a number read out in groups): muted together when they add up to UNHEARD_ALONE_S; an end
    piece running on into a word is that word's edge."""
    from veil.speech.recognizer import UNHEARD

    before, after = words("he said it to me.", 1.0), words("If they went home.", 12.05)
    a, b = Word(UNHEARD, 4.0, 4.7, 0.0), Word(UNHEARD, 5.1, 5.55, 0.0)
    found = find([*before, a, b, *after])
    assert covered(found, (4.0, 5.55)), found
    # Each alone is under a second: nothing; apart by more than MAX_GAP_S: nothing either.
    assert find([*before, a, *after]) == []
    assert find([*before, a, Word(UNHEARD, 5.6, 6.0, 0.0), *after]) == []
    # The second runs on into the next sentence's first word: that word's edge, not counted.
    late = words("If they went home.", 5.7)
    assert find([*before, a, b, *late]) == []
    # A word the alignment stretched between two such stretches is one too ("The" over 0.74 s
    # between two runs of digits nobody made out); a word of its own length keeps them apart.
    c, d = Word(UNHEARD, 4.0, 5.2, 0.0), Word(UNHEARD, 6.1, 7.5, 0.0)
    stretched = find([*before, c, Word("The", 5.35, 6.05, 0.8), d, *after])
    assert covered(stretched, (4.0, 7.5)) and len(stretched) == 1, stretched
    plain = find([*before, c, Word("The", 5.35, 5.6, 0.8), d, *after])
    assert not covered(plain, (5.2, 6.1)), plain


def test_a_name_goes_on_into_a_stretched_word_after_it() -> None:
    """The word right after a name found after a naming phrase, lasting far longer than a word of
    its letters does ("from" over 0.72 s), holds the name's end: the range goes on to where that
    word would start at its typical length. A word of usual length after it moves nothing."""
    ws = [Word("Call", 7.68, 8.36, 0.22), Word("me,", 8.36, 8.76, 0.98), Word("Therman", 9.0, 9.34, 0.14)]
    tail = [Word("the", 10.06, 10.26, 0.94), Word("council.", 10.26, 10.8, 0.7)]
    found = find([*ws, Word("from", 9.34, 10.06, 0.69), *tail])
    assert covered(found, (9.0, 9.78)), found
    assert all(f.end < 10.06 for f in found), "the stretched word's own sound stays"
    usual = find([*ws, Word("from", 9.34, 9.62, 0.69), *[Word(w.text, w.start - 0.44, w.end - 0.44) for w in tail]])
    assert max(f.end for f in usual) == pytest.approx(9.34 + PAD_END_S)


def test_an_unsure_word_stretched_over_seconds_is_speech_nobody_made_out() -> None:
    """Whisper base wrote nothing for eight digits read between two sentences and its alignment
    stretched the next sentence's first words over them ("A stitching", 3.3 s at confidence
    0.47, before "time saves ..."): a word the recognizer is unsure of that holds a second or
    more of sound past its typical time holds speech no word was written for, muted as unheard
    speech is, its range running on over the sound past its edges as a number's does. The same
    word said sure, stretched by less, stretched over a pause (quiet), or laid over its
    neighbours' times is left alone."""
    before = words("we are closely concerned with her.", 10.0)
    after = [Word("time", 16.7, 17.18, 0.97), Word("saves", 17.18, 17.8, 0.78), Word("exposure.", 17.8, 18.4, 1.0)]
    digits = (13.14, 15.66)
    loud = np.zeros(int(19 / 0.02), bool)
    for a, b in [(10.0, 12.5), digits, (16.1, 18.4)]:
        loud[int(a / 0.02) : int(b / 0.02)] = True

    def heard(p: float, start: float = 13.42) -> list:
        said = [Word("A", start - 0.48, start, 0.82), Word("stitching", start, 16.7, p)]
        return find([*before, *said, *after], 19.0, loud)

    def over(found: list, span: tuple[float, float]) -> bool:
        return any(f.start < span[1] and f.end > span[0] for f in found)

    assert covered(heard(0.47), digits), heard(0.47)
    assert not over(heard(0.9), digits), "a sure word is a word"
    assert not over(heard(0.47, start=16.0), (16.0, 16.4)), "0.7 s is not a second past its time"
    quiet = np.zeros_like(loud)
    quiet[int(10.0 / 0.02) : int(12.5 / 0.02)] = True
    quiet[int(16.1 / 0.02) : int(18.4 / 0.02)] = True
    paused = find([*before, Word("A", 12.94, 13.42, 0.82), Word("stitching", 13.42, 16.7, 0.47), *after], 19.0, quiet)
    assert not over(paused, (13.42, 16.0)), "stretched over a pause, it holds nothing"
    # A made-up phrase laid over words also written ("I'm" across "her." and "time", the rest
    # of it in no time at all), in the recognizer's order (by start), is not placed by what was
    # said: this rule leaves it alone.
    made_up = [Word("I'm", 12.0, 16.75, 0.13), after[0], Word("going", 16.75, 16.75, 0.05), *after[1:]]
    assert all("stretched" not in f.reason for f in find([*before, *made_up], 19.0, loud))
    placed = [Word("I'm", 12.1, 16.7, 0.13), *after]
    assert any("stretched" in f.reason for f in find([*before, *placed], 19.0, loud)), "the same, placed"


def test_digits_misheard_as_words() -> None:
    # A word the recognizer is unsure of right against a number's end is a misheard digit.
    ws = words("my card is nine eight five eight and then", step=0.32)
    unsure = [Word(w.text, w.start, w.end, 0.25 if i == 7 else 0.95) for i, w in enumerate(ws)]
    assert covered(find(unsure), spans(unsure, 3, 7))
    assert not covered(find(ws), spans(ws, 3, 7))
    # After a pause, an unsure word's time may be stretched over a digit: reach one digit into it.
    ws = [Word("egg?", 1.0, 2.3, 0.07), *words("eight four seven one five", start=2.7)]
    found = find(ws)
    assert found[0].start == pytest.approx(2.3 - DIGIT_S - PAD_S)
    assert find([Word("egg?", 1.0, 2.3, 0.9), *words("eight four seven one five", start=2.7)])[0].start > 2.3
    # "free" for "three" counts between digits; "reach me on" is a cue for a short number.
    ws = words("you can reach me on free zero free zero free zero then")
    assert covered(find(ws), spans(ws, 5, 10))
    assert find(words("it was free to get in")) == []
    # "or" for "four" joins digits (a lone "six" before it is no number); "one or two" is not one.
    ws = words("it is six or zero seven two seven nine then")
    assert covered(find(ws), spans(ws, 2, 8))
    assert find(words("we saw one or two of them")) == []
    # An unsure word after a pause that its own letters fill is a word, not a stretched digit.
    ws = [*words("eight four seven one five", start=1.0), Word("According", 3.2, 3.58, 0.3)]
    assert find(ws)[0].end == pytest.approx(ws[4].end + PAD_END_S)
    # An unsure word right against the number counts up to one digit's time: the alignment
    # stretched "and" over the pause into the next sentence.
    ws = [*words("nine two four three zero eight two", start=1.0), Word("and", 3.4, 4.7, 0.2), Word("he", 4.7, 5.0)]
    found = find(ws)
    assert covered(found, spans(ws, 0, 6))
    assert found[0].end == pytest.approx(3.4 + DIGIT_S + PAD_END_S)
    # Numbers are read in groups: a short group soon after a found number is more of it.
    ws = words("four one seven you know two six and that was it", pause_after={4: 0.3})
    found = find(ws)
    assert covered(found, spans(ws, 0, 2)) and covered(found, spans(ws, 5, 6))
    assert not covered(found, spans(ws, 8, 10))


# ----------------------------------------------------------------------------- end to end


def _load(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        parts = [g.to_ndarray().reshape(-1) for f in c.decode(audio=0) for g in resampler.resample(f)]
    return np.concatenate(parts)


def _digit(d: int, take: int) -> np.ndarray:
    """One Free Spoken Digit Dataset recording (speaker theo, 8 kHz), trimmed and brought to speech level."""
    x = _load(DIGITS / f"{d}_theo_{take}.wav").astype(np.float64)
    loud = np.nonzero(np.abs(x) > 200)[0]
    x = x[loud[0] : loud[-1] + 1]
    return np.clip(x * 3000 / np.sqrt(np.mean(x**2)), -32768, 32767).astype(np.int16)


def _write_wav(path: Path, x: np.ndarray) -> None:
    with av.open(str(path), "w") as c:
        stream = c.add_stream("pcm_s16le", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(x[None, :].astype(np.int16), format="s16", layout="mono")
        frame.sample_rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            c.mux(packet)


def speech_video(path: Path, fps: int = 5) -> tuple[Path, tuple[float, float]]:
    """A grey 160x120 video at `fps` whose AAC sound is sentence, pause, eight digits, pause,
    sentence; returns it and the digits' span in seconds."""
    first, second = sorted(SENTENCE.glob("*.flac"))[:2]
    pause, between = np.zeros(RATE // 2, np.int16), np.zeros(RATE // 8, np.int16)
    number = [_digit(d, take) for take, d in enumerate([4, 1, 7, 5, 5, 2, 9, 3])]
    digits = np.concatenate([part for clip in number for part in (clip, between)][:-1])
    head = np.concatenate([_load(first), pause])
    sound = np.concatenate([head, digits, pause, _load(second)])
    frames = math.ceil(len(sound) / RATE * fps)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        audio = out.add_stream("aac", rate=RATE, layout="mono")
        for i in range(frames):
            image = np.full((120, 160, 3), 90 + (i % 20), np.uint8)
            out.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(video.encode(None))
        for i in range(0, len(sound), 1024):
            chunk = av.AudioFrame.from_ndarray(sound[None, i : i + 1024], format="s16", layout="mono")
            chunk.sample_rate, chunk.pts = RATE, i
            out.mux(audio.encode(chunk))
        out.mux(audio.encode(None))
    return path, (len(head) / RATE, (len(head) + len(digits)) / RATE)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[int, int], tuple[int, int]]:
    """A real sentence, eight digits read out by a real voice, a real sentence (all real speech)."""
    tmp = tmp_path_factory.mktemp("speech")
    first, second = sorted(SENTENCE.glob("*.flac"))[:2]
    a, b = _load(first), _load(second)
    pause, between = np.zeros(RATE // 2, np.int16), np.zeros(RATE // 8, np.int16)
    number = [_digit(d, take) for d, take in zip([4, 1, 7, 5, 5, 2, 9, 3], [0, 1, 2, 3, 4, 5, 6, 7], strict=True)]
    digits = np.concatenate([part for clip in number for part in (clip, between)][:-1])
    x = np.concatenate([a, pause, digits, pause, b])
    start = len(a) + len(pause)
    path = tmp / "call.wav"
    _write_wav(path, x)
    return path, (start, start + len(digits)), (0, len(a))


@pytest.fixture(scope="module")
def muted(recording, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """`veil call.wav -o out.wav --audio-pii mute --report`, run once for the tests below."""
    if not available() or not SENTENCE.is_dir() or not DIGITS.is_dir():
        pytest.skip("speech extra (veil[speech]) or ../shared/data/voices absent")
    source = recording[0]
    tmp = tmp_path_factory.mktemp("muted")
    out, report = tmp / "out.wav", tmp / "report.json"
    run_cli(source, "-o", out, "--audio-pii", "mute", "--report", report, check=True)
    return tmp, out, report


@needs_speech
def test_found_ranges_are_muted_and_the_rest_is_bit_exact(recording, muted) -> None:
    source = recording[0]
    tmp, out, report = muted
    x, y = _load(source), _load(out)
    assert len(x) == len(y)
    text = report.read_text()
    findings = json.loads(text)["files"][0]["audio_pii"]["findings"]
    inside = np.zeros(len(x), bool)
    near = np.zeros(len(x), bool)
    for f in findings:
        a, b = int(round(f["start"] * RATE)), int(round(f["end"] * RATE))
        inside[a:b] = True
        near[max(0, a - int(0.006 * RATE)) : b + int(0.006 * RATE)] = True
        assert f["reason"] and f["end"] > f["start"]
    assert not np.any(y[inside]), "a found range is still audible"
    assert np.array_equal(x[~near], y[~near]), "audio outside the ranges changed"
    # The report holds ranges and reasons, never the words; nothing else is written.
    for word in ("seven", "phone", "nine", "words"):
        assert word not in text.replace("spoken number", "").replace("phone, account", "")
    assert sorted(p.name for p in tmp.iterdir() if not p.name.startswith("report")) == ["out.wav"]


@needs_speech
def test_number_in_real_speech_is_muted_end_to_end(recording, muted) -> None:
    source, (a, b), (s0, s1) = recording
    x, y = _load(source), _load(muted[1])
    assert np.mean(y[a:b] == 0) >= 0.95, "the number is still audible"
    assert np.mean(x[s0:s1] == y[s0:s1]) >= 0.9, "the sentence before it was muted too"


@needs_speech
def test_listening_shows_progress_and_the_summary_says_what_was_applied(
    recording, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Recognition takes minutes on an hour of sound: it shows progress (plain lines in a log,
    in seconds of sound and x real time), and the file's summary line says the audio was muted
    where the speech was found (it said "audio keep", the option's default, before)."""
    import veil.progress
    from veil.cli import main

    monkeypatch.setattr(veil.progress, "PLAIN_EVERY_S", 0.0)
    assert main([str(recording[0]), "-o", str(tmp_path / "out.wav"), "--audio-pii", "mute"]) == 0
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if "listening for spoken personal data" in x]
    assert lines and " s of sound (" in lines[-1] and "x real time" in lines[-1], err
    assert re.search(r": (\d+)/\1 s of sound \(100 %\)", lines[-1]), lines[-1]
    done = next(x for x in err.splitlines() if x.startswith("done "))
    assert "audio mute (" in done and " ranges)" in done, done


@needs_speech
def test_transcript_only_when_asked(recording, tmp_path: Path) -> None:
    # In process, on the number alone: the CLI path is the one the tests above ran.
    from veil.speech.apply import analyse

    source, (a, b), _ = recording
    clip = tmp_path / "number.wav"
    _write_wav(clip, _load(source)[a - RATE // 4 : b + RATE // 4])
    transcript = tmp_path / "words.json"
    findings, record = analyse(clip, transcript)
    words_seen = [w["word"] for w in json.loads(transcript.read_text())["words"]]
    assert len(words_seen) >= 4 and all(isinstance(w, str) for w in words_seen)
    assert findings and record["transcript"] == str(transcript)
    assert "words" not in json.dumps(record["findings"])


def test_nothing_found_keeps_the_audio() -> None:
    # AudioEdit's empty ranges mean the whole track: no findings must never become that.
    assert pii_edit("mute", []).mode == "keep"
    edit = pii_edit("bleep", find(words("my account number is one two three four")))
    assert edit.mode == "bleep" and len(edit.ranges) == 1


def test_one_transcript_for_several_inputs_is_refused(tmp_path: Path) -> None:
    """--transcript names one file: two inputs with sound would overwrite each other's words
    there (or two workers write it at once), so the run and the scan refuse before any work."""
    from test_matrix import make_clip

    a, b = make_clip(tmp_path / "a.mp4"), make_clip(tmp_path / "b.mp4")
    words = tmp_path / "words.json"
    for command in ([], ["scan"]):
        proc = run_cli(*command, a, b, "-o", tmp_path / "out", "--transcript", words)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "--transcript" in proc.stderr.strip().splitlines()[-1] and "2 inputs" in proc.stderr
        assert not words.exists() and not (tmp_path / "out").exists()


def test_audio_pii_contradicts_audio(tmp_path: Path) -> None:
    proc = run_cli(tmp_path / "x.wav", "-o", tmp_path / "y.wav", "--audio-pii", "mute", "--audio", "bleep")
    assert proc.returncode != 0 and "--audio-pii" in proc.stderr and "Traceback" not in proc.stderr


@needs_speech
def test_a_number_is_muted_where_it_is_in_a_part_of_a_video(tmp_path: Path) -> None:
    """With --start the output's sound starts there too: the ranges found count from it, so the
    number is muted where it is said, not --start seconds later."""
    if not SENTENCE.is_dir() or not DIGITS.is_dir():
        pytest.skip("../shared/data/voices absent")
    from veil.speech.recognizer import load_audio

    video, (a, b) = speech_video(tmp_path / "call.mp4")
    out, report = tmp_path / "out.mp4", tmp_path / "report.json"
    start = 5.0
    run_cli(video, "-o", out, "--audio-pii", "mute", "--start", f"{start:g}", "--report", report, check=True)
    y = load_audio(out)
    assert y is not None
    digits = y[int((a - start) * RATE) : int((b - start) * RATE)]
    assert np.mean(np.abs(digits) < 50) >= 0.95, "the number is still audible"
    record = json.loads(report.read_text())["files"][0]["audio_pii"]
    assert record["times_from"].startswith("--start") and all(f["start"] < b - start for f in record["findings"])


@needs_speech
@pytest.mark.parametrize("runner", ["segmented", "ray", "scan-render"])
def test_audio_pii_on_every_file_runner(runner: str, tmp_path: Path) -> None:
    """--audio-pii and --transcript on segments (-j 2, short segments: a file whose speech is
    searched stays whole), on Ray, and given to `veil scan` (its plan's audio section mutes what
    was found, and `veil render` applies it): the number is muted where it is said, and the
    words are written where asked. Live refuses both (test_matrix.py)."""
    from test_matrix import RUNNERS

    from veil.speech.recognizer import load_audio

    video, (a, b) = speech_video(tmp_path / "call.mp4")
    out, words = tmp_path / "out.mp4", tmp_path / "words.json"
    proc = RUNNERS[runner](video, out, [], ["--audio-pii", "mute", "--transcript", str(words)])
    assert proc.returncode == 0, proc.stderr
    (record,) = json.loads(out.with_suffix(".json").read_text())["files"]
    assert record["verify"]["ok"]
    # --transcript too: written where asked (by the scan for scan and render), words with times.
    said = json.loads(words.read_text())["words"]
    assert len(said) >= 8 and all(w["end"] >= w["start"] >= 0 for w in said)
    y = load_audio(out)
    assert y is not None
    assert np.mean(np.abs(y[int(a * RATE) : int(b * RATE)]) < 50) >= 0.95, "the number is still audible"
    assert np.mean(np.abs(y[RATE : 5 * RATE]) >= 50) > 0.3, "the first sentence was muted too"

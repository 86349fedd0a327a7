"""Voice benchmark: how much does `--audio disguise` hide, and how much does it keep?

Attacker: Resemblyzer 0.1.4 (a GE2E speaker-verification network whose weights ship in its
wheel), scoring cosine similarity of utterance embeddings. Trials on ../shared/data/voices:
same-speaker pairs among the 3 speakers' 10 utterances each, different-speaker pairs between
those 30 and the 50 single utterances of other speakers (and across the 3). Equal error rate:
- original vs original (the baseline);
- disguised test vs original enrolment (an attacker who does not know about the disguise);
- disguised vs disguised (an attacker who disguises the enrolment too; the curve rows use the
  same alpha for both, the strongest such attacker; the default row draws alpha per file).

Intelligibility: pocketsphinx 5.1.1's English model. Word error rate of processed speech
against the recognizer's own transcript of the original, beside two references that show how
brittle that recognizer is: faint white noise at -50 dBFS, and a 16 -> 22.05 -> 16 kHz
resampling round trip.

Speed: disguise time against the audio's duration (x real time), in this process.

Run: make bench-voice  (or .venv-voice/bin/python bench/voice_bench.py [--quick])
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import av
import numpy as np
from scipy.signal import resample_poly

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from veil.media.audio import DISGUISE_ALPHA, AudioEdit, Editor  # noqa: E402

VOICES = REPO.parent / "shared" / "data" / "voices"
RATE = 16000
CURVE = (0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.5)


def load(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        x = np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1)
        assert c.streams.audio[0].codec_context.sample_rate == RATE
    return x[0]  # int16 mono


def disguise(x: np.ndarray, alpha: float | None) -> tuple[np.ndarray, float]:
    """veil's own disguise (the same Editor the sink uses); alpha None = veil's random draw."""
    started = time.perf_counter()
    editor = Editor(AudioEdit("disguise"), RATE, 1, alpha=alpha)
    y = np.concatenate([editor.push(x[None, :]), editor.flush()], axis=1)[0]
    return y, time.perf_counter() - started


def faint_noise(x: np.ndarray, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(x.shape) * 10 ** (-50 / 20) * 32768
    return np.clip(np.round(x + noise), -32768, 32767).astype(np.int16)


def round_trip(x: np.ndarray) -> np.ndarray:
    y = resample_poly(resample_poly(x.astype(np.float64), 441, 320), 320, 441)[: len(x)]
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def eer(scores: np.ndarray, same: np.ndarray) -> float:
    """Equal error rate: the threshold where false accepts equal false rejects."""
    order = np.argsort(-scores)
    same = same[order]
    n_same, n_diff = same.sum(), (~same).sum()
    # Accept the top k: false rejects = same not yet accepted, false accepts = diff accepted.
    far = np.concatenate([[0], np.cumsum(~same)]) / n_diff
    frr = 1 - np.concatenate([[0], np.cumsum(same)]) / n_same
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2)


def word_errors(ref: list[str], hyp: list[str]) -> int:
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)]


class Recognizer:
    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self.decoder = Decoder(samprate=RATE, loglevel="FATAL")

    def __call__(self, x: np.ndarray) -> list[str]:
        self.decoder.start_utt()
        self.decoder.process_raw(x.astype("<i2").tobytes(), full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr.split() if hyp else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer curve points and WER files")
    parser.add_argument("--wer-files", type=int, default=12, help="utterances transcribed per condition")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--alphas", help="comma list of McAdams coefficients for the curve ('' for none)")
    parser.add_argument("--no-references", action="store_true", help="skip the two WER reference rows")
    args = parser.parse_args()
    if not (VOICES / "speakers").is_dir():
        print(f"voice bench: {VOICES} absent; skipped")
        return 0
    from resemblyzer import VoiceEncoder, preprocess_wav

    speakers = sorted(p for p in (VOICES / "speakers").iterdir() if p.is_dir())
    files = [(s.name, f) for s in speakers for f in sorted(s.glob("*.flac"))]
    files += [(f"other-{f.stem}", f) for f in sorted((VOICES / "others").glob("*.flac"))]
    labels = np.array([name for name, _ in files])
    audio = [load(f) for _, f in files]
    seconds = sum(len(x) for x in audio) / RATE
    targets = np.flatnonzero(~np.char.startswith(labels.astype(str), "other-"))
    print(
        f"{len(files)} utterances ({seconds:.0f} s): {len(targets)} from {len(speakers)} speakers, "
        f"{len(files) - len(targets)} others"
    )

    encoder = VoiceEncoder("cpu", verbose=False)

    def embed(xs: list[np.ndarray]) -> np.ndarray:
        return np.stack([encoder.embed_utterance(preprocess_wav(x.astype(np.float32) / 32768, RATE)) for x in xs])

    # Trials: enrolment = one of the 30 target utterances; test = any other utterance.
    enrol_idx, test_idx, same = [], [], []
    for i in targets:
        for j in range(len(files)):
            if j == i or (j in targets and j < i and labels[j] != labels[i]):
                continue  # no self-trial; each cross-target impostor pair once
            enrol_idx.append(i)
            test_idx.append(j)
            same.append(labels[i] == labels[j])
    enrol_idx, test_idx, same = np.array(enrol_idx), np.array(test_idx), np.array(same)
    print(f"trials: {same.sum()} same-speaker, {(~same).sum()} different-speaker")

    def score(enrol: np.ndarray, test: np.ndarray) -> float:
        return eer(np.einsum("ij,ij->i", enrol[enrol_idx], test[test_idx]), same)

    wer_idx = list(targets[:: max(1, len(targets) // args.wer_files)][: args.wer_files])
    recognizer = Recognizer()
    started = time.perf_counter()
    reference = {i: recognizer(audio[i]) for i in wer_idx}
    asr_seconds = time.perf_counter() - started
    ref_words = sum(len(w) for w in reference.values())
    print(
        f"WER on {len(wer_idx)} utterances, {ref_words} words of the recognizer's own transcripts "
        f"({asr_seconds:.0f} s to transcribe)"
    )

    def wer(processed: list[np.ndarray]) -> float:
        errors = sum(word_errors(reference[i], recognizer(processed[i])) for i in wer_idx)
        return errors / max(1, ref_words)

    original = embed(audio)
    rows: list[dict[str, object]] = []

    baseline = round(score(original, original), 4)
    print(f"baseline EER, original vs original: {baseline:.3f}")

    def row(name: str, processed: list[np.ndarray], disguise_s: float | None = None) -> None:
        """One table row; the references (no disguise time) are scored for WER only."""
        entry: dict[str, object] = {"condition": name, "eer_original": baseline}
        if disguise_s is not None:
            emb = embed(processed)
            entry["eer_naive"] = round(score(original, emb), 4)
            entry["eer_informed"] = round(score(emb, emb), 4)
            entry["x_real_time"] = round(seconds / disguise_s, 1)
        entry["wer"] = round(wer(processed), 3)
        rows.append(entry)
        eers = (
            f"EER disguised/orig-enrol {entry['eer_naive']:.3f}  disguised/disguised {entry['eer_informed']:.3f}"
            f"  {entry['x_real_time']:>5}x real time"
            if disguise_s is not None
            else " " * 73
        )
        print(f"{name:<28} {eers}  WER {entry['wer']:.3f}", flush=True)

    if not args.no_references:
        row("reference: -50 dBFS noise", [faint_noise(x, k) for k, x in enumerate(audio)])
        row("reference: resample 16-22-16k", [round_trip(x) for x in audio])
    if args.alphas is not None:
        curve = [float(a) for a in args.alphas.split(",") if a]
    else:
        curve = list(CURVE[1::2] if args.quick else CURVE)
    for alpha in curve:
        outs = [disguise(x, alpha) for x in audio]
        row(f"disguise alpha={alpha:.2f}", [y for y, _ in outs], sum(t for _, t in outs))
    outs = [disguise(x, None) for x in audio]
    row(
        f"DEFAULT random {DISGUISE_ALPHA[0]:.2f}-{DISGUISE_ALPHA[1]:.2f}",
        [y for y, _ in outs],
        sum(t for _, t in outs),
    )
    # Mute: exact digital silence over a range in the middle of every file.
    mute_ok = True
    for x in audio:
        a, b = len(x) / RATE * 0.25, len(x) / RATE * 0.75
        editor = Editor(AudioEdit("mute", [(a, b)]), RATE, 1)
        y = editor.push(x[None, :])[0]
        ia, ib = int(round(a * RATE)), int(round(b * RATE))
        fade = int(round(0.005 * RATE))
        mute_ok &= bool((y[ia:ib] == 0).all() and (y[: ia - fade] == x[: ia - fade]).all())
        mute_ok &= bool((y[ib + fade :] == x[ib + fade :]).all())
    print(f"mute: exact zeros inside and untouched samples outside on all {len(audio)} files: {mute_ok}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "mute_exact": mute_ok, "seconds": seconds}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""veil's mutation fuzzer: damaged copies of valid files must end cleanly.

Seeds are the bundled samples (samples/astronaut.png, the sample video `make` builds) plus
small files made here (JPEG, GIF, multi-page TIFF, WebP, 16-bit PNG, float TIFF, HEIC, AVIF,
APNG, MP4). Each case applies one seeded mutation (bit
flips, truncation, a zeroed or duplicated block, a header edit), runs `veil` on it in a worker
process, and passes when veil ends in time with either a clean success (exit 0, the output and
nothing else) or exactly one `veil: error:` line (exit 1, nothing written), and no traceback.
An unexpected exception that the pipeline caught and worded as `failed (SomeError: ...)`
counts as a failure too: it is a bug that escaped the input checks.

Cases run in-process in a pool of workers (a fresh Python per case would cost a second of
start-up each). Used by tests/test_fuzz.py (a few hundred cases in `make test`) and by
`make fuzz` (python tests/fuzzing.py --cases 10000). `--record` copies the files of failing
cases into tests/fuzz_regressions/, which test_fuzz.py replays on every run.

Usage: python tests/fuzzing.py [--cases N] [--seed S] [--workers W] [--record]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, TimeoutError
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE_IMAGE = REPO / "samples" / "astronaut.png"
SAMPLE_VIDEO = REPO / "build" / "samples" / "astronaut_pan.mp4"
REGRESSIONS = Path(__file__).resolve().parent / "fuzz_regressions"
# Seconds one case may take: the sample video took up to 110 s on a 2-core machine shared with other work.
CASE_LIMIT_S = 180
UNEXPECTED = re.compile(r"failed \((\w+(Error|Exception)|\w+):")


def make_seeds(directory: Path) -> list[Path]:
    """Small valid files of every kind veil reads, made from the sample photo."""
    import av
    import cv2
    import numpy as np
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    photo = Image.open(SAMPLE_IMAGE).convert("RGB")
    small = photo.resize((96, 96))
    seeds = [directory / "astronaut.png"]
    shutil.copy(SAMPLE_IMAGE, seeds[0])
    small.save(directory / "small.jpg", quality=85)
    small.save(directory / "small.webp", quality=80)
    frames = [small.rotate(angle).quantize(64) for angle in (0, 10, 20)]
    frames[0].save(directory / "anim.gif", save_all=True, append_images=frames[1:], duration=[80, 120, 80], loop=0)
    small.save(directory / "pages.tif", save_all=True, append_images=[small.convert("L").resize((64, 80))])
    moving = [np.asarray(small.rotate(angle)) for angle in (0, 5, 10, 15, 20)]
    clip = directory / "clip.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 96, "yuv420p"
        for i, picture in enumerate(moving):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    # Deep pictures take the OpenCV path: 16-bit RGB PNG and float TIFF.
    deep = np.asarray(small).astype(np.uint16) * 257
    cv2.imwrite(str(directory / "deep16.png"), deep[..., ::-1])
    cv2.imwrite(str(directory / "float.tif"), (deep.mean(axis=2) / 65535).astype(np.float32))
    # HEIC (libheif inside pillow-heif), AVIF and APNG: native decoders of their own.
    from veil.media.heif import register

    register()
    small.save(directory / "photo.heic", quality=60)
    small.save(directory / "photo.avif", quality=60)
    frames[0].save(directory / "anim.png", save_all=True, append_images=frames[1:], duration=[80, 120, 80])
    names = ("small.jpg", "small.webp", "anim.gif", "pages.tif", "deep16.png", "float.tif", "photo.heic")
    names += ("photo.avif", "anim.png")
    seeds += [directory / n for n in names] + [clip]
    if SAMPLE_VIDEO.is_file():
        shutil.copy(SAMPLE_VIDEO, directory / SAMPLE_VIDEO.name)
        seeds.append(directory / SAMPLE_VIDEO.name)
    return seeds


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One mutation of `data` and a short description of it."""
    buf = bytearray(data)
    n = len(buf)
    kind = rng.choice(["flip", "flip", "truncate", "zero", "duplicate", "header"])
    if kind == "flip":
        count = rng.choice([1, 2, 4, 8, 32])
        for _ in range(count):
            pos = rng.randrange(n)
            buf[pos] ^= 1 << rng.randrange(8)
        return bytes(buf), f"flip {count} bits"
    if kind == "truncate":
        keep = rng.randrange(n)
        return bytes(buf[:keep]), f"truncate to {keep} of {n} bytes"
    size = rng.choice([1, 4, 16, 256, 4096])
    start = rng.randrange(n)
    if kind == "zero":
        buf[start : start + size] = bytes(min(size, n - start))
        return bytes(buf), f"zero {size} bytes at {start}"
    if kind == "duplicate":
        block = bytes(buf[start : start + size])
        at = rng.randrange(n)
        return bytes(buf[:at] + block + buf[at:]), f"duplicate {len(block)} bytes from {start} at {at}"
    pos = rng.randrange(min(n, 64))
    value = rng.choice([0x00, 0xFF, 0x7F, 0x80, 0x01, rng.randrange(256)])
    buf[pos] = value
    return bytes(buf), f"header byte {pos} = {value:#04x}"


@dataclass
class Case:
    seed: str  # the seed file's name
    description: str
    ok: bool
    detail: str
    seconds: float


class CaseTimeout(BaseException):
    """Raised by the alarm in a worker; a BaseException so no `except Exception` swallows it."""


def _alarm(signum: int, frame: object) -> None:
    raise CaseTimeout


@contextlib.contextmanager
def _as_a_user_sees() -> Iterator[None]:
    """Python's default warning handling (printed to stderr), whatever pytest installed."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, *rest: object) -> None:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno))

    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


def check_one(path: Path, limit_s: int = CASE_LIMIT_S) -> tuple[bool, str]:
    """Run veil on `path` in this process; (passed, why not) by the rules in the module doc."""
    from veil.cli import main

    work = Path(tempfile.mkdtemp(prefix="veil-fuzz-"))
    try:
        src = work / "in" / path.name
        src.parent.mkdir()
        shutil.copy(path, src)
        out_dir = work / "out"
        out_dir.mkdir()
        out = out_dir / f"out{path.suffix}"
        stderr = io.StringIO()
        signal.signal(signal.SIGALRM, _alarm)
        with tempfile.TemporaryFile() as native:  # what C libraries print to file descriptor 2
            saved_fd = os.dup(2)
            os.dup2(native.fileno(), 2)
            signal.alarm(limit_s)
            try:
                with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()), _as_a_user_sees():
                    rc = main([str(src), "-o", str(out), "-q"])
            except CaseTimeout:
                return False, f"no result within {limit_s} s"
            except BaseException as exc:  # noqa: BLE001 - anything escaping main is the bug we hunt
                return False, f"exception escaped: {type(exc).__name__}: {exc}"[:300]
            finally:
                signal.alarm(0)
                os.dup2(saved_fd, 2)
                os.close(saved_fd)
            native.seek(0)
            text = native.read().decode("utf-8", "replace") + stderr.getvalue()
        lines = [line for line in text.splitlines() if line.strip()]
        written = sorted(p.name for p in out_dir.iterdir())
        left_in = sorted(p.name for p in src.parent.iterdir() if p.name != path.name)
        if "Traceback" in text:
            return False, "traceback: " + text[-300:]
        if left_in:
            return False, f"files left beside the input: {left_in}"
        if rc == 0:
            if lines or written != [out.name]:
                return False, f"exit 0 but stderr {lines[:2]} and outputs {written}"
            return True, "ok"
        if rc != 1:
            return False, f"exit {rc}: {lines[:2]}"
        if len(lines) != 1 or not lines[0].startswith("veil: error:"):
            return False, f"not one error line: {lines[:3]}"
        if UNEXPECTED.search(lines[0]):
            return False, "unexpected exception: " + lines[0][:300]
        if written:
            return False, f"error but outputs left: {written}"
        return True, "error: " + lines[0][:200]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _worker_case(task: tuple[str, bytes, str, str]) -> Case:
    seed_name, data, description, suffix = task
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="veil-fuzz-case-") as tmp:
        path = Path(tmp) / f"case{suffix}"
        path.write_bytes(data)
        ok, detail = check_one(path)
    return Case(seed_name, description, ok, detail, time.monotonic() - started)


def _quiet_worker() -> None:
    """Load veil once per worker, and its ONNX sessions once (single-threaded: the pool already
    uses every core). The model does not depend on the input, so caching it skips no check."""
    import functools

    import veil.analysis.detectors
    import veil.cli  # noqa: F401

    real = veil.analysis.detectors.onnx_session

    @functools.lru_cache(maxsize=8)
    def cached(model_path: Path, threads: int = 0) -> object:
        return real(model_path, 1)

    veil.analysis.detectors.onnx_session = cached
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("veil.analysis.detectors.") and hasattr(module, "onnx_session"):
            module.onnx_session = cached


def cases(seeds: list[Path], count: int, seed: int) -> list[tuple[str, bytes, str, str]]:
    """`count` mutated files, spread over the seeds; the big sample video gets few (slow)."""
    rng = random.Random(seed)
    weights = [0.02 if p.name == SAMPLE_VIDEO.name else 1.0 for p in seeds]
    contents = {p: p.read_bytes() for p in seeds}
    out = []
    for i in range(count):
        # Every seed at least once, then at random by weight.
        path = seeds[i] if i < len(seeds) else rng.choices(seeds, weights)[0]
        data, description = mutate(contents[path], rng)
        out.append((path.name, data, f"case {i}: {path.name}: {description}", path.suffix))
    return out


def run(
    count: int, seed: int, workers: int, directory: Path, progress: bool = False
) -> tuple[list[Case], list[tuple[str, bytes, str, str]]]:
    """Run `count` cases; return every result and the tasks of the failed ones. `progress`
    prints a running count every 500 cases (a long run stopped early still says how far)."""
    tasks = cases(make_seeds(directory), count, seed)
    results: list[Case] = []
    failed: list[tuple[str, bytes, str, str]] = []
    context = get_context("spawn")  # no fork of a process holding ONNX Runtime threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_quiet_worker) as pool:
        futures = [pool.submit(_worker_case, task) for task in tasks]
        for task, future in zip(tasks, futures, strict=True):
            try:
                case = future.result(timeout=CASE_LIMIT_S * 3 + 60)
            except TimeoutError:
                case = Case(task[0], task[2], False, "worker hung past the alarm", CASE_LIMIT_S * 3.0)
            except Exception as exc:  # noqa: BLE001 - a crashed worker (segfault) is a failure
                case = Case(task[0], task[2], False, f"worker died: {type(exc).__name__}: {exc}", 0.0)
            results.append(case)
            if not case.ok:
                failed.append(task)
                if progress:
                    print(f"FAIL {case.description}: {case.detail}", flush=True)
            if progress and len(results) % 500 == 0:
                print(f"... {len(results)} cases, {len(failed)} failures", flush=True)
    return results, failed


def record(failed: list[tuple[str, bytes, str, str]], seed: int) -> list[Path]:
    """Keep failing inputs (small ones) as regression files replayed by test_fuzz.py."""
    REGRESSIONS.mkdir(exist_ok=True)
    paths = []
    for seed_name, data, description, suffix in failed:
        if len(data) > 200_000:
            continue
        number = re.search(r"case (\d+)", description)
        name = f"{Path(seed_name).stem}-seed{seed}-case{number.group(1) if number else len(paths)}{suffix}"
        (REGRESSIONS / name).write_bytes(data)
        paths.append(REGRESSIONS / name)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=int(os.environ.get("N", 10_000)))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)))
    parser.add_argument("--record", action="store_true", help="copy failing inputs into tests/fuzz_regressions/")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="veil-fuzz-seeds-") as tmp:
        # veil's work directory (done records) in the run's own temporary folder, not ~/.cache.
        os.environ.setdefault("VEIL_CACHE_DIR", str(Path(tmp) / "veil-cache"))
        results, failed = run(args.cases, args.seed, args.workers, Path(tmp), progress=True)
    errors = sum(r.ok and r.detail.startswith("error") for r in results)
    successes = sum(r.ok and r.detail == "ok" for r in results)
    slowest = max(results, key=lambda r: r.seconds)
    print(
        f"fuzz: {len(results)} cases (seed {args.seed}) in {time.monotonic() - started:.0f} s: "
        f"{successes} clean successes, {errors} clean errors, {len(failed)} failures; "
        f"slowest {slowest.seconds:.1f} s ({slowest.description})"
    )
    if args.record and failed:
        for path in record(failed, args.seed):
            print(f"recorded {path.relative_to(REPO)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    sys.exit(main())

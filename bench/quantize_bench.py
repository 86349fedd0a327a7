"""int8 face detectors: calibrate on the dev half, score on the held-out half, time both.

Three steps (the quantizer needs the `onnx` package, which `.venv-bench` has and veil's does not):

    .venv/bin/python bench/quantize_bench.py record     # inputs the detectors really get
    .venv-bench/bin/python bench/quantize_bench.py quantize
    .venv/bin/python bench/quantize_bench.py score      # recall and speed, fp32 against int8

`record` runs veil (`balanced` and `fast`, so every option set the presets use) in this process
on the dev half (even-numbered images by sorted name) of `faces.json` (WIDER) and `masks.json`
(masked faces), and on the first frames of the dev videos (the mall camera and the moving
clip), and keeps up to `--keep` input tensors per network, as the detectors preprocessed them.
`quantize` makes `<model>.int8.onnx` with onnxruntime's static quantization (QDQ, int8
weights per channel, uint8 activations, MinMax calibration on those tensors). `score` runs the
held-out half (odd-numbered images) of both sets through veil with the original and the int8
networks, scores the outputs as `run.py` does (a face is redacted when >= 70 % of its box's
pixels changed), and times each network on the recorded tensors, fp32 and int8 alternated.
Nothing is written outside bench/work/quant.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / "work" / "quant"
DATA = ROOT.parent / "shared" / "data"
MODELS = ROOT / "src" / "veil" / "models"
FACE_MODELS = ("centerface", "blazeface_full_range", "yunet_2023mar")
SETS = ("faces.json", "masks.json")
# Every EVERY-th input of a network is kept, up to --keep of them (a spread over the whole run).
EVERY = 5
VIDEOS = (("cctv/mall_dev.mp4", 40), ("videos/egoblur_gen1_test_video.mp4", 40))


def halves(data: Path, name: str) -> tuple[list[Any], list[Any]]:
    """(dev, held-out) annotations: even- and odd-numbered images by sorted file name."""
    sys.path.insert(0, str(BENCH))
    import scoring

    anns = scoring.load_annotations(data / name)
    ordered = sorted(anns, key=lambda a: a.image.name)
    return ordered[0::2], ordered[1::2]


def pngs_of(anns: list[Any], data: Path, folder: Path) -> list[Path]:
    """The images as RGB PNGs (run.py's conversion), linked into `folder` for one veil run."""
    import run as run_bench

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    out = []
    for png in run_bench.prepare_inputs(anns, data):
        link = folder / f"{len(out):04d}_{png.name}"
        link.symlink_to(png)
        out.append(link)
    return out


def patch_sessions(wrap: Any) -> None:
    """Every detector module makes its sessions through `onnx_session`: wrap it where each
    module looks it up (a module-level name, read when a detector is built)."""
    from veil.analysis import detectors

    detectors.available()  # imports every detector module
    original = detectors.onnx_session
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("veil.analysis.detectors.") and hasattr(module, "onnx_session"):
            module.onnx_session = lambda path, threads=0, _o=original: wrap(_o, Path(path), threads)


def veil_run(inputs: list[Path] | Path, out: Path, preset: str, extra: tuple[str, ...] = ()) -> None:
    from veil.cli import main

    shutil.rmtree(out, ignore_errors=True)
    args = [str(p) for p in ([inputs] if isinstance(inputs, Path) else inputs)]
    code = main([*args, "-o", str(out), "--preset", preset, "--mask", "solid", "-q", "--overwrite", "-j", "1", *extra])
    if code != 0:
        raise SystemExit(f"veil failed on {inputs}")


# ----------------------------------------------------------------------------- record


class Recorder:
    def __init__(self, session: Any, name: str, keep: int, seen: dict[str, int]) -> None:
        self._session, self.name, self.keep, self.seen = session, name, keep, seen

    def __getattr__(self, key: str) -> Any:
        return getattr(self._session, key)

    def run(self, outputs: Any, feeds: dict[str, np.ndarray]) -> Any:
        n = self.seen.get(self.name, 0)
        self.seen[self.name] = n + 1
        folder = WORK / "calib" / self.name
        if n % EVERY == 0 and n // EVERY < self.keep:
            folder.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(folder / f"{n:06d}.npz", **feeds)
        return self._session.run(outputs, feeds)


def record(args: argparse.Namespace) -> None:
    shutil.rmtree(WORK / "calib", ignore_errors=True)
    seen: dict[str, int] = {}

    def wrap(original: Any, path: Path, threads: int) -> Any:
        session = original(path, threads)
        return Recorder(session, path.stem, args.keep, seen) if path.stem in FACE_MODELS else session

    patch_sessions(wrap)
    for name in SETS:
        dev, _ = halves(args.data, name)
        inputs = pngs_of(dev, args.data, WORK / "dev" / name)
        for preset in ("balanced", "fast"):
            veil_run(inputs, WORK / "out" / "record", preset, ("--format", "png"))
    for video, frames in VIDEOS:
        clip = WORK / f"{Path(video).stem}_first{frames}.mp4"
        speed_bench = __import__("speed_bench")
        speed_bench.write_clip(args.data / video, clip, frames, None)
        for preset in ("balanced", "fast"):
            veil_run(clip, WORK / "out" / "record.mp4", preset)
    print(json.dumps({"runs": seen, "kept": {m: len(list((WORK / "calib" / m).glob("*.npz"))) for m in seen}}))


# ----------------------------------------------------------------------------- quantize


def quantize(args: argparse.Namespace) -> None:
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, files: list[Path]) -> None:
            self.files = iter(files)

        def get_next(self) -> dict[str, np.ndarray] | None:
            path = next(self.files, None)
            if path is None:
                return None
            with np.load(path) as data:
                return {k: data[k] for k in data.files}

    out_dir = WORK / "models"
    out_dir.mkdir(parents=True, exist_ok=True)
    for model in FACE_MODELS:
        files = sorted((WORK / "calib" / model).glob("*.npz"))
        if not files:
            print(f"{model}: no calibration tensors (run `record` first)")
            continue
        # Per-channel weights need DequantizeLinear's `axis` (opset 13); CenterFace is older.
        model_proto = onnx.load(str(MODELS / f"{model}.onnx"))
        opset = next(o.version for o in model_proto.opset_import if o.domain in ("", "ai.onnx"))
        if opset < 13:
            model_proto = version_converter.convert_version(model_proto, 13)
        upgraded = out_dir / f"{model}.opset.onnx"
        onnx.save(model_proto, str(upgraded))
        pre = out_dir / f"{model}.pre.onnx"
        quant_pre_process(str(upgraded), str(pre), skip_symbolic_shape=True)
        target = out_dir / f"{model}.int8.onnx"
        started = time.perf_counter()
        quantize_static(
            str(pre),
            str(target),
            Reader(files),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            extra_options={"CalibMovingAverage": False},
        )
        size = target.stat().st_size / 1e6
        print(f"{model}: {len(files)} tensors, {size:.1f} MB, {time.perf_counter() - started:.0f} s")


# ----------------------------------------------------------------------------- score


def score(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(BENCH))
    import run as run_bench
    import scoring

    quantized = {m for m in args.models.split(",") if m}
    use_int8 = {"on": False}

    def wrap(original: Any, path: Path, threads: int) -> Any:
        if use_int8["on"] and path.stem in quantized:
            path = WORK / "models" / f"{path.stem}.int8.onnx"
        return original(path, threads)

    patch_sessions(wrap)
    result: dict[str, Any] = {"models": sorted(quantized), "sets": {}}
    for name in SETS:
        _, held = halves(args.data, name)
        inputs = pngs_of(held, args.data, WORK / "heldout" / name)
        for preset in args.presets.split(","):
            for mode in ("fp32", "int8"):
                use_int8["on"] = mode == "int8"
                out = WORK / "out" / f"{name}-{preset}-{mode}"
                started = time.perf_counter()
                veil_run(WORK / "heldout" / name, out, preset, ("--format", "png"))
                seconds = time.perf_counter() - started
                outs = [run_bench.find_output(out, Path(p.name)) for p in inputs]
                per = run_bench.score_outputs(held, [p.resolve() for p in inputs], outs)
                summary = scoring.summarize(per)
                rec = summary["recall"]
                result["sets"][f"{name} {preset} {mode}"] = {
                    "seconds": round(seconds, 1),
                    "recall": {k: v["recall"] for k, v in rec.items()},
                    "faces": {k: v["faces"] for k, v in rec.items()},
                    "redacted": {k: v["redacted"] for k, v in rec.items()},
                    "over_redaction": summary["over_redaction"],
                }
                print(f"{name} {preset} {mode}: recall all {rec['all']['recall']:.3f} "
                      f">=16 {rec['all>=16']['recall']:.3f} over-red {summary['over_redaction'] * 100:.2f} % "
                      f"({seconds:.0f} s)", flush=True)  # fmt: skip
    result["ms_per_run"] = time_sessions(quantized, args.repeats)
    for model, t in result["ms_per_run"].items():
        print(f"{model}: fp32 {t['fp32']:.1f} ms, int8 {t['int8']:.1f} ms per run ({t['fp32'] / t['int8']:.2f}x)")
    out = args.json
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


def time_sessions(models: set[str], repeats: int) -> dict[str, dict[str, float]]:
    """Median ms per run of each network, fp32 and int8 alternated on the same recorded inputs
    (a spread of the sizes the detectors use), one thread each: the cost of the work itself."""
    import onnxruntime as ort

    out = {}
    for model in sorted(models):
        files = sorted((WORK / "calib" / model).glob("*.npz"))
        files = files[:: max(1, len(files) // 12)]
        feeds = []
        for f in files[:12]:
            with np.load(f) as d:
                feeds.append({k: d[k] for k in d.files})
        sessions = {}
        for mode, path in (("fp32", MODELS / f"{model}.onnx"), ("int8", WORK / "models" / f"{model}.int8.onnx")):
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.log_severity_level = 3
            sessions[mode] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        times: dict[str, list[float]] = {"fp32": [], "int8": []}
        for _ in range(repeats):
            for mode, session in sessions.items():
                started = time.perf_counter()
                for feed in feeds:
                    session.run(None, feed)
                times[mode].append(1000 * (time.perf_counter() - started) / len(feeds))
        out[model] = {mode: statistics.median(v) for mode, v in times.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=["record", "quantize", "score"])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--keep", type=int, default=60, help="record: tensors kept per network")
    p.add_argument("--models", default=",".join(FACE_MODELS), help="score: the networks to swap for int8")
    p.add_argument("--presets", default="balanced,fast")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", type=Path, default=WORK / "quantize.json")
    args = p.parse_args(argv)
    sys.path.insert(0, str(BENCH))
    if not (args.data / SETS[0]).is_file():
        print(f"no {SETS[0]} under {args.data}; nothing to do")
        return 0
    {"record": record, "quantize": quantize, "score": score}[args.step](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

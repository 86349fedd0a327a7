"""Build `nanodet_int8.onnx`: `nanodet.onnx` with int8 weights and activations, for video.

Run once, by hand, from the repository root, with the shared data beside it (`../shared/data`)
and the bench environment (`make .venv-bench/.installed-stamp`) plus the quantizer's own needs
(none of them is a veil dependency):

    .venv-bench/bin/pip install onnx==1.23.2 sympy==1.14.0
    PYTHONPATH=src .venv-bench/bin/python src/veil/models/make_nanodet_int8.py \
        src/veil/models/nanodet_int8.onnx

What it does:

1. collects calibration inputs the way veil feeds the network (`PeopleDetector`'s own resizing
   and normalisation, the whole picture and its tiles) from the *tuning* halves of the shared
   data only: the mall clip's frames 0-495 (every 25th), the moving clip egoblur gen1 (every
   60th frame), and the even-numbered photos (by sorted name) of `faces.json` and every fourth
   even-numbered one of `masks.json`;
2. quantizes with onnxruntime's static quantizer: per-channel int8 weights with a 7-bit range
   (`reduce_range`), uint8 activations, min-max calibration, QOperator format. The 7-bit range
   is why the result is the same on every x86 CPU: without it, AVX2 machines (no VNNI) may
   saturate a 16-bit sum where VNNI machines do not, so a person could be found on one and not
   the other. The three output convolutions (class scores and box bins) stay float32: their
   outputs are the scores veil compares with its thresholds;
3. checks the result on the *held-out* halves (mall frames 500-995, the moving clip egoblur gen2,
   odd-numbered photos): of the people the float32 network scores 0.3 or more, the share the
   int8 one finds at 0.25 or more (IoU 0.5), per source; fails below 0.9 on any;
4. prints the result's size and sha256 for `README.md`.

Why: the person network is the costliest stage of a fixed-camera run and the bottleneck of
`veil live` (issue 26). On a 2-core AMD EPYC (AVX2) the int8 network runs a 416 x 416 input in
33 ms on one thread against 55 ms (float32). veil runs it in `veil live` and in the `fast`
preset's video; photos, `balanced` and `thorough` and the second opinion keep the float32 file
(on two generated CCTV clips int8 leaked a few head-frames float32 covered; docs/cctv.md).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT.parent / "shared" / "data"
SOURCE = Path(__file__).resolve().parent / "nanodet.onnx"
# The head convolutions that write the class scores and box bins (node names of nanodet.onnx).
FLOAT_OUTPUTS = ["n0168_Conv", "n0178_Conv", "n0188_Conv"]
AGREE_SCORE, AGREE_FOUND, AGREE_IOU, AGREE_MIN = 0.3, 0.25, 0.5, 0.9


class Recorder:
    """Stands in for the onnxruntime session inside `PeopleDetector`: keeps every input."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.inputs: list[np.ndarray] = []

    def get_outputs(self) -> Any:
        return self.session.get_outputs()

    def get_inputs(self) -> Any:
        return self.session.get_inputs()

    def run(self, names: Any, feed: dict[str, np.ndarray]) -> Any:
        self.inputs += [np.array(v) for v in feed.values()]
        return self.session.run(names, feed)


def frames(path: Path, keep: range) -> list[np.ndarray]:
    import av

    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i > keep.stop:
                break
            if i in keep:
                out.append(frame.to_ndarray(format="rgb24"))
    return out


def photos(annotations: str, part: slice) -> list[np.ndarray]:
    import cv2

    items = sorted(json.loads((DATA / annotations).read_text()), key=lambda r: r["image"])[part]
    return [cv2.cvtColor(cv2.imread(str(DATA / r["image"])), cv2.COLOR_BGR2RGB) for r in items]


def tuning_pictures() -> list[np.ndarray]:
    return (
        frames(DATA / "cctv/mall_dev.mp4", range(0, 496, 25))
        + frames(DATA / "videos/egoblur_gen1_test_video.mp4", range(0, 100_000, 60))
        + photos("faces.json", slice(0, None, 2))
        + photos("masks.json", slice(0, None, 8))
    )


def held_out() -> dict[str, list[np.ndarray]]:
    return {
        "mall 500-995": frames(DATA / "cctv/mall_dev.mp4", range(500, 1000, 25)),
        "egoblur gen2": frames(DATA / "videos/egoblur_gen2_test_lp_video.mp4", range(0, 100_000, 20)),
        "faces.json odd": photos("faces.json", slice(1, None, 2)),
        "masks.json odd": photos("masks.json", slice(1, None, 4)),
    }


def session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def agreement(reference: Any, int8: Any, pictures: list[np.ndarray]) -> tuple[int, int]:
    """Of the people `reference` (float32) scores AGREE_SCORE or more in `pictures`, how many
    `int8` finds (IoU AGREE_IOU; both detectors built with threshold AGREE_FOUND), and how many
    there are. tests/test_people.py checks the vendored file with it too."""
    from veil.analysis.boxes import iou_matrix

    found = total = 0
    for picture in pictures:
        ref_boxes, ref_scores = reference.persons(picture)
        boxes, _ = int8.persons(picture)
        sure = ref_boxes[ref_scores >= AGREE_SCORE]
        total += len(sure)
        if len(sure) and len(boxes):
            found += int((iou_matrix(sure, boxes).max(axis=1) >= AGREE_IOU).sum())
    return found, total


def quantize(out_path: Path) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from veil.analysis.detectors.people import PeopleDetector

    recorder = Recorder(session(SOURCE))
    detector = PeopleDetector(mode="body", motion=False, session=recorder)
    for picture in tuning_pictures():
        detector.persons(picture)
    name = recorder.get_inputs()[0].name
    print(f"calibration: {len(recorder.inputs)} network inputs", file=sys.stderr)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{name: x} for x in recorder.inputs])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(SOURCE), str(prepared))
        missing = set(FLOAT_OUTPUTS) - {node.name for node in onnx.load(str(prepared)).graph.node}
        if missing:
            raise SystemExit(f"{SOURCE.name} has no nodes {sorted(missing)}: the float outputs would be quantized")
        quantize_static(
            str(prepared),
            str(out_path),
            Reader(),
            quant_format=QuantFormat.QOperator,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            nodes_to_exclude=FLOAT_OUTPUTS,
        )


def check(out_path: Path) -> None:
    from veil.analysis.detectors.people import PeopleDetector

    reference = PeopleDetector(mode="body", motion=False, threshold=AGREE_FOUND, session=session(SOURCE))
    int8 = PeopleDetector(mode="body", motion=False, threshold=AGREE_FOUND, session=session(out_path))
    failed = False
    for source, pictures in held_out().items():
        found, total = agreement(reference, int8, pictures)
        share = found / max(total, 1)
        failed |= share < AGREE_MIN
        print(f"{source}: int8 finds {found} of the {total} people float32 scores >= {AGREE_SCORE} ({share:.3f})")
    if failed:
        raise SystemExit(f"int8 finds under {AGREE_MIN:.0%} of float32's people on a held-out source")


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out_path = Path(sys.argv[1])
    quantize(out_path)
    check(out_path)
    data = out_path.read_bytes()
    print(f"{out_path}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()

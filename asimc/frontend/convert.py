"""ONNX proto -> the IR (``asimc.ir.Graph``): constants as numpy arrays, attributes as plain
Python values, shapes from shape inference, Constant nodes folded into constants."""
from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import ModelError
from ..ir import Dim, Graph, Node, TensorInfo
from ..ops.creation import constant_value

# ONNX element type -> the dtype name the IR uses (numpy's names where numpy has the type)
DTYPE_NAMES = {
    0: "undefined", 1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16",
    6: "int32", 7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "float64",
    12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16",
    17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz",
    21: "uint4", 22: "int4", 23: "float4e2m1",
}


def default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def tensor_info(value: onnx.ValueInfoProto) -> TensorInfo:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return TensorInfo(value.name, kind or "undefined", None)
    tensor_type = value.type.tensor_type
    dtype = DTYPE_NAMES.get(tensor_type.elem_type, f"onnx-type-{tensor_type.elem_type}")
    if not tensor_type.HasField("shape"):
        return TensorInfo(value.name, dtype, None)
    dims: list[Dim] = []
    for d in tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return TensorInfo(value.name, dtype, tuple(dims))


def to_array(tensor: onnx.TensorProto) -> np.ndarray:
    try:
        return numpy_helper.to_array(tensor)
    except Exception as error:  # noqa: BLE001 - onnx raises assorted errors for bad tensors
        raise ModelError(f"tensor '{tensor.name}' cannot be read: {error}") from None


def sparse_to_array(sparse: onnx.SparseTensorProto) -> np.ndarray:
    values = to_array(sparse.values)
    indices = to_array(sparse.indices).astype(np.int64)
    dense = np.zeros(tuple(sparse.dims), dtype=values.dtype)
    if indices.ndim == 1:
        dense.reshape(-1)[indices] = values
    else:
        dense[tuple(indices.T)] = values
    return dense


def attribute_value(attr: onnx.AttributeProto) -> Any:
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, onnx.TensorProto):
        return to_array(value)
    if isinstance(value, onnx.SparseTensorProto):
        return sparse_to_array(value)
    if isinstance(value, list):
        return [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else
                to_array(v) if isinstance(v, onnx.TensorProto) else v for v in value]
    return value


def to_graph(model: onnx.ModelProto) -> Graph:
    graph = model.graph
    constants: dict[str, np.ndarray] = {}
    for init in graph.initializer:
        constants[init.name] = to_array(init)
    for sparse in graph.sparse_initializer:
        constants[sparse.values.name] = sparse_to_array(sparse)
    infos = {v.name: tensor_info(v) for v in (*graph.value_info, *graph.input, *graph.output)}
    # Old exporters list initializers among the inputs too: those are constants.
    inputs = tuple(infos[v.name] for v in graph.input if v.name not in constants)
    outputs = tuple(infos[v.name] for v in graph.output)
    nodes = []
    for proto in graph.node:
        attrs = {a.name: attribute_value(a) for a in proto.attribute}
        node = Node(proto.name, proto.op_type, tuple(proto.input), tuple(proto.output), attrs)
        if proto.op_type == "Constant" and proto.domain in ("", "ai.onnx"):
            constants[proto.output[0]] = constant_value(node)
            continue
        nodes.append(node)
    value_info = {name: info for name, info in infos.items() if name not in constants}
    return Graph(name=graph.name or "model", inputs=inputs, outputs=outputs, nodes=tuple(nodes),
                 constants=constants, value_info=value_info, opset=default_opset(model))

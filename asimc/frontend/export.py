"""IR -> ONNX proto, for re-running ONNX shape inference on a folded graph (and for tools that
want to look at the imported graph in an ONNX viewer)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..ir import Graph, Node, TensorInfo
from .convert import DTYPE_NAMES

_ONNX_TYPE = {name: code for code, name in DTYPE_NAMES.items()}
SMALL_CONSTANT = 64     # int constants up to this size travel as values (shape data)


def value_info(info: TensorInfo) -> onnx.ValueInfoProto:
    elem = _ONNX_TYPE.get(info.dtype, onnx.TensorProto.UNDEFINED)
    shape = None if info.shape is None else [d if isinstance(d, (int, str)) else None
                                             for d in info.shape]
    return helper.make_tensor_value_info(info.name, elem, shape)


def _attribute(name: str, value) -> onnx.AttributeProto:
    if isinstance(value, np.ndarray):
        return helper.make_attribute(name, numpy_helper.from_array(value))
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
        return helper.make_attribute(name, [numpy_helper.from_array(v) for v in value])
    if isinstance(value, (bool, np.bool_)):
        value = int(value)
    return helper.make_attribute(name, value)


def node_proto(node: Node) -> onnx.NodeProto:
    proto = helper.make_node(node.op_type, list(node.inputs), list(node.outputs), name=node.name)
    proto.attribute.extend(_attribute(k, v) for k, v in node.attrs.items())
    return proto


def to_proto(graph: Graph, *, weights_as_inputs: bool = False) -> onnx.ModelProto:
    """The graph as an ONNX model (opset ``graph.opset``). With ``weights_as_inputs``, large
    constants become typed graph inputs instead of initializers (enough for shape inference,
    and cheap)."""
    initializers, extra_inputs = [], []
    for name, value in graph.constants.items():
        value = np.asarray(value)
        if weights_as_inputs and not (value.dtype.kind in "iub" and value.size <= SMALL_CONSTANT):
            extra_inputs.append(value_info(TensorInfo(name, value.dtype.name, value.shape)))
        else:
            initializers.append(numpy_helper.from_array(value, name))
    proto = helper.make_graph(
        [node_proto(n) for n in graph.nodes], graph.name,
        [value_info(t) for t in graph.inputs] + extra_inputs,
        [value_info(t) for t in graph.outputs], initializers,
        value_info=[value_info(t) for t in graph.value_info.values()
                    if t.name not in graph.constants])
    return helper.make_model(proto, opset_imports=[helper.make_opsetid("", graph.opset)])

"""Rewrite older operator forms into the one internal opset the op modules implement.

The internal forms (those of ONNX opset 21) take axes, pads, scales, splits, min/max and the
like as *inputs*, not attributes. A model importing an older opset gets, per node:

  Squeeze/Unsqueeze (<13), Split (<13), ReduceSum (<13), other Reduce* (<18), Slice (<10),
  Pad (<11), Clip (<11), TopK (<10): attributes -> constant inputs;
  Upsample (7..9) and Resize-10 -> Resize with coordinate_transformation_mode "asymmetric";
  Softmax/LogSoftmax/Hardmax (<13): "flatten to 2-D from axis" -> the per-axis form;
  GroupNormalization (<21) per-group scale/bias -> per channel;
  Concat (<4) default axis; Cast (<6) type names; legacy broadcast/consumed_inputs/is_test/
  spatial attributes dropped.

Inference-only checks live here too: a training-mode BatchNormalization is rejected.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from ..errors import ModelError
from ..ir import Graph, Node
from .editing import GraphEditor

INTERNAL_OPSET = 21

# Ops that only exist in older opsets and are rewritten here into supported ones.
REWRITTEN_OPS = ("Upsample",)

_REDUCE = ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
           "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")
_LEGACY_BROADCAST = ("Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Greater",
                     "Less", "PRelu", "Gemm")
_CAST_NAMES = {"FLOAT": 1, "UINT8": 2, "INT8": 3, "UINT16": 4, "INT16": 5, "INT32": 6,
               "INT64": 7, "STRING": 8, "BOOL": 9, "FLOAT16": 10, "DOUBLE": 11, "UINT32": 12,
               "UINT64": 13}

Rewrite = Callable[[GraphEditor, Node, int], list[Node]]


def set_input(node: Node, index: int, name: str) -> Node:
    inputs = list(node.inputs) + [""] * max(0, index + 1 - len(node.inputs))
    inputs[index] = name
    return replace(node, inputs=tuple(inputs))


def drop_attrs(node: Node, *names: str) -> Node:
    if not any(n in node.attrs for n in names):
        return node
    return replace(node, attrs={k: v for k, v in node.attrs.items() if k not in names})


def set_attrs(node: Node, **values) -> Node:
    return replace(node, attrs={**node.attrs, **values})


def attr_to_input(ed: GraphEditor, node: Node, attr: str, index: int,
                  dtype=np.int64) -> Node:
    """Move attribute ``attr`` to (constant) input ``index``."""
    if attr not in node.attrs:
        return node
    value = np.array(node.attrs[attr], dtype=dtype)
    name = ed.add_constant(f"{node.name}_{attr}", value)
    return set_input(drop_attrs(node, attr), index, name)


def _input_dtype(ed: GraphEditor, node: Node) -> np.dtype:
    dtype = ed.dtype_of(node.inputs[0]) if node.inputs else None
    try:
        return np.dtype(dtype) if dtype else np.dtype(np.float32)
    except TypeError:
        return np.dtype(np.float32)


def _squeeze(ed, node, opset):
    return [attr_to_input(ed, node, "axes", 1) if opset < 13 else node]


def _split(ed, node, opset):
    return [attr_to_input(ed, node, "split", 1) if opset < 13 else node]


def _reduce(ed, node, opset):
    limit = 13 if node.op_type == "ReduceSum" else 18
    return [attr_to_input(ed, node, "axes", 1) if opset < limit else node]


def _slice(ed, node, opset):
    if opset >= 10:
        return [node]
    node = attr_to_input(ed, node, "starts", 1)
    node = attr_to_input(ed, node, "ends", 2)
    return [attr_to_input(ed, node, "axes", 3)]


def _clip(ed, node, opset):
    if opset >= 11:
        return [node]
    dtype = _input_dtype(ed, node)
    node = attr_to_input(ed, node, "min", 1, dtype)
    return [attr_to_input(ed, node, "max", 2, dtype)]


def _pad(ed, node, opset):
    if opset >= 11:
        return [node]
    if "paddings" in node.attrs:           # opset 1 spelling
        node = set_attrs(drop_attrs(node, "paddings"), pads=node.attrs["paddings"])
    node = attr_to_input(ed, node, "pads", 1)
    return [attr_to_input(ed, node, "value", 2, _input_dtype(ed, node))]


def _topk(ed, node, opset):
    if opset >= 10 or "k" not in node.attrs:
        return [node]
    name = ed.add_constant(f"{node.name}_k", np.array([node.attrs["k"]], dtype=np.int64))
    return [set_input(drop_attrs(node, "k"), 1, name)]


def _nearest_mode_for(ed: GraphEditor, scales_name: str) -> str:
    """Upsample and Resize-10 pick the input pixel by truncation (upsampling) as onnxruntime
    does; for constant scales below 1 (downsampling) by rounding up."""
    scales = ed.constants.get(scales_name)
    if scales is not None and np.any(np.asarray(scales) < 1):
        return "ceil"
    return "floor"


def _old_resize(ed, node, opset):
    """Upsample (any opset) and Resize-10 -> Resize(X, roi="", scales)."""
    if node.op_type == "Resize" and opset >= 11:
        return [node]
    mode = node.attrs.get("mode", "nearest")
    mode = "linear" if mode in ("linear", "bilinear") else mode
    if "scales" in node.attrs:                       # Upsample-7
        scales = ed.add_constant(f"{node.name}_scales",
                                 np.array(node.attrs["scales"], dtype=np.float32))
    else:
        scales = node.inputs[1]
    attrs = {"mode": mode, "coordinate_transformation_mode": "asymmetric"}
    if mode == "nearest":
        attrs["nearest_mode"] = _nearest_mode_for(ed, scales)
    return [replace(node, op_type="Resize", inputs=(node.inputs[0], "", scales), attrs=attrs)]


def _softmax(ed, node, opset):
    """Before opset 13 these ops flattened the input to 2-D at ``axis`` (default 1)."""
    if opset >= 13:
        return [node]
    axis = int(node.attrs.get("axis", 1))
    shape = ed.shape_of(node.inputs[0])
    if shape is not None and axis in (len(shape) - 1, -1):
        return [set_attrs(node, axis=-1)]
    x, y = node.inputs[0], node.outputs[0]
    original, flat, out2d = (ed.fresh(f"{node.name}_{s}") for s in ("shape", "2d", "out2d"))
    return [
        Node(ed.fresh(f"{node.name}_shape"), "Shape", (x,), (original,)),
        Node(ed.fresh(f"{node.name}_flatten"), "Flatten", (x,), (flat,), {"axis": axis}),
        replace(node, inputs=(flat,), outputs=(out2d,), attrs={"axis": 1}),
        Node(ed.fresh(f"{node.name}_reshape"), "Reshape", (out2d, original), (y,)),
    ]


def _concat(ed, node, opset):
    return [set_attrs(node, axis=1) if "axis" not in node.attrs else node]


def _cast(ed, node, opset):
    to = node.attrs.get("to")
    if isinstance(to, str):
        if to.upper() not in _CAST_NAMES:
            raise ModelError(f"{node.describe()}: unknown type name to={to!r}")
        return [set_attrs(node, to=_CAST_NAMES[to.upper()])]
    return [node]


def _batch_norm(ed, node, opset):
    if node.attrs.get("training_mode", 0):
        raise ModelError(f"{node.describe()}: training_mode=1 is not supported; export the "
                         "model in eval mode (asimc runs inference)")
    if node.attrs.get("spatial", 1) == 0:
        raise ModelError(f"{node.describe()}: spatial=0 (per-activation statistics) is not "
                         "supported")
    return [drop_attrs(node, "spatial", "is_test", "momentum")]


def _group_norm(ed, node, opset):
    """GroupNormalization-18 took one scale/bias per group; 21 takes one per channel."""
    if opset >= 21:
        return [node]
    shape = ed.shape_of(node.inputs[0])
    channels = shape[1] if shape is not None and len(shape) > 1 else None
    groups = int(node.attrs.get("num_groups", 0))
    params = [ed.constants.get(n) for n in node.inputs[1:3]]
    if not isinstance(channels, int) or groups <= 0 or any(p is None for p in params):
        raise ModelError(f"{node.describe()}: opset-{opset} GroupNormalization needs constant "
                         "scale/bias and a known channel count")
    for index, value in zip((1, 2), params):
        per_channel = np.repeat(np.asarray(value), channels // groups)
        node = set_input(node, index, ed.add_constant(f"{node.inputs[index]}_per_channel",
                                                      per_channel))
    return [node]


def _legacy_broadcast(ed, node, opset):
    if opset >= 7 or ("broadcast" not in node.attrs and "axis" not in node.attrs):
        return [node]
    if node.op_type == "Gemm" or not node.attrs.get("broadcast", 0) or "axis" not in node.attrs:
        return [drop_attrs(node, "broadcast", "axis")]
    a, b = (ed.shape_of(n) for n in node.inputs[:2])
    if a is None or b is None:
        raise ModelError(f"{node.describe()}: legacy broadcasting with axis needs known ranks")
    axis = int(node.attrs["axis"]) % len(a)
    trailing = len(a) - axis - len(b)
    node = drop_attrs(node, "broadcast", "axis")
    if trailing <= 0:
        return [node]
    axes = ed.add_constant(f"{node.name}_axes", np.arange(len(b), len(b) + trailing))
    aligned = ed.fresh(f"{node.inputs[1]}_aligned")
    return [Node(ed.fresh(f"{node.name}_align"), "Unsqueeze", (node.inputs[1], axes), (aligned,)),
            set_input(node, 1, aligned)]


_RULES: dict[str, Rewrite] = {
    "Squeeze": _squeeze, "Unsqueeze": _squeeze, "Split": _split, "Slice": _slice,
    "Clip": _clip, "Pad": _pad, "TopK": _topk, "Upsample": _old_resize, "Resize": _old_resize,
    "Softmax": _softmax, "LogSoftmax": _softmax, "Hardmax": _softmax, "Concat": _concat,
    "Cast": _cast, "BatchNormalization": _batch_norm, "GroupNormalization": _group_norm,
    **{op: _reduce for op in _REDUCE},
}


def normalize(graph: Graph) -> Graph:
    """The graph with every node in its internal (opset >= 21) form; ``graph.opset`` is the
    model's own default-domain opset before, at least INTERNAL_OPSET after."""
    opset = graph.opset
    ed = GraphEditor(graph)
    nodes: list[Node] = []
    for node in ed.nodes:
        node = drop_attrs(node, "consumed_inputs")
        if node.op_type in _LEGACY_BROADCAST:
            rewritten = _legacy_broadcast(ed, node, opset)
            node, before = rewritten[-1], rewritten[:-1]
            nodes += before
        rule = _RULES.get(node.op_type)
        nodes += rule(ed, node, opset) if rule else [node]
    ed.nodes = nodes
    return ed.finish(opset=max(INTERNAL_OPSET, opset))

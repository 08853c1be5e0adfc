"""Shape inference (ONNX's, with data propagation, so shapes computed by Shape/Gather/Concat
chains resolve) and the check that shapes the compiler needs are known."""
from __future__ import annotations

import re

import onnx

from ..errors import ModelError
from ..ir import Graph, TensorInfo

_INFERENCE_CONTEXT = re.compile(r"\(op_type:(\S+), node name: ([^)]*)\):\s*(.*)", re.S)


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    if model.ByteSize() >= 2 ** 31:
        return model       # too large for in-memory inference; import relies on the model's info
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True,
                                                 data_prop=True)
    except onnx.shape_inference.InferenceError as error:
        found = _INFERENCE_CONTEXT.search(str(error))
        names = {n.name for n in model.graph.node}
        nested = found is not None and "(op_type:" in found.group(3)
        if found and found.group(2) in names and not nested:
            raise ModelError(describe_inference_error(str(error))) from None
    # The error is inside a function body ONNX expands for inference (a known weakness of
    # strict mode): infer what can be inferred; the ops check their inputs at run time.
    return onnx.shape_inference.infer_shapes(model, data_prop=True)


def describe_inference_error(text: str) -> str:
    found = _INFERENCE_CONTEXT.search(text)
    if not found:
        return f"shape inference failed: {text.strip()}"
    op_type, name, problem = found.groups()
    problem = re.sub(r"\[\w+Error\]\s*", "", problem).strip().splitlines()[0]
    return f"node '{name}' ({op_type}): shape inference failed: {problem}"


# op type -> which inputs must have a known rank, and which must be fully static
_NEEDS_RANK = {"MatMul": (0, 1), "Gemm": (0, 1), "Conv": (0,), "ConvTranspose": (0,)}
_NEEDS_STATIC = {"Conv": (1,), "ConvTranspose": (1,)}


def check_required_shapes(graph: Graph) -> None:
    """The compiler maps Conv weights and matrix products onto the array: their weight shapes
    must be static and their operands' ranks known. Names the tensor and the dimension."""
    for node in graph.nodes:
        for index in _NEEDS_STATIC.get(node.op_type, ()):
            name = node.inputs[index] if index < len(node.inputs) else ""
            info = graph.info(name) if name else None
            if info is None or info.shape is None:
                raise ModelError(f"{node.describe()}: the shape of its weight '{name}' cannot "
                                 "be resolved (rank unknown)")
            for dim, size in enumerate(info.shape):
                if not isinstance(size, int):
                    raise ModelError(f"{node.describe()}: the shape of its weight '{name}' "
                                     f"cannot be resolved: dimension {dim} is "
                                     f"{'unknown' if size is None else repr(size)}; weights "
                                     "must have a static shape")
        for index in _NEEDS_RANK.get(node.op_type, ()):
            name = node.inputs[index] if index < len(node.inputs) else ""
            info = graph.info(name) if name else None
            if name and (info is None or info.shape is None):
                raise ModelError(f"{node.describe()}: the rank of input '{name}' cannot be "
                                 "resolved by shape inference")


def _known_dims(info: TensorInfo | None) -> int:
    if info is None or info.shape is None:
        return -1
    return sum(isinstance(d, int) for d in info.shape)


def refresh_shapes(graph: Graph) -> Graph:
    """Run ONNX shape inference again on the (folded) graph: constants found by folding let it
    resolve dims it could not before. Keeps the better-known shape of each value."""
    from .convert import tensor_info
    from .export import to_proto

    try:
        inferred = onnx.shape_inference.infer_shapes(to_proto(graph, weights_as_inputs=True),
                                                     data_prop=True)
    except Exception:  # noqa: BLE001 - best effort: the first inference already succeeded
        return graph
    value_info = dict(graph.value_info)
    for proto in (*inferred.graph.value_info, *inferred.graph.output):
        new = tensor_info(proto)
        if proto.name in graph.constants:
            continue
        if _known_dims(new) > _known_dims(value_info.get(proto.name)):
            value_info[proto.name] = new
    return graph.with_(value_info=value_info)

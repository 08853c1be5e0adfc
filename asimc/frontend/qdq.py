"""Capturing a quantised (QDQ) model's QuantizeLinear/DequantizeLinear patterns at import.

A QDQ model (onnxruntime's ``quantize_static`` in QDQ format, per tensor or per channel, or a
QAT export) surrounds each Conv, Gemm and MatMul with

    x -> QuantizeLinear(s_x, z_x) -> DequantizeLinear(s_x, z_x) -> Conv <- DequantizeLinear(s_w, z_w) <- W (integers)

and an activation x activation MatMul (attention) with a DequantizeLinear on both run-time
operands. Constant folding turns ``DequantizeLinear(W)`` into a float constant, so the import
reads the patterns before folding (``asimc.frontend.import_for_compile``) and hands the
compiler one ``QdqPattern`` per product: the model's integers and scales, before any chip is
known. Fitting them onto a chip is ``asimc.passes.qdq``; executing them,
``asimc.runtime.quantizer`` (docs/numeric-model.md, "Quantisers").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..ir import Graph, Node

# The integer types QuantizeLinear/DequantizeLinear carry, and their ranges.
INTEGER_RANGES = {
    "uint8": (0, 255), "int8": (-128, 127), "uint16": (0, 65535), "int16": (-32768, 32767),
    "uint4": (0, 15), "int4": (-8, 7),
}


@dataclass(frozen=True)
class QdqWeights:
    """The model's integer weights of one product, as the compiler stores them."""

    values: np.ndarray                   # (groups, K, N) integers, zero point removed
    scales: tuple[float, ...]            # one, or one per output column (group-major)
    dtype: str


@dataclass(frozen=True)
class QdqActivation:
    """A run-time operand as the model quantises it: x = (u - zero_point) * scale, with u an
    integer of ``dtype``."""

    scale: float
    zero_point: int
    dtype: str


@dataclass(frozen=True)
class QdqPattern:
    """The Q/DQ operands found around one matrix product (before the chip is known): its
    input, its constant weights, or (an activation x activation MatMul such as attention's)
    its run-time second operand."""

    node: str
    input: QdqActivation | None = None
    weights: QdqWeights | None = None
    operand: QdqActivation | None = None


# -- recognising the patterns ---------------------------------------------------------------

def find_patterns(graph: Graph) -> dict[str, QdqPattern]:
    """Per Conv/Gemm/MatMul node name, the Q/DQ operands around it (nodes without any: absent).
    ``graph``: normalised but not yet folded, so that DequantizeLinear(W) is still a node."""
    producers = graph.producers()
    patterns = {}
    for node in graph.nodes:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.inputs) < 2:
            continue
        found = {}
        weight_dq = producers.get(node.inputs[1])
        if _is_dq(weight_dq):
            if weight_dq.inputs[0] in graph.constants:
                found["weights"] = _weights(graph, node, weight_dq)
            elif node.op_type == "MatMul":
                found["operand"] = _activation(graph, node, weight_dq, "second operand")
        input_dq = producers.get(node.inputs[0])
        if _is_dq(input_dq) and input_dq.inputs[0] not in graph.constants:
            found["input"] = _activation(graph, node, input_dq, "input")
        if found:
            patterns[node.name] = QdqPattern(node=node.name, **found)
    return patterns


def _activation(graph: Graph, node: Node, dq: Node, operand: str) -> QdqActivation:
    scale, zero, dtype = _dq_parameters(graph, node, dq, operand=operand)
    if np.size(scale) != 1 or np.size(zero) != 1:
        raise ModelError(f"{node.describe()}: its {operand} is quantised per axis "
                         f"({np.size(scale)} scales) by '{dq.name}'; asimc maps per-tensor "
                         "activation scales onto the array (one scale per row driver), so "
                         "quantise activations per tensor")
    return QdqActivation(float(np.float32(scale).reshape(())), int(np.asarray(zero).reshape(())),
                         dtype)


def _is_dq(node: Node | None) -> bool:
    return node is not None and node.op_type == "DequantizeLinear"


def _dq_parameters(graph: Graph, node: Node, dq: Node, operand: str):
    """(scale, zero point, integer dtype name) of a DequantizeLinear feeding ``node``."""
    if dq.attr("block_size", 0):
        raise ModelError(f"{node.describe()}: its {operand} is block-quantised by '{dq.name}' "
                         "(block_size); asimc maps per-tensor or per-channel scales only")
    scale = graph.constants.get(dq.inputs[1])
    if scale is None:
        raise ModelError(f"{node.describe()}: the scale of '{dq.name}' is computed at run "
                         "time; a QDQ model's scales must be constants")
    info = graph.info(dq.inputs[0])
    dtype = info.dtype if info is not None else None
    if dtype not in INTEGER_RANGES:
        raise ModelError(f"{node.describe()}: '{dq.name}' dequantises {dtype or 'an unknown'} "
                         f"values; asimc maps integer types onto the array "
                         f"({', '.join(INTEGER_RANGES)})")
    zero = np.zeros((), np.int64)
    if len(dq.inputs) > 2 and dq.inputs[2]:
        zero = graph.constants.get(dq.inputs[2])
        if zero is None:
            raise ModelError(f"{node.describe()}: the zero point of '{dq.name}' is computed "
                             "at run time; a QDQ model's zero points must be constants")
    return np.asarray(scale, np.float32), np.asarray(zero).astype(np.int64), dtype


def _weights(graph: Graph, node: Node, dq: Node) -> QdqWeights:
    from ..passes.lower import conv_weight_matrix
    scale, zero, dtype = _dq_parameters(graph, node, dq, operand="weight")
    q = graph.constants[dq.inputs[0]].astype(np.int64)
    per_channel = scale.size > 1
    # The output-channel axis of the stored weight: Conv (Cout, ...) 0; Gemm B (K, N) 1 or,
    # with transB, (N, K) 0; MatMul (K, N) 1.
    if node.op_type == "Conv":
        channel_axis = 0
    elif node.op_type == "Gemm":
        channel_axis = 0 if node.attr("transB", 0) else 1
    else:
        channel_axis = q.ndim - 1
    if per_channel or zero.size > 1:
        axis = dq.attr("axis", 1)
        axis = axis + q.ndim if axis < 0 else axis
        if axis != channel_axis:
            raise ModelError(f"{node.describe()}: '{dq.name}' quantises its weights along axis "
                             f"{axis}, not the output channels (axis {channel_axis}); asimc "
                             "maps per-tensor or per-output-channel weight scales only")
        shape = [1] * q.ndim
        shape[axis] = -1
        zero_b = zero.reshape(shape) if zero.size > 1 else zero
    else:
        zero_b = zero.reshape(())
    values = q - zero_b
    if node.op_type == "Conv":
        matrix = conv_weight_matrix(values, node.attr("group", 1))
    elif node.op_type == "Gemm":
        matrix = (values.T if node.attr("transB", 0) else values)[None]
    else:
        if values.ndim != 2:
            raise ModelError(f"{node.describe()}: its quantised constant operand has "
                             f"{values.ndim} dimensions (only matrices are mapped)")
        matrix = values[None]
    scales = tuple(float(s) for s in np.broadcast_to(
        scale.reshape(-1), (matrix.shape[0] * matrix.shape[2],) if per_channel else (1,)))
    return QdqWeights(np.ascontiguousarray(matrix), scales, dtype)


def pattern_matches_weights(pattern: QdqPattern, folded: np.ndarray) -> bool:
    """Whether the model's integers times its scales are the imported (folded) weights; not so
    when an import step rewrote them (a BatchNormalization folded into the product)."""
    if pattern.weights is None:
        return True
    values = pattern.weights.values
    if values.shape != folded.shape:
        return False
    scales = np.asarray(pattern.weights.scales, np.float32)
    scales = scales.reshape(values.shape[0], 1, -1) if scales.size > 1 else scales.reshape(())
    return bool(np.allclose(values.astype(np.float32) * scales, folded, rtol=1e-6, atol=0))



"""Quantised (QDQ) models: take the weight and input scales from the model's own
QuantizeLinear/DequantizeLinear nodes instead of asimc's quantisers (docs/numeric-model.md, "Quantisers").

A QDQ model (onnxruntime's ``quantize_static`` in QDQ format, per tensor or per channel, or a
QAT export) surrounds each Conv, Gemm and MatMul with

    x -> QuantizeLinear(s_x, z_x) -> DequantizeLinear(s_x, z_x) -> Conv <- DequantizeLinear(s_w, z_w) <- W (integers)

The import folds ``DequantizeLinear(W)`` into a float constant, so this pass reads the patterns
from the graph before folding and hands the compiler, per matrix product, a ``QdqLayer``:

* **Weights**: the model's integers ``W - z_w`` go into the array as they are (two's complement,
  so the chip's ``weight bits`` must hold them: an int8 weight needs 8 bits), with the model's
  scale(s) (per tensor, or per output channel).
* **Inputs**: the Conv receives ``x = (u - z_x) * s_x`` with ``u`` the model's integer; the
  executor recovers ``u`` exactly (``round(x / s_x) + z_x``) and drives the rows with it. An
  asymmetric input is exact on the array: ``sum (u - z) w = sum u w - z sum w``, so the rows take
  the unsigned ``u`` and the digital periphery subtracts ``z x`` (column sum of the integer
  weights), an exact integer, from every converted sum (a Conv pads with ``z``, the model's zero).
  A model integer type is moved onto the chip's input range by a constant ``shift`` (int8 on an
  unsigned chip: ``u + 128``, zero point ``z + 128``), which the same correction absorbs.
* **Bit widths**: the chip must hold the model's integers: uint8/int8 inputs need 8 input bits
  (unsigned or signed), int8 weights 8 weight bits. Fewer bits are refused with the reason:
  requantising would replace the model's calibrated grid by another one, i.e. simulate a model
  the designer did not bring; the float model with asimc's own quantisers is that experiment.

Only what the pattern proves is taken: a product with only its weights (or only its input) in
QDQ form takes those scales and asimc's quantiser for the other operand. Activation x activation
MatMuls keep asimc's quantisers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..chip.spec import ChipSpec
from ..errors import ModelError
from ..ir import Graph, Node

# The integer types QuantizeLinear/DequantizeLinear carry, and their ranges.
INTEGER_RANGES = {
    "uint8": (0, 255), "int8": (-128, 127), "uint16": (0, 65535), "int16": (-32768, 32767),
    "uint4": (0, 15), "int4": (-8, 7),
}


@dataclass(frozen=True)
class QdqInput:
    """A matrix product's input as the model quantises it, moved onto the chip's input range.

    The chip drives ``u - shift`` for the model's integer ``u``; ``zero_point`` is the model's
    zero point minus ``shift`` (the value that means 0.0, what a Conv pads with).
    """

    scale: float
    zero_point: int
    shift: int
    dtype: str


@dataclass(frozen=True)
class QdqLayer:
    """What a QDQ model fixes for one on-chip product; None: asimc quantises that operand."""

    input: QdqInput | None
    weight_dtype: str | None
    weight_per_channel: bool = False


@dataclass(frozen=True)
class QdqWeights:
    """The model's integer weights of one product, as the compiler stores them."""

    values: np.ndarray                   # (groups, K, N) integers, zero point removed
    scales: tuple[float, ...]            # one, or one per output column (group-major)
    dtype: str


@dataclass(frozen=True)
class QdqPattern:
    """The Q/DQ operands found around one matrix product (before the chip is known)."""

    node: str
    input_scale: float | None = None
    input_zero_point: int = 0
    input_dtype: str | None = None
    weights: QdqWeights | None = None


# -- recognising the patterns ---------------------------------------------------------------

def unfolded_graph(source) -> Graph:
    """The imported graph before constant folding, where DequantizeLinear(W) is still a node."""
    from ..frontend import import_proto
    from ..frontend.convert import to_graph
    from ..frontend.normalize import normalize
    from ..frontend.simplify import drop_passthrough
    return drop_passthrough(normalize(to_graph(import_proto(source))))


def has_qdq(source) -> bool:
    """Whether the model holds any DequantizeLinear node (cheap: no shape inference)."""
    from ..frontend import load
    model = load.load_model(source)
    return any(n.op_type == "DequantizeLinear" and n.domain in ("", "ai.onnx")
               for n in model.graph.node)


def find_patterns(graph: Graph) -> dict[str, QdqPattern]:
    """Per Conv/Gemm/MatMul node name, the Q/DQ operands around it (nodes without any: absent)."""
    producers = graph.producers()
    patterns = {}
    for node in graph.nodes:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.inputs) < 2:
            continue
        found = {}
        weight_dq = producers.get(node.inputs[1])
        if _is_dq(weight_dq) and weight_dq.inputs[0] in graph.constants:
            found["weights"] = _weights(graph, node, weight_dq)
        input_dq = producers.get(node.inputs[0])
        if _is_dq(input_dq) and input_dq.inputs[0] not in graph.constants:
            scale, zero, dtype = _dq_parameters(graph, node, input_dq, operand="input")
            if np.size(scale) != 1:
                raise ModelError(f"{node.describe()}: its input is quantised per axis "
                                 f"({np.size(scale)} scales) by '{input_dq.name}'; asimc maps "
                                 "per-tensor input scales onto the array (one scale per row "
                                 "driver), so quantise activations per tensor")
            found.update(input_scale=float(np.float32(scale).reshape(())),
                         input_zero_point=int(np.asarray(zero).reshape(())), input_dtype=dtype)
        if found:
            patterns[node.name] = QdqPattern(node=node.name, **found)
    return patterns


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
    from .lower import conv_weight_matrix
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


# -- fitting the model's integers onto the chip ---------------------------------------------

def layer_for_chip(pattern: QdqPattern, chip: ChipSpec, node: Node
                   ) -> tuple[QdqLayer, np.ndarray | None]:
    """The QdqLayer of ``pattern`` on ``chip`` and the integer weights to store (or None),
    refusing (ModelError) model integers the chip's bits cannot hold."""
    where = f'layer "{node.name}"'
    qinput = None
    if pattern.input_dtype is not None:
        low, high = INTEGER_RANGES[pattern.input_dtype]
        bits, signed = chip.input.bits, chip.input.signed
        if high - low > (1 << bits) - 1:
            raise ModelError(
                f"{node.describe()}: the model quantises its input to {pattern.input_dtype} "
                f"({high - low + 1} levels) but the chip drives {bits}-bit "
                f"{'signed' if signed else 'unsigned'} inputs ({1 << bits} levels). asimc "
                "takes a QDQ model's scales as they are and does not requantise them; give "
                f"this layer {_bits_needed(high - low)} input bits (`{where} {{ input {{ bits "
                f"{_bits_needed(high - low)} }} }}`), or compile the float model")
        chip_low = -(1 << (bits - 1)) if signed else 0
        chip_high = chip_low + (1 << bits) - 1
        shift = 0 if chip_low <= low and high <= chip_high else low - chip_low
        qinput = QdqInput(scale=pattern.input_scale,
                          zero_point=pattern.input_zero_point - shift, shift=shift,
                          dtype=pattern.input_dtype)
    weights = None
    if pattern.weights is not None:
        if chip.weight.parallel:
            raise ModelError(f"{node.describe()}: a QDQ model's weights cannot be mapped onto "
                             "a fully bit-parallel array (`weight { parallel }`), whose "
                             "full scale assumes asimc's symmetric weights; compile the float "
                             "model")
        bits = chip.weight.bits
        values = pattern.weights.values
        low, high = int(values.min(initial=0)), int(values.max(initial=0))
        if low < -(1 << (bits - 1)) or high > (1 << (bits - 1)) - 1:
            raise ModelError(
                f"{node.describe()}: the model's integer weights ({pattern.weights.dtype}, "
                f"zero point removed) range from {low} to {high}, which {bits}-bit two's "
                f"complement weights cannot hold; asimc does not requantise a QDQ model. "
                f"Give this layer more weight bits (`{where} {{ weight {{ bits 8 }} }}`), or "
                "compile the float model")
        dtype = np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32
        weights = values.astype(dtype)
    layer = QdqLayer(input=qinput,
                     weight_dtype=None if pattern.weights is None else pattern.weights.dtype,
                     weight_per_channel=pattern.weights is not None
                     and len(pattern.weights.scales) > 1)
    return layer, weights


def _bits_needed(span: int) -> int:
    return max(1, int(span).bit_length())


# -- what the executor calls ------------------------------------------------------------------

def quantize_input(x: torch.Tensor, qinput: QdqInput) -> torch.Tensor:
    """The chip's integer inputs for x = (u - z) * s (a DequantizeLinear output): u - shift.

    round(x / s) recovers u - z exactly (x is within float32 rounding of an integer times s),
    so the model's integers reach the array unchanged."""
    s = torch.tensor(qinput.scale, dtype=torch.float32, device=x.device)
    return torch.round(x.to(torch.float32) / s) + qinput.zero_point


def zero_point_correction(acc: torch.Tensor, weights: torch.Tensor, zero_point: int
                          ) -> torch.Tensor:
    """acc - z * (column sums of the integer weights): the digital periphery's exact term that
    makes an asymmetric input's sum that of (u - z). acc (G, R, N), weights (G, K, N)."""
    if zero_point == 0:
        return acc
    return acc - zero_point * weights.double().sum(dim=1, keepdim=True)

"""Fold inference BatchNormalization into the Conv / ConvTranspose / Gemm / MatMul before it.

y = (x - mean) / sqrt(var + eps) * scale + bias is a per-channel affine map, so it merges into
the producer's weights and bias when the producer's output feeds nothing else. Otherwise the
BatchNormalization stays, as a digital op. Folding is done in float64 and cast back.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir import Graph, Node
from .editing import GraphEditor


def _bn_affine(ed: GraphEditor, bn: Node) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel (factor, shift) of a BatchNormalization with constant parameters."""
    names = bn.inputs[1:5]
    if len(names) != 4 or not all(n in ed.constants for n in names):
        return None
    scale, bias, mean, var = (np.asarray(ed.constants[n], dtype=np.float64) for n in names)
    factor = scale / np.sqrt(var + float(bn.attr("epsilon", 1e-5)))
    return factor, bias - mean * factor


def _const(ed: GraphEditor, name: str) -> np.ndarray | None:
    return ed.constants.get(name) if name else None


def _fold_conv(ed: GraphEditor, conv: Node, factor, shift) -> Node | None:
    w = _const(ed, conv.inputs[1])
    b_name = conv.inputs[2] if len(conv.inputs) > 2 else ""
    b = _const(ed, b_name)
    if w is None or (b_name and b is None) or w.shape[0] != factor.size:
        return None
    w64 = w.astype(np.float64) * factor.reshape(-1, *[1] * (w.ndim - 1))
    b64 = (np.zeros(factor.size) if b is None else b.astype(np.float64)) * factor + shift
    return _with_params(ed, conv, w64.astype(w.dtype), b64.astype(w.dtype), 2)


def _fold_conv_transpose(ed: GraphEditor, conv: Node, factor, shift) -> Node | None:
    w = _const(ed, conv.inputs[1])
    b_name = conv.inputs[2] if len(conv.inputs) > 2 else ""
    b = _const(ed, b_name)
    group = int(conv.attr("group", 1))
    if w is None or (b_name and b is None) or w.shape[1] * group != factor.size:
        return None
    # weight (C, M/group, k...): output channel g*(M/group)+j is w[g-th block, j]
    per_group = factor.reshape(group, 1, -1, *[1] * (w.ndim - 2))
    grouped = w.astype(np.float64).reshape(group, w.shape[0] // group, *w.shape[1:])
    w64 = (grouped * per_group).reshape(w.shape)
    b64 = (np.zeros(factor.size) if b is None else b.astype(np.float64)) * factor + shift
    return _with_params(ed, conv, w64.astype(w.dtype), b64.astype(w.dtype), 2)


def _fold_gemm(ed: GraphEditor, gemm: Node, factor, shift) -> Node | None:
    b = _const(ed, gemm.inputs[1])
    c_name = gemm.inputs[2] if len(gemm.inputs) > 2 else ""
    c = _const(ed, c_name)
    if b is None or b.ndim != 2 or (c_name and c is None):
        return None
    trans_b = bool(gemm.attr("transB", 0))
    if (b.shape[0] if trans_b else b.shape[1]) != factor.size:
        return None
    alpha, beta = float(gemm.attr("alpha", 1.0)), float(gemm.attr("beta", 1.0))
    column = factor.reshape(-1, 1) if trans_b else factor.reshape(1, -1)
    b64 = b.astype(np.float64) * alpha * column
    c64 = shift if c is None else c.astype(np.float64) * beta * factor + shift
    node = _with_params(ed, gemm, b64.astype(b.dtype), c64.astype(b.dtype), 2)
    return replace(node, attrs={**node.attrs, "alpha": 1.0, "beta": 1.0})


def _fold_matmul(ed: GraphEditor, matmul: Node, factor, shift) -> Node | None:
    """A 2-D MatMul with a constant (K, N) weight: BN's channel axis 1 is N. Becomes a Gemm."""
    w = _const(ed, matmul.inputs[1])
    a_shape = ed.shape_of(matmul.inputs[0])
    if w is None or w.ndim != 2 or a_shape is None or len(a_shape) != 2 or \
            w.shape[1] != factor.size:
        return None
    w64 = w.astype(np.float64) * factor.reshape(1, -1)
    gemm = replace(matmul, op_type="Gemm", attrs={})
    return _with_params(ed, gemm, w64.astype(w.dtype), shift.astype(w.dtype), 2)


def _with_params(ed: GraphEditor, node: Node, weight: np.ndarray, bias: np.ndarray,
                 bias_index: int) -> Node:
    w_name = ed.add_constant(f"{node.inputs[1]}_bnfolded", weight)
    b_name = ed.add_constant(f"{node.name}_bias_bnfolded", bias)
    inputs = list(node.inputs) + [""] * max(0, bias_index + 1 - len(node.inputs))
    inputs[1], inputs[bias_index] = w_name, b_name
    return replace(node, inputs=tuple(inputs))


_FOLDERS = {"Conv": _fold_conv, "ConvTranspose": _fold_conv_transpose, "Gemm": _fold_gemm,
            "MatMul": _fold_matmul}


def fold_batch_norms(graph: Graph) -> Graph:
    ed = GraphEditor(graph)
    graph_outputs = {t.name for t in graph.outputs}
    consumers = graph.consumers()
    producers = graph.producers()
    replaced: dict[str, Node] = {}     # producer name -> folded producer (writing BN's output)
    removed: set[str] = set()
    for bn in ed.nodes:
        if bn.op_type != "BatchNormalization" or any(bn.outputs[1:]):
            continue
        x = bn.inputs[0]
        producer = producers.get(x)
        if producer is None or producer.op_type not in _FOLDERS or x in graph_outputs or \
                len(consumers.get(x, [])) != 1 or producer.name in replaced:
            continue
        affine = _bn_affine(ed, bn)
        if affine is None:
            continue
        folded = _FOLDERS[producer.op_type](ed, producer, *affine)
        if folded is None:
            continue
        replaced[producer.name] = replace(folded, outputs=(bn.outputs[0],) + folded.outputs[1:])
        removed.add(bn.name)
    if not replaced:
        return graph
    ed.nodes = [replaced.get(n.name, n) for n in ed.nodes if n.name not in removed]
    return ed.finish()

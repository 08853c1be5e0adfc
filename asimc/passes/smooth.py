"""Per-input-channel smoothing at compile time (SmoothQuant: Xiao et al., ICML 2023).

A transformer's activations carry a few channels whose values are tens of times larger than the
rest; one input scale per row (or per tensor) is set by those outliers, so every other channel
uses a sliver of the input range and drowns in the chip's noise. Smoothing moves the outliers
into the weights, which are quantised per output channel and do not mind: for a product
``Y = X · W`` with a constant ``W`` (K x N), on calibration data,

    s_j = max|X_j|^a / max_n |W_jn|^(1-a)          (j = 1..K, the input channels)
    Y   = (X / s) · (diag(s) W)

exactly in float; only the quantisation changes. Products reading the same tensor share one
``s`` (the weight maximum is taken over all of them). ``1/s`` is folded into the producer where
it is a LayerNormalization whose output feeds only those products (its scale and bias divided
by ``s``); otherwise a digital per-channel ``Mul`` is inserted before them. Channels that are
zero on the data or in the weights keep ``s_j = 1``. See docs/numeric-model.md,
"Quantisers".
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import UsageError
from ..ir import Graph, Node, TensorInfo

# (torch and the frontend load lazily: the sweep's Context imports DEFAULT_ALPHA)

DEFAULT_ALPHA = 0.5
# s is kept within these bounds so that neither side under- or overflows float32.
_S_RANGE = (1e-4, 1e4)


def check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) \
            or not 0.0 <= float(alpha) <= 1.0:
        raise UsageError(f"the smoothing strength (alpha) is a number from 0 to 1, not "
                         f"{alpha!r}")
    return float(alpha)


def _weight_rows(graph: Graph, node: Node) -> np.ndarray | None:
    """The product's constant weight as (K, N), or None if it has none we can smooth."""
    w = graph.constants.get(node.inputs[1]) if len(node.inputs) > 1 else None
    if w is None or w.ndim != 2 or not np.issubdtype(w.dtype, np.floating):
        return None
    if node.op_type == "Gemm":
        if node.attr("transA", 0):
            return None
        return w.T if node.attr("transB", 0) else w
    return w


def smoothable(graph: Graph, names) -> dict[str, list[Node]]:
    """The products among ``names`` (MatMul/Gemm with a constant 2-D float weight), grouped by
    the tensor they read."""
    groups: dict[str, list[Node]] = {}
    wanted = set(names)
    for node in graph.nodes:
        if node.name in wanted and node.op_type in ("MatMul", "Gemm") \
                and _weight_rows(graph, node) is not None:
            groups.setdefault(node.inputs[0], []).append(node)
    return groups


def smooth(graph: Graph, names, data, *, alpha: float = DEFAULT_ALPHA, limit: int = 256
           ) -> tuple[Graph, dict[str, str]]:
    """``graph`` with the products named in ``names`` smoothed on ``data``; and a note per
    smoothed product (where its 1/s went)."""
    from ..frontend.editing import GraphEditor
    from ..frontend.prune import prune
    from .input_scales import float_run
    alpha = check_alpha(alpha)
    groups = smoothable(graph, names)
    if not groups:
        return graph, {}
    peaks: dict[str, np.ndarray] = {}

    def record(node, values):
        for name, value in zip(node.inputs, values):
            if name in groups and value is not None and value.is_floating_point():
                peak = value.detach().abs().reshape(-1, value.shape[-1]).amax(dim=0)
                peak = peak.double().numpy()
                peaks[name] = peak if name not in peaks else np.maximum(peaks[name], peak)

    float_run(graph, data, limit, record)
    editor = GraphEditor(graph)
    producers, consumers = graph.producers(), graph.consumers()
    notes: dict[str, str] = {}
    for tensor, nodes in groups.items():
        x_peak = peaks.get(tensor)
        if x_peak is None:
            continue
        w_peak = np.max([np.abs(_weight_rows(graph, n)).max(axis=1) for n in nodes], axis=0)
        if w_peak.shape != x_peak.shape:
            continue
        used = (x_peak > 0) & (w_peak > 0)
        s = np.ones_like(x_peak)
        s[used] = x_peak[used] ** alpha / w_peak[used] ** (1.0 - alpha)
        s = np.clip(s, *_S_RANGE).astype(np.float32)
        for node in nodes:
            w = graph.constants[node.inputs[1]]
            transposed = node.op_type == "Gemm" and node.attr("transB", 0)
            scaled = ((w * s[None, :]) if transposed else (w * s[:, None])).astype(w.dtype)
            # A new constant: the weight may be shared with a product that is not smoothed.
            name = editor.add_constant(node.inputs[1] + "_smoothed", scaled)
            editor.nodes = [_with_input(n, 1, name) if n.name == node.name else n
                            for n in editor.nodes]
        producer = producers.get(tensor)
        readers = {n.name for n in consumers.get(tensor, [])}
        folded = (producer is not None and producer.op_type == "LayerNormalization"
                  and not any(producer.outputs[1:])          # no mean / inverse std output
                  and readers == {n.name for n in nodes}
                  and tensor not in {t.name for t in graph.outputs}
                  and all(i in graph.constants for i in producer.inputs[1:3] if i))
        if folded:
            _fold_into_layer_norm(editor, producer, s)
            where = f"1/s folded into {producer.name}"
        else:
            out = editor.fresh(tensor + "_smoothed")
            dtype = editor.dtype_of(tensor) or "float32"
            scale = editor.add_constant(tensor + "_smoothing", (1.0 / s).astype(dtype))
            mul = Node(name=editor.fresh(tensor + "/smooth"), op_type="Mul",
                       inputs=(tensor, scale), outputs=(out,))
            info = graph.info(tensor)
            if info is not None:
                editor.value_info[out] = TensorInfo(out, info.dtype, info.shape)
            targets = {n.name for n in nodes}
            editor.nodes = [_with_input(n, 0, out) if n.name in targets else n
                            for n in editor.nodes]
            first = min(i for i, n in enumerate(editor.nodes) if n.name in targets)
            editor.nodes.insert(first, mul)             # right before its first reader
            where = f"1/s applied digitally ({mul.name})"
        spread = float(s.max() / s.min())
        for node in nodes:
            notes[node.name] = f"smoothed (alpha {alpha:g}, s spread {spread:.3g}x; {where})"
    return prune(editor.finish()), notes


def _with_input(node: Node, index: int, name: str) -> Node:
    inputs = list(node.inputs)
    inputs[index] = name
    return dataclasses.replace(node, inputs=tuple(inputs))


def _fold_into_layer_norm(editor, node: Node, s: np.ndarray) -> None:
    """LayerNormalization's scale and bias divided by s (new constants: they may be shared)."""
    inputs = list(node.inputs)
    for index in (1, 2):
        if index < len(inputs) and inputs[index]:
            value = editor.constants[inputs[index]]
            inputs[index] = editor.add_constant(inputs[index] + "_smoothed",
                                                (value / s).astype(value.dtype))
    new = dataclasses.replace(node, inputs=tuple(inputs))
    editor.nodes = [new if n.name == node.name else n for n in editor.nodes]

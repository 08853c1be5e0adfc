"""ONNX import: ``import_model(path_or_bytes) -> Graph``.

The passes, in order, each in its own module:

1. ``load``      read the file (path, bytes or ModelProto), external data, name every node
2. ``check``     inline local functions, topological sort (``order``); ``expand``: ops ONNX
                 defines as functions (Attention, RotaryEmbedding, ...) -> their bodies when
                 asimc runs the body's ops; then the ONNX checker
3. ``support``   one error listing every unsupported op (with node names) and the supported set
4. ``shapes``    ONNX shape inference with data propagation (symbolic batch dims stay symbolic)
5. ``convert``   proto -> IR: constants as numpy, attributes as Python values; NaN/Inf
                 weights refused (``check``)
6. ``normalize`` older operator forms -> the one internal opset (opset 21 forms)
7. ``simplify``  drop Identity and inference Dropout; ``qdq``: a quantised model's
                 QuantizeLinear/DequantizeLinear patterns captured (before folding)
8. ``fold``      constant sub-graphs and shape sub-graphs -> constants (repeated with shapes
                 re-inferred on the folded graph, ``shapes.refresh_shapes``, until it settles)
9. ``bn_fold``   BatchNormalization -> the preceding Conv/ConvTranspose/Gemm/MatMul
10. ``prune``/``order`` dead nodes and constants removed, nodes topologically sorted
11. ``shapes``   shapes the compiler must know (Conv weights, matmul operand ranks) are known
"""
from __future__ import annotations

from dataclasses import dataclass, field

import onnx

from ..ir import Graph
from . import check, load, order, shapes, support
from .expand import expand_functions
from .bn_fold import fold_batch_norms
from .convert import to_graph
from .fold import fold_constants
from .load import ModelSource
from .normalize import INTERNAL_OPSET, normalize
from .prune import prune
from .qdq import QdqPattern, find_patterns
from .simplify import drop_passthrough
from .support import importable_ops

MAX_REFOLDS = 3

__all__ = ["INTERNAL_OPSET", "ImportedModel", "import_for_compile", "import_model",
           "import_proto", "supported_ops"]


@dataclass(frozen=True)
class ImportedModel:
    """The imported graph and, for a quantised (QDQ) model, the Q/DQ patterns around each
    matrix product by node name (captured before folding; asimc.frontend.qdq)."""

    graph: Graph
    qdq_patterns: dict[str, QdqPattern] = field(default_factory=dict)


def supported_ops() -> list[str]:
    """Every ONNX op type (default domain) a model may contain, sorted."""
    return importable_ops()


def import_proto(source: ModelSource) -> onnx.ModelProto:
    """Steps 1-4: the checked, shape-inferred ONNX model (useful to compare with onnxruntime)."""
    model = load.load_model(source)
    model = check.inline_functions(model)
    order.sort_proto(model.graph)
    model = expand_functions(model)
    check.check_model(model)
    support.check_supported(model.graph)
    return shapes.infer_shapes(model)


def import_model(source: ModelSource) -> Graph:
    """Import an ONNX model (a path, bytes or an onnx.ModelProto) into asimc's graph IR.

    Raises ModelError, naming the file, node, op, tensor or dimension, for anything that
    cannot be imported.
    """
    return import_for_compile(source).graph


def import_for_compile(source: ModelSource) -> ImportedModel:
    """``import_model``, with a QDQ model's patterns: the model is read and normalised once."""
    graph = to_graph(import_proto(source))
    check.refuse_nonfinite_weights(graph)
    graph = normalize(graph)
    graph = order.sort_graph(graph)
    graph = drop_passthrough(graph)
    patterns = find_patterns(graph) if any(n.op_type == "DequantizeLinear"
                                           for n in graph.nodes) else {}
    graph = fold_constants(graph)
    for _ in range(MAX_REFOLDS):         # folded constants can let ONNX resolve more shapes
        refolded = fold_constants(shapes.refresh_shapes(graph))
        settled = len(refolded.nodes) == len(graph.nodes)
        graph = refolded
        if settled:
            break
    graph = fold_batch_norms(graph)
    graph = order.sort_graph(prune(graph))
    shapes.check_required_shapes(graph)
    return ImportedModel(graph, patterns)

"""Lowering: decide for every matrix product (Conv, Gemm, MatMul) whether and how it runs on the
array.

A product with a constant weight operand becomes a ``static`` layer (the weights are stored in
the array); a MatMul of two activations (attention's Q·Kᵀ and A·V) becomes a ``dynamic`` layer
(the second operand is written into the array at run time) unless the chip keeps attention
digital. Chip ``layer`` overrides and ``--digital`` globs apply here. Anything the array cannot
hold runs digitally, with the reason in the report.
"""
from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass

import numpy as np

from ..chip.spec import ChipSpec
from ..errors import ModelError
from ..chip.fields import Attention
from ..ir import Graph, Node
from ..program import LayerKind, Placement

MATRIX_OPS = ("Conv", "Gemm", "MatMul")


@dataclass(frozen=True)
class Candidate:
    """A matrix product before tiling: its geometry and where it will run."""

    node: Node
    kind: str              # static | dynamic
    placement: str         # acim | digital
    reason: str
    chip: ChipSpec
    k: int | None          # reduction length per group (None: known only at run time)
    n: int | None          # output columns per group
    groups: int = 1
    kernel_area: int = 1   # kh*kw for convolutions, 1 otherwise
    weight: np.ndarray | None = None   # (groups, K, N) float weights of a static layer


def conv_weight_matrix(weight: np.ndarray, groups: int) -> np.ndarray:
    """(Cout, Cin/g, kh, kw) -> (g, Cin/g*kh*kw, Cout/g): each group's K x N matrix, K ordered
    (channel, kh, kw) like an im2col unfold."""
    cout = weight.shape[0]
    per_group = weight.reshape(groups, cout // groups, -1)
    return np.ascontiguousarray(per_group.transpose(0, 2, 1))


def _static_weight(graph: Graph, node: Node) -> tuple[np.ndarray | None, str]:
    """The (groups, K, N) weight of a product with a constant right operand, or a reason."""
    consts = graph.constants
    if node.op_type == "Conv":
        w = consts.get(node.inputs[1])
        if w is None:
            return None, "its weights are computed at run time"
        if w.ndim not in (3, 4):
            return None, f"{w.ndim - 2}-D convolutions are not mapped onto the array"
        if node.attr("group", 1) < 1 or w.shape[0] % node.attr("group", 1):
            raise ModelError(f"{node.describe()}: {w.shape[0]} output channels cannot be split "
                             f"into {node.attr('group', 1)} groups")
        return conv_weight_matrix(w.astype(np.float32), node.attr("group", 1)), ""
    if node.op_type == "Gemm":
        b = consts.get(node.inputs[1])
        if b is None:
            return None, ""
        b = b.T if node.attr("transB", 0) else b
        return np.ascontiguousarray(b.astype(np.float32))[None], ""
    b = consts.get(node.inputs[1])          # MatMul
    if b is None:
        return None, ""
    if b.ndim != 2:
        return None, f"its constant operand has {b.ndim} dimensions (only matrices are mapped)"
    return np.ascontiguousarray(b.astype(np.float32))[None], ""


def _dims(graph: Graph, name: str) -> tuple | None:
    info = graph.info(name)
    return None if info is None or info.shape is None else info.shape


def _dynamic_geometry(graph: Graph, node: Node) -> tuple[int | None, int | None]:
    """K and N of an activation x activation product, where shape inference knows them."""
    a, b = _dims(graph, node.inputs[0]), _dims(graph, node.inputs[1])
    k = n = None
    if node.op_type == "Gemm":
        if a is not None and len(a) == 2:
            k = a[0] if node.attr("transA", 0) else a[1]
        if b is not None and len(b) == 2:
            n = b[0] if node.attr("transB", 0) else b[1]
    else:
        k = a[-1] if a else None
        n = b[-1] if b is not None and len(b) >= 2 else None
    return (k if isinstance(k, int) else None), (n if isinstance(n, int) else None)


def lower(graph: Graph, chip: ChipSpec, digital_globs: tuple[str, ...] = ()) -> list[Candidate]:
    """One Candidate per matrix product of ``graph``, in graph order."""
    candidates = []
    for node in graph.nodes:
        if node.op_type not in MATRIX_OPS:
            continue
        layer_chip, kept_digital = chip.for_layer(node.op_type, node.name)
        weight, reason = _static_weight(graph, node)
        groups = node.attr("group", 1) if node.op_type == "Conv" else 1
        kernel_area = 1
        if weight is not None:
            kind = LayerKind.STATIC
            k, n = weight.shape[1], weight.shape[2]
            if node.op_type == "Conv":
                kernel_area = int(np.prod(graph.constants[node.inputs[1]].shape[2:]))
        elif reason:                      # a constant weight the array cannot hold
            kind, k, n = LayerKind.STATIC, None, None
        else:
            kind = LayerKind.DYNAMIC
            k, n = _dynamic_geometry(graph, node)
            if node.inputs[0] in graph.constants:
                reason = "its constant operand is on the left"
            elif layer_chip.attention == Attention.DIGITAL:
                reason = "the chip keeps attention (activation x activation) digital"
        if kept_digital and not reason:
            reason = "a chip `layer` override keeps it digital"
        matching = [g for g in digital_globs if fnmatch.fnmatchcase(node.name, g)]
        if matching and not reason:
            reason = f"--digital {matching[0]}"
        candidates.append(Candidate(
            node=node, kind=kind, placement=Placement.DIGITAL if reason else Placement.ACIM,
            reason=reason, chip=layer_chip, k=k, n=n, groups=groups, kernel_area=kernel_area,
            weight=weight))
    return candidates


def unmatched_glob_warnings(graph: Graph, chip: ChipSpec, digital_globs: tuple[str, ...] = ()
                            ) -> list[str]:
    """A chip ``layer`` pattern or a ``--digital`` glob that matches no matrix product is most
    likely a typo or a renamed node, and would drop the designer's setting without a word: one
    warning each, with the node names it could have meant."""
    products = [n for n in graph.nodes if n.op_type in MATRIX_OPS]
    names = [n.name for n in products]
    known = names + sorted({n.op_type for n in products})
    warnings = []

    def _warn(what: str, pattern: str) -> None:
        near = difflib.get_close_matches(pattern, known, n=3, cutoff=0.3) or names[:3]
        hint = f" (did you mean {', '.join(repr(n) for n in near)}?)" if near else ""
        warnings.append(f"{what} matches no matrix product of the model, so it changes "
                        f"nothing{hint}")

    for override in chip.layers:
        if not any(override.matches(n.op_type, n.name) for n in products):
            _warn(f"the chip's layer \"{override.pattern}\"", override.pattern)
    for glob in dict.fromkeys(digital_globs):
        if not any(fnmatch.fnmatchcase(name, glob) for name in names):
            _warn(f"--digital {glob!r}", glob)
    return warnings

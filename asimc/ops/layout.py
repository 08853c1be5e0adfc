"""Batch layouts: which elements of a tensor belong to which sample of the batch.

The bit-level executor needs this for per-sample quantisation scales and per-sample noise keys.
Every op declares its rule where it is registered (``@op("Relu", layout=SAME)``); an op without
a rule cannot be registered. ``asimc.runtime.batch.propagate`` applies the rules.

Representation
--------------
``BatchLayout(axis, inner)``: the tensor's ``shape[axis] == O * B * inner`` (B the batch size)
and an element whose coordinate on ``axis`` is ``x`` belongs to sample ``(x // inner) % B``.
Equivalently, with ``S = inner * prod(shape[axis+1:])`` (the *flat stride*), the element at
row-major flat index ``f`` belongs to sample ``(f // S) % B``. So ``t.reshape(-1, B, S)[:, s]``
holds exactly the elements of sample ``s`` - in the order a run of sample ``s`` alone produces
them (see ``sample_view``).

Two other values: ``None`` for a batch-free tensor (constants, weights, shape tensors, outputs
of Shape/ConstantOfShape/Range: the same whatever the samples), and ``LOST`` when an op mixed
samples or moved them in a way the rules do not follow (e.g. a reduction over the batch axis, or
an op whose rule ``lost`` says why). With B == 1 every element is trivially sample 0: the rules then never
answer LOST for a tensor of rank >= 1 but (0, 1), which is then exact.

Rules, from the concrete shapes of one run:
* element-wise / broadcasting ops: the batch axis is right-aligned into the output;
* Transpose permutes the axis; Reshape/Flatten/(Un)Squeeze keep the flat stride S and find the
  output axis a' with R = prod(out[a'+1:]) dividing S and (S/R)*B dividing out[a'] (inner S/R);
* Conv/ConvTranspose/pools/DepthToSpace keep a layout on axis 0 (pools and InstanceNorm also on
  the channel axis); BatchNormalization and Resize (along axes it does not resize) keep any;
* MatMul: a layout in A's leading dims or M axis, or in B's leading dims or N axis, carries over;
  in a K axis it is lost. Gemm likewise (transA/transB aware), plus C broadcast;
* Concat/Split/Slice/Pad keep the layout when they do not cut the batch axis (or cut it at
  multiples of B*inner); Tile always keeps it (copies of whole blocks);
* Gather: data's axis before/after the gather axis shifts by the index rank; the indices' layout
  moves to ``axis + index axis`` (an embedding lookup of token ids keeps (0, 1));
* reductions, Softmax, LayerNorm, ArgMax, CumSum, TopK: lost if they reduce/normalise over the
  batch axis, else the axis index shifts as keepdims=0 removes axes before it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence, Union

from ..ir import Node


@dataclass(frozen=True)
class BatchLayout:
    axis: int
    inner: int = 1

    def flat_stride(self, shape: Sequence[int]) -> int:
        """S: consecutive runs of S elements (row-major) belong to one sample."""
        return self.inner * math.prod(shape[self.axis + 1:])


class _Lost:
    """The layout of a tensor whose samples got mixed (or that no rule covers)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "LOST"

    def __reduce__(self):
        return (_Lost, ())


LOST = _Lost()
Layout = Union[BatchLayout, _Lost, None]    # a layout, LOST, or None (batch-free)


def fits(layout: Layout, shape: Sequence[int], batch: int) -> bool:
    """Whether ``layout`` is a valid description of a tensor of ``shape`` for ``batch``."""
    if not isinstance(layout, BatchLayout):
        return False
    if not 0 <= layout.axis < len(shape) or layout.inner < 1:
        return False
    return shape[layout.axis] % (batch * layout.inner) == 0


# rule(node, inputs, outputs, input layouts, batch size) -> output layouts
Rule = Callable[[Node, list, list, list, int], list]


@dataclass(frozen=True)
class LayoutRule:
    """How one op moves the batch from its inputs to its outputs.

    follow:     the rule function (None for batch-free ops).
    all_inputs: the rule reads every input's layout; otherwise only input 0 carries the batch
                (the others are parameters) and a LOST input 0 gives LOST outputs.
    batch_free: the outputs belong to no sample (Shape, Constant...).
    loses:      why the rule answers LOST when it does (said in the warning that per-sample
                reproducibility is lost).
    """

    follow: Rule | None
    all_inputs: bool = False
    batch_free: bool = False
    loses: str = "it mixes the samples along the batch axis"


def _restride(layout: BatchLayout, in_shape, out_shape, batch: int):
    """The layout that keeps flat stride S in a tensor of ``out_shape`` (same elements)."""
    stride = layout.flat_stride(in_shape)
    for axis in reversed(range(len(out_shape))):
        rest = math.prod(out_shape[axis + 1:])
        if rest and stride % rest == 0 and out_shape[axis] % ((stride // rest) * batch) == 0:
            return BatchLayout(axis, stride // rest)
    return LOST


def _combine(candidates: list):
    """Layouts of one output derived from several inputs must agree."""
    result = None
    for c in candidates:
        if c is None:
            continue
        if c is LOST or (result is not None and c != result):
            return LOST
        result = c
    return result


def _same(node, ins, outs, lay, batch):
    return [lay[0]] * len(outs)


def _broadcast(node, ins, outs, lay, batch):
    rank = outs[0].dim()
    found = []
    for t, layout in zip(ins, lay):
        if t is None or layout is None:
            continue
        if layout is LOST:
            return [LOST]
        axis = layout.axis + rank - t.dim()
        if t.shape[layout.axis] != outs[0].shape[axis]:
            return [LOST]
        found.append(BatchLayout(axis, layout.inner))
    return [_combine(found)]


def _transpose(node, ins, outs, lay, batch):
    perm = node.attr("perm")
    perm = list(range(ins[0].dim()))[::-1] if perm is None else [int(p) for p in perm]
    return [BatchLayout(perm.index(lay[0].axis), lay[0].inner)]


def _reshape(node, ins, outs, lay, batch):
    return [_restride(lay[0], ins[0].shape, out.shape, batch) for out in outs]


def _data_only(rule: Rule) -> Rule:
    """Rules for ops whose other inputs (shapes, axes, parameters) must be batch-free."""
    def checked(node, ins, outs, lay, batch):
        if lay[0] is None:
            return [LOST if any(l is not None for l in lay[1:]) else None] * len(outs)
        if any(l is not None for l in lay[1:]):
            return [LOST] * len(outs)
        return rule(node, ins, outs, lay, batch)
    return checked


def _spatial(allowed_axes: tuple[int, ...]) -> Rule:
    def rule(node, ins, outs, lay, batch):
        return [lay[0] if lay[0].axis in allowed_axes else LOST] * len(outs)
    return _data_only(rule)


def _any_axis(node, ins, outs, lay, batch):
    return [lay[0]] * len(outs)


def _resize(node, ins, outs, lay, batch):
    axis = lay[0].axis
    cropping = node.attr("coordinate_transformation_mode") == "tf_crop_and_resize"
    if ins[0].shape[axis] != outs[0].shape[axis] or cropping:
        return [LOST]
    return [lay[0]]


def _axis_attr(node, rank: int, default: int = 0) -> int:
    axis = int(node.attr("axis", default))
    return axis + rank if axis < 0 else axis


def _concat(node, ins, outs, lay, batch):
    axis = _axis_attr(node, outs[0].dim())
    layouts = [l for l in lay]
    if any(l is LOST for l in layouts):
        return [LOST]
    present = [l for l in layouts if l is not None]
    if len(set(present)) != 1:
        return [LOST]
    layout = present[0]
    if axis != layout.axis:
        return [layout]
    # along the batch axis: fine when every piece is whole blocks of the same layout
    ok = all(l == layout for l in layouts) and all(
        t.shape[axis] % (batch * layout.inner) == 0 for t in ins)
    return [layout if ok else LOST]


def _split(node, ins, outs, lay, batch):
    layout = lay[0]
    axis = _axis_attr(node, ins[0].dim())
    if axis != layout.axis:
        return [layout] * len(outs)
    block = batch * layout.inner
    return [layout if out.shape[axis] % block == 0 else LOST for out in outs]


def _slice(node, ins, outs, lay, batch):
    layout = lay[0]
    x = ins[0]
    starts = ins[1].reshape(-1).tolist()
    ends = ins[2].reshape(-1).tolist()
    axes = ins[3].reshape(-1).tolist() if len(ins) > 3 and ins[3] is not None \
        else list(range(len(starts)))
    steps = ins[4].reshape(-1).tolist() if len(ins) > 4 and ins[4] is not None \
        else [1] * len(starts)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if int(axis) % x.dim() != layout.axis:
            continue
        first, last, stride = slice(int(start), int(end), int(step)).indices(x.shape[layout.axis])
        block = batch * layout.inner
        if stride != 1 or first % block or (last - first) % block:
            return [LOST]
    return [layout]


def _pad(node, ins, outs, lay, batch):
    layout = lay[0]
    pads = ins[1].reshape(-1).tolist()
    rank = ins[0].dim()
    axes = ins[3].reshape(-1).tolist() if len(ins) > 3 and ins[3] is not None \
        else list(range(rank))
    for k, axis in enumerate(axes):
        if int(axis) % rank == layout.axis and (pads[k] or pads[len(axes) + k]):
            return [LOST]
    return [layout]


def _expand(node, ins, outs, lay, batch):
    layout = lay[0]
    axis = layout.axis + outs[0].dim() - ins[0].dim()
    if outs[0].shape[axis] != ins[0].shape[layout.axis]:
        return [LOST]
    return [BatchLayout(axis, layout.inner)]


def _gather(node, ins, outs, lay, batch):
    data, indices = ins[0], ins[1]
    axis = _axis_attr(node, data.dim())
    found = []
    if lay[0] is not None:
        if lay[0] is LOST or lay[0].axis == axis:
            return [LOST]
        shift = indices.dim() - 1 if lay[0].axis > axis else 0
        found.append(BatchLayout(lay[0].axis + shift, lay[0].inner))
    if lay[1] is not None:
        if lay[1] is LOST:
            return [LOST]
        found.append(BatchLayout(axis + lay[1].axis, lay[1].inner))
    return [_combine(found)]


def _gather_elements(node, ins, outs, lay, batch):
    axis = _axis_attr(node, ins[0].dim())
    found = []
    if lay[0] is not None:
        if lay[0] is LOST or lay[0].axis == axis or \
                ins[1].shape[lay[0].axis] != ins[0].shape[lay[0].axis]:
            return [LOST]
        found.append(lay[0])
    if lay[1] is not None:
        found.append(lay[1])
    return [_combine(found)]


def _reduced(layout: BatchLayout, axes: list[int], keepdims: bool):
    if layout.axis in axes:
        return LOST
    if keepdims:
        return layout
    return BatchLayout(layout.axis - sum(a < layout.axis for a in axes), layout.inner)


def _reduce(node, ins, outs, lay, batch):
    rank = ins[0].dim()
    listed = ins[1].reshape(-1).tolist() if len(ins) > 1 and ins[1] is not None else []
    if not listed:
        if node.attr("noop_with_empty_axes", 0):
            return [lay[0]]
        listed = list(range(rank))
    axes = [int(a) % rank for a in listed]
    return [_reduced(lay[0], axes, bool(node.attr("keepdims", 1)))]


def _arg_reduce(node, ins, outs, lay, batch):
    axis = _axis_attr(node, ins[0].dim())
    return [_reduced(lay[0], [axis], bool(node.attr("keepdims", 1)))]


def _along_axis(default: int) -> Rule:
    """Ops that work along one axis (``axis`` attribute) and keep the shape otherwise."""
    def rule(node, ins, outs, lay, batch):
        axis = _axis_attr(node, ins[0].dim(), default)
        return [LOST if lay[0].axis == axis else lay[0]] * len(outs)
    return rule


def _cumsum(node, ins, outs, lay, batch):
    axis = int(ins[1].reshape(-1)[0].item()) % ins[0].dim()
    return [LOST if lay[0].axis == axis else lay[0]]


def _layer_norm(node, ins, outs, lay, batch):
    axis = _axis_attr(node, ins[0].dim(), -1)
    return [LOST if lay[0].axis >= axis else lay[0]] * len(outs)


def _matmul(node, ins, outs, lay, batch):
    a, b = ins[0], ins[1]
    rank = outs[0].dim()
    found = []
    if lay[0] is not None:
        if lay[0] is LOST or a.dim() == 1 or lay[0].axis == a.dim() - 1:
            return [LOST]
        axis = lay[0].axis + (rank - a.dim() if b.dim() > 1 else 0)
        found.append(BatchLayout(axis, lay[0].inner))
    if lay[1] is not None:
        if lay[1] is LOST or b.dim() == 1 or lay[1].axis == b.dim() - 2:
            return [LOST]
        axis = lay[1].axis + rank - b.dim()
        found.append(BatchLayout(axis, lay[1].inner))
    result = _combine(found)
    if isinstance(result, BatchLayout) and not fits(result, outs[0].shape, batch):
        return [LOST]
    return [result]


def _gemm(node, ins, outs, lay, batch):
    found = []
    if lay[0] is not None:
        m_axis = 1 if node.attr("transA", 0) else 0
        if lay[0] is LOST or lay[0].axis != m_axis:
            return [LOST]
        found.append(BatchLayout(0, lay[0].inner))
    if lay[1] is not None:
        n_axis = 0 if node.attr("transB", 0) else 1
        if lay[1] is LOST or lay[1].axis != n_axis:
            return [LOST]
        found.append(BatchLayout(1, lay[1].inner))
    if len(lay) > 2 and lay[2] is not None:
        found += _broadcast(node, [ins[2]], outs, [lay[2]], batch)
    return [_combine(found)]


_EINSUM_TERM = re.compile(r"^[A-Za-z]*$")


def _einsum(node, ins, outs, lay, batch):
    equation = node.attr("equation", "").replace(" ", "")
    lhs, _, rhs = equation.partition("->")
    terms = lhs.split(",")
    if "..." in equation or not all(_EINSUM_TERM.match(t) for t in terms):
        return [LOST]
    if not _:
        letters = [c for t in terms for c in t]
        rhs = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    found = []
    for term, layout in zip(terms, lay):
        if layout is None:
            continue
        if layout is LOST or term[layout.axis] not in rhs:
            return [LOST]
        found.append(BatchLayout(rhs.index(term[layout.axis]), layout.inner))
    return [_combine(found)]


def _topk(node, ins, outs, lay, batch):
    return _along_axis(-1)(node, ins, outs, lay, batch)


def _group_norm(node, ins, outs, lay, batch):
    # Statistics over (channel group, spatial): only a batch on axis 0 survives.
    return [lay[0] if lay[0].axis == 0 else LOST]


def _lrn(node, ins, outs, lay, batch):
    # A window across channels (axis 1) only.
    return [LOST if lay[0].axis == 1 else lay[0]]


def _mean_variance(node, ins, outs, lay, batch):
    rank = ins[0].dim()
    axes = [int(a) % rank for a in node.attr("axes", [0, 2, 3])]
    return [LOST if lay[0].axis in axes else lay[0]]


def _gather_nd(node, ins, outs, lay, batch):
    # out = indices.shape[:-1] + data.shape[batch_dims + indices.shape[-1]:]; the first
    # batch_dims axes of data and indices are shared.
    data, indices = ins[0], ins[1]
    batch_dims = int(node.attr("batch_dims", 0))
    found = []
    if lay[0] is not None:
        if lay[0] is LOST or lay[0].axis >= batch_dims:
            return [LOST]
        found.append(lay[0])
    if lay[1] is not None:
        if lay[1] is LOST or lay[1].axis >= indices.dim() - 1:
            return [LOST]
        found.append(lay[1])
    return [_combine(found)]


def _scatter_elements(node, ins, outs, lay, batch):
    # Each output element comes from data or from updates at the same coordinates along every
    # axis but ``axis``: the batch survives when data, indices and updates all carry it whole on
    # the same other axis.
    axis = _axis_attr(node, ins[0].dim())
    layout = lay[0]
    if not isinstance(layout, BatchLayout) or layout.axis == axis or \
            any(l != layout or t.shape[layout.axis] != ins[0].shape[layout.axis]
                for t, l in zip(ins[1:], lay[1:])):
        return [LOST]
    return [layout]


def _one_hot(node, ins, outs, lay, batch):
    rank = ins[0].dim() + 1
    axis = int(node.attr("axis", -1))
    axis = axis + rank if axis < 0 else axis
    layout = lay[0]
    return [BatchLayout(layout.axis + (axis <= layout.axis), layout.inner)]


def _compress(node, ins, outs, lay, batch):
    axis = node.attr("axis")
    if axis is None:
        return [LOST]
    axis = int(axis) % ins[0].dim()
    return [LOST if lay[0].axis == axis else lay[0]]


def _always_lost(node, ins, outs, lay, batch):
    return [LOST] * len(outs)


def _rule(follow: Rule, loses: str = "", all_inputs: bool = False) -> LayoutRule:
    return LayoutRule(follow, all_inputs=all_inputs, loses=loses or LayoutRule.loses)


def lost(why: str) -> LayoutRule:
    """The rule of an op that always mixes the samples; ``why`` says how."""
    return LayoutRule(_always_lost, loses=why)


def spatial(axes: tuple[int, ...]) -> LayoutRule:
    """Ops that keep a batch on the given axes only (Conv: 0; pools: 0 or 1)."""
    return _rule(_spatial(axes), f"it combines elements across axes other than "
                                 f"{' and '.join(map(str, axes))}, where the batch sits")


def along_axis(default: int) -> LayoutRule:
    """Ops working along their ``axis`` attribute (default ``default``)."""
    return _rule(_along_axis(default), "it works along the batch axis")


# ---- the rules the ops declare at registration --------------------------------------------

BATCH_FREE = LayoutRule(None, batch_free=True)
SAME = _rule(_same)                          # element-wise; inputs after the first are parameters
BROADCAST = _rule(_broadcast, "its operands put the batch on different axes", all_inputs=True)
TRANSPOSE = _rule(_transpose)
RESHAPE = _rule(_data_only(_reshape), "it regroups the elements across sample boundaries")
FLATTEN = _rule(_reshape, "it regroups the elements across sample boundaries")
ANY_AXIS = _rule(_data_only(_any_axis), "its parameters depend on the batch")
RESIZE = _rule(_data_only(_resize), "it resizes (or crops) along the batch axis")
CONCAT = _rule(_concat, "it joins tensors along the batch axis", all_inputs=True)
SPLIT = _rule(_data_only(_split), "it cuts the batch axis inside a sample")
SLICE = _rule(_data_only(_slice), "it cuts the batch axis inside a sample")
PAD = _rule(_data_only(_pad), "it pads the batch axis")
EXPAND = _rule(_data_only(_expand), "it broadcasts along the batch axis")
GATHER = _rule(_gather, "it gathers along the batch axis", all_inputs=True)
GATHER_ELEMENTS = _rule(_gather_elements, "it gathers along the batch axis", all_inputs=True)
GATHER_ND = _rule(_gather_nd, "it gathers across the batch axis (beyond batch_dims)",
                  all_inputs=True)
SCATTER_ELEMENTS = _rule(_scatter_elements, "it scatters across the batch axis",
                         all_inputs=True)
REDUCE = _rule(_data_only(_reduce), "it reduces over the batch axis")
ARG_REDUCE = _rule(_arg_reduce, "it reduces over the batch axis")
CUMULATIVE = _rule(_data_only(_cumsum), "it accumulates along the batch axis")
TOPK = _rule(_data_only(_topk), "it selects along the batch axis")
LAYER_NORM = _rule(_data_only(_layer_norm), "it normalises over the batch axis")
GROUP_NORM = _rule(_data_only(_group_norm), "it normalises over the batch axis (not on axis 0)")
LRN = _rule(_data_only(_lrn), "its window runs along the batch axis")
MEAN_VARIANCE = _rule(_data_only(_mean_variance),
                      "it normalises over the batch axis (its `axes` include it)")
ONE_HOT = _rule(_data_only(_one_hot), "its depth or values depend on the batch")
COMPRESS = _rule(_data_only(_compress), "it selects along the batch axis (or flattens the "
                                        "tensor)")
MATMUL = _rule(_matmul, "the batch sits on the reduction (K) axis", all_inputs=True)
GEMM = _rule(_gemm, "the batch sits on the reduction (K) axis", all_inputs=True)
EINSUM = _rule(_einsum, "the equation sums over the batch axis (or uses `...`)",
               all_inputs=True)

"""Which ONNX initializers are trained, and how each constant of the compiled graph follows
from them.

The compiled graph (asimc.frontend) has folded constants: BatchNormalization merged into the
Conv/Gemm/MatMul before it, shape sub-graphs evaluated. Training works on that graph (the one
the chip runs), but the parameters are the *original* float initializers, so that the trained
model is the original ONNX file with new initializer values, names unchanged. Each compiled
constant in a trainable position is bound to its initializers:

* ``copy``: the constant is the initializer itself;
* ``bn_weight`` / ``bn_bias``: the constant is BatchNormalization folded into the product's
  weight or bias; it is recomputed from (weight, bias, BN scale, BN bias, mean, variance) each
  step, the same arithmetic as ``asimc.frontend.bn_fold``, so gradients reach the originals.

Anything else in a trainable position (a constant computed by folding, e.g. a transposed
initializer or an integer weight through DequantizeLinear) stays fixed and is listed in
``TrainablePlan.fixed_constants``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import ModelError
from ..ir import Graph, Node

# (op type -> input positions whose constants are trained)
PRODUCT_SLOTS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (0, 1, 2), "MatMul": (0, 1)}
NORM_SLOTS = {"LayerNormalization": (1, 2), "InstanceNormalization": (1, 2),
              "GroupNormalization": (1, 2), "RMSNormalization": (1,)}
BN_SLOTS = (1, 2)          # BatchNormalization left as a digital op: scale and bias
# Float initializers read by these ops train too where they are one (an exported nn.Linear on
# a sequence adds its bias after the MatMul; an embedding table is gathered); a folded constant
# there is left alone.
OTHER_SLOTS = {"Add": (0, 1), "Gather": (0,)}


@dataclass(frozen=True)
class Binding:
    """One constant of the compiled graph as a function of initializers.

    kind: ``copy`` (sources = (initializer,)), ``bn_weight`` (sources = (weight,)) or
    ``bn_bias`` (sources = (bias or "",)); ``bn`` names BN's (scale, bias, mean, var)
    initializers; ``axis`` is the constant's output-channel axis; ``alpha``/``beta`` Gemm's
    factors that folding multiplied in.
    """

    constant: str
    kind: str
    sources: tuple[str, ...]
    bn: tuple[str, str, str, str] = ("", "", "", "")
    epsilon: float = 1e-5
    axis: int = 0
    alpha: float = 1.0
    beta: float = 1.0
    perm: tuple[int, ...] = ()       # copy: the initializer transposed (an exporter's Transpose)


@dataclass(frozen=True)
class TrainablePlan:
    trained: tuple[str, ...]                 # initializer names that get gradients
    fixed: tuple[str, ...]                   # initializers a binding reads but never changes
    bindings: tuple[Binding, ...]
    fixed_constants: tuple[str, ...]         # constants in trainable positions left as they are
    initializers: dict                       # name -> float32 array (trained and fixed)

    @property
    def parameter_count(self) -> int:
        return int(sum(self.initializers[n].size for n in self.trained))


def float_initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    out = {}
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT:
            out[init.name] = numpy_helper.to_array(init).astype(np.float32)
    return out


def _bn_of(named: onnx.ModelProto, node: Node) -> tuple[onnx.NodeProto, onnx.NodeProto] | None:
    """(original product, BatchNormalization) when ``node`` is a product BN was folded into."""
    by_name = {n.name: n for n in named.graph.node}
    original = by_name.get(node.name)
    if original is None or not original.output or original.output[0] == node.outputs[0]:
        return None
    for bn in named.graph.node:
        if bn.op_type == "BatchNormalization" and bn.input and \
                bn.input[0] == original.output[0] and bn.output[0] == node.outputs[0]:
            return original, bn
    return None


def _identity_aliases(named: onnx.ModelProto, floats: dict) -> dict[str, str]:
    """Identity outputs that are float initializers under another name -> that initializer."""
    alias: dict[str, str] = {}
    for node in named.graph.node:
        if node.op_type == "Identity" and node.input and node.output:
            root = alias.get(node.input[0], node.input[0])
            if root in floats:
                alias[node.output[0]] = root
    return alias


def _transposed(named: onnx.ModelProto, floats: dict, source) -> dict[str, tuple[str, tuple]]:
    """Transpose outputs of a float initializer (exporters transpose nn.Linear's weight in the
    graph) -> (the initializer, the permutation)."""
    found = {}
    for node in named.graph.node:
        if node.op_type == "Transpose" and node.input and node.output and \
                source(node.input[0]) in floats:
            rank = floats[source(node.input[0])].ndim
            perm = tuple(_attr(node, "perm", list(reversed(range(rank)))))
            found[node.output[0]] = (source(node.input[0]), perm)
    return found


def _epsilon(bn: onnx.NodeProto) -> float:
    for attr in bn.attribute:
        if attr.name == "epsilon":
            return float(attr.f)
    return 1e-5


def _attr(node: onnx.NodeProto, name: str, default):
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def plan_parameters(named: onnx.ModelProto, graph: Graph, *, freeze_bn: bool = False
                    ) -> TrainablePlan:
    """The plan for the compiled ``graph`` of ``named`` (the model after asimc's loader named
    its nodes). Raises ModelError when nothing can be trained."""
    floats = float_initializers(named)
    alias = _identity_aliases(named, floats)

    def source(name: str) -> str:
        """The initializer behind ``name`` (an exporter shares equal initializers through
        Identity nodes: both readers must then train the one tensor)."""
        return alias.get(name, name)

    transposed = _transposed(named, floats, source)
    bindings: dict[str, Binding] = {}
    trained: set[str] = set()
    fixed: set[str] = set()
    fixed_constants: set[str] = set()

    def copy(constant: str, strict: bool = True) -> None:
        if source(constant) in floats:
            bindings.setdefault(constant, Binding(constant, "copy", (source(constant),)))
            trained.add(source(constant))
        elif constant in transposed and \
                graph.constants[constant].shape == \
                tuple(floats[transposed[constant][0]].transpose(transposed[constant][1]).shape):
            root, perm = transposed[constant]
            bindings.setdefault(constant, Binding(constant, "copy", (root,), perm=perm))
            trained.add(root)
        elif strict:
            fixed_constants.add(constant)

    for node in graph.nodes:
        slots = PRODUCT_SLOTS.get(node.op_type) or NORM_SLOTS.get(node.op_type) or \
            (BN_SLOTS if node.op_type == "BatchNormalization" and not freeze_bn else ()) or \
            OTHER_SLOTS.get(node.op_type, ())
        constants = [(i, node.inputs[i]) for i in slots
                     if i < len(node.inputs) and node.inputs[i] in graph.constants]
        if not constants:
            continue
        folded = _bn_of(named, node) if node.op_type in PRODUCT_SLOTS else None
        if folded is None:
            for _, name in constants:
                copy(name, strict=node.op_type not in OTHER_SLOTS)
            continue
        original, bn = folded
        bn_names = tuple(source(n) for n in bn.input[1:5])
        weight = source(original.input[1]) if len(original.input) > 1 else ""
        bias = source(original.input[2]) if len(original.input) > 2 else ""
        usable = weight in floats and all(n in floats for n in bn_names) and \
            (not bias or bias in floats)
        for index, name in constants:
            if index not in (1, 2) or not usable:
                fixed_constants.add(name)
                continue
            if original.op_type == "Conv":
                axis, alpha, beta = 0, 1.0, 1.0
            elif original.op_type == "Gemm":
                axis = 0 if _attr(original, "transB", 0) else 1
                alpha, beta = float(_attr(original, "alpha", 1.0)), float(_attr(original, "beta", 1.0))
            else:                                   # MatMul (K, N) folded into a Gemm
                axis, alpha, beta = 1, 1.0, 1.0
            kind = "bn_weight" if index == 1 else "bn_bias"
            sources = (weight,) if index == 1 else (bias,)
            bindings[name] = Binding(name, kind, sources, bn_names, _epsilon(bn), axis,
                                     alpha, beta)
            trained.update(s for s in sources if s)
            scale, shift, mean, var = bn_names
            (fixed.update if freeze_bn else trained.update)((scale, shift))
            fixed.update((mean, var))
    fixed -= trained
    if not trained:
        raise ModelError(
            "nothing to train: no float initializer feeds a Conv, Gemm, MatMul or "
            "normalisation op of this model (integer-only or quantised graphs, and weights "
            "computed at run time, cannot be fine-tuned)"
            + (f"; constants left fixed: {', '.join(sorted(fixed_constants))}"
               if fixed_constants else ""))
    used = trained | fixed
    return TrainablePlan(tuple(sorted(trained)), tuple(sorted(fixed)),
                         tuple(bindings.values()), tuple(sorted(fixed_constants)),
                         {n: floats[n] for n in used})


def write_initializers(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of ``model`` with the initializers named in ``values`` replaced (same names,
    same shapes, float32); every node, name and attribute stays as it was."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    seen = set()
    for init in out.graph.initializer:
        if init.name in values:
            value = np.asarray(values[init.name], dtype=np.float32)
            if tuple(init.dims) != value.shape:
                raise ModelError(f"initializer '{init.name}': trained shape {value.shape} does "
                                 f"not match the model's {tuple(init.dims)}")
            init.CopyFrom(numpy_helper.from_array(value, init.name))
            seen.add(init.name)
    missing = sorted(set(values) - seen)
    if missing:
        raise ModelError(f"no initializer named {', '.join(map(repr, missing))} in the model")
    return out

"""Expand ops that ONNX defines as functions into their bodies, when asimc has no kernel for
the op itself but has one for everything in its body.

This is how e.g. Attention (opset 23+), RotaryEmbedding, SwiGLU, CenterCropPad or the loss ops
import: the compiler then sees the plain MatMul / Softmax / ... nodes inside them (so that the
attention products can be mapped onto the array like any other). The function body is the one
ONNX gives for the model's opset (context-dependent bodies get the node's input types, from
shape inference). Body nodes are named ``<node>/<op>_<k>`` so that errors still point at the
original node.
"""
from __future__ import annotations

import onnx
from onnx import defs

from .. import ops
from .convert import default_opset

MAX_DEPTH = 4       # bodies may call other function ops (SoftmaxCrossEntropyLoss -> NLLLoss)

# Function ops whose bodies asimc runs (checked by the ONNX conformance suite); other function
# ops are expanded too when their body happens to fit, but are not advertised.
EXPANDED_OPS = ("Attention", "BlackmanWindow", "CausalConvWithState", "CenterCropPad",
                "DynamicQuantizeLinear", "HammingWindow", "HannWindow",
                "NegativeLogLikelihoodLoss", "RotaryEmbedding", "SoftmaxCrossEntropyLoss",
                "SwiGLU")


def _schema(node: onnx.NodeProto, opset: int):
    if node.domain not in ("", "ai.onnx"):
        return None
    try:
        return defs.get_schema(node.op_type, opset, "")
    except Exception:  # noqa: BLE001 - unknown op: the support check will name it
        return None


def _pick(versions, opset: int) -> int | None:
    usable = [v for v in versions if v <= opset]
    return max(usable) if usable else None


def _function_body(node: onnx.NodeProto, opset: int, types: dict[str, onnx.TypeProto]
                   ) -> onnx.FunctionProto | None:
    schema = _schema(node, opset)
    if schema is None:
        return None
    body = onnx.FunctionProto()
    version = _pick(schema.function_opset_versions, opset) if schema.has_function else None
    if version is not None:
        body.ParseFromString(schema.get_function_with_opset_version(version))
        return body
    version = _pick(schema.context_dependent_function_opset_versions, opset) \
        if schema.has_context_dependent_function else None
    if version is None:
        return None
    input_types = [types.get(name, onnx.TypeProto()).SerializeToString() if name else
                   onnx.TypeProto().SerializeToString() for name in node.input]
    try:
        data = schema.get_context_dependent_function_with_opset_version(
            version, node.SerializeToString(), input_types)
    except Exception:  # noqa: BLE001 - e.g. input types unknown: leave the node as it is
        return None
    if not data:
        return None
    body.ParseFromString(data)
    return body


def _defaults(node: onnx.NodeProto, opset: int) -> dict[str, onnx.AttributeProto]:
    schema = _schema(node, opset)
    given = {a.name: a for a in node.attribute}
    for name, attr in (schema.attributes.items() if schema else ()):
        if name not in given and attr.default_value.name:
            given[name] = attr.default_value
    return given


def _inline(node: onnx.NodeProto, body: onnx.FunctionProto, opset: int) -> list[onnx.NodeProto]:
    prefix = f"{node.name}/"
    names = {formal: actual for formal, actual in zip(body.input, node.input)}
    names.update({formal: "" for formal in body.input[len(node.input):]})
    names.update({formal: actual for formal, actual in zip(body.output, node.output) if actual})
    attributes = _defaults(node, opset)

    def rename(name: str) -> str:
        if not name:
            return ""
        return names.setdefault(name, prefix + name)

    inlined = []
    for k, inner in enumerate(body.node):
        new = onnx.NodeProto()
        new.CopyFrom(inner)
        new.name = f"{prefix}{inner.op_type}_{k}"
        del new.input[:]
        del new.output[:]
        new.input.extend(rename(n) for n in inner.input)
        new.output.extend(rename(n) for n in inner.output)
        del new.attribute[:]
        for attr in inner.attribute:
            if attr.ref_attr_name:                 # an attribute of the calling node
                source = attributes.get(attr.ref_attr_name)
                if source is None:
                    continue
                copy = onnx.AttributeProto()
                copy.CopyFrom(source)
                copy.name = attr.name
                new.attribute.append(copy)
            else:
                new.attribute.append(attr)
        inlined.append(new)
    return inlined


def _runnable(body: onnx.FunctionProto, opset: int) -> bool:
    """Whether every op of the body has a kernel, or is a function op itself (expanded in the
    next round)."""
    from .normalize import REWRITTEN_OPS
    for inner in body.node:
        if inner.domain not in ("", "ai.onnx"):
            return False
        if ops.is_supported(inner.op_type) or inner.op_type in REWRITTEN_OPS:
            continue
        schema = _schema(inner, opset)
        if schema is None or not (schema.has_function or schema.has_context_dependent_function):
            return False
    return True


def _value_types(model: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - best effort; bodies that need types are skipped
        inferred = model
    graph = inferred.graph
    types = {v.name: v.type for v in (*graph.input, *graph.value_info, *graph.output)}
    for init in graph.initializer:
        types.setdefault(init.name, onnx.helper.make_tensor_type_proto(init.data_type,
                                                                       list(init.dims)))
    return types


def expand_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace unsupported function ops by their bodies (in place; returns the model)."""
    opset = default_opset(model)
    for _ in range(MAX_DEPTH):
        wanted = [n for n in model.graph.node if n.domain in ("", "ai.onnx")
                  and not ops.is_supported(n.op_type) and _schema(n, opset) is not None]
        if not wanted:
            break
        types = _value_types(model)
        changed = False
        nodes: list[onnx.NodeProto] = []
        for node in model.graph.node:
            body = _function_body(node, opset, types) if node in wanted else None
            if body is None or not body.node or not _runnable(body, opset):
                nodes.append(node)      # the support check then names the op itself
                continue
            nodes.extend(_inline(node, body, opset))
            changed = True
        if not changed:
            break
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    return model

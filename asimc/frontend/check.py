"""Validate a model with the ONNX checker; its messages become ModelErrors naming the node."""
from __future__ import annotations

import re

import numpy as np
import onnx
import onnx.inliner

from ..errors import ModelError

_NODE_CONTEXT = re.compile(r"[Nn]ame: ?(\S*) OpType: (\S+)")
_TWO_GIB = 2 ** 31


def inline_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace calls of model-local functions (some exporters emit them) by their bodies."""
    if not model.functions:
        return model
    try:
        return onnx.inliner.inline_local_functions(model)
    except Exception as error:  # noqa: BLE001 - the inliner raises plain C++ errors
        raise ModelError(f"cannot inline the model's local functions: {error}") from None


def _shapeless(values) -> list[onnx.ValueInfoProto]:
    """Values declared without a type, or as tensors without a shape."""
    return [v for v in values if v.type.WhichOneof("value") is None or
            (v.type.WhichOneof("value") == "tensor_type" and
             not v.type.tensor_type.HasField("shape"))]


def fill_output_shapes(model: onnx.ModelProto) -> None:
    """The checker insists that graph outputs declare a type and shape; many hand-written models
    leave them out. Fill them in from shape inference where that can."""
    missing = _shapeless(model.graph.output)
    if not missing:
        return
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - the checker will report what is wrong
        return
    found = {v.name: v for v in inferred.graph.output}
    for value in missing:
        new = found.get(value.name)
        if new is not None and new.type.WhichOneof("value") == "tensor_type" and \
                new.type.tensor_type.HasField("shape"):
            value.type.CopyFrom(new.type)


def check_model(model: onnx.ModelProto) -> None:
    if model.ByteSize() >= _TWO_GIB:
        return      # the in-memory checker cannot take protos over 2 GiB; import still checks
    fill_output_shapes(model)
    for value in _shapeless(model.graph.input):
        raise ModelError(f"graph input '{value.name}' declares no type or shape (not even its "
                         "rank)")
    checked = model
    if _shapeless(model.graph.output):
        # Outputs whose shape inference cannot find (a broken node upstream, which strict
        # shape inference will then name): check the rest of the model without them.
        checked = onnx.ModelProto()
        checked.CopyFrom(model)
        keep = [v for v in checked.graph.output if v not in _shapeless(checked.graph.output)]
        del checked.graph.output[:]
        checked.graph.output.extend(keep)
    try:
        onnx.checker.check_model(checked)
    except onnx.checker.ValidationError as error:
        raise ModelError(describe_checker_error(str(error))) from None


def describe_checker_error(text: str) -> str:
    """Reword the checker's message: node and op first, then what is wrong."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    context = _NODE_CONTEXT.search(text)
    problem = lines[0] if lines else text
    if context:
        name, op_type = context.groups()
        return f"node '{name}' ({op_type}) is invalid: {problem} (ONNX checker)"
    return f"the model is invalid: {problem} (ONNX checker)"


# Ops whose constant inputs are learned weights: an infinity there is no mask or sentinel.
_WEIGHT_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization",
                         "InstanceNormalization", "LayerNormalization", "GroupNormalization"})


def refuse_nonfinite_weights(graph) -> None:
    """A NaN in any float constant, or an infinity among a layer's weights, would only show up
    as NaN outputs (or a failed conversion) at run time: refuse the model here, naming them."""
    users = graph.consumers()
    for name, value in graph.constants.items():
        if value.dtype.kind not in "fc" or np.isfinite(value).all():
            continue
        nodes = users.get(name, [])
        nan = bool(np.isnan(value).any())
        if not nan and not any(n.op_type in _WEIGHT_OPS for n in nodes):
            continue            # e.g. -inf in an attention mask: deliberate
        count = int((~np.isfinite(value)).sum())
        where = ", ".join(n.describe() for n in nodes[:3]) or "no node"
        raise ModelError(
            f"initializer '{name}' ({value.dtype}{list(value.shape)}, used by {where}) holds "
            f"{count} {'NaN' if nan else 'infinite'} value{'s' if count != 1 else ''}: "
            "the model's weights must be finite numbers; re-export or fix the model")

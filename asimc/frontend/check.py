"""Validate a model with the ONNX checker; its messages become ModelErrors naming the node."""
from __future__ import annotations

import re

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


def check_model(model: onnx.ModelProto) -> None:
    if model.ByteSize() >= _TWO_GIB:
        return      # the in-memory checker cannot take protos over 2 GiB; import still checks
    try:
        onnx.checker.check_model(model)
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

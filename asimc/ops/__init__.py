"""Digital ops: one small module per op family, found through ``registry``.

Importing this package registers every op, each with its batch-layout rule
(``asimc.ops.layout``). Use ``registry.get(op_type)`` to find an op,
``registry.supported_ops()`` for the list, ``registry.run_op(node, inputs)`` to run one node.
"""
from . import registry
from . import (activation, bitwise, cast, conv, creation, elementwise, gather,  # noqa: F401
               logic, matmul, normalization, pad, pool, quantize, reduce, resize, scatter,
               shape_ops, softmax, topk)
from .registry import get, is_supported, op, run_op, supported_ops

__all__ = ["get", "is_supported", "op", "registry", "run_op", "supported_ops"]

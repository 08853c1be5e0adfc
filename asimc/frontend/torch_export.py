"""A torch.nn.Module with example inputs -> an ONNX model in memory, its nodes named after the
user's module paths (``layer1.0.conv1``), its initializers after the module's state names.

Either torch exporter works (``dynamo``, torch's default, or the legacy ``torchscript`` one).
Both are asked not to optimise: asimc folds BatchNormalization and constants itself, and torch's
own fusion would file a convolution under its BatchNorm's name and rename the weights, so that
neither the report nor the write-back of fine-tuned weights could speak the user's names.

Naming: every node gets the path of the module that ran it. A scope's single matrix product
(Conv, Gemm, MatMul), or its single node when it has no product, is named by the bare path;
everything else in the scope is ``path/OpType`` (``_1``, ``_2`` ... when repeated), and ops run
by the top-level ``forward`` itself are ``OpType``.
"""
from __future__ import annotations

import ast
import contextlib
import inspect
import io
import logging
import re
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import onnx

from ..errors import ModelError, UsageError

EXPORTERS = ("dynamo", "torchscript")
PRODUCTS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
DYNAMO_OPSET = 18           # the dynamo exporter's oldest
TORCHSCRIPT_OPSET = 17
_NAME_SCOPES = "pkg.torch.onnx.name_scopes"


@dataclass(frozen=True)
class TorchSignature:
    """How a module's forward maps to the exported graph: its inputs (graph input names, in the
    order forward takes them), its outputs' structure (a pytree spec over the graph outputs),
    and each input's per-sample shape from the example inputs."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    output_spec: Any                        # torch.utils._pytree.TreeSpec
    sample_shapes: Mapping[str, tuple[int, ...]]
    module_name: str


def is_module(model) -> bool:
    import sys
    torch = sys.modules.get("torch")     # a torch module can only exist once torch is imported
    return torch is not None and isinstance(model, torch.nn.Module)


def _examples(model, example_inputs) -> tuple[tuple, dict]:
    """(args, kwargs) for forward, from a tensor, a tuple of tensors or a dict by name."""
    import torch
    if example_inputs is None:
        raise UsageError(f"compiling a torch module ({type(model).__name__}) needs example "
                         "inputs: example_inputs=x (a tensor, a tuple of tensors, or a dict of "
                         "named tensors); their shapes beyond the batch axis fix every layer's "
                         "shape and cost")
    if isinstance(example_inputs, torch.Tensor):
        args, kwargs = (example_inputs,), {}
    elif isinstance(example_inputs, (tuple, list)):
        args, kwargs = tuple(example_inputs), {}
    elif isinstance(example_inputs, Mapping):
        args, kwargs = (), dict(example_inputs)
    else:
        raise UsageError(f"example_inputs must be a tensor, a tuple of tensors or a dict of "
                         f"named tensors, not a {type(example_inputs).__name__}")
    for where, value in [*((f"example input {i}", a) for i, a in enumerate(args)),
                         *((f"example input {k!r}", v) for k, v in kwargs.items())]:
        if not isinstance(value, torch.Tensor):
            raise UsageError(f"{where} is a {type(value).__name__}, not a torch tensor")
        if value.dim() == 0:
            raise UsageError(f"{where} is a scalar: inputs need a batch axis first")
    if not args and not kwargs:
        raise UsageError("example_inputs is empty: give at least one tensor")
    return args, kwargs


def _input_names(model, args: tuple, kwargs: dict) -> list[str]:
    """forward's parameter names for the positional inputs, then the named ones in the order
    forward declares them."""
    try:
        params = [p for p in inspect.signature(model.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = [params[i].name if i < len(params) else f"input_{i}" for i in range(len(args))]
    order = {p.name: i for i, p in enumerate(params)}
    return names + sorted(kwargs, key=lambda k: order.get(k, len(order)))


def _output_names(flat_paths) -> list[str]:
    from torch.utils._pytree import keystr
    names, seen = [], set()
    for path, _ in flat_paths:
        name = re.sub(r"\W+", "_", keystr(path)).strip("_") or "output"
        if name[0].isdigit():
            name = f"output_{name}"
        base, k = name, 1
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        seen.add(name)
        names.append(name)
    return names


def _describe_failure(model, exporter: str, error: BaseException) -> str:
    # The dynamo exporter wraps torch.export's error ("Failed to export ... step 1/3"): the
    # innermost cause is torch's reason.
    while error.__cause__ is not None:
        error = error.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    reason = lines[0] if lines else type(error).__name__
    return (f"torch could not export {type(model).__name__} to ONNX ({exporter} exporter): "
            f"{type(error).__name__}: {reason[:300]}")


@contextlib.contextmanager
def _quiet():
    """The exporters print progress and warnings; a compile prints nothing of its own."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo",
                                              "torch.fx", "onnxscript")]
    levels = [l.level for l in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def export_module(model, example_inputs, *, exporter: str = "dynamo"
                  ) -> tuple[onnx.ModelProto, TorchSignature]:
    """The module as an ONNX model (batch axis dynamic, everything else as in the examples)
    and how its forward maps onto the graph. Raises ModelError when torch refuses it."""
    import torch
    from torch.utils._pytree import tree_flatten_with_path
    if exporter not in EXPORTERS:
        raise UsageError(f"unknown exporter {exporter!r}: use {' or '.join(EXPORTERS)}")
    args, kwargs = _examples(model, example_inputs)
    names = _input_names(model, args, kwargs)
    samples = dict(zip(names, [*args, *(kwargs[n] for n in names[len(args):])]))
    sample_shapes = {n: tuple(int(d) for d in v.shape[1:]) for n, v in samples.items()}
    # A batch of one would be specialised by torch.export: export with two samples.
    if any(v.shape[0] == 1 for v in samples.values()):
        samples = {n: torch.cat([v, v]) if v.shape[0] == 1 else v for n, v in samples.items()}
    args = tuple(samples[n] for n in names[:len(args)])
    kwargs = {n: samples[n] for n in names[len(args):]}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _quiet():
            reference = model(*args, **kwargs)
        flat, spec = tree_flatten_with_path(reference)
        if not flat or not all(isinstance(v, torch.Tensor) for _, v in flat):
            kinds = sorted({type(v).__name__ for _, v in flat})
            returned = ", ".join(kinds) or "nothing"
            raise ModelError(f"{type(model).__name__}.forward returns {returned}"
                             ": asimc compiles modules whose outputs are tensors (in a tensor, "
                             "tuple, list or dict)")
        outputs = _output_names(flat)
        try:
            with _quiet():
                proto = _export(model, args, kwargs, names, outputs, exporter)
        except ModelError:
            raise
        except Exception as error:  # noqa: BLE001 - torch's reason, not a traceback
            raise ModelError(_describe_failure(model, exporter, error)) from None
    finally:
        model.train(was_training)
    if [i.name for i in proto.graph.input if i.name in samples] != names or \
            len(proto.graph.output) != len(outputs):
        raise ModelError(f"the {exporter} exporter changed {type(model).__name__}'s inputs or "
                         f"outputs (inputs {[i.name for i in proto.graph.input]}, expected "
                         f"{names}; {len(proto.graph.output)} outputs, expected {len(outputs)})")
    modules = {name for name, _ in model.named_modules()}
    name_by_module_path(proto.graph, modules, exporter)
    if exporter == "torchscript":
        separate_equal_initializers(proto.graph, model.state_dict(keep_vars=True))
    return proto, TorchSignature(tuple(names), tuple(outputs), spec, sample_shapes,
                                 type(model).__name__)


def _export(model, args, kwargs, names, outputs, exporter) -> onnx.ModelProto:
    import torch
    if exporter == "dynamo":
        batch = torch.export.Dim("batch")
        dynamic = {n: {0: batch} for n in names}
        program = torch.onnx.export(
            model, args, kwargs=kwargs or None, dynamo=True, optimize=False, verbose=False,
            input_names=names, output_names=outputs, opset_version=DYNAMO_OPSET,
            dynamic_shapes=dynamic)
        return program.model_proto
    buffer = io.BytesIO()
    # (not under no_grad: nn.TransformerEncoderLayer would take its fused fast path, which the
    # legacy exporter cannot export)
    torch.onnx.export(model, args + ((kwargs,) if kwargs else ()), buffer, dynamo=False,
                      input_names=names, output_names=outputs, opset_version=TORCHSCRIPT_OPSET,
                      do_constant_folding=False,
                      dynamic_axes={n: {0: "batch"} for n in (*names, *outputs)})
    return onnx.load_from_string(buffer.getvalue())


def separate_equal_initializers(graph: onnx.GraphProto, state: Mapping[str, Any]) -> None:
    """The legacy exporter keeps one initializer of several *equal* parameters (two LayerNorms'
    fresh weights) and reads the others through Identity nodes named after them: give each
    parameter its own initializer again, so that each trains and is written back on its own.
    Parameters that are one tensor (tied weights) stay shared."""
    initializers = {t.name: t for t in graph.initializer}
    kept = []
    for node in graph.node:
        source, target = (node.input[0], node.output[0]) if node.op_type == "Identity" else \
            ("", "")
        if source in initializers and target in state and source in state and \
                target not in initializers and \
                state[source].data_ptr() != state[target].data_ptr():
            copy = onnx.TensorProto()
            copy.CopyFrom(initializers[source])
            copy.name = target
            graph.initializer.append(copy)
            continue
        kept.append(node)
    if len(kept) != len(graph.node):
        del graph.node[:]
        graph.node.extend(kept)


def _module_path(node: onnx.NodeProto, modules: set[str], exporter: str) -> str:
    """The path of the module that ran ``node`` ('' for the top-level forward)."""
    if exporter == "dynamo":
        meta = {e.key: e.value for e in node.metadata_props}
        try:
            scopes = ast.literal_eval(meta.get(_NAME_SCOPES, "[]"))
        except (ValueError, SyntaxError):
            scopes = []
        # [..., module path, the aten call]: the last module path is the one before the call
        paths = [s for s in scopes[:-1] if s in modules]
        return paths[-1] if paths else ""
    # torchscript: "/layer1/layer1.0/conv1/Conv" (each part relative, or already qualified)
    parts = node.name.strip("/").split("/")[:-1]
    path = ""
    for part in parts:
        joined = f"{path}.{part}" if path else part
        if joined in modules:
            path = joined
        elif part in modules:
            path = part
        else:
            break
    return path


def name_by_module_path(graph: onnx.GraphProto, modules: set[str], exporter: str) -> None:
    """Rename every node after its module path (see the module docstring)."""
    paths = [_module_path(node, modules, exporter) for node in graph.node]
    by_scope: dict[str, list[onnx.NodeProto]] = {}
    for node, path in zip(graph.node, paths):
        by_scope.setdefault(path, []).append(node)
    bare: set[int] = set()
    for path, nodes in by_scope.items():
        if not path:
            continue
        products = [n for n in nodes if n.op_type in PRODUCTS]
        if len(products) == 1:
            bare.add(id(products[0]))
        elif not products and len([n for n in nodes if n.op_type != "Constant"]) == 1:
            bare.add(id(next(n for n in nodes if n.op_type != "Constant")))
    taken: set[str] = set()
    for node, path in zip(graph.node, paths):
        name = path if id(node) in bare else (f"{path}/{node.op_type}" if path else node.op_type)
        base, k = name, 1
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        node.name = name

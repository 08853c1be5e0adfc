"""Static input scales from data (``quant { input static }`` / ``--input-scales DATA``).

The model runs in float on the data; for every on-chip layer we record the peak of its input
(max for unsigned inputs, max|x| for signed ones) and, for an activation x activation MatMul,
the peak |x| of its second operand. The static scale is that peak + 1e-7, exactly like a
dynamic scale, only fixed at compile time (docs/numeric-model.md, "Quantisers").

``float_run`` (one float run on calibration data with a hook that sees every node's inputs) is
shared with the compile-time smoothing pass (asimc.passes.smooth).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import torch

from ..ir import Graph
from ..kernels.quantize import EPSILON
from ..program import Program


def _calibration_inputs(graph: Graph, data, limit: int):
    if isinstance(data, (np.ndarray, dict)):
        return data
    from ..evaluate import graph_eval_data
    return graph_eval_data(graph, data, limit=limit).inputs


def float_run(graph: Graph, data, limit: int, record: Callable) -> None:
    """Run ``graph`` in float on the first ``limit`` samples of ``data`` (anything
    ``asimc.data.load_dataset`` takes, an array, or arrays by input name), calling
    ``record(node, input values)`` before every node."""
    from ..runtime.feeds import prepare_feeds
    from ..runtime.interpreter import run_graph
    inputs = _calibration_inputs(graph, data, limit)
    feeds, _, _ = prepare_feeds(graph, inputs)
    feeds = {k: v[:limit] if np.ndim(v) else v for k, v in feeds.items()}

    def hook(node, values, layouts):
        record(node, values)
        return None

    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()}
    with torch.inference_mode():
        run_graph(graph, tensors, device=torch.device("cpu"), hook=hook,
                  batch_size=len(next(iter(feeds.values()))) if feeds else 1)


def with_input_scales(program: Program, data, *, limit: int = 256) -> Program:
    """A copy of ``program`` whose static-scale layers carry input scales measured on data."""
    peaks: dict[str, list[float]] = {}

    def record(node, values):
        layer = program.layers.get(node.name)
        if layer is not None and layer.on_chip and layer.chip.quant.input == "static":
            x = values[0]
            if node.op_type == "Gemm" and node.attr("transA", 0):
                x = x.t()
            peak = x.abs().max() if layer.chip.input.signed else x.max()
            entry = peaks.setdefault(node.name, [-np.inf, -np.inf])
            entry[0] = max(entry[0], float(peak))
            if layer.kind == "dynamic":
                entry[1] = max(entry[1], float(values[1].abs().max()))

    float_run(program.graph, data, limit, record)
    layers = {}
    for name, layer in program.layers.items():
        if name in peaks:
            inp, operand = peaks[name]
            # Float32 like every other scale: peak + 1e-7 rounded once.
            layer = dataclasses.replace(
                layer, input_scale=float(np.float32(inp) + np.float32(EPSILON)),
                operand_scale=float(np.float32(operand) + np.float32(EPSILON))
                if layer.kind == "dynamic" else None)
        layers[name] = layer
    return dataclasses.replace(program, layers=layers)

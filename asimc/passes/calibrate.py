"""Calibration of static input scales (``quant { input static }`` / ``--calibrate DATA``).

The model runs in float on the calibration data; for every on-chip layer we record the peak of
its input (max for unsigned inputs, max|x| for signed ones) and, for an activation x activation
MatMul, the peak |x| of its second operand. The static scale is that peak + 1e-7, exactly like a
dynamic scale, only fixed at compile time.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..errors import InputDataError
from ..kernels.quantize import EPSILON
from ..program import Program


def _calibration_inputs(program: Program, data, limit: int):
    if isinstance(data, (np.ndarray, dict)):
        return data
    from ..data import fit_to_input, load_dataset
    dataset = load_dataset(str(data), limit=limit)
    if len(program.graph.inputs) != 1:
        raise InputDataError("calibration data sets feed single-input models; give an .npz "
                             "with one array per input name instead")
    info = program.graph.inputs[0]
    return fit_to_input(dataset.x, info.shape, info.dtype, info.name)


def calibrate_program(program: Program, data, *, limit: int = 256) -> Program:
    """A copy of ``program`` whose static layers carry calibrated input scales."""
    from ..runtime.feeds import prepare_feeds
    from ..runtime.interpreter import run_graph
    inputs = _calibration_inputs(program, data, limit)
    feeds, batch, _ = prepare_feeds(program.graph, inputs)
    if isinstance(inputs, np.ndarray):
        feeds = {k: v[:limit] for k, v in feeds.items()}
    peaks: dict[str, list[float]] = {}

    def record(node, values, layouts):
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
        return None

    tensors = {k: torch.from_numpy(v) for k, v in feeds.items()}
    with torch.inference_mode():
        run_graph(program.graph, tensors, device=torch.device("cpu"), hook=record,
                  batch_size=len(next(iter(feeds.values()))) if feeds else 1)
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

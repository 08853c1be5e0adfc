"""Checking run-time inputs against the model's declared inputs.

Names, element types and shapes are checked before anything runs, with messages that say what
was expected and what was given. A model exported with a fixed batch of 1 runs a larger batch
sample by sample.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputDataError
from ..ir import Graph, TensorInfo

def _describe_shape(shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _cast(name: str, value, info: TensorInfo) -> np.ndarray:
    """The input as its declared element type, under the one rule of asimc.data.cast."""
    from ..data.cast import cast_to_input
    try:
        array = np.asarray(value)
    except Exception as error:        # ragged lists and the like
        raise InputDataError(f"input '{name}': cannot be read as an array ({error})") from None
    array = cast_to_input(array, np.dtype(info.dtype), f"input '{name}' ({info.dtype})")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise InputDataError(f"input '{name}': {bad} value(s) are NaN or infinite")
    return np.ascontiguousarray(array)


def prepare_feeds(graph: Graph, inputs) -> tuple[dict[str, np.ndarray], int, bool]:
    """(feeds by input name, batch size, whether to run sample by sample)."""
    declared = {i.name: i for i in graph.inputs}
    if not isinstance(inputs, dict):
        if len(declared) != 1:
            raise InputDataError(
                f"the model has {len(declared)} inputs ({', '.join(declared)}): give them by "
                f"name (an .npz file with one array per input name)")
        inputs = {next(iter(declared)): inputs}
    unknown = [k for k in inputs if k not in declared]
    missing = [k for k in declared if k not in inputs]
    if unknown or missing:
        expected = ", ".join(i.describe() for i in graph.inputs)
        parts = []
        if unknown:
            parts.append("unknown input(s) " + ", ".join(repr(k) for k in unknown))
        if missing:
            parts.append("missing input(s) " + ", ".join(repr(k) for k in missing))
        raise InputDataError(f"{'; '.join(parts)}. The model's inputs are: {expected}")
    feeds = {name: _cast(name, inputs[name], declared[name]) for name in declared}
    batch, per_sample = 1, False
    for name, array in feeds.items():
        shape = declared[name].shape
        if array.ndim and array.shape[0] == 0:
            raise InputDataError(f"input '{name}' holds no samples (shape "
                                 f"{tuple(array.shape)}); give at least one")
        if shape is None:
            continue
        if array.ndim != len(shape):
            raise InputDataError(f"input '{name}': expected {len(shape)} dimensions "
                                 f"{_describe_shape(shape)}, got shape {tuple(array.shape)}")
        for axis, (want, got) in enumerate(zip(shape, array.shape)):
            if axis == 0 and want == 1 and got > 1 and len(feeds) == 1:
                per_sample = True         # fixed batch of 1: run the samples one by one
                continue
            if isinstance(want, int) and want != got:
                raise InputDataError(
                    f"input '{name}': expected shape {_describe_shape(shape)}, got "
                    f"{tuple(array.shape)} (dimension {axis} is {got}, not {want})")
        if shape and array.ndim:
            batch = max(batch, array.shape[0]) if not isinstance(shape[0], int) or per_sample \
                else batch
    return feeds, batch, per_sample

"""``fit_to_input``: adapt a batch to the shape and dtype a model input declares."""
from __future__ import annotations

import math

import numpy as np

from ..errors import InputDataError
from .cast import cast_to_input

# ONNX element-type names that numpy spells differently (numpy's "float" is float64!).
_ONNX_DTYPE_NAMES = {"float": "float32", "double": "float64", "half": "float16"}


def fit_to_input(x: np.ndarray, shape: tuple | None, dtype: str,
                 input_name: str) -> np.ndarray:
    """``x`` (batch first) cast to ``dtype`` and reshaped to the input's ``shape``.

    ``shape`` lists the model input's dimensions: ints, symbolic names (str) or None (unknown);
    the first is the batch and is not checked (the batch size is the caller's business); a
    ``shape`` of None (rank unknown) leaves the samples' shape as it is. A
    sample is reshaped when its element count matches (digits (N, 1, 8, 8) into an MLP input
    [batch, 64]); one symbolic dimension is inferred from the count when the sample's own shape
    does not already fit. ``dtype`` is a numpy name (``float32``, ``int64``...) or an ONNX one
    (``float``, ``tensor(float)``...). Casts follow the one rule of ``asimc.data.cast``: a value that
    would change is refused.
    """
    x = np.asarray(x)
    target = _parse_dtype(dtype, input_name)
    dims = None if shape is None else tuple(shape)
    if dims is not None and len(dims) == 0:
        raise InputDataError(f"model input '{input_name}' is a scalar; it has no batch dimension "
                             "to feed samples along")
    if x.ndim == 0:
        raise InputDataError(f"data for model input '{input_name}' is a scalar; expected a "
                             "batch of samples, batch first")
    if x.dtype.kind not in "biuf":     # before reshaping: the message is about the dtype
        _cast(x, target, input_name)
    if dims is not None:
        x = x.reshape((len(x),) + _sample_shape(x, dims, input_name))
    return np.ascontiguousarray(_cast(x, target, input_name))


def _parse_dtype(dtype, input_name: str) -> np.dtype:
    name = dtype
    if isinstance(dtype, str):
        name = dtype.strip()
        if name.startswith("tensor(") and name.endswith(")"):
            name = name[len("tensor("):-1]
        name = _ONNX_DTYPE_NAMES.get(name, name)
    try:
        parsed = np.dtype(name)
    except TypeError:
        raise InputDataError(f"model input '{input_name}' has type {dtype!r}, which asimc cannot "
                             "feed data to") from None
    if parsed.kind not in "biuf":
        raise InputDataError(f"model input '{input_name}' has type {dtype!r}; asimc feeds "
                             "numeric inputs only")
    return parsed


def _sample_shape(x: np.ndarray, dims: tuple, input_name: str) -> tuple[int, ...]:
    """The per-sample shape to reshape ``x`` to, or an InputDataError saying why none fits."""
    wanted = dims[1:]
    have = tuple(x.shape[1:])
    count = math.prod(have)
    known = [d for d in wanted if _is_known(d)]
    unknown = len(wanted) - len(known)
    if unknown == 0:
        if count == math.prod(known):
            return tuple(known)
    elif len(have) == len(wanted) and all(
            not _is_known(w) or w == h for w, h in zip(wanted, have)):
        return have                   # already fits; the symbolic dims take the data's sizes
    elif unknown == 1 and math.prod(known) > 0 and count % math.prod(known) == 0:
        inferred = count // math.prod(known)
        return tuple(d if _is_known(d) else inferred for d in wanted)
    raise InputDataError(_mismatch(have, dims, input_name))


def _is_known(dim) -> bool:
    return isinstance(dim, (int, np.integer)) and not isinstance(dim, bool) and dim >= 0


def _mismatch(have: tuple[int, ...], dims: tuple, input_name: str) -> str:
    # An unnamed first dimension is still the batch; say so rather than "?".
    shown = "[" + ", ".join(["batch" if dims[0] is None else _show_dim(dims[0])]
                            + [_show_dim(d) for d in dims[1:]]) + "]"
    per_sample = dims[1:]
    if all(_is_known(d) for d in per_sample):
        values = math.prod(per_sample)
        expected = f"{shown} ({values} value{'s' if values != 1 else ''} per sample)"
    else:
        expected = shown
    count = math.prod(have)
    return (f"data has {count} value{'s' if count != 1 else ''} per sample, shape {have}; "
            f"model input '{input_name}' expects {expected}")


def _show_dim(dim) -> str:
    if isinstance(dim, str) and dim:
        return dim
    if _is_known(dim):
        return str(int(dim))
    return "?"


def _cast(x: np.ndarray, target: np.dtype, input_name: str) -> np.ndarray:
    return cast_to_input(x, target, f"data for model input '{input_name}' ({target})")

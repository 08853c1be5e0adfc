"""Checks shared by every loader: numeric, finite samples and integer labels."""
from __future__ import annotations

import numpy as np

from ..errors import InputDataError

# numpy dtype kinds: b bool, i signed int, u unsigned int, f float.
_NUMERIC_KINDS = "biuf"
_KIND_WORDS = {"O": "Python objects", "U": "strings", "S": "byte strings", "c": "complex numbers",
               "V": "raw records", "M": "dates", "m": "time spans"}


def describe_dtype(dtype: np.dtype) -> str:
    word = _KIND_WORDS.get(dtype.kind)
    return f"{dtype} ({word})" if word else str(dtype)


def samples_as_float32(x: np.ndarray, origin: str) -> np.ndarray:
    """``x`` as float32, batch first; refuse non-numeric, empty, scalar or non-finite data."""
    if x.dtype.kind not in _NUMERIC_KINDS:
        raise InputDataError(
            f"{origin}: x has dtype {describe_dtype(x.dtype)}; expected numbers "
            "(bool, integer or float)")
    if x.ndim < 1:
        raise InputDataError(f"{origin}: x is a scalar; expected a batch of samples, batch first")
    if len(x) == 0:
        raise InputDataError(f"{origin}: x holds no samples (shape {x.shape})")
    if x.dtype.kind == "f":
        _require_finite(x, origin, "")
    with np.errstate(over="ignore"):    # overflow is reported just below, in the user's terms
        out = np.ascontiguousarray(x, dtype=np.float32)
    if x.dtype.kind == "f" and x.dtype.itemsize > 4:
        _require_finite(out, origin, " after conversion to float32 (values beyond +-3.4e38)")
    return out


def _require_finite(x: np.ndarray, origin: str, why: str) -> None:
    finite = np.isfinite(x)
    if finite.all():
        return
    bad_samples = np.flatnonzero(~finite.reshape(len(x), -1).all(axis=1))
    count = int((~finite).sum())
    raise InputDataError(
        f"{origin}: x has {count} NaN/Inf value{'s' if count != 1 else ''}{why} in "
        f"{len(bad_samples)} sample{'s' if len(bad_samples) != 1 else ''} (first: sample "
        f"{int(bad_samples[0])}); clean or drop those samples")


def labels_as_int64(y: np.ndarray, sample_count: int, origin: str) -> np.ndarray:
    """``y`` as an int64 vector with one label per sample."""
    if y.dtype.kind not in "iu":
        hint = ""
        if y.dtype.kind == "f":
            hint = "; save class indices as integers, e.g. y.astype(np.int64)"
        raise InputDataError(
            f"{origin}: y has dtype {describe_dtype(y.dtype)}; expected integer class labels{hint}")
    if y.ndim != 1:
        raise InputDataError(
            f"{origin}: y has shape {y.shape}; expected one integer label per sample, "
            f"shape ({sample_count},)")
    if len(y) != sample_count:
        raise InputDataError(
            f"{origin}: y has {len(y)} labels but x has {sample_count} samples; "
            "they must match one to one")
    if y.dtype == np.uint64 and y.size and int(y.max()) > np.iinfo(np.int64).max:
        raise InputDataError(f"{origin}: y has labels too large for int64")
    return np.ascontiguousarray(y, dtype=np.int64)

"""The one rule for feeding an array to a model input of another element type.

Every path that feeds a model (``Program.run``, ``asimc run``, ``golden``/``compare`` data,
calibration data) casts with ``cast_to_input``:

* bool, integer and floating-point values are cast to the input's element type when **every
  value survives the cast unchanged**;
* a cast that would change a value is refused, naming the problem: a fraction or an
  out-of-range value into an integer or bool input, an integer beyond the range a float type
  holds exactly (2^24 for float32), a value that overflows the float type;
* anything else is refused: complex numbers (dropping the imaginary part changes the value; feed
  ``x.real`` if that is meant), strings, Python objects, dates.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputDataError

NUMERIC_KINDS = "biuf"     # bool, signed and unsigned integer, floating point
_KIND_WORDS = {"c": "complex numbers", "U": "strings", "S": "byte strings",
               "O": "Python objects", "M": "dates", "m": "time spans", "V": "raw records"}


def cast_to_input(x: np.ndarray, target: np.dtype, where: str) -> np.ndarray:
    """``x`` as ``target`` under the rule above; ``where`` starts every message."""
    target = np.dtype(target)
    if x.dtype.kind not in NUMERIC_KINDS:
        word = _KIND_WORDS.get(x.dtype.kind, "non-numeric values")
        hint = "; feed x.real if the real part is meant" if x.dtype.kind == "c" else ""
        raise InputDataError(f"{where}: the data holds {word} (dtype {x.dtype}); expected "
                             f"bool, integer or floating-point values{hint}")
    if x.dtype == target:
        return x
    if target.kind in "iub":
        _require_exact_integers(x, target, where)
        return x.astype(target)
    if x.dtype.kind in "iu" and x.size:
        exact = 2 ** (np.finfo(target).nmant + 1)
        largest = int(np.abs(x.astype(np.float64)).max()) if x.dtype.kind == "i" else \
            int(x.max())
        if largest > exact:
            raise InputDataError(
                f"{where}: integer values up to {largest} do not all survive conversion to "
                f"{target} (exact up to {exact}); scale them, or feed floats")
    with np.errstate(over="ignore", invalid="ignore"):   # reported just below
        cast = x.astype(target)
    overflowed = ~np.isfinite(cast)
    if x.dtype.kind == "f":
        overflowed &= np.isfinite(x)       # NaN/Inf already in the data are not the cast's doing
    if overflowed.any():
        raise InputDataError(f"{where}: values beyond +-{np.finfo(target).max:g} overflow "
                             f"{target}")
    return cast


def _require_exact_integers(x: np.ndarray, target: np.dtype, where: str) -> None:
    if x.dtype.kind == "f":
        finite = np.isfinite(x)
        if not finite.all() or np.any(x != np.round(x)):
            raise InputDataError(
                f"{where}: the data holds non-integer values (dtype {x.dtype}); converting them "
                f"to {target} would lose information. Feed integer data, or check that this is "
                "the right input")
    if x.size == 0:
        return
    low, high = (0, 1) if target.kind == "b" else (np.iinfo(target).min, np.iinfo(target).max)
    smallest, largest = x.min(), x.max()
    if smallest < low or largest > high:
        raise InputDataError(f"{where}: values range from {smallest} to {largest}, outside "
                             f"{target}'s range {low}..{high}")

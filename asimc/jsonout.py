"""JSON that strict parsers accept: every JSON asimc writes goes through ``strict``.

Python's ``json`` writes ``Infinity`` and ``NaN``, which are not JSON. A non-finite number
becomes ``null``; an SQNR field (``..._db``) that is ``+inf`` (identical outputs) gets a sibling
``..._exact: true`` so the meaning is not lost (``false`` next to every finite or ``-inf`` one,
so the field is always there).
"""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def strict(value: Any) -> Any:
    """``value`` with numpy types made plain and non-finite floats replaced (see above)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = _plain(item)
            if isinstance(key, str) and key.endswith("sqnr_db") and \
                    (item is None or isinstance(item, float)):
                out[key[:-3] + "_exact"] = item == math.inf
            out[key] = strict(item)
        return out
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    value = _plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, dict)):
        return strict(value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def dumps(value: Any, **options) -> str:
    """``json.dumps`` of ``strict(value)``, refusing anything that is still not JSON."""
    return json.dumps(strict(value), allow_nan=False, **options)

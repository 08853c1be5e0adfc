"""Numbers in human units, the same in the terminal tables, the HTML pages and the figures."""
from __future__ import annotations

import math

_PREFIXES = ((1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"))


def percent(value) -> str:
    """0.9956 -> '99.56%'; '-' for no value (None, NaN, not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return "-"
    return f"{100 * value:.2f}%"


def decibels(value) -> str:
    """An SQNR: '39.1 dB', or 'exact' when the signal has no error at all."""
    if value is None:
        return "-"
    if math.isinf(value):
        return "exact" if value > 0 else "-inf"
    return f"{value:.1f} dB"


def prefix_for(value: float) -> tuple[float, str]:
    """The SI scale and prefix that print ``value`` (a positive SI quantity) as 1 to 999."""
    for scale, prefix in _PREFIXES:
        if abs(value) < scale * 1000:
            return scale, prefix
    return 1.0, ""


def engineering(value, unit: str) -> str:
    """2.79e-7, 'J' -> '279 nJ'."""
    if value is None:
        return "-"
    scale, prefix = prefix_for(value)
    return f"{value / scale:.3g} {prefix}{unit}"


def count(value) -> str:
    """361152 -> '361k', 1350 -> '1.35k'."""
    if value is None:
        return "-"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}" if isinstance(value, float) and not value.is_integer() else \
        str(int(value))


def score(metric: str, value) -> str:
    """A metric's value (asimc.metrics): '99.56%' (top1, agreement), '0.9987' (cosine),
    '31.2 dB' (sqnr), '0.0123' (mse)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if metric in ("top1", "agreement"):
        return percent(value)
    if metric == "sqnr":
        return decibels(value)
    return f"{value:.4f}" if metric == "cosine" else f"{value:.3g}"


def score_spread(metric: str, value) -> str:
    """A metric's standard deviation over seeds, in its unit (without the % sign)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if metric in ("top1", "agreement"):
        return f"{100 * value:.2f}"
    return f"{value:.1f}" if metric == "sqnr" else \
        f"{value:.4f}" if metric == "cosine" else f"{value:.2g}"

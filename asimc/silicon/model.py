"""The code distribution of asimc's parametric conversion model, in closed form.

A conversion of MAC value M (docs/numeric-model.md, sections 5 and 8a) computes
``x = M / F + z * sigma(M)`` with one standard normal z and
``sigma(M)^2 = sr^2 + snl^2 / (M_bin + 1)``, ``M_bin = (M / F) * rows``, clamps x to [0, 1],
applies the column's gain and offset, ``clamp(x * (1 + g) + o, 0, 1)``, and rounds
``D = round(x * L)``. So ``D >= k`` exactly when the clamped x reaches
``u_k = ((k - 1/2 + d_k) / L - o) / (1 + g)`` (d_k: the threshold's DNL offset in LSB, 0 for an
ideal ADC), and

    P(D >= k) = 1 if u_k <= 0,  0 if u_k > 1,  else Phi((M / F - u_k) / sigma(M)).

Everything is float64 torch, differentiable in the parameters (the fit uses the gradients).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

_BIG = 40.0            # |z| beyond which Phi is 0 or 1 in float64
_SIGMA_FLOOR = 1e-12   # a noiseless conversion: a step, without dividing by 0


@dataclass(frozen=True)
class ConversionKind:
    """One kind of bit-level conversion of a chip: ``bits`` input bits driven per cycle, its ADC
    range ``full_scale`` in MAC units (f x (2^bits - 1) x rows), ``rows`` the non-linear term's
    normaliser (f x rows), ``levels`` L, the top code."""

    bits: int
    full_scale: float
    rows: float
    levels: int
    max_mac: int        # (2^bits - 1) x rows: the largest MAC value a full tile produces


def conversion_kinds(chip) -> tuple[ConversionKind, ...]:
    """The kinds of bit-level conversion of a ChipSpec (one per distinct group width), for a
    full row tile."""
    from ..chip.conversions import ConversionPlan
    plan = ConversionPlan(chip)
    f = plan.range_fraction()
    kinds = {}
    for cycle in plan.cycles:
        if cycle.bits not in kinds:
            kinds[cycle.bits] = ConversionKind(
                cycle.bits, f * plan.full_scale(cycle), f * plan.rows, plan.adc_levels,
                plan.full_scale(cycle))
    return tuple(kinds[b] for b in sorted(kinds))


def _as64(x) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


def threshold_z(kind: ConversionKind, mac, code, sigma_random, sigma_nonlinear,
                offset=0.0, gain=0.0, shift=0.0) -> torch.Tensor:
    """z with P(D >= code) = Phi(z), broadcasting over mac, code and the parameters (sigmas and
    offset in units of the ADC range, gain relative; ``shift`` the threshold's DNL offset d_code
    in LSB). Codes <= 0 give +BIG, codes > L give -BIG."""
    mac, code = _as64(mac), torch.as_tensor(code)
    m = mac / kind.full_scale
    variance = _as64(sigma_random) ** 2 + _as64(sigma_nonlinear) ** 2 / (m * kind.rows + 1.0)
    sigma = torch.sqrt(variance).clamp_min(_SIGMA_FLOOR)
    edge = code.to(torch.float64) - 0.5 + _as64(shift)
    u = (edge / kind.levels - _as64(offset)) / (1.0 + _as64(gain))
    z = ((m - u.clamp(0.0, 1.0)) / sigma).clamp(-_BIG, _BIG)
    z = torch.where(u <= 0.0, torch.full_like(z, _BIG), z)
    z = torch.where((u > 1.0) | (code > kind.levels), torch.full_like(z, -_BIG), z)
    return torch.where(code <= 0, torch.full_like(z, _BIG), z)


def code_probability(kind: ConversionKind, mac, code, sigma_random, sigma_nonlinear,
                     offset=0.0, gain=0.0, shifts=(0.0, 0.0)) -> torch.Tensor:
    """P(D = code | mac): Phi(z_code) - Phi(z_code+1), computed in the tail it lies in;
    ``shifts`` the DNL offsets (LSB) of the code's lower and upper threshold."""
    code = torch.as_tensor(code)
    low = threshold_z(kind, mac, code, sigma_random, sigma_nonlinear, offset, gain, shifts[0])
    high = threshold_z(kind, mac, code + 1, sigma_random, sigma_nonlinear, offset, gain,
                       shifts[1])
    upper_tail = torch.special.ndtr(-high) - torch.special.ndtr(-low)
    lower_tail = torch.special.ndtr(low) - torch.special.ndtr(high)
    return torch.where(high > 0, upper_tail, lower_tail).clamp_min(0.0)


def threshold_shifts(dnl, code, levels: int) -> tuple:
    """The (lower, upper) threshold offsets of ``code`` from ``dnl``, the offsets d_k in LSB
    indexed by k = 0..L along the last axis (None: an ideal ADC)."""
    if dnl is None:
        return 0.0, 0.0
    dnl, code = _as64(dnl), torch.as_tensor(code)
    return dnl[..., code.clamp(0, levels)], dnl[..., (code + 1).clamp(0, levels)]


def code_distributions(kind: ConversionKind, macs, sigma_random, sigma_nonlinear,
                       offset=0.0, gain=0.0, dnl=None) -> np.ndarray:
    """P(code) for each MAC value in ``macs`` and every code 0..L: (len(macs), L + 1); ``dnl``
    the threshold offsets d_0..d_L in LSB (None: an ideal ADC)."""
    macs = _as64(np.asarray(macs))[:, None]
    codes = torch.arange(kind.levels + 1)[None, :]
    with torch.no_grad():
        p = code_probability(kind, macs, codes, sigma_random, sigma_nonlinear, offset, gain,
                             threshold_shifts(dnl, codes, kind.levels)).numpy()
    return p / p.sum(axis=1, keepdims=True)


def dnl_offsets(sigma_lsb: float, levels: int, rng: np.random.Generator) -> np.ndarray:
    """Threshold offsets d_k in LSB for codes 0..L (d_0 unused): each threshold k - 1/2 moves
    by N(0, sigma); thresholds that cross keep their order (the later one stays at the earlier,
    a missing code), so the ADC stays monotonic (docs/numeric-model.md, section 8c)."""
    k = np.arange(levels + 1, dtype=np.float64)
    edges = k - 0.5 + rng.normal(0.0, sigma_lsb, levels + 1) if sigma_lsb > 0 else k - 0.5
    edges[1:] = np.maximum.accumulate(edges[1:])
    edges[0] = -0.5
    return edges - (k - 0.5)

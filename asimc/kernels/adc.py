"""The analog front end and the ADC: one conversion of DESIGN.md section 4, steps 1-4.

A conversion takes an ideal integer MAC value M (the sum over the rows of a row tile of input
group value times weight bit), normalises it to the full scale F of the cycle, adds analog noise,
clamps to the ADC range and rounds to a code. Step 4's way back to MAC units, D/(2^adc-1)*F, is
left to the kernels' shift-add, which sums the integers D*F*2^k and divides by 2^adc-1 once at
the end, so that the sum is exact and independent of summation order.

Everything is float32 elementwise arithmetic in a fixed order, shared by the reference and the
fast kernel, so both produce bit-identical codes for the same MACs and draws.
"""
from __future__ import annotations

import numpy as np
import torch

from . import rng


def analog_value(mac: torch.Tensor, full_scale: float | torch.Tensor,
                 alpha: float | torch.Tensor = 0.0) -> torch.Tensor:
    """Steps 1-2: m = clamp(M/F, 0, 1); the current domain first compresses M <- M/(1+alpha*M)
    (``alpha`` may be a tensor that is 0 where a conversion is digital)."""
    if isinstance(alpha, torch.Tensor) or alpha:
        mac = mac / (1.0 + alpha * mac)
    return torch.clamp(mac / full_scale, 0.0, 1.0)


def noise_sigma(m: torch.Tensor, sigma_random: float | torch.Tensor, sigma_nonlinear: float,
                rows: float) -> torch.Tensor:
    """Step 3's sigma: sqrt(sr^2 + snl^2/(m*rows + 1)) (sr alone without a non-linear term).

    One Gaussian with the summed variance of the random and the non-linear term (the non-linear
    term shrinks as the MAC value M_bin = m*rows grows; with an ADC range of f x the rows-based
    one, ``rows`` is f * rows so that M_bin stays the MAC value). ``sigma_random`` may be a
    tensor (0 where a conversion is digital). Every step is one float32 operation in a fixed
    order; ``conversion_model`` tabulates it per MAC value. Broadcasts with m.
    """
    sigma = torch.as_tensor(sigma_random, dtype=torch.float32, device=m.device)
    if sigma_nonlinear:
        nonlinear2 = torch.tensor(nonlinear_square(sigma_nonlinear), device=m.device)
        sigma = rng.sqrt32(sigma * sigma + torch.div(nonlinear2, m * float(rows) + 1.0))
    return sigma.expand_as(m) if sigma.dim() <= m.dim() else sigma


def add_noise(m: torch.Tensor, z: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Step 3 with a normal draw z: clamp(m + z * sigma, 0, 1)."""
    return torch.clamp(m + z * sigma, 0.0, 1.0)


def column_errors(m: torch.Tensor, gain: torch.Tensor | None,
                  offset: torch.Tensor | None, low: float = 0.0) -> torch.Tensor:
    """Fixed-pattern ADC mismatch: clamp(m * (1 + g) + o, low, 1), ``gain`` holding 1 + g."""
    if gain is not None:
        m = m * gain
    if offset is not None:
        m = m + offset
    return torch.clamp(m, low, 1.0)


def nonlinear_square(sigma_nonlinear: float) -> np.float32:
    """snl^2 in float32, as both kernels use it."""
    s = np.float32(sigma_nonlinear)
    return s * s


def adc_code(m: torch.Tensor, levels: int) -> torch.Tensor:
    """Step 4: D = round(m * L), L = 2^adc - 1, round half to even."""
    return torch.round(m * levels)


def majority(codes: torch.Tensor) -> torch.Tensor:
    """The most frequent code along dim 0 (the samples); ties go to the smallest code."""
    counts = (codes.unsqueeze(0) == codes.unsqueeze(1)).sum(dim=1).to(codes.dtype)
    # Codes are < 2^16 and counts <= samples, so count * 2^17 - code is exact in float32.
    preference = counts * 131072.0 - codes
    winner = preference.argmax(dim=0, keepdim=True)
    return codes.gather(0, winner).squeeze(0)


# Weight bit-parallel mode: one signed conversion of the whole tile product.

def signed_analog_value(tile_product: torch.Tensor, full_scale: float) -> torch.Tensor:
    """v = clamp(acc_t/F, -1, 1) with F = (2^bx-1)(2^(bw-1)-1)*rows (times f, the range).

    ``tile_product`` is the exact float64 integer product of the tile; v is float32.
    """
    return torch.clamp(tile_product / full_scale, -1.0, 1.0).to(torch.float32)


def signed_adc_code(v: torch.Tensor, z: torch.Tensor | None, sigma_random: float,
                    levels: int, gain: torch.Tensor | None = None,
                    offset: torch.Tensor | None = None) -> torch.Tensor:
    """D = round(clamp(v + N(0, sr), -1, 1) * (2^(adc-1) - 1)), after the column ADC's
    gain and offset where given."""
    if z is not None and sigma_random:
        v = torch.clamp(v + z * sigma_random, -1.0, 1.0)
    if gain is not None or offset is not None:
        v = column_errors(v, gain, offset, low=-1.0)
    return torch.round(v * levels)

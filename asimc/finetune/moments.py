"""The analytic mode's model of a layer's conversions: mean error and variance per output element.

A conversion (DESIGN.md 4) turns the integer MAC M of one row tile, weight bit and input cycle
into a code D; what it adds to the accumulator is D * fF / L instead of M. With Gaussian noise
of s LSB, D = round(clamp(u + s z, 0, L)) for u = clamp(g(M) / fF, 0, 1) * L, so

    P(D >= k) = Phi((u - k + 1/2) / s),  k = 1..L,
    E[D] = sum_k P(D >= k),  E[D^2] = sum_k (2k - 1) P(D >= k).

This holds the clamp at 0 (a MAC of 0 reads +0.16 LSB on average with 0.5 LSB of noise, a
systematic bias a zero-mean Gaussian misses), the clamp at full scale, the ADC's rounding of
lossy conversions and of the noise itself, gain compression (current domain) and the
non-linear noise term. M is an integer from 0 to (2^e' - 1) * tile rows, so the mean error
E[D] fF / L - M and the variance Var[D] (fF / L)^2 of every possible conversion are tables
built once per (tile range, cycle, digital/analog); a training step computes the bit-plane MACs
of its batch exactly (0/1 planes, one matrix product per tile) and sums the table entries with
the shift-add weights sign * 2^(i + b_c) (mean) and 4^(i + b_c) (variance).

Simpler where the table does not apply: voted conversions keep the rounded code and the
median's variance pi / (2 S) of the noise (the majority of S codes is not modelled); the
weight-parallel mode (one signed conversion of a whole tile product) and the chip instance's
fixed-pattern mismatch (cells, column ADC gain and offset) are left out; weight-parallel layers
use ``uniform_variance`` (the same variance for every output element, no mean error).
"""
from __future__ import annotations

import itertools
import math
from functools import lru_cache

import torch
from torch import Tensor

from ..chip.conversions import ConversionPlan, InputCycle
from ..chip.spec import ChipSpec
from ..kernels.bitplanes import input_cycle_planes, weight_bit_planes

# Elements of one chunk of bit-plane MACs (C * bw * rows * columns): bounds the memory.
CHUNK_ELEMENTS = 1 << 22


def uniform_variance(plan: ConversionPlan, tiles: int) -> float:
    """Variance, in integer-MAC units, that the conversions add to one output element when
    the MACs are not looked at: sum over row tiles and (weight bit i, input cycle c) of
    4^(i + b_c) times the analog noise (sigma F)^2 (majority voting over S samples: the
    median's pi / (2 S) of it) plus, for lossy conversions, the ADC's rounding (F / L)^2 / 12."""
    sigma2 = plan.sigma_random ** 2 + plan.sigma_nonlinear ** 2
    if plan.weight_parallel:
        full = plan.parallel_full_scale
        return tiles * (sigma2 * full ** 2 + (full / plan.adc_levels) ** 2 / 12)
    per_tile = 0.0
    for i in range(plan.weight_bits):
        for cycle in plan.cycles:
            full = plan.full_scale(cycle)
            term = 0.0
            if not plan.is_digital(i, cycle):
                votes = plan.votes(i, cycle)
                term += sigma2 * full ** 2 * (math.pi / (2 * votes) if votes > 1 else 1.0)
            if not plan.is_lossless(cycle):
                term += (full / plan.adc_levels) ** 2 / 12
            per_tile += 4.0 ** (i + cycle.low_bit) * term
    return tiles * per_tile


def conversion_table(plan: ConversionPlan, cycle: InputCycle, fraction: float,
                     tile_rows: int, digital: bool, votes: int) -> tuple[Tensor, Tensor]:
    """(mean error, variance) in MAC units of a conversion of every MAC M = 0..max, float64."""
    return _table(plan.chip, cycle, fraction, tile_rows, digital, votes)


@lru_cache(maxsize=256)
def _table(chip: ChipSpec, cycle: InputCycle, fraction: float, tile_rows: int, digital: bool,
           votes: int) -> tuple[Tensor, Tensor]:
    plan = ConversionPlan(chip)
    levels = plan.adc_levels
    full = plan.ranged_full_scale(plan.full_scale(cycle), fraction)
    mac = torch.arange(cycle.max_group_value * tile_rows + 1, dtype=torch.float64)
    compressed = mac if digital or not plan.alpha else mac / (1.0 + plan.alpha * mac)
    m = torch.clamp(compressed / full, 0.0, 1.0)
    u = m * levels
    sigma_random, sigma_nonlinear = plan.noise_sigmas(fraction)
    noisy = not digital and (sigma_random > 0 or sigma_nonlinear > 0)
    if noisy:
        sigma2 = sigma_random ** 2 + sigma_nonlinear ** 2 / (m * plan.rows * fraction + 1.0)
        s = torch.sqrt(sigma2) * levels                      # noise in LSB
        if votes == 1:
            mean, variance = _code_moments(u, s, levels)
        else:
            mean, variance = _majority_moments(u, s, levels, votes)
    else:
        mean = torch.round(u)
        variance = torch.zeros_like(u)
    lsb = full / levels
    return (mean * lsb - mac).contiguous(), (variance * lsb * lsb).contiguous()


def _code_moments(u: Tensor, s: Tensor, levels: int) -> tuple[Tensor, Tensor]:
    """E[D] and Var[D] of D = round(clamp(u + s z, 0, L)) from the thresholds P(D >= k)."""
    mean = torch.empty_like(u)
    square = torch.empty_like(u)
    k = torch.arange(1, levels + 1, dtype=torch.float64)
    step = max(1, (1 << 21) // levels)
    for a in range(0, len(u), step):                      # bounded memory for wide ADCs
        p = torch.special.ndtr((u[a:a + step, None] - k + 0.5) / s[a:a + step, None])
        mean[a:a + step] = p.sum(dim=1)
        square[a:a + step] = (p * (2 * k - 1)).sum(dim=1)
    return mean, torch.clamp(square - mean * mean, min=0.0)


# Majority voting is computed exactly over the outcomes of S draws on a window of codes while
# there are at most this many (window x compositions) terms; beyond, the median's variance.
VOTING_TERMS = 1 << 22


def _majority_moments(u: Tensor, s: Tensor, levels: int, votes: int
                      ) -> tuple[Tensor, Tensor]:
    """E and Var of the most frequent of ``votes`` codes (ties: the smallest code), as the
    chip's majority vote: the codes' distribution on a window of +-(5 s + 1) around round(u),
    every outcome (counts per code) with its multinomial probability."""
    half = int(math.ceil(5 * float(s.max()))) + 1
    width = min(levels + 1, 2 * half + 1)
    counts = _compositions(votes, width)
    if counts is None or counts.shape[0] * len(u) > VOTING_TERMS:
        return torch.round(u), (s * s) * math.pi / (2 * votes)
    base = torch.clamp(torch.round(u) - half, 0, levels + 1 - width)     # first code
    codes = base[:, None] + torch.arange(width, dtype=torch.float64)     # (M, W)
    upper = torch.where(codes >= levels, torch.ones_like(codes),
                        torch.special.ndtr((codes + 0.5 - u[:, None]) / s[:, None]))
    lower = torch.where(codes <= 0, torch.zeros_like(codes),
                        torch.special.ndtr((codes - 0.5 - u[:, None]) / s[:, None]))
    p = torch.clamp(upper - lower, min=1e-300)
    p = p / p.sum(dim=1, keepdim=True)                    # the window holds all but ~1e-7
    c = counts.to(torch.float64)
    log_multinomial = math.lgamma(votes + 1) - torch.lgamma(c + 1).sum(dim=1)
    weights = torch.exp(log_multinomial + torch.log(p) @ c.T)            # (M, outcomes)
    winner = torch.argmax(counts * (width + 1) - torch.arange(width), dim=1)  # ties: smallest
    offset = winner.to(torch.float64)
    mean_offset = weights @ offset
    variance = torch.clamp(weights @ (offset * offset) - mean_offset ** 2, min=0.0)
    return base + mean_offset, variance


@lru_cache(maxsize=16)
def _compositions(total: int, parts: int) -> Tensor | None:
    """Every way to put ``total`` draws into ``parts`` codes, (outcomes, parts), or None when
    there are too many."""
    if math.comb(total + parts - 1, parts - 1) > VOTING_TERMS // 64:
        return None
    rows = [c for c in itertools.combinations(range(total + parts - 1), parts - 1)]
    out = torch.empty(len(rows), parts, dtype=torch.long)
    for r, bars in enumerate(rows):
        edges = (-1, *bars, total + parts - 1)
        out[r] = torch.tensor([edges[j + 1] - edges[j] - 1 for j in range(parts)])
    return out


def _tile_tables(plan: ConversionPlan, fraction: float, tile_rows: int) -> tuple[Tensor, int]:
    """One tile's tables, (C * bw * size, 2) float32: for every (cycle, weight bit) and MAC, the
    mean error times sign * 2^(i + b_c) and the variance times 4^(i + b_c) (what the
    shift-add makes of them), and the size of one table."""
    size = max(c.max_group_value for c in plan.cycles) * tile_rows + 1
    tables = []
    for cycle in plan.cycles:
        for i in range(plan.weight_bits):
            e, v = conversion_table(plan, cycle, fraction, tile_rows, plan.is_digital(i, cycle),
                                    plan.votes(i, cycle))
            shift = 2.0 ** (i + cycle.low_bit)
            pad = size - len(e)
            tables.append(torch.nn.functional.pad(
                torch.stack([e * (plan.sign(i, cycle) * shift), v * (shift * shift)], dim=1),
                (0, 0, 0, pad)))
    return torch.cat(tables).to(torch.float32), size


def conversion_moments(plan: ConversionPlan, x: Tensor, w: Tensor,
                       tiles: tuple[tuple[int, int], ...]) -> tuple[Tensor, Tensor]:
    """Mean error and variance (G, R, N), float32 in integer-product units, that the chip's
    conversions add to the product of the quantised (G, R, K) inputs ``x`` and (Gw, K, N)
    weights ``w`` (integer-valued). Not for weight-parallel chips (see the module docstring)."""
    chip = plan.chip
    groups, rows, _ = x.shape
    bw, columns = plan.weight_bits, w.shape[-1]
    cycles = len(plan.cycles)
    x_planes = input_cycle_planes(x, chip.input.bits, chip.input.signed, plan.cycles, dim=1)
    w_planes = weight_bit_planes(w, bw).permute(1, 2, 0, 3)            # (Gw, K, bw, N)
    out = torch.zeros(groups, rows, columns, 2, dtype=torch.float32)
    chunk = max(1, CHUNK_ELEMENTS // max(1, cycles * bw * columns))
    for k0, k1 in tiles:
        tables, size = _tile_tables(plan, plan.range_fraction(k1 - k0), k1 - k0)
        wt = w_planes[:, k0:k1].reshape(w.shape[0], k1 - k0, bw * columns)
        base = (torch.arange(cycles * bw) * size).view(1, cycles, 1, bw, 1)
        for r0 in range(0, rows, chunk):
            r1 = min(rows, r0 + chunk)
            xt = x_planes[:, :, r0:r1, k0:k1].reshape(groups, cycles * (r1 - r0), k1 - k0)
            # MACs of 0/1 planes are exact small integers in float32
            mac = torch.matmul(xt, wt).view(groups, cycles, r1 - r0, bw, columns)
            index = mac.long().add_(base)
            out[:, r0:r1] += torch.nn.functional.embedding(index, tables).sum(dim=(1, 3))
    return out[..., 0], out[..., 1]

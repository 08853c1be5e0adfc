"""The conversion tables against the closed form of docs/numeric-model.md, and the codes the
kernels draw from them against that distribution (goodness of fit per MAC value)."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from asimc.chip.conversions import ConversionPlan
from asimc.chip.spec import (AdcSpec, ArraySpec, DomainSpec, HybridSpec, InputSpec, NoiseSpec,
                             Quantity, WeightSpec)
from asimc.kernels import conversion_model, fast, reference
from asimc.kernels.problem import AcimProblem, NoiseKeys

from .test_kernels import chip

TWO32 = 2.0 ** 32


def phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def closed_form(m: float, sigma: float, levels: int) -> list[float]:
    """P(code = k), k = 0..L, of round(clamp(m + sigma N(0, 1), 0, 1) L)."""
    cdf = [phi(((k + 0.5) / levels - m) / sigma) for k in range(levels)] + [1.0]
    return [cdf[0]] + [cdf[k] - cdf[k - 1] for k in range(1, levels + 1)]


def table_probabilities(table, row: int, levels: int) -> list[float]:
    """P(code = k) as drawn: code = low + #{j : w > threshold[j]}, w uniform on 32 bits."""
    low = int(table.low[row])
    thresholds = [int(t) for t in table.thresholds[row] if int(t) != conversion_model.NEVER]
    probabilities = [0.0] * (levels + 1)
    previous = 0
    for j, t in enumerate(thresholds):          # code low + j for w in [previous, t]
        probabilities[low + j] = (t + 1 - previous) / TWO32
        previous = t + 1
    probabilities[low + len(thresholds)] = (TWO32 - previous) / TWO32
    return probabilities


TABLE_CHIPS = {
    "1lsb": chip(noise=NoiseSpec(Quantity(1, "lsb")), adc=AdcSpec(6), array=ArraySpec(rows=40)),
    "nonlinear": chip(noise=NoiseSpec(Quantity(0.2, "%"), Quantity(3.0, "%")), adc=AdcSpec(7),
                      array=ArraySpec(rows=30)),
    "wide-noise-range": chip(noise=NoiseSpec(Quantity(6, "lsb")), adc=AdcSpec(5, Quantity(40.0, "%")),
                             array=ArraySpec(rows=20)),
    "tiny-noise": chip(noise=NoiseSpec(Quantity(0.01, "lsb")), adc=AdcSpec(4),
                       array=ArraySpec(rows=16)),
    "current-parallel": chip(domain=DomainSpec("current", 0.01), input=InputSpec(4, False, 2),
                             noise=NoiseSpec(Quantity(0.7, "lsb")), adc=AdcSpec(6),
                             array=ArraySpec(rows=12), hybrid=HybridSpec(1)),
}


@pytest.mark.parametrize("name", TABLE_CHIPS)
def test_every_code_is_drawn_with_its_closed_form_probability(name):
    """Within 2^-32 for every code of every MAC value and kind (digital kinds: one code)."""
    plan = ConversionPlan(TABLE_CHIPS[name])
    tables = conversion_model._tables(plan, (plan.rows, plan.rows // 3), True)
    levels = plan.adc_levels
    for q, kind in enumerate(tables.kinds):
        for mac in range(kind.most + 1):
            row = tables.start[q] + mac
            value = mac / (1 + kind.alpha * mac) / kind.full_scale
            m = min(1.0, max(0.0, value))
            if kind.sigma_random == 0 and kind.sigma_nonlinear == 0:
                want = [0.0] * (levels + 1)
                want[round(m * levels)] = 1.0
            else:
                sigma = math.sqrt(kind.sigma_random ** 2
                                  + kind.sigma_nonlinear ** 2 / (m * kind.rows + 1))
                want = closed_form(m, sigma, levels)
            got = table_probabilities(tables, row, levels)
            worst = max(abs(g - w) for g, w in zip(got, want))
            assert worst <= 2.0 ** -32 * 1.01, (name, q, mac, worst)


def test_the_guide_table_gives_the_defined_code_for_every_word():
    plan = ConversionPlan(TABLE_CHIPS["nonlinear"])
    tables = conversion_model._tables(plan, (plan.rows,), True)
    rows = torch.arange(tables.low.numel())
    thresholds = tables.thresholds
    # Every threshold and its neighbours, every cell's first and last word, random words.
    edges = torch.cat([thresholds - 1, thresholds, thresholds + 1], dim=1).clamp(0, 2 ** 32 - 1)
    cells = torch.arange(conversion_model.GUIDE_CELLS) << conversion_model.GUIDE_SHIFT
    cells = torch.cat([cells, cells + (1 << conversion_model.GUIDE_SHIFT) - 1])
    generator = torch.Generator().manual_seed(5)
    words = torch.cat([edges, cells.expand(len(rows), -1),
                       torch.randint(0, 2 ** 32, (len(rows), 2000), generator=generator)], dim=1)
    row = rows.unsqueeze(1).expand_as(words).contiguous()
    flagged = (tables.guide.view(-1)[row * conversion_model.GUIDE_CELLS
                                     + (words >> conversion_model.GUIDE_SHIFT)]
               & conversion_model.SCAN_FLAG) != 0
    assert flagged.any() and not flagged.all()          # both ways of drawing are exercised
    assert torch.equal(conversion_model.draw_guided(tables, row, words),
                       conversion_model.draw(tables, row, words))


def _codes_of_one_mac(spec, mac_value: int, draws: int, kernel) -> torch.Tensor:
    """``draws`` independent conversions of MAC value M on a lossless chip (rows = L = 255):
    1-bit inputs, weights 1, the idle MSB level digital; the code is the output."""
    spec = replace(spec, weight=WeightSpec(2), input=InputSpec(1), hybrid=HybridSpec(1),
                   array=ArraySpec(rows=255), adc=AdcSpec(8))
    rows = 255
    x = torch.zeros(1, draws, rows)
    x[:, :, :mac_value] = 1
    w = torch.ones(1, rows, 1)
    keys = NoiseKeys(torch.full((1, draws), 2027, dtype=torch.int64),
                     torch.arange(draws).view(1, draws), 1, draws)
    problem = AcimProblem(x, w, ConversionPlan(spec), ((0, rows),), keys)
    return kernel(problem)[0, :, 0]


def chi_square_critical(dof: int, z: float = 4.75) -> float:
    """The chi-square quantile at p = 1e-6 (z = 4.75), Wilson and Hilferty's approximation."""
    return dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3


@pytest.mark.parametrize("mac_value", [0, 3, 100, 254])
def test_drawn_codes_fit_the_closed_form(mac_value):
    """Chi-square goodness of fit of 60,000 codes drawn by the fast kernel for one MAC value
    (near both clamps and in the middle) against P(code = k) of the model; bins with fewer than
    5 expected draws are pooled."""
    spec = chip(noise=NoiseSpec(Quantity(1.5, "lsb"), Quantity(2.0, "%")))
    draws = 60000
    codes = _codes_of_one_mac(spec, mac_value, draws, fast.run)
    sigma = math.sqrt((1.5 / 255) ** 2 + 0.02 ** 2 / (mac_value + 1))
    expected = [p * draws for p in closed_form(mac_value / 255, sigma, 255)]
    counts = torch.bincount(codes.long(), minlength=256).tolist()
    statistic, dof, pool_e, pool_o = 0.0, -1, 0.0, 0
    for e, o in zip(expected, counts):
        pool_e, pool_o = pool_e + e, pool_o + o
        if pool_e >= 5:
            statistic += (pool_o - pool_e) ** 2 / pool_e
            dof, pool_e, pool_o = dof + 1, 0.0, 0
    statistic += (pool_o - pool_e) ** 2 / max(pool_e, 1e-12) if pool_o else pool_e
    assert dof >= 3
    assert statistic < chi_square_critical(dof), (statistic, dof)
    # and the reference draws the very same codes
    assert torch.equal(_codes_of_one_mac(spec, mac_value, 2000, reference.run),
                       codes[:2000])

"""Synthetic measurements: the transfer table a chip's parametric model would give on a test
bench (``asimc chip measure``), for trying ``transfer`` and ``chip fit`` without silicon.

Each MAC value of each conversion kind is converted ``repeats`` times: the codes are a
multinomial draw (seeded numpy generator) from the closed-form distribution of ``model``. With
``per_column`` every physical column gets its own ADC offset, gain and DNL, drawn from the
chip's ``mismatch`` sigmas with the same generator; without it the column mismatch is left out
(one distribution serves all columns).
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from ..chip.conversions import ConversionPlan
from .model import code_distributions, conversion_kinds, dnl_offsets


@dataclass(frozen=True)
class Measurement:
    """A synthetic table's CSV text and the column errors it was drawn with (the truth a fit
    should recover): offsets in LSB, gains relative, per column (one entry without columns)."""

    text: str
    offsets: tuple[float, ...]
    gains: tuple[float, ...]


def measure_chip(chip, repeats: int = 1000, seed: int = 0, per_column: bool = False,
                 every: int = 1, title: str = "") -> Measurement:
    """A synthetic transfer table for ``chip`` (a ChipSpec)."""
    plan = ConversionPlan(chip)
    f = plan.range_fraction()
    sr, snl = plan.noise_sigmas(f)
    offset_sigma, sigma_dnl = plan.offset_sigma(f), chip.mismatch.adc_dnl.value
    kinds = conversion_kinds(chip)
    rng = np.random.default_rng(seed)
    columns = list(range(chip.array.cols)) if per_column else [None]
    out, offsets, gains = io.StringIO(), [], []
    out.write(f"# {title or 'synthetic transfer table'}: asimc's closed-form model of chip "
              f"{chip.name!r}, seed {seed}, {repeats} conversions per MAC value\n")
    out.write("mac,code,count" + (",column" if per_column else "") + ",bits\n")
    for column in columns:
        offset = gain = 0.0
        dnl = None
        if column is not None:
            offset = rng.normal(0.0, offset_sigma) if offset_sigma else 0.0
            gain = rng.normal(0.0, plan.gain_sigma) if plan.gain_sigma else 0.0
            dnl = dnl_offsets(sigma_dnl, plan.adc_levels, rng) if sigma_dnl else None
        offsets.append(offset * plan.adc_levels)
        gains.append(gain)
        for kind in kinds:
            step = min(every, kind.max_mac + 1)
            macs = np.unique(np.append(np.arange(0, kind.max_mac + 1, step), kind.max_mac))
            p = code_distributions(kind, macs, sr, snl, offset, gain, dnl)
            for mac, probabilities in zip(macs, p):
                counts = rng.multinomial(repeats, probabilities)
                tail = (f",{column}" if column is not None else "") + f",{kind.bits}\n"
                for code in np.flatnonzero(counts):
                    out.write(f"{mac},{code},{counts[code]}{tail}")
    return Measurement(out.getvalue(), tuple(offsets), tuple(gains))

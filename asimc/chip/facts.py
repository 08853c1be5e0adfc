"""Derived facts of a chip, for ``asimc chip show``: cycles, conversions, LSB sizes, levels, and
peak throughput and efficiency. Every number comes from ``ConversionPlan`` (the same plan the
kernels use) or from the definitions below.

``chip_facts(spec)`` returns a JSON-able dict with these keys:

- ``mode``: ``"bit-serial weights"`` (one weight bit per column, one conversion per weight bit and
  input cycle) or ``"weight-parallel"`` (all weight and input bits in one conversion).
- ``precision``: ``weight_bits``, ``input_bits``, ``input_signed``, ``input_bits_per_cycle``.
- ``num_input_cycles`` (C) and ``input_cycles``: one entry per cycle with ``index``, ``low_bit``,
  ``bits`` and ``sign`` (weight-parallel: one entry holding every input bit).
- ``conversion_types``: one entry per kind of conversion (cycles with the same group width and
  sign share an ADC range) with ``cycles`` (indices), ``range`` (as written: ``rows``,
  ``used_rows``, ``12.5%``...), ``range_fraction`` (f, of a full tile), ``rows_full_scale`` (the
  rows-based F), ``full_scale`` (f * F in MAC units), ``adc_levels`` (L, the largest code),
  ``lsb_mac`` (f * F / L), ``lsb_percent`` (100/L % of the range) and ``lossless`` (every
  integer MAC a tile can produce survives the ADC exactly: the range is an integer that L is a
  multiple of, and does not clip; for ``used_rows``: in every tile size).
- ``num_levels`` and ``levels``: per level ``i + c`` the bit products in it (``products``), the ADC
  conversions they take (``conversions``, votes included), ``digital`` and ``voted``.
- ``conversions_per_tile_column``: ADC conversions per row-tile MAC per output column (voted
  conversions counted ``samples`` times); ``digital_per_tile_column``: bit products computed
  digitally instead (hybrid levels).
- ``transfer`` (null without ``adc { transfer }``): ``table`` (its path), ``sha256``,
  ``observations``, ``columns``, ``kinds`` (per input-bit group: MAC values measured, first
  column) and ``unmeasured`` (how MAC values that were not measured are simulated).
- ``noise``: ``random_percent`` and ``nonlinear_percent`` of the rows-based full scale (bit
  conversions; the nonlinear term is zero where the model ignores it), and ``random_lsb`` (LSBs
  of the ADC as configured, for a full tile).
- ``mismatch``: the static errors each seed draws, one entry per field in use: ``field``,
  ``what`` (what it fixes), ``sigma`` and ``unit`` as written (sections 8a and 8c of
  docs/numeric-model.md); empty when the chip has none.
- ``performance`` (each entry null when the figures it needs are not given):
    * a full-precision MAC is one ``bw x bx`` multiply-accumulate; one OP is half a MAC
      (OPS = 2 x MACs).
    * ``cycles_per_mac``: clocks one cell needs per full-precision MAC: C for bit-serial weights
      (one input cycle per clock), 1 for weight-parallel (all bits in one clock).
    * ``macs_per_clock``: macros x rows x (cols / bw) / C for bit-serial weights (a column tile of
      bw columns holds one output channel; every clock each macro runs one input cycle on all its
      rows x cols cells); macros x rows x cols for weight-parallel (a column holds a whole weight).
    * ``macs_per_s`` = macs_per_clock x f; ``tops`` = 2 x macs_per_s / 1e12 at the chip's precision.
    * ``energy_per_mac_fj``: bw x C x E_mac + (conversions per tile column / rows) x E_adc for
      bit-serial weights (bw x C cell operations; a tile's ADC conversions are shared by its
      ``rows`` MACs); bw x E_mac + E_adc / rows for weight-parallel. Digital (hybrid) products
      cost no ADC energy; their adders are not modelled.
    * ``tops_per_w`` = 2 / energy_per_mac / 1e12; ``tops_1b`` and ``tops_per_w_1b`` are the same
      normalised to 1b x 1b operations (multiplied by bw x bx).
    Peak figures assume every cell busy and ADCs that keep up (voting costs energy, not time).
- ``layers``: per override its ``pattern``, ``digital``, ``changes`` (``field``, ``chip`` value,
  ``layer`` value) and, unless digital, the effective ``num_input_cycles``, ``num_levels``,
  ``conversions_per_tile_column``, ``digital_per_tile_column`` and ``conversion_types`` (the
  layer's ADC range, LSB and losslessness).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from .conversions import ConversionPlan, InputCycle
from .serialize import to_json
from .spec import ChipSpec


def chip_facts(spec: ChipSpec) -> dict[str, Any]:
    base = replace(spec, layers=())
    facts = _core_facts(base)
    facts["layers"] = [_layer_facts(base, override) for override in spec.layers]
    return facts


def _core_facts(spec: ChipSpec) -> dict[str, Any]:
    plan = ConversionPlan(spec)
    parallel = spec.weight.parallel
    i = spec.input
    if parallel:
        cycles = [InputCycle(0, 0, i.bits, sign=i.signed)]
    else:
        cycles = list(plan.cycles)
    return {
        "mode": "weight-parallel" if parallel else "bit-serial weights",
        "precision": {"weight_bits": spec.weight.bits, "input_bits": i.bits,
                      "input_signed": i.signed, "input_bits_per_cycle": i.bits_per_cycle},
        "num_input_cycles": len(cycles),
        "input_cycles": [{"index": c.index, "low_bit": c.low_bit, "bits": c.bits,
                          "sign": c.sign} for c in cycles],
        "conversion_types": _conversion_types(plan),
        "num_levels": 1 if parallel else plan.num_levels,
        "levels": [] if parallel else _levels(plan),
        "conversions_per_tile_column": plan.conversions_per_tile_column,
        "digital_per_tile_column": plan.digital_per_tile_column,
        "noise": _noise(plan),
        "mismatch": _mismatch(spec, plan),
        "transfer": _transfer(spec),
        "performance": performance(spec),
    }


def _transfer(spec: ChipSpec) -> dict[str, Any] | None:
    """The measured transfer table (None without one): what it holds and how MAC values that
    were not measured are simulated."""
    if not spec.adc.transfer:
        return None
    from ..silicon.table import UNMEASURED_RULE, read_table
    table = read_table(spec.adc.transfer)
    return {"table": spec.adc.transfer, "sha256": table.digest,
            "observations": table.observations,
            "columns": list(table.columns) if table.per_column else "all (one distribution)",
            "kinds": [{"bits": g.bits, "column": g.column, "measured_macs": len(g.macs)}
                      for g in table.groups if g.column in (None, table.groups[0].column)],
            "unmeasured": UNMEASURED_RULE}


def _range(plan: ConversionPlan, rows_full_scale: int) -> dict[str, Any]:
    """The ADC range of a full tile: as written, its fraction f of the rows-based F, f * F."""
    written = plan.chip.adc.full_scale
    fraction = plan.range_fraction()
    return {"range": written if isinstance(written, str) else f"{written.value:g}%",
            "range_fraction": fraction, "rows_full_scale": rows_full_scale,
            "full_scale": _number(fraction * rows_full_scale)}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _conversion_types(plan: ConversionPlan) -> list[dict[str, Any]]:
    levels = plan.adc_levels
    if plan.weight_parallel:
        scale = _range(plan, plan.parallel_full_scale)
        full_scale = scale["full_scale"]
        return [{"name": "weight-parallel", "cycles": [0], "bits": plan.chip.input.bits,
                 "sign": plan.chip.input.signed, **scale, "adc_levels": levels,
                 "lsb_mac": full_scale / levels, "lsb_percent": 100.0 / levels,
                 # Same criterion as ConversionPlan.is_lossless, over the signed range [-F, F]
                 # (a range below the rows-based one clips, so it is lossy).
                 "lossless": scale["range_fraction"] >= 1 and float(full_scale).is_integer()
                 and levels % int(full_scale) == 0}]
    types: dict[tuple[int, bool], dict[str, Any]] = {}
    for cycle in plan.cycles:
        key = (cycle.bits, cycle.sign)
        if key in types:
            types[key]["cycles"].append(cycle.index)
            continue
        scale = _range(plan, plan.full_scale(cycle))
        name = "sign bit" if cycle.sign else f"{cycle.bits}-bit group"
        types[key] = {"name": name, "cycles": [cycle.index], "bits": cycle.bits,
                      "sign": cycle.sign, **scale, "adc_levels": levels,
                      "lsb_mac": plan.lsb_mac(cycle), "lsb_percent": 100.0 / levels,
                      "lossless": plan.is_lossless(cycle)}
    return list(types.values())


def _levels(plan: ConversionPlan) -> list[dict[str, Any]]:
    table = []
    for level in range(plan.num_levels):
        pairs = [(w, c) for w in range(plan.weight_bits) for c in plan.cycles
                 if w + c.index == level]
        digital = plan.is_digital(*pairs[0])
        table.append({"level": level, "products": len(pairs),
                      "conversions": 0 if digital else sum(plan.votes(w, c) for w, c in pairs),
                      "digital": digital,
                      "voted": plan.is_voted(*pairs[0]) and not digital})
    return table


def _noise(plan: ConversionPlan) -> dict[str, float]:
    """Percent of the rows-based swing; LSBs of the ADC as configured (its range)."""
    random, nonlinear = plan.noise_sigmas()
    return {"random_percent": 100.0 * random,
            "random_lsb": plan.noise_sigmas(plan.range_fraction())[0] / plan.lsb_fraction,
            "nonlinear_percent": 100.0 * nonlinear}


# What each mismatch field fixes per chip instance (seed), in the words of chip show.
MISMATCH_SCOPES = (("adc_offset", "ADC offset per column"), ("adc_gain", "ADC gain per column"),
                   ("adc_dnl", "ADC code thresholds per physical column"),
                   ("dac", "input driver levels per row"), ("cell", "weight cells"))


def _mismatch(spec: ChipSpec, plan: ConversionPlan) -> list[dict[str, Any]]:
    """The static errors a seed draws (docs/numeric-model.md, sections 8a and 8c): one entry per
    field in use, its sigma as written."""
    written = {field: getattr(spec.mismatch, field) for field, _ in MISMATCH_SCOPES}
    if not written["cell"].value and plan.cell_sigma:       # the current domain's spelling
        written["cell"] = spec.domain.cell_variation
    return [{"field": field, "what": what, "sigma": written[field].value,
             "unit": written[field].unit}
            for field, what in MISMATCH_SCOPES if written[field].value > 0]


def performance(spec: ChipSpec) -> dict[str, float | None]:
    """Peak throughput and efficiency (definitions in the module docstring)."""
    plan = ConversionPlan(spec)
    a, e = spec.array, spec.energy
    bw, bx = spec.weight.bits, spec.input.bits
    if spec.weight.parallel:
        cycles, outputs, cell_ops = 1, a.cols, bw
    else:
        cycles = len(plan.cycles)
        outputs, cell_ops = a.cols / bw, bw * cycles
    macs_per_clock = a.macros * a.rows * outputs / cycles
    clock = e.clock_hz()
    macs_per_s = macs_per_clock * clock if clock else None
    energy = None
    if e.mac is not None and e.adc is not None:
        energy = cell_ops * e.mac.si() + plan.conversions_per_tile_column / a.rows * e.adc.si()
    tops = 2 * macs_per_s / 1e12 if macs_per_s is not None else None
    tops_per_w = 2 / energy / 1e12 if energy else None
    return {
        "clock_hz": clock,
        "cycles_per_mac": cycles,
        "macs_per_clock": macs_per_clock,
        "macs_per_s": macs_per_s,
        "tops": tops,
        "tops_1b": tops * bw * bx if tops is not None else None,
        "energy_per_mac_fj": energy * 1e15 if energy is not None else None,
        "tops_per_w": tops_per_w,
        "tops_per_w_1b": tops_per_w * bw * bx if tops_per_w is not None else None,
    }


def _layer_facts(base: ChipSpec, override) -> dict[str, Any]:
    entry: dict[str, Any] = {"pattern": override.pattern, "digital": override.digital,
                             "changes": []}
    effective = base.apply(override.settings)
    for s in override.settings:
        before = getattr(getattr(base, s.block), s.field)
        entry["changes"].append({"field": f"{s.block}.{s.field}", "chip": to_json(before),
                                 "layer": to_json(s.value)})
    if not override.digital:
        core = _core_facts(effective)
        for key in ("num_input_cycles", "num_levels", "conversions_per_tile_column",
                    "digital_per_tile_column", "conversion_types"):
            entry[key] = core[key]
    return entry

"""Hypothesis strategies for valid ChipSpec values (every field within its range, cross-field
rules respected), including layer overrides and quantities in every unit."""
from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

from asimc.chip import schema
from asimc.chip.check import MAX_DNL_THRESHOLDS, cross_field_problems
from asimc.chip.conversions import FLOAT64_BITS, ConversionPlan, input_cycles
from asimc.chip.spec import (AdcSpec, ArraySpec, ChipSpec, DomainSpec, EnergySpec, HybridSpec,
                             InputSpec, LayerOverride, MismatchSpec, NoiseSpec, Quantity,
                             QuantSpec, Setting, VotingSpec, WeightSpec)

texts = st.text(max_size=40)
names = st.text(min_size=1, max_size=30).filter(lambda s: s.strip())
non_negative = st.floats(min_value=0.0, max_value=1e300, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=0.0, max_value=1e300, exclude_min=True, allow_nan=False,
                     allow_infinity=False)


def quantities(values, units) -> st.SearchStrategy[Quantity]:
    return st.builds(Quantity, values, st.sampled_from(units))


@st.composite
def chip_specs(draw, with_layers: bool = True) -> ChipSpec:
    weight = WeightSpec(draw(st.integers(2, 16)), draw(st.booleans()))
    signed = draw(st.booleans())
    bits = draw(st.integers(2 if signed else 1, 16))
    magnitude = bits - 1 if signed else bits
    input_ = InputSpec(bits, signed, draw(st.integers(1, magnitude)))
    min_cols = 1 if weight.parallel else weight.bits
    array = ArraySpec(draw(st.integers(1, schema.MAX_ARRAY)),
                      draw(st.integers(min_cols, schema.MAX_ARRAY)),
                      draw(st.integers(1, schema.MAX_ARRAY)),
                      draw(st.sampled_from(["channels", "flat"])))
    kind = "charge" if weight.parallel else draw(st.sampled_from(["charge", "current"]))
    if kind == "current":
        domain = DomainSpec("current", draw(non_negative), draw(quantities(non_negative, ["%"])))
    else:
        domain = DomainSpec("charge")
    zero_nonlinear = weight.parallel or kind == "current"
    nonlinear = quantities(st.just(0.0) if zero_nonlinear else non_negative, ["%", "lsb"])
    noise = NoiseSpec(draw(quantities(non_negative, ["%", "lsb"])), draw(nonlinear))
    levels = weight.bits + len(input_cycles(bits, signed, input_.bits_per_cycle)) - 1
    max_levels = 0 if weight.parallel else levels
    hybrid = HybridSpec(draw(st.integers(0, max_levels)))
    voting = VotingSpec(draw(st.integers(0, max_levels)),
                        draw(st.integers(1, 499).map(lambda n: 2 * n + 1)))
    optional = lambda units: st.none() | quantities(positive, units)  # noqa: E731
    energy = EnergySpec(draw(optional(schema.ENERGY_UNITS)), draw(optional(schema.ENERGY_UNITS)),
                        draw(optional(schema.CLOCK_UNITS)))
    quant = QuantSpec(draw(st.sampled_from(["per_tensor", "per_channel"])),
                      draw(st.sampled_from(["per_tensor", "per_sample", "static"])))
    full_scale = draw(st.sampled_from(["rows", "used_rows", "calibrated"])
                      | quantities(positive, ["%"]))
    adc = AdcSpec(draw(st.integers(1, 16)), full_scale, draw(st.booleans()))
    no_cells = weight.parallel or domain.cell_variation.value > 0
    thresholds = array.cols // weight.bits * weight.bits * ((1 << adc.bits) - 1)
    no_dnl = weight.parallel or thresholds > MAX_DNL_THRESHOLDS
    mismatch = MismatchSpec(draw(quantities(non_negative, ["%", "lsb"])),
                            draw(quantities(non_negative, ["%"])),
                            draw(quantities(st.just(0.0) if no_cells else non_negative, ["%"])),
                            draw(quantities(st.just(0.0) if no_dnl else non_negative,
                                            ["lsb"])),
                            draw(quantities(st.just(0.0) if weight.parallel else non_negative,
                                            ["%"])))
    spec = ChipSpec(name=draw(names), description=draw(texts), source=draw(texts), array=array, weight=weight,
                    input=input_, adc=adc, domain=domain, noise=noise, mismatch=mismatch,
                    hybrid=hybrid, voting=voting, energy=energy, quant=quant,
                    attention=draw(st.sampled_from(["analog", "digital"])))
    if ConversionPlan(spec).perturbed_mac_bits > FLOAT64_BITS:     # dac beyond exact sums
        spec = replace(spec, mismatch=replace(mismatch, dac=Quantity(0.0, mismatch.dac.unit)))
    if with_layers:
        layers = draw(st.lists(layer_overrides(spec), max_size=4))
        spec = replace(spec, layers=tuple(layers))
    return spec


@st.composite
def layer_overrides(draw, base: ChipSpec) -> LayerOverride:
    """An override whose effective chip is valid: some fields taken from another valid chip."""
    pattern = draw(names)
    if draw(st.integers(0, 4)) == 0:
        return LayerOverride(pattern, (), digital=True)
    other = draw(chip_specs(with_layers=False))
    keys = [(b, f) for b in schema.LAYER_BLOCKS for f in schema.field_order(b)]
    chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=6))
    chosen.sort(key=lambda k: (schema.LAYER_BLOCKS.index(k[0]),
                               schema.field_order(k[0]).index(k[1])))
    settings = tuple(Setting(b, f, getattr(getattr(other, b), f)) for b, f in chosen)
    # `pow2` has no opposite keyword: a layer cannot write "pow2 off".
    settings = tuple(s for s in settings if (s.block, s.field) != ("adc", "pow2") or s.value)
    # An empty text (no transfer table) is the default, not something a layer can write.
    settings = tuple(s for s in settings if s.value != "")
    effective = base.apply(settings)
    problems = cross_field_problems(effective, written={(s.block, s.field) for s in settings})
    if problems:     # keep only the fields that cannot break the effective chip
        settings = tuple(s for s in settings if (s.block, s.field) in _HARMLESS)
    return LayerOverride(pattern, settings)


# Fields no cross-field rule involves (adc bits do: `adc_dnl`'s thresholds per layer).
_HARMLESS = {("array", "macros"), ("array", "mapping"),
             ("noise", "random"), ("quant", "weight"), ("quant", "input")}

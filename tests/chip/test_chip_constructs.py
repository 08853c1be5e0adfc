"""Acceptance tests: every construct of the chip language parses into the exact ChipSpec fields."""
from __future__ import annotations

import pytest

from asimc.chip import parse_chip
from asimc.chip.spec import (AdcSpec, ArraySpec, ChipSpec, DomainSpec, EnergySpec, HybridSpec,
                             InputSpec, LayerOverride, NoiseSpec, Quantity, QuantSpec, Setting,
                             VotingSpec, WeightSpec)

from .helpers import chip


def test_minimal_chip_gets_every_default():
    assert parse_chip('chip "x" {}') == ChipSpec(name="x")
    spec = parse_chip('chip "x" { }')
    assert spec.array == ArraySpec(rows=255, cols=256, macros=1, mapping="channels")
    assert spec.weight == WeightSpec(bits=8, parallel=False)
    assert spec.input == InputSpec(bits=8, signed=False, bits_per_cycle=1)
    assert spec.adc == AdcSpec(bits=8)
    assert spec.domain == DomainSpec("charge", 0.0, Quantity(0.0, "%"))
    assert spec.energy == EnergySpec(None, None, None)
    assert spec.attention == "analog" and spec.layers == ()


def test_design_example_parses_field_by_field():
    spec = parse_chip('''
        chip "asim-bitserial-255" {
            description "Charge-domain SRAM macro, bit-serial, 255 rows, 8-bit ADC"
            source      "citation of the paper the numbers come from"
            array  { rows 255  cols 256  macros 16 }
            weight { bits 8 }                    # two's complement
            input  { bits 8  unsigned  serial }
            adc    { bits 8 }
            domain charge
            noise  { random 0.4%  nonlinear 0.0% }
            hybrid { digital_levels 2 }
            voting { levels 2  samples 5 }
            energy { mac 2.0 fJ  adc 0.5 pJ  clock 200 MHz }
            layer "Conv"      { input { bits 6 } }
            layer "/attn/*"   { adc { bits 6 } }
        }''')
    assert spec.name == "asim-bitserial-255"
    assert spec.description == "Charge-domain SRAM macro, bit-serial, 255 rows, 8-bit ADC"
    assert spec.source == "citation of the paper the numbers come from"
    assert spec.array == ArraySpec(rows=255, cols=256, macros=16)
    assert spec.noise == NoiseSpec(Quantity(0.4, "%"), Quantity(0.0, "%"))
    assert spec.hybrid == HybridSpec(2)
    assert spec.voting == VotingSpec(levels=2, samples=5)
    assert spec.energy == EnergySpec(Quantity(2.0, "fJ"), Quantity(0.5, "pJ"),
                                     Quantity(200.0, "MHz"))
    assert spec.layers == (LayerOverride("Conv", (Setting("input", "bits", 6),)),
                           LayerOverride("/attn/*", (Setting("adc", "bits", 6),)))


@pytest.mark.parametrize("body, expected", [
    ("array { rows 128 cols 64 macros 4 mapping flat }", ArraySpec(128, 64, 4, "flat")),
    ("array { mapping channels macros 2 }", ArraySpec(macros=2, mapping="channels")),
    ("array { cols 512 }", ArraySpec(cols=512)),
])
def test_array(body, expected):
    assert parse_chip(chip(body)).array == expected


@pytest.mark.parametrize("body, expected", [
    ("weight { bits 4 }", WeightSpec(4, False)),
    ("weight { bits 4 parallel }", WeightSpec(4, True)),
    ("weight { parallel bits 6 }", WeightSpec(6, True)),
    ("weight { serial }", WeightSpec(8, False)),
])
def test_weight(body, expected):
    assert parse_chip(chip(body)).weight == expected


@pytest.mark.parametrize("body, expected", [
    ("input { bits 6 }", InputSpec(6, False, 1)),
    ("input { signed bits 8 }", InputSpec(8, True, 1)),
    ("input { unsigned }", InputSpec(8, False, 1)),
    ("input { parallel 4 bits 8 unsigned }", InputSpec(8, False, 4)),
    ("input { bits 8 signed parallel 7 }", InputSpec(8, True, 7)),
    ("input { serial signed }", InputSpec(8, True, 1)),
])
def test_input(body, expected):
    assert parse_chip(chip(body)).input == expected


def test_adc():
    assert parse_chip(chip("adc { bits 10 }")).adc == AdcSpec(10)


@pytest.mark.parametrize("body, expected", [
    ("domain charge", DomainSpec("charge")),
    ("domain current", DomainSpec("current")),
    ("domain current { alpha 0.002 cell_variation 1.0% }",
     DomainSpec("current", 0.002, Quantity(1.0, "%"))),
    ("domain current { cell_variation 2% }", DomainSpec("current", 0.0, Quantity(2.0, "%"))),
])
def test_domain(body, expected):
    assert parse_chip(chip(body)).domain == expected


@pytest.mark.parametrize("body, expected", [
    ("noise { random 0.4% nonlinear 0.1% }", NoiseSpec(Quantity(0.4, "%"), Quantity(0.1, "%"))),
    ("noise { random 1 lsb }", NoiseSpec(Quantity(1.0, "lsb"), Quantity(0.0, "%"))),
    ("noise { nonlinear 0.5 lsb random 2 % }",
     NoiseSpec(Quantity(2.0, "%"), Quantity(0.5, "lsb"))),
])
def test_noise(body, expected):
    assert parse_chip(chip(body)).noise == expected


def test_hybrid_and_voting():
    spec = parse_chip(chip("hybrid { digital_levels 3 }\nvoting { samples 7 levels 1 }"))
    assert spec.hybrid == HybridSpec(3)
    assert spec.voting == VotingSpec(levels=1, samples=7)


@pytest.mark.parametrize("text, expected", [
    ("mac 2 aJ", Quantity(2.0, "aJ")), ("mac 2.5 fJ", Quantity(2.5, "fJ")),
    ("mac 1e-3 pJ", Quantity(0.001, "pJ")), ("mac 0.1 nJ", Quantity(0.1, "nJ")),
    ("mac 2fJ", Quantity(2.0, "fJ")),
])
def test_energy_units(text, expected):
    assert parse_chip(chip(f"energy {{ {text} }}")).energy.mac == expected


@pytest.mark.parametrize("text, hz", [
    ("200 MHz", 200e6), ("1.5 GHz", 1.5e9), ("500 kHz", 500e3),
    ("5 ns", 200e6), ("250 ps", 4e9), ("2 us", 500e3),
])
def test_clock_as_frequency_or_period(text, hz):
    energy = parse_chip(chip(f"energy {{ clock {text} adc 1 pJ }}")).energy
    assert energy.clock_hz() == pytest.approx(hz)
    assert energy.adc == Quantity(1.0, "pJ") and energy.mac is None


def test_quant_and_attention():
    spec = parse_chip(chip("quant { weight per_channel input static }\nattention digital"))
    assert spec.quant == QuantSpec("per_channel", "static")
    assert spec.attention == "digital"
    assert parse_chip(chip("quant { input per_sample }")).quant == QuantSpec("per_tensor",
                                                                            "per_sample")


def test_layer_overrides_store_only_the_fields_written():
    spec = parse_chip(chip('''
        layer "Conv" { input { parallel 2 } }
        layer "Gemm" { input { serial signed } weight { parallel } }
        layer "/a/*" { input { unsigned } weight { serial } adc { bits 6 } }
        layer "MatMul" { domain current { alpha 0.01 } }
        layer "/b/*" { domain current { cell_variation 1% } noise { random 1 lsb } }
        layer "/head/*" { digital }
        layer "X" { array { rows 64 mapping flat } hybrid { digital_levels 1 }
                    voting { levels 1 samples 3 } quant { weight per_channel } }
    '''))
    assert [layer.settings for layer in spec.layers] == [
        (Setting("input", "bits_per_cycle", 2),),
        (Setting("weight", "parallel", True), Setting("input", "signed", True),
         Setting("input", "bits_per_cycle", 1)),
        (Setting("weight", "parallel", False), Setting("input", "signed", False),
         Setting("adc", "bits", 6)),
        (Setting("domain", "kind", "current"), Setting("domain", "alpha", 0.01)),
        (Setting("domain", "kind", "current"),
         Setting("domain", "cell_variation", Quantity(1.0, "%")),
         Setting("noise", "random", Quantity(1.0, "lsb"))),
        (),
        (Setting("array", "rows", 64), Setting("array", "mapping", "flat"),
         Setting("hybrid", "digital_levels", 1), Setting("voting", "levels", 1),
         Setting("voting", "samples", 3), Setting("quant", "weight", "per_channel")),
    ]
    assert [layer.digital for layer in spec.layers] == [False] * 5 + [True, False]
    assert [layer.pattern for layer in spec.layers] == ["Conv", "Gemm", "/a/*", "MatMul", "/b/*",
                                                        "/head/*", "X"]


def test_layer_domain_without_kind_keeps_the_chips_kind():
    spec = parse_chip(chip('domain current { alpha 0.002 }\nlayer "Conv" { domain { alpha 0.01 } }'))
    assert spec.layers[0].settings == (Setting("domain", "alpha", 0.01),)
    effective, _ = spec.for_layer("Conv", "conv")
    assert effective.domain == DomainSpec("current", 0.01)


def test_layer_override_applies_through_for_layer():
    spec = parse_chip(chip('layer "Conv" { adc { bits 6 } }\nlayer "/head/*" { digital }'))
    conv, digital = spec.for_layer("Conv", "/conv1/Conv")
    assert conv.adc.bits == 6 and not digital and conv.layers == ()
    head, digital = spec.for_layer("Gemm", "/head/fc")
    assert digital and head.adc.bits == 8


def test_words_in_any_order_and_comments_everywhere():
    spec = parse_chip('''# a comment before the chip
chip "x" # after the name
{   # after the brace
    input { serial # inside
            unsigned bits 4 }  # after
    # between statements
}
# after the chip''')
    assert spec.input == InputSpec(4, False, 1)


@pytest.mark.parametrize("written, value", [
    (r'"plain"', "plain"), (r'"quote \" inside"', 'quote " inside'),
    (r'"back\\slash"', "back\\slash"), (r'"tab\there"', "tab\there"),
    (r'"line\nbreak"', "line\nbreak"), (r'"cr\r"', "cr\r"), (r'"\u{e9}\u{1F600}"', "é😀"),
    ('"UTF-8 raw: é 漢字 😀"', "UTF-8 raw: é 漢字 😀"), ('""', ""),
])
def test_strings_and_escapes(written, value):
    assert parse_chip(f"chip \"x\" {{ description {written} }}").description == value


def test_numbers_are_typed_exactly():
    spec = parse_chip(chip("array { rows 1e3 cols 256.0 }\nnoise { random .5% }\n"
                           "domain current { alpha +0.25 }"))
    assert spec.array.rows == 1000 and isinstance(spec.array.rows, int)
    assert spec.array.cols == 256 and isinstance(spec.array.cols, int)
    assert spec.noise.random == Quantity(0.5, "%")
    assert spec.domain.alpha == 0.25

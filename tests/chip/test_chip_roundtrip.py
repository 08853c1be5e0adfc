"""The formatter: canonical text, and parse(format(spec)) == spec for every valid spec."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from asimc.chip import format_chip, load_chip, parse_chip
from asimc.chip.check import validate
from asimc.chip.format import quote
from asimc.chip.spec import ChipSpec, LayerOverride, Quantity, Setting
from asimc.resources import bundled_chips

from .strategies import chip_specs


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chip_specs())
def test_parse_of_format_is_the_identity(spec):
    assert validate(spec) == []
    text = format_chip(spec)
    assert parse_chip(text) == spec
    assert format_chip(parse_chip(text)) == text        # canonical: formatting is idempotent


@pytest.mark.parametrize("path", bundled_chips(), ids=lambda p: p.name)
def test_bundled_chips_round_trip(path):
    spec = load_chip(path)
    assert parse_chip(format_chip(spec)) == spec


def test_canonical_text_writes_every_field():
    assert format_chip(ChipSpec("x")) == '''chip "x" {
    description ""
    source ""
    array { rows 255 cols 256 macros 1 mapping channels }
    weight { bits 8 serial }
    input { bits 8 unsigned serial }
    adc { bits 8 full_scale rows }
    domain charge
    noise { random 0.0% nonlinear 0.0% }
    mismatch { adc_offset 0.0% adc_gain 0.0% cell 0.0% adc_dnl 0.0 lsb dac 0.0% }
    hybrid { digital_levels 0 }
    voting { levels 0 samples 3 }
    quant { weight per_tensor input per_tensor }
    attention analog
}
'''


def test_canonical_text_of_a_full_chip():
    spec = parse_chip('''chip "full" {
        layer "Conv" { input { bits 6 } }
        energy { clock 5 ns  mac 2 fJ }
        domain current { cell_variation 1% alpha 0.002 }
        input { parallel 3 signed }
        weight { bits 4 }
        noise { random 1 lsb }
        layer "/a/*" { digital }
    }''')
    text = format_chip(spec)
    assert "    input { bits 8 signed parallel 3 }\n" in text
    assert "    domain current { alpha 0.002 cell_variation 1.0% }\n" in text
    assert "    noise { random 1.0 lsb nonlinear 0.0% }\n" in text
    assert "    energy { mac 2.0 fJ clock 5.0 ns }\n" in text
    assert text.endswith('    layer "Conv" { input { bits 6 } }\n    layer "/a/*" { digital }\n}\n')


def test_long_layer_overrides_are_split_over_lines():
    settings = (Setting("array", "rows", 64), Setting("array", "mapping", "flat"),
                Setting("input", "bits", 4), Setting("adc", "bits", 5),
                Setting("noise", "random", Quantity(0.25, "%")),
                Setting("quant", "weight", "per_channel"))
    spec = ChipSpec("x", layers=(LayerOverride("/encoder/layers/*/attention/*", settings),))
    text = format_chip(spec)
    assert ('    layer "/encoder/layers/*/attention/*" {\n'
            '        array { rows 64 mapping flat }\n'
            '        input { bits 4 }\n') in text
    assert parse_chip(text) == spec


@pytest.mark.parametrize("value", [
    'quote " and backslash \\', "tab\tnewline\ncr\r", "nul \x00 bell \x07 del \x7f",
    "é 漢字 😀", "line sep \u2028 para \u2029", "",
])
def test_strings_are_escaped_and_read_back(value):
    spec = ChipSpec("n", description=value, source=value)
    assert parse_chip(format_chip(spec)) == spec
    assert "\n" not in quote(value)


@pytest.mark.parametrize("value", [0.1, 1e-300, 5e-324, 1.7976931348623157e308, 123456789.123,
                                   1 / 3, 2.0, 1e16])
def test_floats_round_trip_exactly(value):
    spec = parse_chip(f'chip "f" {{ noise {{ random {value!r}% }} }}')
    assert spec.noise.random.value == value
    assert parse_chip(format_chip(spec)) == spec

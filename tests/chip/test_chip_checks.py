"""Tier 1 (values and ranges) and tier 2 (cross-field) rules: each error's message and place."""
from __future__ import annotations

import pytest

from asimc.chip import parse_chip
from asimc.chip.check import validate
from asimc.chip.spec import ChipSpec, InputSpec, WeightSpec

from .helpers import caret_column, chip, errors, one_error

# (line 2 of the file, as written after `chip "t" {`, column, message, help or "")
TIER1 = [
    ("array { rows 0 }", 14, "`array rows` must be from 1 to 1,048,576, not 0", "rows"),
    ("array { rows 2000000 }", 14, "`array rows` must be from 1 to 1,048,576, not 2000000", ""),
    ("array { rows 25.5 }", 14, "`array rows` must be a whole number, not 25.5", ""),
    ("array { rows 255 fJ }", 18, "`array rows` is a plain number and takes no unit, found `fJ`",
     "remove `fJ`"),
    ("array { rows 1e400 }", 14, "`array rows` must be from 1 to 1,048,576, not 1e400", ""),
    ("array { rows 1e99999999999999999999 }", 14, "must be from 1 to 1,048,576, not 1e9999", ""),
    ("array { rows 1e-99999999999999999999 }", 14, "`array rows` must be a whole number", ""),
    ("array { rows " + "9" * 5000 + " }", 14, "not 99999999999999999999...", ""),
    ("noise { random " + "9" * 5000 + "% }", 16, "is too large a number", ""),
    ("array { cols 0 }", 14, "`array cols` must be from 1 to 1,048,576, not 0", ""),
    ("array { macros -1 }", 16, "`array macros` must be from 1 to 1,048,576, not -1", ""),
    ("array { mapping flatt }", 17, "unknown value `flatt` for `array mapping`: expected "
     "`channels` or `flat`", "did you mean `flat`?"),
    ("weight { bits 1 }", 15, "`weight bits` must be from 2 to 16, not 1", ""),
    ("weight { bits 17 }", 15, "`weight bits` must be from 2 to 16, not 17", ""),
    ("input { bits 0 }", 14, "`input bits` must be from 1 to 16, not 0", ""),
    ("input { parallel 0 }", 18, "`input parallel` must be from 1 to 16, not 0", ""),
    ("adc { bits 0 }", 12, "`adc bits` must be from 1 to 16, not 0", ""),
    ("adc { bits 99999999999999999999 }", 12,
     "`adc bits` must be from 1 to 16, not 99999999999999999999", ""),
    ("adc { bits 1e999999999 }", 12, "`adc bits` must be from 1 to 16, not 1e999999999", ""),
    ("domain current { alpha -0.1 }", 24, "`domain alpha` must be at least 0, not -0.1", ""),
    ("domain current { alpha 1e400 }", 24, "`domain alpha` 1e400 is too large a number", ""),
    ("domain current { alpha 2 % }", 26,
     "`domain alpha` is a plain number and takes no unit, found `%`", ""),
    ("domain current { cell_variation -1% }", 33,
     "`domain cell_variation` must be at least 0, not -1", ""),
    ("domain current { cell_variation 1 lsb }", 35,
     "`domain cell_variation` takes `%`, not `lsb` (ADC LSBs)", ""),
    ("domain current { cell_variation 0.01 }", 33,
     "`domain cell_variation` needs a unit: `%`", ""),
    ("domain plasma", 8, "unknown value `plasma` for `domain`: expected `charge` or `current`", ""),
    ("noise { random -0.4% }", 16, "`noise random` must be at least 0, not -0.4", ""),
    ("noise { random 2 fJ }", 18, "`noise random` takes `%` or `lsb`, not `fJ` (an energy unit)",
     ""),
    ("noise { nonlinear 0.1 }", 19, "`noise nonlinear` needs a unit: `%` or `lsb`",
     "e.g. `nonlinear 0.1 %`"),
    ("hybrid { digital_levels -1 }", 25, "`hybrid digital_levels` must be from 0 to 64, not -1",
     ""),
    ("voting { levels 2.5 }", 17, "`voting levels` must be a whole number, not 2.5", ""),
    ("voting { samples 0 }", 18, "`voting samples` must be from 1 to 999, not 0", ""),
    ("energy { mac 2 }", 14, "`energy mac` needs a unit: `aJ`, `fJ`, `pJ` or `nJ`",
     "e.g. `mac 2 fJ`"),
    ("energy { mac 0 fJ }", 14, "`energy mac` must be greater than 0, not 0", ""),
    ("energy { adc -1 pJ }", 14, "`energy adc` must be greater than 0, not -1", ""),
    ("energy { mac 2 MHz }", 16, "`energy mac` takes `aJ`, `fJ`, `pJ` or `nJ`, not `MHz` "
     "(a frequency unit)", ""),
    ("energy { clock 0 MHz }", 16, "`energy clock` must be greater than 0, not 0", ""),
    ("energy { clock 5 fJ }", 18, "`energy clock` takes `kHz`, `MHz`, `GHz`, `ps`, `ns` or `us`, "
     "not `fJ` (an energy unit)", ""),
    ("energy { clock 200 }", 16, "`energy clock` needs a unit", "e.g. `clock 200 MHz`"),
    ("quant { weight per_row }", 16, "unknown value `per_row` for `quant weight`: expected "
     "`per_tensor` or `per_channel`", ""),
    ("quant { input dynamic }", 15, "unknown value `dynamic` for `quant input`", ""),
    ("attention analogue", 11, "unknown value `analogue` for `attention`: expected `analog` or "
     "`digital`", "did you mean `analog`?"),
]


@pytest.mark.parametrize("body, column, message, help", TIER1)
def test_tier1_value_errors_are_located(body, column, message, help):
    error = one_error(chip(body))
    assert (error.file, error.line, error.column) == ("t.acim", 2, column)
    assert message in error.message
    assert help in error.help
    assert error.source_line == body
    assert caret_column(error.render()) == column


def test_all_value_errors_of_a_file_are_reported():
    found = errors(chip("array { rows 0 cols 1.5 }\nadc { bits 40 }\nenergy { mac 1 }"))
    assert [(d.line, d.column) for d in found] == [(2, 14), (2, 21), (3, 12), (4, 14)]


@pytest.mark.parametrize("body, first_line", [
    ("array { rows 3 rows 4 }", "`rows` is given twice in `array` (first on line 2)"),
    ("input { signed unsigned }", "`unsigned` conflicts with `signed` on line 2"),
    ("input { serial parallel 2 }", "`parallel` conflicts with `serial` on line 2"),
    ("weight { parallel serial }", "`serial` conflicts with `parallel` on line 2"),
])
def test_duplicate_fields(body, first_line):
    error = one_error(chip(body))
    assert first_line in error.message and error.line == 2


def test_duplicate_block_points_at_the_second_and_names_the_first():
    error = one_error(chip("adc { bits 8 }\n    adc { bits 6 }"))
    assert (error.line, error.column) == (3, 5)
    assert error.message == "`adc` appears twice in the chip (first on line 2)"


def test_duplicate_statement():
    error = one_error(chip('description "a"\ndescription "b"'))
    assert (error.line, error.column) == (3, 1)
    assert "`description` is given twice" in error.message


def test_empty_names_and_patterns():
    assert one_error('chip "" {}').message == "the chip name must not be empty"
    error = one_error(chip('layer "" { adc { bits 4 } }'))
    assert (error.line, error.column) == (2, 7) and "empty layer pattern" in error.message


def test_digital_layer_with_other_settings():
    error = one_error(chip('layer "Conv" { digital adc { bits 4 } }'))
    assert (error.line, error.column) == (2, 24)
    assert "a `digital` layer runs off the array" in error.message


# ---- tier 2 ----------------------------------------------------------------------------------

TIER2 = [
    ("input { bits 8 parallel 9 }", 16,
     "input `parallel 9` drives more bits per cycle than the 8 input bits", "at most `parallel 8`"),
    ("input { bits 8 signed parallel 8 }", 23,
     "than the 7 magnitude bits of a signed 8-bit input (the sign bit is converted in its own "
     "cycle)", "at most `parallel 7`"),
    ("input { bits 1 signed }", 9, "a signed input needs at least 2 bits", ""),
    ("voting { samples 4 }", 10, "voting samples must be odd and at least 3", ""),
    ("voting { levels 1 samples 1 }", 19, "voting samples must be odd and at least 3", ""),
    ("hybrid { digital_levels 16 }", 10,
     "hybrid digital_levels 16 exceeds the 15 conversion levels of this chip", "at most 15"),
    ("voting { levels 16 }", 10, "voting levels 16 exceeds the 15 conversion levels", ""),
    ("array { cols 4 }", 9, "`cols 4` cannot hold one output channel of 8-bit weights", ""),
    ("domain charge { alpha 0.1 }", 17,
     "`alpha` applies to the current domain only, but this chip is `domain charge`", ""),
    ("domain charge { cell_variation 1% }", 17, "`cell_variation` applies to the current domain",
     ""),
    ("domain { alpha 0.1 }", 10, "`alpha` applies to the current domain only", ""),
]


@pytest.mark.parametrize("body, column, message, help", TIER2)
def test_tier2_cross_field_errors_are_located(body, column, message, help):
    error = one_error(chip(body))
    assert (error.line, error.column) == (2, column)
    assert message in error.message
    assert help in error.help


@pytest.mark.parametrize("blocks, column, message", [
    ("hybrid { digital_levels 1 }", 10, "`hybrid` cannot be combined with weight `parallel`"),
    ("voting { levels 1 }", 10, "`voting` cannot be combined with weight `parallel`"),
    ("noise { nonlinear 0.1% }", 9, "`nonlinear` noise cannot be combined with weight `parallel`"),
    ("domain current", 1, "`domain current` cannot be combined with weight `parallel`"),
])
def test_weight_parallel_incompatibilities(blocks, column, message):
    error = one_error(chip(f"weight {{ bits 4 parallel }}\n{blocks}"))
    assert (error.line, error.column) == (3, column)
    assert message in error.message
    assert "one conversion per tile and column" in error.message


def test_parallel_weights_need_no_bit_columns():
    assert parse_chip(chip("weight { bits 8 parallel }\narray { cols 1 }")).array.cols == 1


def test_nonlinear_noise_in_the_current_domain():
    error = one_error(chip("domain current\nnoise { nonlinear 0.1% }"))
    assert (error.line, error.column) == (3, 9)
    assert "`nonlinear` noise applies to the charge domain only" in error.message


def test_level_limits_follow_the_number_of_levels():
    # 4-bit weights, 8-bit input 4 bits per cycle: C = 2, levels 0..4 (5 levels).
    assert parse_chip(chip("weight { bits 4 }\ninput { parallel 4 }\nhybrid { digital_levels 5 }"))
    error = one_error(chip("weight { bits 4 }\ninput { parallel 4 }\nhybrid { digital_levels 6 }"))
    assert "exceeds the 5 conversion levels" in error.message and error.line == 4


def test_tier2_is_skipped_when_tier1_failed_for_its_fields():
    # `bits 99` fails tier 1; the parallel rule would otherwise compare against it.
    found = errors(chip("input { bits 99 parallel 12 }"))
    assert len(found) == 1 and "`input bits` must be from 1 to 16" in found[0].message


def test_tier2_points_at_the_field_written_in_the_file():
    # Only `cols` is written; the rule also involves the (default) weight bits.
    error = one_error(chip("array { cols 4 }"))
    assert (error.column, error.width) == (9, 6)
    # Both written: the first field the rule names (the level count, not `parallel`).
    error = one_error('chip "t" { weight { parallel } voting { levels 1 } }')
    assert (error.column, error.width) == (41, 8)


def test_layer_overrides_are_checked_on_their_effective_chip():
    found = errors(chip('input { bits 4 }\n'
                        'layer "Conv" { input { parallel 8 } }\n'
                        'layer "Gemm" { hybrid { digital_levels 20 } }\n'
                        'layer "ok" { adc { bits 4 } }'))
    assert [(d.line, d.column) for d in found] == [(3, 24), (4, 25)]
    assert found[0].message.startswith('in layer "Conv": input `parallel 8` drives more bits')
    assert found[1].message.startswith('in layer "Gemm": hybrid digital_levels 20 exceeds')


def test_layer_override_errors_already_in_the_chip_are_not_repeated():
    found = errors(chip('voting { samples 4 }\nlayer "Conv" { adc { bits 4 } }'))
    assert len(found) == 1 and found[0].line == 2


def test_layer_switching_to_weight_parallel_on_a_hybrid_chip():
    error = one_error(chip('hybrid { digital_levels 1 }\nlayer "fc" { weight { parallel } }'))
    assert error.line == 3 and error.message.startswith('in layer "fc": `hybrid` cannot')


def test_validate_checks_python_built_specs():
    assert validate(ChipSpec("ok")) == []
    bad = ChipSpec("x", weight=WeightSpec(bits=40), input=InputSpec(bits=4, bits_per_cycle=8))
    messages = validate(bad)
    assert "weight bits: must be from 2 to 16" in messages
    assert any("parallel 8" in m for m in messages)


def test_validate_checks_layer_overrides():
    from asimc.chip.spec import LayerOverride, Setting
    spec = ChipSpec("x", layers=(LayerOverride("C", (Setting("input", "bits_per_cycle", 12),)),
                                 LayerOverride("D", (Setting("adc", "bits", 0),)),
                                 LayerOverride("E", (Setting("adc", "bits", 4),), digital=True)))
    messages = validate(spec)
    assert any(m.startswith('layer "C": input `parallel 12` drives more bits') for m in messages)
    assert 'layer "D": adc bits: must be from 1 to 16' in messages
    assert 'layer "E": a digital layer takes no other settings' in messages

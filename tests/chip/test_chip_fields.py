"""Every field of the registry (asimc/chip/fields.py) works end to end without a line of its
own elsewhere: it parses from its keyword, round-trips through the formatter, is range-checked
with a located error, and a misspelt keyword suggests it. A new field is covered here by itself."""
from __future__ import annotations

import dataclasses

import pytest

from asimc.chip import format_chip, parse_chip
from asimc.chip.fields import CHIP, RULES, VALUE
from asimc.chip.spec import BLOCK_CLASSES, ChipSpec
from asimc.errors import ChipError

NUMERIC = [r for r in RULES if r.kind in ("int", "float", "quantity") and r.example]


def _block_text(rule, words: str) -> str:
    if rule.block == CHIP:
        return words
    head = rule.block
    if rule.only_in:                       # `domain current { alpha ... }`
        head = f"{rule.block} {rule.only_in}"
    return f"{head} {{ {words} }}"


def _value_keyword(rule) -> str:
    return next(word for word, fixed in rule.keywords if fixed is VALUE)


def _get(spec: ChipSpec, rule):
    return getattr(spec if rule.block == CHIP else getattr(spec, rule.block), rule.field)


def test_every_block_has_a_dataclass_with_the_registry_fields_and_defaults():
    spec = ChipSpec(name="x")
    for rule in RULES:
        assert _get(spec, rule) == rule.default, rule.label
    for name, cls in BLOCK_CLASSES.items():
        assert [f.name for f in dataclasses.fields(cls)] == \
            [r.field for r in RULES if r.block == name]


@pytest.mark.parametrize("rule", NUMERIC, ids=lambda r: r.label)
def test_a_field_written_with_its_example_parses_and_round_trips(rule):
    text = f'chip "x" {{ {_block_text(rule, f"{_value_keyword(rule)} {rule.example}")} }}'
    spec = parse_chip(text)
    value = _get(spec, rule)
    number, _, unit = rule.example.replace("%", " %").partition(" ")
    assert (value.value, value.unit) == (float(number), unit) if unit else value == float(number)
    assert parse_chip(format_chip(spec)) == spec


@pytest.mark.parametrize("rule", [r for r in NUMERIC if r.kind == "int"], ids=lambda r: r.label)
def test_an_integer_field_out_of_range_names_its_range(rule):
    keyword = _value_keyword(rule)
    text = f'chip "x" {{ {_block_text(rule, f"{keyword} {int(rule.high) + 1}")} }}'
    with pytest.raises(ChipError) as error:
        parse_chip(text)
    assert f"must be {rule.describe_range()}" in str(error.value)
    assert f"help: {keyword}: {rule.meaning}" in str(error.value)


@pytest.mark.parametrize("rule", [r for r in NUMERIC if r.block != CHIP and len(r.field) > 3],
                         ids=lambda r: r.label)
def test_a_misspelt_keyword_suggests_the_field(rule):
    keyword = _value_keyword(rule)
    typo = keyword[:-1] + ("x" if keyword[-1] != "x" else "y")
    text = f'chip "x" {{ {_block_text(rule, f"{typo} {rule.example}")} }}'
    with pytest.raises(ChipError) as error:
        parse_chip(text)
    assert f"`{typo}` is not" in str(error.value)
    assert f"did you mean `{keyword}`?" in str(error.value)

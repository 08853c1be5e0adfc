"""``--vary FIELD=VALUES`` -> the points of a sweep.

A FIELD is a path in the chip language (``adc.bits``, ``noise.random``, ``input.encoding``,
``layer["Conv"].adc.bits``); the fields and what each accepts come from the chip schema, so an
unknown one gets the same did-you-mean as the chip checker. VALUES is a list (``6,7,8``,
``serial,parallel 2``), or a range ``START:STOP:STEP`` with its unit (``0:1:0.25 lsb``,
``0%:2%:0.5%``), both ends included. Ranges are computed in decimal, so ``0:1:0.1`` gives
exactly 0.1, 0.2, ... and a step that does not divide the range is an error, not a surprise.
"""
from __future__ import annotations

import difflib
import itertools
import random
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from ..chip import schema
from ..errors import UsageError

RANDOM_SEED = 0      # --random N always draws the same points from the same grid


@dataclass(frozen=True)
class Field:
    """One sweepable field: the block and keyword it is written with in chip text."""

    path: str            # as on the command line, without the layer prefix: "adc.bits"
    block: str
    keyword: str         # the word written before the value: "bits", "parallel", ...
    kind: str            # int, float, quantity, choice, encoding
    units: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Axis:
    """One ``--vary``: a field (optionally inside a layer override) and its values as text."""

    name: str                    # as written: 'layer["Conv"].adc.bits'
    field: Field
    layer: str | None            # the layer pattern, or None for the whole chip
    values: tuple[str, ...]      # canonical chip-language text of each value: "0.25 lsb"


def chip_fields() -> dict[str, Field]:
    """Every field ``--vary`` can set, by path (from the chip schema)."""
    fields: dict[str, Field] = {}
    for (block, keyword), (field, fixed) in schema.KEYWORDS.items():
        rule = schema.RULE[block, field]
        if (block, keyword) == ("input", "parallel"):
            fields["input.encoding"] = Field("input.encoding", "input", "", "encoding")
        elif fixed is schema.VALUE:
            fields[f"{block}.{keyword}"] = Field(f"{block}.{keyword}", block, keyword,
                                                 rule.kind, rule.units, rule.choices)
    fields["weight.encoding"] = Field("weight.encoding", "weight", "", "choice",
                                      choices=("serial", "parallel"))
    fields["input.sign"] = Field("input.sign", "input", "", "choice",
                                 choices=("unsigned", "signed"))
    fields["domain.kind"] = Field("domain.kind", "domain", "", "choice",
                                  choices=schema.RULE["domain", "kind"].choices)
    return fields


def _suggest(word: str, candidates) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


_LAYER = re.compile(r'^layer\[\s*"([^"]*)"\s*\]\.(.+)$|^layer\[\s*\'([^\']*)\'\s*\]\.(.+)$')


def parse_vary(text: str) -> Axis:
    """``FIELD=VALUES`` -> Axis; a UsageError says what was expected."""
    name, sep, values = text.partition("=")
    name, values = name.strip(), values.strip()
    if not sep or not name:
        raise UsageError(f"--vary {text!r}: expected FIELD=VALUES, e.g. --vary adc.bits=6,7,8")
    layer, path = None, name
    if name.startswith("layer"):
        match = _LAYER.match(name)
        if not match:
            raise UsageError(f'--vary {text!r}: a layer field is written layer["PATTERN"].FIELD, '
                             'e.g. layer["Conv"].adc.bits=6,7')
        layer = match.group(1) if match.group(1) is not None else match.group(3)
        path = match.group(2) or match.group(4)
        if not layer:
            raise UsageError(f"--vary {text!r}: an empty layer pattern matches no layer")
    fields = chip_fields()
    if path not in fields:
        raise UsageError(f"--vary {text!r}: unknown field `{path}`{_suggest(path, fields)} "
                         f"(fields: {', '.join(sorted(fields))})")
    field = fields[path]
    if layer is not None and field.block not in schema.LAYER_BLOCKS:
        raise UsageError(f"--vary {text!r}: `{field.block}` cannot be set per layer (layer "
                         f"overrides take {', '.join(schema.LAYER_BLOCKS)})")
    if not values:
        raise UsageError(f"--vary {text!r}: no values after `=`")
    parsed = tuple(dict.fromkeys(_values(field, values, text)))
    return Axis(name, field, layer, parsed)


# -- values ---------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z%]*)\s*$")


def _number(item: str, context: str) -> tuple[Decimal, str]:
    match = _NUMBER.match(item)
    if not match:
        raise UsageError(f"--vary {context!r}: `{item.strip()}` is not a number")
    try:
        return Decimal(match.group(1)), match.group(2)
    except InvalidOperation:
        raise UsageError(f"--vary {context!r}: `{item.strip()}` is not a number") from None


def _values(field: Field, text: str, context: str) -> list[str]:
    if field.kind in ("choice", "encoding"):
        return [_word(field, item, context) for item in text.split(",")]
    if ":" in text:
        return _range(field, text, context)
    items = [_number(item, context) for item in text.split(",")]
    default_unit = items[-1][1]
    return [_number_text(field, value, unit or default_unit, context) for value, unit in items]


def _word(field: Field, item: str, context: str) -> str:
    word = " ".join(item.split())
    if field.kind == "encoding":
        if word == "serial":
            return word
        match = re.fullmatch(r"parallel (\d+)", word)
        if match:
            return f"parallel {int(match.group(1))}"
        raise UsageError(f"--vary {context!r}: `{word}` is not an input encoding: expected "
                         "`serial` or `parallel N` (N input bits per cycle)")
    if word not in field.choices:
        raise UsageError(f"--vary {context!r}: unknown value `{word}` for {field.path}: expected "
                         f"{', '.join(field.choices)}{_suggest(word, field.choices)}")
    return word


def _range(field: Field, text: str, context: str) -> list[str]:
    parts = text.split(":")
    if len(parts) != 3:
        raise UsageError(f"--vary {context!r}: a range is START:STOP:STEP, e.g. 0:1:0.25 lsb")
    # The unit may follow each number (0%:2%:0.5%) or the whole range (0:1:0.25 lsb).
    numbers = [_number(p, context) for p in parts]
    given = {unit for _, unit in numbers if unit}
    if len(given) > 1:
        raise UsageError(f"--vary {context!r}: the range mixes units {', '.join(sorted(given))}")
    unit = given.pop() if given else ""
    (start, _), (stop, _), (step, _) = numbers
    if step == 0 or (stop - start) * step < 0:
        raise UsageError(f"--vary {context!r}: the range is empty (from {start} to {stop} in "
                         f"steps of {step})")
    count = (stop - start) / step
    if count != count.to_integral_value():
        raise UsageError(f"--vary {context!r}: the step {step} does not divide the range from "
                         f"{start} to {stop}; choose a step that lands on {stop}")
    if count > 10_000:
        raise UsageError(f"--vary {context!r}: the range has {int(count) + 1} values; "
                         "at most 10,001 per field")
    return [_number_text(field, start + i * step, unit, context) for i in range(int(count) + 1)]


def _number_text(field: Field, value: Decimal, unit: str, context: str) -> str:
    shown = _plain(value)
    if field.kind == "int":
        if unit:
            raise UsageError(f"--vary {context!r}: {field.path} is a plain number and takes no "
                             f"unit, found `{unit}`")
        if value != value.to_integral_value():
            raise UsageError(f"--vary {context!r}: {field.path} must be a whole number, "
                             f"not {shown}")
        return str(int(value))
    if field.kind == "float":
        if unit:
            raise UsageError(f"--vary {context!r}: {field.path} is a plain number and takes no "
                             f"unit, found `{unit}`")
        return shown
    if not unit:
        raise UsageError(f"--vary {context!r}: {field.path} needs a unit: "
                         f"{', '.join(field.units)} (e.g. {field.path}=0:1:0.25 "
                         f"{field.units[-1]})")
    if unit not in field.units:
        raise UsageError(f"--vary {context!r}: {field.path} takes {', '.join(field.units)}, "
                         f"not `{unit}`")
    return f"{shown}%" if unit == "%" else f"{shown} {unit}"


def _plain(value: Decimal) -> str:
    """Decimal -> the shortest plain text: 0.50 -> 0.5, 1E+1 -> 10."""
    text = format(value.normalize(), "f")
    return text if text not in ("-0",) else "0"


# -- the grid -------------------------------------------------------------------------------------

def grid(axes: list[Axis], *, zip_axes: bool = False, random_count: int | None = None
         ) -> list[tuple[str, ...]]:
    """The value combinations, one tuple per point, in the order of the axes."""
    if not axes:
        return [()]
    names = [a.name for a in axes]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise UsageError(f"--vary {sorted(duplicates)[0]} is given twice: give all its values "
                         "in one --vary")
    if zip_axes:
        lengths = {len(a.values) for a in axes}
        if len(lengths) > 1:
            raise UsageError("--zip pairs the values of every --vary, so each needs the same "
                             "number of values; got " +
                             ", ".join(f"{a.name}: {len(a.values)}" for a in axes))
        points = list(zip(*(a.values for a in axes)))
    else:
        points = list(itertools.product(*(a.values for a in axes)))
    if random_count is not None:
        if random_count < 1:
            raise UsageError(f"--random {random_count}: give a number of points of at least 1")
        if random_count < len(points):
            chosen = sorted(random.Random(RANDOM_SEED).sample(range(len(points)), random_count))
            points = [points[i] for i in chosen]
    return points

"""What each word of the chip language means: the field it sets, its type, units and range.

The grammar (grammar/acim.lark) says where a word may stand; this table says what it sets in a
``ChipSpec`` and which values are allowed. The resolver, the checker, the formatter and the
did-you-mean suggestions all read it, so a new field is added in one place (plus the grammar).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .spec import OVERRIDABLE_BLOCKS, UNITS

# Blocks in canonical order (the formatter's order, and the order of a layer's settings).
BLOCK_ORDER = ("array", "weight", "input", "adc", "domain", "noise", "hybrid", "voting",
               "energy", "quant")
LAYER_BLOCKS = tuple(b for b in BLOCK_ORDER if b in OVERRIDABLE_BLOCKS)
CHIP = "chip"   # pseudo-block of the top-level statements (description, source, attention)

MAX_ARRAY = 1 << 20      # 1,048,576: rows, cols or macros beyond this are a typo, not a chip

ENERGY_UNITS = tuple(UNITS["energy"])
CLOCK_UNITS = tuple(UNITS["frequency"]) + tuple(UNITS["time"])
NOISE_UNITS = ("%", "lsb")
ALL_UNITS = tuple(u for table in UNITS.values() for u in table)


@dataclass(frozen=True)
class FieldRule:
    """One ChipSpec field: how it is written and which values are valid.

    kind: ``int``, ``float`` (a plain number), ``quantity`` (a number with one of ``units``),
          ``choice`` (one of ``choices``), ``flag`` (a keyword alone) or ``text`` (a string).
    low/high: the inclusive range of a number; ``positive`` requires > 0 instead of >= low.
    """

    block: str
    field: str
    kind: str
    low: float | None = None
    high: float | None = None
    positive: bool = False
    units: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    meaning: str = ""

    @property
    def label(self) -> str:
        return self.field if self.block == CHIP else f"{self.block} {self.field}"

    def describe_range(self) -> str:
        if self.positive:
            return "greater than 0"
        if self.high is None or math.isinf(self.high):
            return f"at least {_num(self.low)}"
        return f"from {_num(self.low)} to {_num(self.high)}"


def _num(x: float | None) -> str:
    return f"{int(x):,}" if x is not None and float(x).is_integer() else str(x)


def _int(block, field, low, high, meaning):
    return FieldRule(block, field, "int", low=low, high=high, meaning=meaning)


RULES: tuple[FieldRule, ...] = (
    FieldRule(CHIP, "description", "text", meaning="a one-line description"),
    FieldRule(CHIP, "source", "text", meaning="the publication the numbers come from"),
    FieldRule(CHIP, "attention", "choice", choices=("analog", "digital"),
              meaning="where activation x activation MatMuls run"),
    _int("array", "rows", 1, MAX_ARRAY, "rows accumulated in one analog MAC"),
    _int("array", "cols", 1, MAX_ARRAY, "columns of one macro"),
    _int("array", "macros", 1, MAX_ARRAY, "macros on the chip"),
    FieldRule("array", "mapping", "choice", choices=("channels", "flat"),
              meaning="how a convolution's reduction is cut into row tiles"),
    _int("weight", "bits", 2, 16, "weight bits (two's complement)"),
    FieldRule("weight", "parallel", "flag", meaning="all weight bits in one conversion"),
    _int("input", "bits", 1, 16, "input bits"),
    FieldRule("input", "signed", "flag", meaning="two's-complement inputs"),
    _int("input", "bits_per_cycle", 1, 16, "input bits driven in one cycle"),
    _int("adc", "bits", 1, 16, "ADC resolution"),
    FieldRule("domain", "kind", "choice", choices=("charge", "current"),
              meaning="the analog domain of the MAC"),
    FieldRule("domain", "alpha", "float", low=0, high=math.inf,
              meaning="current-domain gain compression M/(1+alpha*M)"),
    FieldRule("domain", "cell_variation", "quantity", low=0, high=math.inf,
              units=tuple(UNITS["fraction"]), meaning="current-domain cell mismatch sigma"),
    FieldRule("noise", "random", "quantity", low=0, high=math.inf, units=NOISE_UNITS,
              meaning="sigma of random analog noise"),
    FieldRule("noise", "nonlinear", "quantity", low=0, high=math.inf, units=NOISE_UNITS,
              meaning="sigma of the MAC-dependent noise term"),
    _int("hybrid", "digital_levels", 0, 64, "top levels computed digitally"),
    _int("voting", "levels", 0, 64, "top levels converted several times"),
    _int("voting", "samples", 1, 999, "conversions per voted MAC"),
    FieldRule("energy", "mac", "quantity", positive=True, units=ENERGY_UNITS,
              meaning="energy of one cell operation"),
    FieldRule("energy", "adc", "quantity", positive=True, units=ENERGY_UNITS,
              meaning="energy of one ADC conversion"),
    FieldRule("energy", "clock", "quantity", positive=True, units=CLOCK_UNITS,
              meaning="clock frequency or period"),
    FieldRule("quant", "weight", "choice", choices=("per_tensor", "per_channel"),
              meaning="weight scales"),
    FieldRule("quant", "input", "choice", choices=("per_tensor", "per_sample", "static"),
              meaning="input scales"),
)

RULE: dict[tuple[str, str], FieldRule] = {(r.block, r.field): r for r in RULES}

# Keywords inside a block -> (field, fixed value). A fixed value of ``None`` means the keyword
# is followed by its value; flags and their opposites set a fixed value.
NUMBER_FOLLOWS = None
KEYWORDS: dict[tuple[str, str], tuple[str, object]] = {
    ("array", "rows"): ("rows", NUMBER_FOLLOWS),
    ("array", "cols"): ("cols", NUMBER_FOLLOWS),
    ("array", "macros"): ("macros", NUMBER_FOLLOWS),
    ("array", "mapping"): ("mapping", NUMBER_FOLLOWS),
    ("weight", "bits"): ("bits", NUMBER_FOLLOWS),
    ("weight", "parallel"): ("parallel", True),
    ("weight", "serial"): ("parallel", False),
    ("input", "bits"): ("bits", NUMBER_FOLLOWS),
    ("input", "signed"): ("signed", True),
    ("input", "unsigned"): ("signed", False),
    ("input", "serial"): ("bits_per_cycle", 1),
    ("input", "parallel"): ("bits_per_cycle", NUMBER_FOLLOWS),
    ("adc", "bits"): ("bits", NUMBER_FOLLOWS),
    ("domain", "alpha"): ("alpha", NUMBER_FOLLOWS),
    ("domain", "cell_variation"): ("cell_variation", NUMBER_FOLLOWS),
    ("noise", "random"): ("random", NUMBER_FOLLOWS),
    ("noise", "nonlinear"): ("nonlinear", NUMBER_FOLLOWS),
    ("hybrid", "digital_levels"): ("digital_levels", NUMBER_FOLLOWS),
    ("voting", "levels"): ("levels", NUMBER_FOLLOWS),
    ("voting", "samples"): ("samples", NUMBER_FOLLOWS),
    ("energy", "mac"): ("mac", NUMBER_FOLLOWS),
    ("energy", "adc"): ("adc", NUMBER_FOLLOWS),
    ("energy", "clock"): ("clock", NUMBER_FOLLOWS),
    ("quant", "weight"): ("weight", NUMBER_FOLLOWS),
    ("quant", "input"): ("input", NUMBER_FOLLOWS),
}

# Statement keywords -> field of the pseudo-block CHIP.
STATEMENTS = {"description": "description", "source": "source", "attention": "attention"}



def word_choices(block: str, keyword: str) -> tuple[str, ...]:
    """The words that may follow ``keyword`` in ``block`` (``mapping`` -> channels, flat)."""
    if keyword == "domain":
        return RULE["domain", "kind"].choices
    if block == CHIP or keyword in STATEMENTS:
        rule = RULE.get((CHIP, STATEMENTS.get(keyword, "")))
    else:
        field = KEYWORDS.get((block, keyword), ("",))[0]
        rule = RULE.get((block, field))
    return rule.choices if rule is not None else ()


def keywords_of(block: str) -> list[str]:
    return [kw for (b, kw) in KEYWORDS if b == block]


def blocks_with_keyword(keyword: str) -> list[str]:
    return [b for (b, kw) in KEYWORDS if kw == keyword]


def field_order(block: str) -> list[str]:
    """The fields of a block in canonical order (as declared in RULES)."""
    return [r.field for r in RULES if r.block == block]

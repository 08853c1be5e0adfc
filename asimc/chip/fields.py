"""Every field of the chip language, defined once: its block, type, unit(s), range, default,
how it is written and what it means.

Everything else is derived from ``BLOCKS``: the grammar's block and field rules
(``grammar.grammar_text``), the ``ChipSpec`` dataclasses (``spec``), the value checks and keyword
tables (``schema``, ``check``), the did-you-mean lists and the examples in error messages
(``syntax_errors``, ``resolve``), the canonical text (``format``) and ``chip show``. Adding a field
is adding one ``FieldRule`` to its block here; adding a block is adding one ``BlockRule``.

Numeric semantics are those of docs/numeric-model.md. The defaults describe the ASiM reference
macro: charge domain, 255 rows, W8A8 bit-serial unsigned inputs, an 8-bit ADC and no noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .units import Quantity, units_of

CHIP = "chip"   # pseudo-block of the top-level statements (description, source, attention)
MAX_ARRAY = 1 << 20      # 1,048,576: rows, cols or macros beyond this are a typo, not a chip


class _ValueFollows:
    def __repr__(self) -> str:
        return "VALUE"


VALUE = _ValueFollows()   # a keyword followed by the field's value (``rows 255``)


@dataclass(frozen=True)
class FieldRule:
    """One ChipSpec field.

    kind:     ``int``, ``float`` (a plain number), ``quantity`` (a number with one of ``units``;
              with ``choices`` also one of those words, e.g. ``full_scale rows | 12.5%``),
              ``choice`` (one of ``choices``), ``flag`` (a keyword alone) or ``text`` (a string).
    default:  the value when the file does not set it (``None``: optional, e.g. energy figures).
    low/high: the inclusive range of a number; ``positive`` requires > 0 instead.
    keywords: how the field is written: ``(word, VALUE)`` takes the value after the word,
              ``(word, fixed)`` sets a fixed value (``signed`` -> True). Empty: the block's kind
              word (``domain current``).
    meaning:  a short phrase for messages; ``doc`` the full documentation.
    example:  a typical value as written, for "give `rows` a value, e.g. `rows 255`".
    only_in:  the domain kind the field applies to (``current``), if not every domain.
    """

    block: str
    field: str
    kind: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    positive: bool = False
    units: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    meaning: str = ""
    doc: str = ""
    keywords: tuple[tuple[str, Any], ...] | None = None
    example: str = ""
    only_in: str = ""
    last: bool = False       # a chip statement written after the blocks (``attention``)
    path: bool = False       # a file name, relative to the chip file's folder
    digest_of: str = ""      # the SHA-256 of the file another field of the block names

    def __post_init__(self):
        if self.keywords is None:
            object.__setattr__(self, "keywords", ((self.field, VALUE),))

    @property
    def label(self) -> str:
        return self.field if self.block == CHIP else f"{self.block} {self.field}"

    @property
    def python_type(self) -> Any:
        types = {"int": int, "float": float, "quantity": Quantity, "choice": str, "flag": bool,
                 "text": str}
        t = types[self.kind]
        if self.kind == "quantity" and self.choices:
            t = t | str
        return t | None if self.default is None else t

    @property
    def example_unit(self) -> str:
        """The unit suggested when a value is written without one."""
        written = self.example.split()[-1] if " " in self.example else ""
        return written if written in self.units else self.units[0]

    def describe_range(self) -> str:
        if self.positive:
            return "greater than 0"
        if self.high is None or math.isinf(self.high):
            return f"at least {_num(self.low)}"
        return f"from {_num(self.low)} to {_num(self.high)}"


def _num(x: float | None) -> str:
    return f"{int(x):,}" if x is not None and float(x).is_integer() else str(x)


@dataclass(frozen=True)
class BlockRule:
    """A block (``array { ... }``): its fields in canonical order and its documentation.

    overridable: a ``layer`` override may change it. kind: the field set by a word after the
    block's name (``domain current { ... }``).
    """

    name: str
    doc: str
    fields: tuple[FieldRule, ...]
    overridable: bool = True
    kind: str = ""


def _int(block, field, low, high, default, meaning, doc="", **kw) -> FieldRule:
    return FieldRule(block, field, "int", default, low=low, high=high, meaning=meaning,
                     doc=doc or meaning, **kw)


_NOISE = units_of("fraction", "lsb")
_ZERO = Quantity(0.0, "%")

# The top-level statements, then the blocks in canonical order (the formatter's order).
BLOCKS: tuple[BlockRule, ...] = (
    BlockRule(CHIP, "Top-level statements.", (
        FieldRule(CHIP, "description", "text", "", meaning="a one-line description"),
        FieldRule(CHIP, "source", "text", "", meaning="the publication the numbers come from"),
        FieldRule(CHIP, "attention", "choice", "analog", choices=("analog", "digital"),
                  meaning="where activation x activation MatMuls run",
                  doc="``digital`` keeps activation x activation MatMuls off-chip", last=True),
    ), overridable=False),
    BlockRule("array", "The SRAM array of one macro.", (
        _int("array", "rows", 1, MAX_ARRAY, 255, "rows accumulated in one analog MAC",
             "rows that accumulate into one column at once (the analog MAC length); also the "
             "full-scale normaliser of every conversion, even for a last tile with fewer rows",
             example="255"),
        _int("array", "cols", 1, MAX_ARRAY, 256, "columns of one macro",
             "columns of one macro (output channels x weight bits when weights are bit-serial)",
             example="256"),
        _int("array", "macros", 1, MAX_ARRAY, 1, "macros on the chip",
             "macros on the chip; tiles beyond ``macros`` cost weight reloads", example="1"),
        FieldRule("array", "mapping", "choice", "channels", choices=("channels", "flat"),
                  meaning="how a convolution's reduction is cut into row tiles",
                  doc="how a convolution's reduction (C*kh*kw) is cut into row tiles: "
                      "``channels`` puts floor(rows / (kh*kw)) whole input channels in a tile "
                      "(as ASiM does), ``flat`` cuts C*kh*kw into chunks of ``rows``"),
    )),
    BlockRule("weight", "Weights, quantised symmetric to +-(2^(bits-1)-1).", (
        _int("weight", "bits", 2, 16, 8, "weight bits (two's complement)", example="8"),
        FieldRule("weight", "parallel", "flag", False,
                  keywords=(("parallel", True), ("serial", False)),
                  meaning="all weight bits in one conversion",
                  doc="False (``serial``, default) stores one weight bit per column and "
                      "converts each bit separately; True is ASiM's full bit-parallel mode "
                      "(all weight and input bits in one conversion per row tile and output "
                      "column, signed ADC, random noise only)"),
    )),
    BlockRule("input", "Input activations.", (
        _int("input", "bits", 1, 16, 8, "input bits", example="8"),
        FieldRule("input", "signed", "flag", False,
                  keywords=(("signed", True), ("unsigned", False)),
                  meaning="two's-complement inputs",
                  doc="False: unsigned, quantised to [0, 2^bits-1]; True: two's complement, "
                      "quantised to +-(2^(bits-1)-1), the sign bit converted in its own cycle"),
        _int("input", "bits_per_cycle", 1, 16, 1, "input bits driven in one cycle",
             "1 is bit-serial (``serial``); e > 1 is bit-parallel (``parallel e``): the "
             "magnitude bits are grouped from the LSB in groups of e bits, the top group "
             "possibly shorter, one group per cycle",
             keywords=(("serial", 1), ("parallel", VALUE)), example="4"),
    )),
    BlockRule("adc", "The column ADC.", (
        _int("adc", "bits", 1, 16, 8, "ADC resolution",
             "bits of resolution over the full scale of a conversion", example="8"),
        FieldRule("adc", "full_scale", "quantity", "rows", positive=True,
                  units=units_of("fraction"), choices=("rows", "used_rows", "calibrated"),
                  meaning="the ADC range",
                  doc="the MAC value converted to the top code: ``rows`` (default, ASiM: F = "
                      "(2^e'-1) x rows), ``used_rows`` (the rows the tile drives), a fraction "
                      "of the rows-based F (``12.5%``, a programmable reference; MACs above "
                      "clip at the top code) or ``calibrated`` (set per layer by ``asimc "
                      "calibrate``)", example="12.5%"),
        FieldRule("adc", "pow2", "flag", False, keywords=(("pow2", True),),
                  meaning="ranges rounded down to a power-of-two fraction",
                  doc="round the range down to F_rows / 2^k, so that ranges differ by shifts"),
        FieldRule("adc", "transfer", "text", "", meaning="a measured transfer table",
                  doc="a measured transfer table (CSV ``mac,code,count[,column][,bits]``, "
                      "path relative to the chip file): each analog conversion draws its code "
                      "from the measured distribution of its MAC value and column "
                      "(docs/numeric-model.md, section 8b); replaces ``noise`` and the column "
                      "mismatch", example='"measured.csv"', path=True),
        FieldRule("adc", "transfer_sha256", "text", "", keywords=(("sha256", VALUE),),
                  meaning="the SHA-256 of the transfer table's content",
                  doc="the SHA-256 of the transfer table's bytes: filled in when the chip "
                      "loads (``chip fmt`` writes it), refused when the file no longer has "
                      "it; the table's content is part of the chip's identity",
                  example='"9f86d081..."', digest_of="transfer"),
    )),
    BlockRule("domain", "The analog domain of the MAC.", (
        FieldRule("domain", "kind", "choice", "charge", choices=("charge", "current"),
                  keywords=(), meaning="the analog domain of the MAC",
                  doc="``charge`` (default) or ``current``"),
        FieldRule("domain", "alpha", "float", 0.0, low=0, high=math.inf, only_in="current",
                  meaning="current-domain gain compression M/(1+alpha*M)",
                  doc="gain compression, a MAC value M becomes M/(1+alpha*M)", example="0.002"),
        FieldRule("domain", "cell_variation", "quantity", _ZERO, low=0, high=math.inf,
                  units=units_of("fraction"), only_in="current",
                  meaning="current-domain cell mismatch sigma",
                  doc="static Gaussian mismatch of every weight cell, sigma relative to a unit "
                      "cell (``1.0%`` adds N(0, 0.01) to each 0/1 cell), drawn once per chip "
                      "instance (seed)", example="1.0%"),
    ), kind="kind"),
    BlockRule("noise", "Analog noise added to every analog (non-digital) conversion before the "
                       "ADC.", (
        FieldRule("noise", "random", "quantity", _ZERO, low=0, high=math.inf, units=_NOISE,
                  meaning="sigma of random analog noise",
                  doc="sigma of Gaussian noise, in % of full scale or in ADC LSBs",
                  example="0.4%"),
        FieldRule("noise", "nonlinear", "quantity", _ZERO, low=0, high=math.inf, units=_NOISE,
                  meaning="sigma of the MAC-dependent noise term",
                  doc="sigma (same units) of the MAC-dependent term N(0,1)*sigma/sqrt(M_bin+1) "
                      "(charge domain only)", example="0.0%"),
    )),
    BlockRule("mismatch", "Fixed-pattern mismatch: Gaussian errors drawn once per chip instance "
                          "(seed) for each layer's columns and cells, the same for every sample "
                          "and run of that seed; analog conversions only.", (
        FieldRule("mismatch", "adc_offset", "quantity", _ZERO, low=0, high=math.inf,
                  units=_NOISE, meaning="sigma of the per-column ADC offset",
                  doc="sigma of each column ADC's offset, added before rounding, in % of the "
                      "rows-based full scale or in LSBs of the ADC as configured",
                  example="0.5 lsb"),
        FieldRule("mismatch", "adc_gain", "quantity", _ZERO, low=0, high=math.inf,
                  units=units_of("fraction"), meaning="sigma of the per-column ADC gain error",
                  doc="sigma of each column ADC's relative gain error g (m -> m (1 + g))",
                  example="1%"),
        FieldRule("mismatch", "cell", "quantity", _ZERO, low=0, high=math.inf,
                  units=units_of("fraction"), meaning="sigma of the per-cell weight error",
                  doc="sigma of each weight cell's error relative to a unit cell (``2%`` adds "
                      "N(0, 0.02) to each 0/1 bit cell)", example="2%"),
        FieldRule("mismatch", "adc_dnl", "quantity", Quantity(0.0, "lsb"), low=0, high=math.inf,
                  units=units_of("lsb"), meaning="sigma of the ADC's code-threshold offsets",
                  doc="sigma, in LSB, of the offset of each code threshold of each physical "
                      "column's ADC (differential non-linearity; thresholds keep their order, "
                      "a crossing is a missing code; docs/numeric-model.md, section 8c)",
                  example="0.3 lsb"),
        FieldRule("mismatch", "dac", "quantity", _ZERO, low=0, high=math.inf,
                  units=units_of("fraction"), meaning="sigma of the input drivers' level errors",
                  doc="sigma of the relative error of each driven level of each row's input "
                      "driver (``1%``: level g drives g (1 + N(0, 0.01)); bit-serial inputs "
                      "have one level, 1; docs/numeric-model.md, section 8c)", example="1%"),
    )),
    BlockRule("hybrid", "Hybrid CiM: the top conversion levels (level = weight bit + input "
                        "cycle) are computed digitally, i.e. without noise (the ADC still "
                        "rounds).", (
        _int("hybrid", "digital_levels", 0, 64, 0, "top levels computed digitally",
             example="1"),
    )),
    BlockRule("voting", "Majority voting: conversions in the top ``levels`` levels are "
                        "converted ``samples`` times with independent noise; the most frequent "
                        "code wins (ties: the smallest code).", (
        _int("voting", "levels", 0, 64, 0, "top levels converted several times", example="2"),
        _int("voting", "samples", 1, 999, 3, "conversions per voted MAC", example="5"),
    )),
    BlockRule("energy", "Optional cost figures for estimates.", (
        FieldRule("energy", "mac", "quantity", None, positive=True, units=units_of("energy"),
                  meaning="energy of one cell operation",
                  doc="energy of one cell operation: one weight bit on one row in one input "
                      "cycle", example="2 fJ"),
        FieldRule("energy", "adc", "quantity", None, positive=True, units=units_of("energy"),
                  meaning="energy of one ADC conversion", example="0.5 pJ"),
        FieldRule("energy", "clock", "quantity", None, positive=True,
                  units=units_of("frequency", "time"), meaning="clock frequency or period",
                  doc="clock frequency (or period); one input cycle of one macro takes one "
                      "clock", example="200 MHz"),
    ), overridable=False),
    BlockRule("quant", 'How tensors are quantised (docs/numeric-model.md, "Quantisers").', (
        FieldRule("quant", "weight", "choice", "per_tensor", choices=("per_tensor", "per_channel"),
                  meaning="weight scales",
                  doc="``per_tensor`` (ASiM default: one scale max|W|) or ``per_channel`` (one "
                      "scale per output channel)"),
        FieldRule("quant", "input", "choice", "per_tensor",
                  choices=("per_tensor", "per_sample", "per_token", "static"),
                  meaning="input scales",
                  doc="``per_tensor`` (ASiM default: dynamic, max over the whole input tensor "
                      "of the op), ``per_sample`` (dynamic, one scale per sample), "
                      "``per_token`` (dynamic, one scale per row of the product, applied "
                      "digitally after the array; convolutions: per sample) or ``static`` "
                      "(calibrated on data at compile time)"),
    )),
)

BLOCK: dict[str, BlockRule] = {b.name: b for b in BLOCKS}
RULES: tuple[FieldRule, ...] = tuple(f for b in BLOCKS for f in b.fields)
RULE: dict[tuple[str, str], FieldRule] = {(r.block, r.field): r for r in RULES}


def _check_registry() -> None:
    """A registry mistake is a programming error: fail at import, naming the field."""
    def require(ok: bool, what) -> None:
        if not ok:
            raise ValueError(f"chip field registry: {what}")

    for rule in RULES:
        require(rule.kind in ("int", "float", "quantity", "choice", "flag", "text"), rule)
        if rule.kind == "choice" or isinstance(rule.default, str) and rule.kind == "quantity":
            require(rule.default in rule.choices, rule)
        elif rule.kind in ("int", "float", "quantity") and rule.default is not None:
            value = rule.default.value if isinstance(rule.default, Quantity) else rule.default
            require(value > 0 if rule.positive else rule.low <= value <= rule.high, rule)
    for block in BLOCKS:
        words = [w for f in block.fields for w, _ in f.keywords]
        require(len(words) == len(set(words)), f"a keyword twice in {block.name}")


_check_registry()

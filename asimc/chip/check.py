"""The two tiers of chip checking, on typed values (no syntax, no locations).

Tier 1, ``value_problem``: one field's value against its type and range (``rows >= 1``,
``adc bits 1..16``, energies > 0...).
Tier 2, ``cross_field_problems``: rules that relate several fields of a complete ``ChipSpec``
(parallel input bits fit the input, hybrid/voting levels exist, weight-parallel restrictions...).
Each problem names the fields involved, most relevant first; the resolver uses them to point at
the token that set the field, and skips a rule when one of its fields already failed tier 1.

``validate(spec)`` runs both tiers on a ChipSpec built in Python (for sweeps and tests).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .conversions import FLOAT64_BITS, ConversionPlan, input_cycles
from .fields import Domain, FieldKind
from .schema import BLOCK, CHIP, RULE, RULES, FieldRule
from .spec import ChipSpec, Quantity

FieldKey = tuple[str, str]


@dataclass(frozen=True)
class Problem:
    """A tier-2 problem: what is wrong, and the fields involved (most relevant first)."""

    message: str
    fields: tuple[FieldKey, ...]
    help: str = ""


# ---- tier 1 ------------------------------------------------------------------------------------

def value_problem(rule: FieldRule, value) -> str | None:
    """Why ``value`` is not valid for the field, or None. Values are already typed."""
    if rule.kind == FieldKind.CHOICE or rule.choices and isinstance(value, str):
        return None if value in rule.choices else f"must be one of {', '.join(rule.choices)}"
    if rule.kind in (FieldKind.FLAG, FieldKind.TEXT):
        return None
    number = value.value if isinstance(value, Quantity) else value
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return "must be a number"
    if math.isnan(number) or math.isinf(number):
        return "must be a finite number"
    if rule.kind == FieldKind.INT and not float(number).is_integer():
        return "must be a whole number"
    if isinstance(value, Quantity) and value.unit not in rule.units:
        return f"takes {', '.join(rule.units)}, not `{value.unit}`"
    if rule.positive:
        return None if number > 0 else "must be greater than 0"
    if number < rule.low or number > rule.high:
        return f"must be {rule.describe_range()}"
    return None


# ---- tier 2 ------------------------------------------------------------------------------------

def cross_field_problems(spec: ChipSpec, written: set[FieldKey] | None = None) -> list[Problem]:
    """Rules across fields. ``written``: the fields the author wrote (to tell a current-domain
    field given with ``domain charge`` from a default); None treats non-default values as
    written."""
    problems: list[Problem] = []
    w, i = spec.weight, spec.input

    cycles_ok = True
    if i.signed and i.bits < 2:
        cycles_ok = False
        problems.append(Problem(
            f"a signed input needs at least 2 bits (a sign bit and a magnitude bit), not {i.bits}",
            (("input", "bits"), ("input", "signed"))))
    magnitude = i.bits - 1 if i.signed else i.bits
    if cycles_ok and i.bits_per_cycle > magnitude:
        cycles_ok = False
        if i.signed:
            detail = (f"the {magnitude} magnitude bits of a signed {i.bits}-bit input (the sign "
                      "bit is converted in its own cycle)")
        else:
            detail = f"the {i.bits} input bits"
        problems.append(Problem(
            f"input `parallel {i.bits_per_cycle}` drives more bits per cycle than {detail}",
            (("input", "bits_per_cycle"), ("input", "bits"), ("input", "signed")),
            help=f"use at most `parallel {magnitude}`"))

    if spec.voting.samples < 3 or spec.voting.samples % 2 == 0:
        problems.append(Problem(
            f"voting samples must be odd and at least 3 (a majority of an odd count always "
            f"exists), not {spec.voting.samples}", (("voting", "samples"),)))

    if w.parallel:
        problems += _weight_parallel_problems(spec)
    else:
        if spec.array.cols < w.bits:
            problems.append(Problem(
                f"`cols {spec.array.cols}` cannot hold one output channel of {w.bits}-bit "
                f"weights stored one bit per column: cols must be at least {w.bits}",
                (("array", "cols"), ("weight", "bits"))))
        if cycles_ok:
            problems += _level_problems(spec)

    problems += _domain_problems(spec, written)
    problems += _static_mismatch_problems(spec)
    problems += _driver_problems(spec) if cycles_ok else []
    if spec.adc.transfer:
        problems += _transfer_problems(spec)
    elif spec.adc.transfer_sha256:
        problems.append(Problem("`sha256` pins the content of a transfer table, but this chip "
                                "has no `transfer`", (("adc", "transfer_sha256"),),
                                help='write `transfer "measured.csv"` beside it, or remove it'))
    return problems


# Thresholds of `adc_dnl` per layer (float32: 256 MiB).
MAX_DNL_THRESHOLDS = 1 << 26


def _static_mismatch_problems(spec: ChipSpec) -> list[Problem]:
    m, problems = spec.mismatch, []
    if spec.weight.parallel:
        for field, what in (("adc_dnl", "the per-code thresholds of an unsigned bit-level ADC"),
                            ("dac", "the input drivers of bit-level conversions")):
            if getattr(m, field).value > 0:
                problems.append(Problem(
                    f"`mismatch {field}` models {what}; weight `parallel` converts whole "
                    "products with a signed ADC", (("mismatch", field), ("weight", "parallel")),
                    help="use `adc_offset` and `adc_gain` mismatch, or bit-serial weights"))
    elif m.adc_dnl.value > 0:
        columns = spec.array.cols // spec.weight.bits * spec.weight.bits
        thresholds = columns * ((1 << spec.adc.bits) - 1)
        if thresholds > MAX_DNL_THRESHOLDS:
            problems.append(Problem(
                f"`mismatch adc_dnl` draws every code threshold of every column's ADC: {columns} "
                f"columns x {(1 << spec.adc.bits) - 1} thresholds = {thresholds:,}, above the "
                f"{MAX_DNL_THRESHOLDS:,} asimc holds per layer",
                (("mismatch", "adc_dnl"), ("array", "cols"), ("adc", "bits")),
                help="use fewer `cols` or ADC bits"))
    return problems


def _driver_problems(spec: ChipSpec) -> list[Problem]:
    """Driver mismatch makes MACs sums of non-integers; every kernel computes them exactly
    (so bit-identically) only while they fit float64 (docs/numeric-model.md, 8c)."""
    plan = ConversionPlan(spec)
    if not plan.dac_sigma or plan.perturbed_mac_bits <= FLOAT64_BITS:
        return []
    cell = " cell" if plan.cell_sigma else ""
    fields = (("mismatch", "dac"), ("array", "rows"), ("input", "bits_per_cycle")) \
        + ((("mismatch", "cell"),) if plan.cell_sigma else ())
    return [Problem(
        f"`mismatch {{ dac{cell} }}` with {spec.array.rows} rows and {spec.input.bits_per_cycle} "
        f"input bits per cycle gives MAC values float64 cannot sum exactly (they need "
        f"{math.ceil(plan.perturbed_mac_bits)} bits, float64 has {FLOAT64_BITS})", fields,
        help="use fewer rows or fewer input bits per cycle, or smaller sigmas")]


_TRANSFER = ("adc", "transfer")


def _transfer_problems(spec: ChipSpec) -> list[Problem]:
    """A measured table replaces steps 2-4 of a conversion (docs/numeric-model.md, 8b)."""
    problems = _conflict(spec, "noise", ("random", "nonlinear"),
                         "both give the conversion's noise: the measured table holds it already",
                         "keep `transfer` to simulate the chip as measured (set the noise to "
                         "0), or `noise` for the parametric model (`asimc chip fit` derives it "
                         "from the table)")
    if spec.weight.parallel:
        problems.append(Problem(
            "`transfer` describes bit-level conversions; weight `parallel` converts whole "
            "products with a signed ADC", (_TRANSFER, ("weight", "parallel"))))
    if spec.adc.full_scale != "rows" or spec.adc.pow2:
        field = "pow2" if spec.adc.full_scale == "rows" else "full_scale"
        problems.append(Problem(
            "a measured table fixes the ADC range it was measured with (the rows-based full "
            f"scale); `{field}` would change it", (_TRANSFER, ("adc", field)),
            help=f"remove `{field}`, or measure the table at that range"))
    if spec.domain.kind == Domain.CURRENT:
        problems.append(Problem(
            "a measured table holds the analog front end as measured; `domain current` would "
            "compress the MAC again", (_TRANSFER, ("domain", "kind")),
            help="remove `domain current`: the table is the chip's transfer, compression "
                 "included"))
    problems += _conflict(spec, "mismatch", ("adc_offset", "adc_gain", "adc_dnl", "cell", "dac"),
                          "both describe the converter as built: a measured table holds its "
                          "columns' errors already",
                          "keep `transfer` (set the mismatch to 0), or the parametric mismatch "
                          "without it")
    if not problems:
        problems += _table_problems(spec)
    return problems


def _conflict(spec: ChipSpec, block: str, fields: tuple[str, ...], why: str,
              help: str) -> list[Problem]:
    """`transfer` beside the non-zero ``fields`` of ``block``: one problem naming them."""
    given = [f for f in fields if getattr(getattr(spec, block), f).value > 0]
    if not given:
        return []
    return [Problem(f"`transfer` and `{block} {{ {' '.join(given)} }}` {why}",
                    (_TRANSFER,) + tuple((block, f) for f in given), help=help)]


def _table_problems(spec: ChipSpec) -> list[Problem]:
    from ..silicon.table import TableError, read_table, table_problems
    try:
        table = read_table(spec.adc.transfer)
    except TableError as error:
        return [Problem(f"transfer table: {error}", (_TRANSFER,))]
    pinned = spec.adc.transfer_sha256
    if pinned and pinned != table.digest:
        return [Problem(
            f"the transfer table {spec.adc.transfer} has changed: its SHA-256 is "
            f"{table.digest[:16]}..., the chip pins {pinned[:16]}...",
            (("adc", "transfer_sha256"), _TRANSFER),
            help="remove `sha256` to accept the new table (a new chip identity), or restore "
                 "the table")]
    return [Problem(f"the transfer table cannot serve this chip: {p}", (_TRANSFER,))
            for p in table_problems(table, spec)]


_LEVEL_FIELDS = (("weight", "bits"), ("input", "bits"), ("input", "bits_per_cycle"),
                 ("input", "signed"))


def _level_problems(spec: ChipSpec) -> list[Problem]:
    i = spec.input
    n_cycles = len(input_cycles(i.bits, i.signed, i.bits_per_cycle))
    n_levels = ConversionPlan(spec).num_levels
    why = (f"levels 0..{n_levels - 1}: weight bit + input cycle, with {spec.weight.bits} weight "
           f"bits and {n_cycles} input cycles")
    problems = []
    for block, field, name in (("hybrid", "digital_levels", "hybrid digital_levels"),
                               ("voting", "levels", "voting levels")):
        value = getattr(getattr(spec, block), field)
        if value > n_levels:
            problems.append(Problem(
                f"{name} {value} exceeds the {n_levels} conversion levels of this chip ({why})",
                ((block, field),) + _LEVEL_FIELDS, help=f"use at most {n_levels}"))
    return problems


def _weight_parallel_problems(spec: ChipSpec) -> list[Problem]:
    why = ("weight `parallel` converts all weight and input bits of a row tile at once (one "
           "conversion per tile and column, charge domain, random noise only)")
    parallel = ("weight", "parallel")
    problems = []
    if spec.hybrid.digital_levels > 0:
        problems.append(Problem(
            f"`hybrid` cannot be combined with weight `parallel`: {why}, so there are no "
            "per-bit levels to compute digitally",
            (("hybrid", "digital_levels"), parallel)))
    if spec.voting.levels > 0:
        problems.append(Problem(
            f"`voting` cannot be combined with weight `parallel`: {why}, so there are no "
            "per-bit levels to vote on", (("voting", "levels"), parallel)))
    if spec.noise.nonlinear.value > 0:
        problems.append(Problem(
            f"`nonlinear` noise cannot be combined with weight `parallel`: {why}",
            (("noise", "nonlinear"), parallel), help="use `random` noise, or bit-serial weights"))
    if spec.domain.kind == Domain.CURRENT:
        problems.append(Problem(
            f"`domain current` cannot be combined with weight `parallel`: {why}",
            (("domain", "kind"), parallel)))
    if spec.mismatch.cell.value > 0:
        problems.append(Problem(
            "`mismatch cell` is modelled on one-bit cells (bit-serial weights), but weight "
            f"`parallel` stores multi-bit weights: {why}", (("mismatch", "cell"), parallel),
            help="use `adc_offset` and `adc_gain` mismatch, or bit-serial weights"))
    return problems


def _domain_problems(spec: ChipSpec, written: set[FieldKey] | None) -> list[Problem]:
    d = spec.domain
    problems = []
    if d.kind == Domain.CHARGE:
        given = {r.field: _magnitude(getattr(d, r.field)) != 0
                 for r in BLOCK["domain"].fields if r.only_in == Domain.CURRENT}
        for field, nonzero in given.items():
            if (("domain", field) in written) if written is not None else nonzero:
                problems.append(Problem(
                    f"`{field}` applies to the current domain only, but this chip is "
                    "`domain charge`", (("domain", field), ("domain", "kind")),
                    help=f"write `domain current {{ {field} ... }}`, or remove `{field}`"))
    elif spec.mismatch.cell.value > 0 and d.cell_variation.value > 0:
        problems.append(Problem(
            "`cell_variation` and `mismatch cell` both set the per-cell weight error "
            "(`cell_variation` is the older spelling)",
            (("domain", "cell_variation"), ("mismatch", "cell")), help="keep one of them"))
    if d.kind == Domain.CURRENT and spec.noise.nonlinear.value > 0 and not spec.weight.parallel:
        problems.append(Problem(
            "`nonlinear` noise applies to the charge domain only (the current-domain model "
            "uses the random term)", (("noise", "nonlinear"), ("domain", "kind")),
            help="use `random` noise, or `domain charge`"))
    return problems


def _magnitude(value) -> float:
    return value.value if isinstance(value, Quantity) else value


def override_problems(base: ChipSpec, settings, base_problems: list[Problem],
                      skip: set[FieldKey] = frozenset()) -> list[Problem]:
    """Tier 2 for one layer override: the rules broken by its effective chip (``base`` with the
    override's settings applied) that involve a field the override writes and that the base chip
    does not break already; rules involving a field in ``skip`` (failed tier 1) are left out."""
    written = {(s.block, s.field) for s in settings}
    known = {p.message for p in base_problems}
    effective = base.apply(tuple(settings))
    return [p for p in cross_field_problems(effective, written=written)
            if p.message not in known and written.intersection(p.fields)
            and not skip.intersection(p.fields)]


# ---- both tiers on a ChipSpec --------------------------------------------------------------------

def validate(spec: ChipSpec) -> list[str]:
    """Every problem of a ChipSpec built in Python, as ``"field: message"`` lines (empty when
    valid). Files are checked with located errors by the resolver instead."""
    messages = []
    failed = set()
    for rule in RULES:
        value = getattr(spec if rule.block == CHIP else getattr(spec, rule.block), rule.field)
        if rule.default is None and value is None:      # an optional figure not given
            continue
        problem = value_problem(rule, value)
        if problem:
            failed.add((rule.block, rule.field))
            messages.append(f"{rule.label}: {problem}")
    if not spec.name:
        messages.append("name: must not be empty")
    base = replace(spec, layers=())
    base_problems = cross_field_problems(base)
    messages += [p.message for p in base_problems if not failed.intersection(p.fields)]
    for override in spec.layers:
        where = f'layer "{override.pattern}": '
        if not override.pattern:
            messages.append(where + "pattern: must not be empty")
        if override.digital and override.settings:
            messages.append(where + "a digital layer takes no other settings")
        bad = set()
        for setting in override.settings:
            rule = RULE.get((setting.block, setting.field))
            problem = value_problem(rule, setting.value) if rule else "is not a field"
            if problem:
                bad.add((setting.block, setting.field))
                messages.append(f"{where}{setting.block} {setting.field}: {problem}")
        if not override.digital and not bad:
            messages += [where + p.message for p in
                         override_problems(base, override.settings, base_problems, failed)]
    return messages

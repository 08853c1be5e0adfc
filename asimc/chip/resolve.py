"""Syntax tree -> ChipSpec, with every problem located.

1. Each file's values are typed and range-checked (tier 1): integers where integers belong,
   units on the fields that take them, ranges, known words, no duplicates.
2. ``extends "file"`` is followed (relative to the extending file's folder; cycles and missing
   files are errors at the string) and merged: the child's fields override the parent's field by
   field, the parent's layer overrides come first, name/description/source come from the child.
   A child that sets ``domain charge`` drops the parent's current-domain fields.
3. Defaults fill the rest, and the cross-field rules (tier 2) run on the resulting chip and on
   each layer override's effective chip, skipping rules whose fields failed tier 1.

All errors of all files in the chain are collected and raised together as one ChipError.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field as dataclass_field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..errors import ChipError, Diagnostic
from . import schema
from .check import Problem, cross_field_problems, override_problems, value_problem
from .parse import parse_text
from .schema import CHIP, KEYWORDS, RULE, VALUE, FieldRule
from .source import SourceText, Span, read_source
from .spec import ChipSpec, LayerOverride, Quantity, Setting
from .syntax import Block, ChipDecl, Entry, Number, Text, Word
from .syntax_errors import did_you_mean, quoted_list
from ..silicon.table import file_digest
from .units import UNIT_GROUPS, unit_group

FieldKey = tuple[str, str]
MAX_EXTENDS_DEPTH = 32


@dataclass(frozen=True)
class Origin:
    """Where a value was written; ``depth`` 0 is the file being loaded, 1 its parent..."""

    source: SourceText
    span: Span
    depth: int = 0


@dataclass(frozen=True)
class Assigned:
    value: Any
    origin: Origin


@dataclass
class LayerDraft:
    pattern: str
    origin: Origin
    digital: bool = False
    values: dict[FieldKey, Assigned] = dataclass_field(default_factory=dict)
    failed: set[FieldKey] = dataclass_field(default_factory=set)


@dataclass
class Draft:
    """One file's chip (merged with its parents): the fields written, where, and which failed."""

    name: str
    origin: Origin
    values: dict[FieldKey, Assigned] = dataclass_field(default_factory=dict)
    layers: list[LayerDraft] = dataclass_field(default_factory=list)
    failed: set[FieldKey] = dataclass_field(default_factory=set)
    complete: bool = True       # False when a file of the chain could not be read or parsed


def load_chip(path: str | os.PathLike) -> ChipSpec:
    """Read, resolve and check a chip file; raises ChipError with every problem found."""
    resolver = _Resolver()
    draft = resolver.file(Path(path), str(path), chain=(), depth=0)
    return resolver.finish(draft)


def parse_chip(text: str, filename: str = "<string>",
               base_dir: str | os.PathLike | None = None) -> ChipSpec:
    """Resolve and check chip text; ``extends`` is relative to ``base_dir`` (default: the
    folder of ``filename`` when it is a path, else the current folder)."""
    if base_dir is None:
        base_dir = Path(filename).parent if not filename.startswith("<") else Path.cwd()
    resolver = _Resolver()
    draft = resolver.text(SourceText(filename, text), Path(base_dir), chain=(), depth=0)
    return resolver.finish(draft)


class _Resolver:
    def __init__(self):
        self.diagnostics: list[Diagnostic] = []

    # ---- files and extends ---------------------------------------------------------------------

    def file(self, path: Path, display: str, chain: tuple, depth: int) -> Draft | None:
        try:
            source = read_source(path, display)
        except ChipError as error:
            self.diagnostics += error.diagnostics
            return None
        return self.text(source, path.parent, chain + ((_identity(path), display),), depth)

    def text(self, source: SourceText, base_dir: Path, chain: tuple, depth: int) -> Draft | None:
        try:
            parsed = parse_text(source)
        except ChipError as error:
            self.diagnostics += error.diagnostics
            return None
        if not parsed.chips:
            self.error(source, Span(1, 1), "the file holds no chip",
                       help='a chip file contains `chip "name" { ... }`')
            return None
        for extra in parsed.chips[1:]:
            self.error(source, extra.span,
                       f"a file holds one chip; another `chip` starts here (the first is on line "
                       f"{parsed.chips[0].span.line})", help="put each chip in its own file")
        decl = parsed.chips[0]
        own = _Converter(self, source, depth, base_dir).chip(decl)
        if decl.extends is None:
            return own
        parent = self.extends(decl.extends, source, base_dir, chain, depth)
        if parent is None:
            own.complete = False
            return own
        return _merge(parent, own)

    def extends(self, target: Text, source: SourceText, base_dir: Path, chain: tuple,
                depth: int) -> Draft | None:
        path = base_dir / target.value
        if source.name.startswith("<"):
            display = str(path)
        else:
            display = os.path.normpath(os.path.join(os.path.dirname(source.name), target.value))
        if not target.value or path.is_dir():
            self.error(source, target.span, f"cannot extend \"{target.value}\": it is a directory"
                       if target.value else "`extends` needs a file name",
                       help="give the path of a `.acim` file, relative to this file's folder")
            return None
        if not path.exists():
            self.error(source, target.span,
                       f"cannot extend \"{target.value}\": no such file ({display})",
                       help="the path is relative to the folder of the file that extends it")
            return None
        identity = _identity(path)
        names = [name for _, name in chain]
        if identity in [ident for ident, _ in chain]:
            start = [ident for ident, _ in chain].index(identity)
            cycle = " extends ".join(names[start:] + [display])
            self.error(source, target.span, f"`extends` makes a cycle: {cycle}",
                       help="a chip cannot extend itself, directly or through other files")
            return None
        if len(chain) >= MAX_EXTENDS_DEPTH:
            self.error(source, target.span,
                       f"`extends` chains more than {MAX_EXTENDS_DEPTH} files")
            return None
        return self.file(path, display, chain, depth + 1)

    # ---- errors and the final check ------------------------------------------------------------

    def error(self, source: SourceText, span: Span, message: str, help: str = "") -> None:
        self.diagnostics.append(source.diagnostic(span, message, help=help))

    def finish(self, draft: Draft | None) -> ChipSpec:
        spec = None
        if draft is not None:
            spec = _build(draft)
            if draft.complete:
                self.cross_check(draft, spec)
        if self.diagnostics or spec is None:
            raise ChipError(_in_reading_order(self.diagnostics))
        return spec

    def cross_check(self, draft: Draft, spec: ChipSpec) -> None:
        problems = cross_field_problems(spec, written=set(draft.values))
        for problem in problems:
            if not draft.failed.intersection(problem.fields):
                self.report(problem, draft.values, draft.origin)
        base = replace(spec, layers=())
        for layer, override in zip(draft.layers, spec.layers):
            if layer.digital:
                continue
            for problem in override_problems(base, override.settings, problems,
                                             skip=draft.failed | layer.failed):
                self.report(problem, layer.values, layer.origin,
                            prefix=f"in layer \"{layer.pattern}\": ")

    def report(self, problem: Problem, values: dict[FieldKey, Assigned], fallback: Origin,
               prefix: str = "") -> None:
        # Point at the involved field written in the most derived file (first listed wins).
        written = [(values[key].origin.depth, rank, values[key].origin)
                   for rank, key in enumerate(problem.fields) if key in values]
        origin = min(written, key=lambda w: (w[0], w[1]))[2] if written else fallback
        self.error(origin.source, origin.span, prefix + problem.message, help=problem.help)


def _identity(path: Path) -> str:
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):
        return os.path.abspath(path)


def _in_reading_order(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    files: dict[str, int] = {}
    for d in diagnostics:
        files.setdefault(d.file, len(files))
    unique = list(dict.fromkeys(diagnostics))
    return sorted(unique, key=lambda d: (files[d.file], d.line, d.column))


# ---- one file: syntax tree -> typed values -------------------------------------------------------

class _Converter:
    """Types and range-checks the values of one file (tier 1)."""

    def __init__(self, resolver: _Resolver, source: SourceText, depth: int, base_dir: Path):
        self.resolver, self.source, self.depth = resolver, source, depth
        self.base_dir = base_dir

    def origin(self, span: Span) -> Origin:
        return Origin(self.source, span, self.depth)

    def error(self, span: Span, message: str, help: str = "") -> None:
        self.resolver.error(self.source, span, message, help)

    def chip(self, decl: ChipDecl) -> Draft:
        header = Span(decl.span.line, decl.span.column,
                      decl.name.span.column + decl.name.span.width - decl.span.column
                      if decl.name.span.line == decl.span.line else decl.span.width)
        draft = Draft(decl.name.value, self.origin(header))
        if not decl.name.value.strip():
            self.error(decl.name.span, "the chip name must not be empty",
                       help='write a name such as `chip "my-macro" { ... }`')
        seen: dict[FieldKey, tuple[Span, str]] = {}
        for statement in decl.statements:
            key = (CHIP, schema.STATEMENTS[statement.keyword])
            if self.duplicate(key, statement.keyword, statement.span, seen, "the chip"):
                continue
            if isinstance(statement.value, Text):
                draft.values[key] = Assigned(statement.value.value, self.origin(statement.span))
            else:
                self.word_value(RULE[key], statement.keyword, statement.value,
                                self.origin(_joined(statement.span, statement.value.span)),
                                draft.values, draft.failed, key)
        self.blocks(decl.blocks, draft.values, draft.failed, "the chip")
        draft.layers = [self.layer(layer) for layer in decl.layers]
        return draft

    def layer(self, layer) -> LayerDraft:
        draft = LayerDraft(layer.pattern.value, self.origin(_joined(layer.span, layer.pattern.span)),
                           digital=bool(layer.digital))
        if not layer.pattern.value:
            self.error(layer.pattern.span, "an empty layer pattern matches no layer",
                       help='give an op type such as "Conv" or a node-name glob such as "/attn/*"')
        for extra in layer.digital[1:]:
            self.error(extra, f"`digital` is given twice (first on line {layer.digital[0].line})")
        if layer.digital and layer.blocks:
            self.error(layer.blocks[0].span,
                       "a `digital` layer runs off the array, so settings for the array beside "
                       "`digital` would be ignored", help="remove `digital` or the blocks")
        where = f'layer "{layer.pattern.value}"'
        self.blocks(layer.blocks, draft.values, draft.failed, where)
        return draft

    def blocks(self, blocks: tuple[Block, ...], values: dict, failed: set, where: str) -> None:
        first_block: dict[str, Span] = {}
        seen: dict[FieldKey, tuple[Span, str]] = {}
        for block in blocks:
            if block.name in first_block:
                self.error(block.span, f"`{block.name}` appears twice in {where} (first on line "
                           f"{first_block[block.name].line})",
                           help=f"write all `{block.name}` fields in one block")
                continue
            first_block[block.name] = block.span
            if block.name == "domain":
                if block.kind is not None:
                    key = ("domain", "kind")
                    seen[key] = (block.kind.span, block.kind.value)
                    self.word_value(RULE[key], "domain", block.kind,
                                    self.origin(_joined(block.span, block.kind.span)),
                                    values, failed, key)
                elif not block.entries:
                    self.error(block.span, "`domain` needs a kind: `charge` or `current`",
                               help="write `domain charge` or `domain current { alpha ... }`")
            for entry in block.entries:
                self.entry(block.name, entry, values, failed, seen)
            self.digests(block.name, values, seen)

    def digests(self, block: str, values: dict, seen: dict) -> None:
        """The digest of a file named in this block and not pinned beside it (a parent's pin
        does not hold for the child's file)."""
        for rule in schema.BLOCK[block].fields:
            named = (block, rule.digest_of)
            if rule.digest_of and named in seen and (block, rule.field) not in seen \
                    and values.get(named):
                try:
                    digest = file_digest(values[named].value)
                except OSError:          # the cross-field check reports the file
                    digest = ""
                values[block, rule.field] = Assigned(digest, values[named].origin)

    def duplicate(self, key: FieldKey, keyword: str, span: Span, seen: dict, where: str) -> bool:
        if key not in seen:
            seen[key] = (span, keyword)
            return False
        first_span, first_keyword = seen[key]
        if first_keyword == keyword:
            message = f"`{keyword}` is given twice in {where} (first on line {first_span.line})"
        else:
            message = (f"`{keyword}` conflicts with `{first_keyword}` on line {first_span.line}: "
                       f"both set the {RULE[key].meaning}")
        self.error(span, message, help="keep one of them")
        return True

    def entry(self, block: str, entry: Entry, values: dict, failed: set, seen: dict) -> None:
        field, fixed = KEYWORDS[block, entry.keyword]
        key = (block, field)
        if self.duplicate(key, entry.keyword, entry.span, seen, f"`{block}`"):
            return
        rule = RULE[key]
        span = _joined(entry.span, _value_span(entry.value)) if entry.value else entry.span
        origin = self.origin(span)
        label = f"{block} {entry.keyword}"
        if fixed is not VALUE:
            values[key] = Assigned(fixed, origin)
        elif isinstance(entry.value, Text):
            text = entry.value.value
            if rule.path and not text:
                failed.add(key)
                self.error(entry.value.span, f"`{label}` needs a file name",
                           help=f"e.g. `{entry.keyword} {rule.example}`, relative to this "
                                "file's folder")
                return
            values[key] = Assigned(str((self.base_dir / text).resolve()) if rule.path
                                   else text, origin)
        elif isinstance(entry.value, Word):
            self.word_value(rule, label, entry.value, origin, values, failed, key)
        elif isinstance(entry.value, Number):
            value = self.number_value(rule, label, entry.value)
            if value is None:
                failed.add(key)
            else:
                values[key] = Assigned(value, origin)

    def word_value(self, rule: FieldRule, label: str, word: Word, origin: Origin, values: dict,
                   failed: set, key: FieldKey) -> None:
        if word.value in rule.choices:
            values[key] = Assigned(word.value, origin)
            return
        failed.add(key)
        expected = quoted_list(rule.choices)
        if rule.kind == "quantity":                  # named values or a number
            expected += f" or a number in {quoted_list(rule.units)}"
        self.error(word.span, f"unknown value `{word.value}` for `{label}`: expected "
                   f"{expected}", help=did_you_mean(word.value, rule.choices))

    def number_value(self, rule: FieldRule, label: str, number: Number):
        """The typed value of a number (int, float or Quantity), or None after an error."""
        shown = number.text if len(number.text) <= 24 else number.text[:20] + "..."
        if rule.kind in ("int", "float") and number.unit is not None:
            self.error(number.unit_span, f"`{label}` is a plain number and takes no unit, "
                       f"found `{number.unit}`", help=f"remove `{number.unit}`")
            return None
        if rule.kind == "quantity":
            if number.unit is None:
                self.error(number.span, f"`{label}` needs a unit: {quoted_list(rule.units)}",
                           help=f"e.g. `{label.split()[-1]} {number.text} "
                                f"{rule.example_unit}`")
                return None
            if number.unit not in rule.units:
                self.error(number.unit_span, f"`{label}` takes {quoted_list(rule.units)}, not "
                           f"`{number.unit}` ({_unit_kind(number.unit)})")
                return None
        if rule.kind == "int":
            value = _exact_integer(number.text)
            if value is None:
                self.error(number.span, f"`{label}` must be a whole number, not {shown}")
                return None
        else:
            value = float(number.text)
            if math.isinf(value):
                self.error(number.span, f"`{label}` {shown} is too large a number")
                return None
        problem = _range_problem(rule, value)
        if problem:
            self.error(number.span, f"`{label}` must be {problem}, not {shown}",
                       help=f"{label.split()[-1]}: {rule.meaning}")
            return None
        return Quantity(value, number.unit) if rule.kind == "quantity" else value


def _exact_integer(text: str) -> int | float | None:
    """The integer ``text`` denotes, or None if it is not whole. Huge values come back as
    ``inf`` (out of every range) instead of an int with a million digits."""
    try:
        number = Decimal(text)
    except InvalidOperation:          # an exponent beyond what Decimal holds: decide by hand
        mantissa, _, exponent = text.lower().partition("e")
        if not mantissa.strip("+-.0"):
            return 0
        if exponent.startswith("-"):
            return None
        return -math.inf if mantissa.startswith("-") else math.inf
    if number.is_zero():
        return 0
    if number.adjusted() > 18:           # the exponent alone: no arithmetic that could overflow
        return -math.inf if number.is_signed() else math.inf
    if number != number.to_integral_value():
        return None
    return int(number)


def _range_problem(rule: FieldRule, value) -> str | None:
    if isinstance(value, float) and math.isinf(value):
        return rule.describe_range()
    problem = value_problem(rule, Quantity(value, rule.units[0]) if rule.units else value)
    if problem is None:
        return None
    if problem.startswith("must be "):
        return problem[len("must be "):]
    return rule.describe_range()


def _unit_kind(unit: str) -> str:
    group = unit_group(unit)
    return UNIT_GROUPS[group].what if group else "a unit"


def _value_span(value) -> Span:
    if isinstance(value, Number) and value.unit_span is not None:
        return _joined(value.span, value.unit_span)
    return value.span


def _joined(first: Span, last: Span) -> Span:
    """From the start of ``first`` to the end of ``last`` when both are on one line."""
    if first.line != last.line or last.column < first.column:
        return first
    return Span(first.line, first.column, last.column + last.width - first.column)


# ---- merging and building ----------------------------------------------------------------------

def _merge(parent: Draft, child: Draft) -> Draft:
    values = {k: v for k, v in parent.values.items()
              if k not in ((CHIP, "description"), (CHIP, "source"))}
    # A child that sets a block's kind drops the parent's fields that apply to another kind.
    for block in schema.BLOCKS:
        kind = child.values.get((block.name, block.kind)) if block.kind else None
        if kind is not None:
            for rule in block.fields:
                if rule.only_in and rule.only_in != kind.value:
                    values.pop((block.name, rule.field), None)
    values.update(child.values)
    return Draft(child.name, child.origin, values, parent.layers + child.layers,
                 parent.failed | child.failed, parent.complete and child.complete)


def _canonical(values: dict[FieldKey, Assigned]) -> tuple[Setting, ...]:
    def order(key: FieldKey):
        block, field = key
        return schema.LAYER_BLOCKS.index(block), schema.field_order(block).index(field)
    return tuple(Setting(b, f, values[b, f].value) for b, f in sorted(values, key=order))


def _build(draft: Draft) -> ChipSpec:
    defaults = ChipSpec(name=draft.name)

    def block(name: str):
        given = {f: a.value for (b, f), a in draft.values.items() if b == name}
        return replace(getattr(defaults, name), **given)

    top = {f: a.value for (b, f), a in draft.values.items() if b == CHIP}
    layers = tuple(LayerOverride(layer.pattern, _canonical(layer.values), layer.digital)
                   for layer in draft.layers)
    return replace(defaults, **top, **{name: block(name) for name in schema.BLOCK_ORDER},
                   layers=layers)

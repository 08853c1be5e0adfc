"""The syntax tree of a chip file, as written: what the parser produces and the resolver reads.

Nodes are frozen dataclasses that keep the place (``Span``) of every keyword and value, so that a
value or cross-field error found later can point at the exact token. Nothing here has a
meaning yet: ``rows 25.5 fJ`` is a valid ``Entry`` whose problems the resolver reports.
"""
from __future__ import annotations

from dataclasses import dataclass

from .source import SourceText, Span


@dataclass(frozen=True)
class Number:
    """A number as written (``text`` is kept exact: ints stay ints, huge values stay finite
    text until checked), with its optional unit."""

    text: str
    span: Span
    unit: str | None = None
    unit_span: Span | None = None


@dataclass(frozen=True)
class Word:
    """A bare word used as a value: ``flat``, ``current``, ``per_channel``."""

    value: str
    span: Span


@dataclass(frozen=True)
class Text:
    """A double-quoted string, escapes already decoded; ``span`` covers the quotes."""

    value: str
    span: Span


@dataclass(frozen=True)
class Entry:
    """One field inside a block: a keyword and its value (None for flags like ``signed``)."""

    keyword: str
    span: Span
    value: Number | Word | Text | None = None


@dataclass(frozen=True)
class Block:
    """``array { ... }``; for ``domain`` also the kind word (``domain current { ... }``)."""

    name: str
    span: Span
    entries: tuple[Entry, ...] = ()
    kind: Word | None = None


@dataclass(frozen=True)
class Statement:
    """A top-level one-liner: ``description "..."``, ``source "..."``, ``attention digital``."""

    keyword: str
    span: Span
    value: Text | Word


@dataclass(frozen=True)
class Layer:
    """``layer "PATTERN" { blocks... }`` or ``layer "PATTERN" { digital }``."""

    pattern: Text
    span: Span
    blocks: tuple[Block, ...] = ()
    digital: tuple[Span, ...] = ()     # where `digital` was written (normally once)


@dataclass(frozen=True)
class ChipDecl:
    """One ``chip "name" [extends "file"] { ... }``."""

    name: Text
    span: Span
    extends: Text | None = None
    statements: tuple[Statement, ...] = ()
    blocks: tuple[Block, ...] = ()
    layers: tuple[Layer, ...] = ()


@dataclass(frozen=True)
class ChipFile:
    """A parsed file: its source (for error messages) and the chips in it (valid: exactly one)."""

    source: SourceText
    chips: tuple[ChipDecl, ...]

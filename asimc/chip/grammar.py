"""The chip grammar: grammar/acim.lark (the structure) plus the rules generated from the field
registry (blocks, their fields, the chip statements and the units), and the Lark parser."""
from __future__ import annotations

import re
from functools import lru_cache

from lark import Lark

from ..resources import grammar_path
from .fields import BLOCKS, CHIP, VALUE, FieldKind, FieldRule
from .units import ALL_UNITS

_VALUE_SYNTAX = {"int": "number", "float": "number", "quantity": "number", "choice": "_word",
                 "text": "STRING"}

# A unit must not run into a longer word (`lsbs` is a word, not `lsb` + `s`); longest first.
UNIT_PATTERN = "(?:" + "|".join(re.escape(u) for u in sorted(ALL_UNITS, key=len, reverse=True)) \
    + ")(?![A-Za-z0-9_])"


# Every keyword of the language: a named value that is also a keyword (`full_scale rows`)
# lexes as that keyword, so its rule names it besides _word.
_KEYWORDS = {w for b in BLOCKS for r in b.fields for w, _ in r.keywords} \
    | {b.name for b in BLOCKS}


def _value_syntax(rule: FieldRule) -> str:
    if not rule.choices:
        return _VALUE_SYNTAX[rule.kind]
    words = ["_word"] + [f'"{c}"' for c in rule.choices if c in _KEYWORDS]
    if rule.kind == FieldKind.QUANTITY:          # a number or a named value
        words.insert(0, "number")
    return words[0] if len(words) == 1 else "(" + " | ".join(words) + ")"


def _alternatives(rules: tuple[FieldRule, ...]) -> list[str]:
    out = []
    for rule in rules:
        for word, fixed in rule.keywords:
            out.append(f'"{word}" {_value_syntax(rule)}' if fixed is VALUE else f'"{word}"')
    return out


def generated_rules() -> str:
    """The Lark rules derived from the registry (appended to grammar/acim.lark)."""
    lines = []
    blocks = [b for b in BLOCKS if b.name != CHIP]
    lines.append("!statement: " + "\n          | ".join(_alternatives(
        next(b for b in BLOCKS if b.name == CHIP).fields)))
    lines.append("_block: " + " | ".join(b.name for b in blocks))
    lines.append("_layer_item: " + " | ".join(b.name for b in blocks if b.overridable)
                 + " | digital")
    for block in blocks:
        body = f'"{{" {block.name}_field* "}}"'
        if block.kind:     # `domain current { ... }`, or `domain { ... }` keeping the kind
            lines.append(f'!{block.name}: "{block.name}" _word ({body})?\n'
                         f'    | "{block.name}" {body}')
        else:
            lines.append(f'!{block.name}: "{block.name}" {body}')
        lines.append(f"!{block.name}_field: " + "\n    | ".join(_alternatives(block.fields)))
    lines.append(f"UNIT.2: /{UNIT_PATTERN}/")
    return "\n".join(lines) + "\n"


def grammar_text() -> str:
    return grammar_path().read_text(encoding="utf-8") + "\n" + generated_rules()


@lru_cache(maxsize=1)
def chip_parser() -> Lark:
    return Lark(grammar_text(), parser="lalr", lexer="basic", propagate_positions=True,
                maybe_placeholders=False)


def keyword_text(terminal: str) -> str:
    """The text of a keyword terminal (``ROWS`` -> ``rows``)."""
    try:
        return chip_parser().get_terminal(terminal).pattern.value
    except Exception:
        return terminal.lower()

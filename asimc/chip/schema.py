"""Tables derived from the field registry (``fields.BLOCKS``) for the resolver, the checker, the
formatter and the error messages: which keyword sets which field, block orders, unit lists."""
from __future__ import annotations

from .fields import BLOCK, BLOCKS, CHIP, MAX_ARRAY, RULE, RULES, VALUE, FieldRule
from .units import ALL_UNITS, UNITS, units_of

__all__ = ["BLOCK_ORDER", "LAYER_BLOCKS", "CHIP", "MAX_ARRAY", "ENERGY_UNITS", "CLOCK_UNITS",
           "NOISE_UNITS", "ALL_UNITS", "UNITS", "FieldRule", "RULES", "RULE", "KEYWORDS",
           "VALUE", "STATEMENTS", "word_choices", "keywords_of", "blocks_with_keyword",
           "field_order", "example", "BLOCKS", "BLOCK"]

# Blocks in canonical order (the formatter's order, and the order of a layer's settings).
BLOCK_ORDER = tuple(b.name for b in BLOCKS if b.name != CHIP)
LAYER_BLOCKS = tuple(b.name for b in BLOCKS if b.name != CHIP and b.overridable)

ENERGY_UNITS = RULE["energy", "mac"].units
CLOCK_UNITS = RULE["energy", "clock"].units
NOISE_UNITS = units_of("fraction", "lsb")

# Keywords inside a block -> (field, fixed value). A fixed value of ``VALUE`` means the keyword
# is followed by its value; flags and their opposites set a fixed value.
KEYWORDS: dict[tuple[str, str], tuple[str, object]] = {
    (r.block, word): (r.field, fixed) for r in RULES if r.block != CHIP
    for word, fixed in r.keywords}

# Statement keywords -> field of the pseudo-block CHIP.
STATEMENTS = {word: r.field for r in BLOCK[CHIP].fields for word, _ in r.keywords}


def word_choices(block: str, keyword: str) -> tuple[str, ...]:
    """The words that may follow ``keyword`` in ``block`` (``mapping`` -> channels, flat)."""
    kinds = [b for b in BLOCKS if b.kind and b.name == keyword]
    if kinds:
        return RULE[kinds[0].name, kinds[0].kind].choices
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
    """The fields of a block in canonical order (as declared in the registry)."""
    return [r.field for r in BLOCK[block].fields]


def example(block: str, keyword: str) -> str:
    """A typical value written after ``keyword`` (in ``block`` if it has the keyword)."""
    candidates = [KEYWORDS[block, keyword][0]] if (block, keyword) in KEYWORDS else []
    rules = [RULE[block, f] for f in candidates] + [
        RULE[b, KEYWORDS[b, keyword][0]] for b in blocks_with_keyword(keyword)]
    for rule in rules:
        if rule.example and dict(rule.keywords).get(keyword) is VALUE:
            return rule.example
    return "..."

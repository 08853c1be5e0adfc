"""ChipSpec -> canonical chip text.

Every field is written, defaults included, in a fixed order (the order of ``schema.BLOCK_ORDER``,
fields in declaration order), one block per line, four-space indent. There is no ``extends``: a
ChipSpec is already resolved. ``parse_chip(format_chip(spec)) == spec`` for every valid spec:
floats are written with ``repr`` (the shortest text that reads back to the same float) and
strings are escaped.
"""
from __future__ import annotations

import unicodedata

from . import schema
from .fields import BLOCK, CHIP, RULE, VALUE
from .spec import ChipSpec, LayerOverride, Quantity, Setting

INDENT = "    "
MAX_LINE = 100      # a layer override longer than this is written one block per line


def format_chip(spec: ChipSpec) -> str:
    statements = BLOCK[CHIP].fields
    lines = [f"chip {quote(spec.name)} {{"]
    lines += [INDENT + _statement(spec, rule) for rule in statements if not rule.last]
    for block in schema.BLOCK_ORDER:
        settings = _block_settings(spec, block)
        if settings:
            lines.append(INDENT + block_text(block, settings))
    lines += [INDENT + _statement(spec, rule) for rule in statements if rule.last]
    for layer in spec.layers:
        lines += layer_lines(layer)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _statement(spec: ChipSpec, rule) -> str:
    value = getattr(spec, rule.field)
    return f"{rule.keywords[0][0]} {quote(value) if rule.kind == 'text' else value}"


def _block_settings(spec: ChipSpec, block: str) -> list[Setting]:
    """All fields of one block as settings (an energy block lists only the figures given)."""
    values = getattr(spec, block)
    settings = [Setting(block, f, getattr(values, f)) for f in schema.field_order(block)]
    return [s for s in settings if s.value is not None and s.value != ""]


def block_text(block: str, settings: list[Setting] | tuple[Setting, ...]) -> str:
    """``array { rows 255 cols 256 }`` for the given settings of one block."""
    words, kind, kind_field = [], None, BLOCK[block].kind
    for s in settings:
        if s.field == kind_field:
            kind = s.value
        elif setting_words(s):
            words.append(setting_words(s))
    if kind_field:     # `domain current { ... }`; `domain charge` alone when nothing applies
        head = f"{block} {kind}" if kind is not None else block
        others = [s for s in settings if s.field != kind_field]
        unused = all(RULE[block, s.field].only_in not in ("", kind) and _is_zero(s.value)
                     for s in others)
        if kind is not None and (not words or unused):
            return head
        return f"{head} {{ {' '.join(words)} }}"
    return f"{block} {{ {' '.join(words)} }}" if words else f"{block} {{ }}"


def setting_words(s: Setting) -> str:
    """How one field is written inside its block."""
    rule = RULE[s.block, s.field]
    for word, fixed in rule.keywords:     # a keyword that sets this value alone (`signed`)
        if fixed is not VALUE and isinstance(fixed, bool) == isinstance(s.value, bool) \
                and fixed == s.value:
            return word
    keyword = next((word for word, fixed in rule.keywords if fixed is VALUE), None)
    if keyword is None:       # an unset flag without an opposite keyword (`pow2`) is not written
        return ""
    value = s.value
    if isinstance(value, Quantity):
        text = quantity(value)
    elif isinstance(value, str):
        text = quote(value) if rule.kind == "text" else value
    else:
        text = number(value)
    return f"{keyword} {text}"


def layer_lines(layer: LayerOverride) -> list[str]:
    head = f"{INDENT}layer {quote(layer.pattern)}"
    if layer.digital:
        return [f"{head} {{ digital }}"]
    blocks = _group(layer.settings)
    inner = [block_text(block, settings) for block, settings in blocks]
    one_line = f"{head} {{ {' '.join(inner)} }}" if inner else f"{head} {{ }}"
    if len(one_line) <= MAX_LINE:
        return [one_line]
    return [f"{head} {{"] + [INDENT * 2 + text for text in inner] + [f"{INDENT}}}"]


def _group(settings) -> list[tuple[str, list[Setting]]]:
    groups: dict[str, list[Setting]] = {}
    for s in settings:
        groups.setdefault(s.block, []).append(s)
    return list(groups.items())


def number(value) -> str:
    """Integers as integers; floats in the shortest form that reads back exactly."""
    if isinstance(value, bool):
        raise TypeError("a flag is not a number")
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def quantity(q: Quantity) -> str:
    text = number(q.value)
    return f"{text}{q.unit}" if q.unit == "%" else f"{text} {q.unit}"


def _is_zero(value) -> bool:
    return (value.value if isinstance(value, Quantity) else value) == 0


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def quote(text: str) -> str:
    """A double-quoted string literal that parses back to ``text``."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'

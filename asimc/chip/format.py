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
from .spec import ChipSpec, LayerOverride, Quantity, Setting

INDENT = "    "
MAX_LINE = 100      # a layer override longer than this is written one block per line

# (block, field) -> the keyword that takes the field's value.
_KEYWORD_OF = {(block, field): kw for (block, kw), (field, fixed) in schema.KEYWORDS.items()
               if fixed is schema.NUMBER_FOLLOWS}


def format_chip(spec: ChipSpec) -> str:
    lines = [f"chip {quote(spec.name)} {{",
             f"{INDENT}description {quote(spec.description)}",
             f"{INDENT}source {quote(spec.source)}"]
    for block in schema.BLOCK_ORDER:
        settings = _block_settings(spec, block)
        if settings:
            lines.append(INDENT + block_text(block, settings))
    lines.append(f"{INDENT}attention {spec.attention}")
    for layer in spec.layers:
        lines += layer_lines(layer)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _block_settings(spec: ChipSpec, block: str) -> list[Setting]:
    """All fields of one block as settings (an energy block lists only the figures given)."""
    values = getattr(spec, block)
    settings = [Setting(block, f, getattr(values, f)) for f in schema.field_order(block)]
    return [s for s in settings if s.value is not None]


def block_text(block: str, settings: list[Setting] | tuple[Setting, ...]) -> str:
    """``array { rows 255 cols 256 }`` for the given settings of one block."""
    words, kind = [], None
    for s in settings:
        if (s.block, s.field) == ("domain", "kind"):
            kind = s.value
        else:
            words.append(setting_words(s))
    if block == "domain":
        head = f"domain {kind}" if kind is not None else "domain"
        charge_defaults = kind == "charge" and all(_is_zero(s.value) for s in settings
                                                   if s.field != "kind")
        if kind is not None and (not words or charge_defaults):
            return head
        return f"{head} {{ {' '.join(words)} }}"
    return f"{block} {{ {' '.join(words)} }}" if words else f"{block} {{ }}"


def setting_words(s: Setting) -> str:
    """How one field is written inside its block."""
    key = (s.block, s.field)
    if key == ("weight", "parallel"):
        return "parallel" if s.value else "serial"
    if key == ("input", "signed"):
        return "signed" if s.value else "unsigned"
    if key == ("input", "bits_per_cycle"):
        return "serial" if s.value == 1 else f"parallel {number(s.value)}"
    value = s.value
    if isinstance(value, Quantity):
        text = quantity(value)
    elif isinstance(value, str):
        text = value
    else:
        text = number(value)
    return f"{_KEYWORD_OF[key]} {text}"


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

"""The chip description language: parse, resolve, check and format ``.acim`` files.

    spec = load_chip("chips/asim-bitserial-255.acim")   # -> ChipSpec, or ChipError
    text = format_chip(spec)                             # canonical text
    facts = chip_facts(spec)                             # derived numbers (JSON-able)
"""
from .facts import chip_facts
from .format import format_chip
from .resolve import load_chip, parse_chip
from .spec import ChipSpec

__all__ = ["ChipSpec", "load_chip", "parse_chip", "format_chip", "chip_facts"]

"""``asimc chip check|show|fmt``: the chip language on the command line.

    asimc chip check FILE...      FILE: ok (chip "name"), or its errors; exit 0 if all valid, else 2
    asimc chip show FILE [--json] the resolved spec (canonical text) and its derived facts
    asimc chip fmt FILE           the canonical text on stdout
    asimc chip fit TABLE --chip BASE -o FITTED   fit the noise model to a measured table
    asimc chip measure CHIP -o TABLE             a synthetic measured table (asimc.silicon)

Errors go to stderr as ``file:line:col: error: message`` blocks; no traceback for any input.
"""
from __future__ import annotations

import argparse
import json
import sys

from ..errors import EXIT_BAD_INPUT, EXIT_OK, ChipError
from .facts import chip_facts
from .serialize import chip_to_dict
from .format import format_chip
from .resolve import load_chip
from .show import render_facts


def register(subparsers) -> None:
    chip = subparsers.add_parser(
        "chip", help="check, show or format chip description files (.acim)",
        description="Work with chip description files (.acim).")
    commands = chip.add_subparsers(dest="chip_command", metavar="ACTION")
    commands.required = True

    check = commands.add_parser("check", help="check chip files for errors",
                                description="Check chip files; exit 0 when all are valid, 2 "
                                            "otherwise.")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(func=run_check)

    show = commands.add_parser("show", help="show a resolved chip and its derived facts",
                               description="Print the resolved chip (after extends and "
                                           "defaults) and derived facts: input cycles, "
                                           "conversions, ADC LSB sizes, levels, peak TOPS and "
                                           "TOPS/W.")
    show.add_argument("file", metavar="FILE")
    show.add_argument("--json", action="store_true",
                      help="print one JSON object with keys `chip` and `facts`")
    show.set_defaults(func=run_show)

    fmt = commands.add_parser("fmt", help="print a chip in canonical form",
                              description="Print the canonical text of a chip: every field "
                                          "explicit, extends resolved.")
    fmt.add_argument("file", metavar="FILE")
    fmt.set_defaults(func=run_fmt)

    from ..silicon.cli import register as register_silicon
    register_silicon(commands)


def _tolerant_output() -> None:
    # A description in any language must not crash a terminal that cannot print it.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass


def run_check(args: argparse.Namespace) -> int:
    _tolerant_output()
    failed = 0
    for path in args.files:
        try:
            spec = load_chip(path)
        except ChipError as error:
            failed += 1
            sys.stdout.flush()
            print(error.render(), file=sys.stderr)
            sys.stderr.flush()
            continue
        print(f"{path}: ok (chip {json.dumps(spec.name, ensure_ascii=False)})")
    if len(args.files) > 1 and failed:
        print(f"{failed} of {len(args.files)} files have errors", file=sys.stderr)
    return EXIT_BAD_INPUT if failed else EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    _tolerant_output()
    spec = load_chip(args.file)
    facts = chip_facts(spec)
    if args.json:
        from ..jsonout import dumps
        print(dumps({"chip": chip_to_dict(spec), "facts": facts}, indent=2,
                    ensure_ascii=False))
    else:
        sys.stdout.write(format_chip(spec))
        sys.stdout.write("\n")
        render_facts(spec, facts, sys.stdout)
    return EXIT_OK


def run_fmt(args: argparse.Namespace) -> int:
    _tolerant_output()
    sys.stdout.write(format_chip(load_chip(args.file)))
    return EXIT_OK

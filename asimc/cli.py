"""The ``asimc`` command line.

Each stage contributes its own sub-commands through a ``register(subparsers)`` function in its
``cli`` module; this file only wires them together and turns errors into exit codes.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from . import __version__
from .errors import EXIT_BROKEN_PIPE, EXIT_INTERNAL, AsimcError

# Modules that add sub-commands, in the order `asimc --help` lists them.
COMMAND_MODULES = [
    "asimc.chip.cli",
    "asimc.commands.compile",
    "asimc.commands.run",
    "asimc.commands.evaluate",
    "asimc.commands.ops",
    "asimc.commands.sweep",
    "asimc.commands.finetune",
    "asimc.commands.calibrate",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asimc",
        description="Compile ONNX models onto SRAM analog compute-in-memory chips and simulate "
                    "them bit by bit.")
    parser.add_argument("--version", action="version", version=f"asimc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()         # a closed pipe shows here, not at exit after main returned
    except BrokenPipeError:
        return _reader_went_away()
    except AsimcError as error:
        print(error.render(), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug in asimc, not in the user's input
        if os.environ.get("ASIMC_DEBUG"):
            traceback.print_exc()
        print(f"asimc: internal error: {type(error).__name__}: {error}\n"
              "This is a bug in asimc; rerun with ASIMC_DEBUG=1 for the traceback.",
              file=sys.stderr)
        return EXIT_INTERNAL
    return int(code or 0)


def _reader_went_away() -> int:
    """`asimc ... | head`: the reader closed the pipe. End quietly, as Unix tools do; point
    stdout at /dev/null so that the interpreter's final flush cannot complain either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):      # stdout is not a real file (captured in-process)
        pass
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())

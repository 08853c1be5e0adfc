"""User-facing errors.

Every problem caused by what a user gave us (a chip file, a model, input data, an artifact, a
command-line flag) is raised as an ``AsimcError``. The CLI prints it, with no traceback, in one
form that users and scripts can grep for, as compilers and argparse do: ``FILE:LINE:COL: error:
...`` where a chip file locates it, ``asimc: error: ...`` (the message naming the file, node or
flag) otherwise; and exits with ``exit_code``. Anything else that escapes is a bug in asimc.
"""
from __future__ import annotations

from dataclasses import dataclass

# Exit codes of the `asimc` command.
EXIT_OK = 0
EXIT_FAILED_CHECK = 1   # the command ran, but a check it performs failed (e.g. a golden rung)
EXIT_BAD_INPUT = 2      # a chip file, model, data file or flag is invalid
EXIT_INTERNAL = 3       # a bug in asimc
EXIT_BROKEN_PIPE = 141  # the reader of our output went away (`asimc ... | head`): 128 + SIGPIPE

# An echoed source line is cut to this many characters around the caret (a generated chip file
# can hold one 80 KB line; the message must stay readable).
MAX_ECHO = 100


class AsimcError(Exception):
    """An error in something the user supplied; ``str(error)`` is the complete message."""

    exit_code = EXIT_BAD_INPUT

    def render(self) -> str:
        """The error as the CLI prints it."""
        return f"asimc: error: {self}"


@dataclass(frozen=True)
class Diagnostic:
    """One located problem in a source file (a chip file)."""

    file: str
    line: int            # 1-based
    column: int          # 1-based
    message: str
    source_line: str = ""
    width: int = 1       # how many characters the caret underline covers
    help: str = ""       # e.g. "did you mean `rows`?"
    severity: str = "error"

    def render(self) -> str:
        head = f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}"
        if not self.source_line:
            return head + (f"\n  help: {self.help}" if self.help else "")
        text = self.source_line.expandtabs(1).rstrip("\n")
        text, column, width = _cut(text, self.column, max(1, self.width))
        gutter = f"{self.line:>4} | "
        caret = " " * (len(gutter) + column - 1) + "^" * width
        out = [head, gutter + text, caret]
        if self.help:
            out.append(f"  help: {self.help}")
        return "\n".join(out)


def _cut(text: str, column: int, width: int) -> tuple[str, int, int]:
    """The part of ``text`` around the caret (at most MAX_ECHO characters, with ``...`` where
    it was cut), and the caret's column and width in that part."""
    if len(text) <= MAX_ECHO:
        return text, column, width
    width = min(width, MAX_ECHO // 2)
    start = max(0, min(column - 1 - MAX_ECHO // 3, len(text) - MAX_ECHO))
    end = start + MAX_ECHO
    shown = text[start:end]
    column -= start
    if start > 0:
        shown, column = "..." + shown, column + 3
    if end < len(text):
        shown += "..."
    return shown, column, width


class ChipError(AsimcError):
    """One or more problems in a chip file; each is a located Diagnostic."""

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]):
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))

    def render(self) -> str:
        return str(self)          # every diagnostic is located: FILE:LINE:COL: error: ...


class ModelError(AsimcError):
    """A model that cannot be imported or compiled; the message names the node and op."""


class InputDataError(AsimcError):
    """Inputs or data sets that do not fit the model (name, shape, dtype, NaN...)."""


class ArtifactError(AsimcError):
    """A compiled artifact that cannot be loaded (missing, corrupted, newer version, bad hash)."""


class DeviceError(AsimcError):
    """A device that was asked for but is not available."""


class UsageError(AsimcError):
    """A command-line flag or API argument that makes no sense."""

"""Chip source text: reading a file safely, and turning a location into a Diagnostic.

Every problem with a chip file is reported as ``file:line:col: error: ...`` with the offending
source line and a caret; this module is where raw bytes become text (with a located error for a
missing file, a directory, non-UTF-8 bytes or a binary file) and where locations become
``Diagnostic`` objects.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ChipError, Diagnostic


@dataclass(frozen=True)
class Span:
    """A place in a source file: 1-based line and column, and how many characters it covers."""

    line: int
    column: int
    width: int = 1


MAX_FILE_BYTES = 1 << 20     # a chip description is a page of text; anything larger is a mistake


@dataclass(frozen=True)
class SourceText:
    """The text of one chip file and the name errors use for it."""

    name: str
    text: str

    def line_text(self, line: int) -> str:
        lines = self.text.split("\n")
        return lines[line - 1].rstrip("\r") if 1 <= line <= len(lines) else ""

    def diagnostic(self, span: Span, message: str, help: str = "") -> Diagnostic:
        source_line = self.line_text(span.line)
        # Keep the caret on the line: a span running past the end (a multi-line token) is cut.
        width = max(1, min(span.width, len(source_line) - span.column + 1))
        return Diagnostic(self.name, span.line, span.column, message,
                          source_line=source_line, width=width, help=help)

    def error(self, span: Span, message: str, help: str = "") -> ChipError:
        return ChipError([self.diagnostic(span, message, help)])


def file_error(name: str, message: str, help: str = "") -> ChipError:
    """An error about a file as a whole (missing, a directory...): located at 1:1, no source."""
    return ChipError([Diagnostic(name, 1, 1, message, help=help)])


def read_source(path: str | Path, display_name: str | None = None) -> SourceText:
    """Read a chip file, raising ChipError (never OSError or UnicodeError) when it cannot be."""
    path = Path(path)
    name = display_name or str(path)
    try:
        if path.is_dir():
            raise file_error(name, "this is a directory, not a chip file",
                             help="give the path of a `.acim` file")
        if path.exists() and not path.is_file():
            raise file_error(name, "this is not a regular file (a device or a pipe?)")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise file_error(name, f"the file is too large for a chip description ({size:,} "
                                   f"bytes; the limit is {MAX_FILE_BYTES:,})")
        data = path.read_bytes()
    except ChipError:
        raise
    except FileNotFoundError:
        raise file_error(name, "no such chip file") from None
    except PermissionError:
        raise file_error(name, "cannot read the chip file: permission denied") from None
    except OSError as error:
        raise file_error(name, f"cannot read the chip file: {error.strerror or error}") from None
    return SourceText(name, decode_source(data, name))


def decode_source(data: bytes, name: str) -> str:
    """UTF-8 text of a chip file; a located error for NUL bytes or bytes that are not UTF-8."""
    if data.startswith(b"\xef\xbb\xbf"):      # a UTF-8 byte order mark is harmless
        data = data[3:]
    nul = data.find(b"\x00")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = error.start
        if 0 <= nul < bad:
            bad = nul
        else:
            raise _byte_error(data, bad, name,
                              f"the file is not valid UTF-8 text: byte 0x{data[bad]:02x} at "
                              f"offset {bad}") from None
    if nul >= 0:
        raise _byte_error(data, nul, name,
                          f"the file contains a NUL byte at offset {nul}: is it a binary file?")
    return text


def _byte_error(data: bytes, offset: int, name: str, message: str) -> ChipError:
    line = data.count(b"\n", 0, offset) + 1
    line_start = data.rfind(b"\n", 0, offset) + 1
    line_end = data.find(b"\n", offset)
    raw_line = data[line_start: line_end if line_end >= 0 else len(data)]
    # The column counts characters, so decode what precedes the byte; show the line with the
    # undecodable bytes replaced, so the caret still points at the right place.
    column = len(raw_line[: offset - line_start].decode("utf-8", "replace")) + 1
    shown = raw_line.decode("utf-8", "replace").replace("\x00", "\ufffd").rstrip("\r")
    return ChipError([Diagnostic(name, line, column, message, source_line=shown,
                                 help="chip files are UTF-8 text")])

"""Syntax errors: line, column, caret, wording and did-you-mean; and inputs that are not chips at
all (empty, binary, not UTF-8, directories, missing files) — always a ChipError, never a crash."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from asimc.chip import load_chip
from asimc.errors import ChipError

from .helpers import caret_column, errors, one_error


@pytest.mark.parametrize("text, line, column, width, message, help", [
    ('chip "x" {\n  array { rowz 255 }\n}', 2, 11, 4, "`rowz` is not a field of `array`",
     "did you mean `rows`?"),
    ('chip "x" {\n  arrray { rows 3 }\n}', 2, 3, 6, "`arrray` is not a statement or block of a chip",
     "did you mean `array`?"),
    ('chip "x" { input { bits 8 signed seriall } }', 1, 34, 7,
     "`seriall` is not a field of `input`", "did you mean `serial`?"),
    ('chip "x" { noise { random 2 fj } }', 1, 29, 2, "`fj` is not a unit or a field of `noise`",
     "did you mean `fJ`?"),
    ('chip "x" { noise { random 1 LSB } }', 1, 29, 3, "is not a unit", "did you mean `lsb`?"),
    ('chipp "x" { }', 1, 1, 5, 'expected `chip "name" { ... }`, found `chipp`',
     "did you mean `chip`?"),
    ('chip "x" { array { rows cols 3 } }', 1, 25, 4, "expected a number after `rows`, found `cols`",
     ""),
    ('chip "x" { array { rows } }', 1, 25, 1, "expected a number after `rows`, found `}`",
     "give `rows` a value, e.g. `rows 255`"),
    ('chip "x" { array { rows abc } }', 1, 25, 3, "expected a number after `rows`, found `abc`", ""),
    ('chip "x" { array { mapping 3 } }', 1, 28, 1,
     "expected `channels` or `flat` after `mapping`, found the number `3`", ""),
    ('chip "x" { attention 5 }', 1, 22, 1, "expected `analog` or `digital` after `attention`", ""),
    ('chip "x" { adc { bits nan } }', 1, 23, 3, "`nan` is not a number: values must be finite", ""),
    ('chip "x" { adc { bits inf } }', 1, 23, 3, "`inf` is not a number", ""),
    ('chip "x" { noise { random -Infinity % } }', 1, 27, 9, "`-Infinity` is not a number", ""),
    ('chip "x" { rows 3 }', 1, 12, 4, "`rows` is not a statement or block of a chip",
     "`rows` belongs inside a block: `array { rows ... }`"),
    ('chip "x" { array rows 3 }', 1, 18, 4, "expected `{` after `array`, found `rows`",
     "write the fields inside braces: `array { rows ... }`"),
    ('chip x { }', 1, 6, 1, "expected the chip's name in double quotes after `chip`, found `x`",
     'write it in double quotes: "x"'),
    ('chip "x" { description foo }', 1, 24, 3, "expected a quoted string after `description`", ""),
    ('chip "x" { layer Conv { digital } }', 1, 18, 4, "expected a quoted pattern after `layer`", ""),
    ('chip "x" { layer "Conv" { energy { mac 1 fJ } } }', 1, 27, 6,
     "`energy` cannot be set per layer", ""),
    ('chip "x" { layer "Conv" { bits 3 } }', 1, 27, 4,
     "`bits` is not a block that a layer override can change", ""),
    ('chip "x" { weight { bits 4 parallel 4 } }', 1, 37, 1,
     "`parallel` in `weight` takes no value, found the number `4`", "input { parallel N }"),
    ('chip "x" { adc { bits 4 4 } }', 1, 25, 1, "unexpected number `4` in `adc`: a field takes "
     "one value", ""),
    ('chip "x" { array { rows = 255 } }', 1, 25, 1, "unexpected character `=`",
     "side by side: `rows 255`"),
    ("chip 'x' { }", 1, 6, 1, "unexpected character `'`", "double quotes"),
    ('chip "x" { energy { mac 1 fJ, adc 2 pJ } }', 1, 29, 1, "unexpected character `,`", ""),
    ('chip "x" { description "a\\qb" }', 1, 26, 2, "unknown escape `\\q` in a string", ""),
    ('chip "x" { array { rows 3 } } junk', 1, 31, 4, "unexpected `junk` after the end of the chip",
     ""),
    ('chip "x" extends { }', 1, 18, 1, "expected a quoted file name after `extends`", ""),
    ('chip "x" {\n  array { rows 3 }\n  adc { bits 8 }', 1, 10, 1,
     "unbalanced braces: `{` at 1:10 is never closed", "add the matching `}`"),
    ('chip "x" { description "abc }', 1, 24, 6, 'unterminated string: the closing `"` is missing',
     ""),
])
def test_syntax_error_is_located_and_explained(text, line, column, width, message, help):
    error = one_error(text)
    assert (error.line, error.column) == (line, column), error.render()
    assert error.width == width
    assert message in error.message
    assert help in error.help
    rendered = error.render()
    assert rendered.startswith(f"t.acim:{line}:{column}: error: ")
    assert caret_column(rendered) == column
    assert "__ANON" not in rendered and "RBRACE" not in rendered and "Token(" not in rendered


def test_unclosed_block_blames_the_block_not_the_chip():
    found = errors('chip "x" {\n    array { rows 3\n    adc { bits 8 }\n}\n')
    assert [(d.line, d.column) for d in found] == [(2, 11), (3, 5)]
    assert found[0].message == "unbalanced braces: `{` at 2:11 is never closed"
    assert found[1].message == "`adc` is not a field of `array`"
    assert found[1].help == "is the `}` that closes `array` (line 2) missing?"


def test_missing_open_brace_is_found_where_it_is_missing():
    found = errors('chip "x" {\n    array rows 3 }\n    adc { bits 8 }\n}\n')
    assert (found[0].line, found[0].column) == (2, 11)
    assert found[0].message == "expected `{` after `array`, found `rows`"
    assert found[1].message == "unbalanced braces: `}` at 4:1 has no matching `{`"


def test_several_independent_syntax_errors_are_all_reported():
    found = errors('chip "x" {\n'
                   '  array { rowz 3 }\n'
                   '  weigth { bits 8 }\n'
                   '  adc { bits }\n'
                   '  input { bits 8 signed seriall }\n'
                   '}\n')
    assert [(d.line, d.column) for d in found] == [(2, 11), (3, 3), (4, 14), (5, 25)]
    assert [d.help for d in found] == ["did you mean `rows`?", "did you mean `weight`?",
                                       "give `bits` a value, e.g. `bits 8`",
                                       "did you mean `serial`?"]


def test_two_errors_on_one_line_are_both_reported():
    found = errors('chip "x" { array { rows: 255; } }')
    assert [(d.column, d.message) for d in found] == [(24, "unexpected character `:`"),
                                                      (29, "unexpected character `;`")]


def test_semantic_errors_wait_for_syntax_errors():
    # A syntax error stops before values are checked (the `rows 0` is not reported yet).
    found = errors('chip "x" { array { rows 0 colz 3 } }')
    assert len(found) == 1 and "colz" in found[0].message


def test_one_chip_per_file():
    error = one_error('chip "a" {}\nchip "b" {}')
    assert (error.line, error.column) == (2, 1)
    assert error.message.startswith("a file holds one chip")


@pytest.mark.parametrize("text", ["", "   \n\t\n", "# only a comment\n"])
def test_empty_files(text):
    error = one_error(text)
    assert (error.line, error.column) == (1, 1)
    assert error.message == "the file holds no chip"


# ---- files that are not chip text ------------------------------------------------------------

def _load_error(path) -> ChipError:
    with pytest.raises(ChipError) as info:
        load_chip(path)
    return info.value


def test_missing_file(tmp_path):
    error = _load_error(tmp_path / "nope.acim")
    assert str(error) == f"{tmp_path / 'nope.acim'}:1:1: error: no such chip file"


def test_directory_instead_of_a_file(tmp_path):
    error = _load_error(tmp_path)
    assert str(error).startswith(f"{tmp_path}:1:1: error: this is a directory, not a chip file")


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.acim"
    path.write_text('chip "x" {}')
    # chmod 0 does not stop root (CI runs as root): make the read itself fail instead.
    real_read = Path.read_bytes

    def denied(self):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    error = _load_error(path)
    assert "permission denied" in str(error) and str(error).startswith(f"{path}:1:1: error:")


def test_non_utf8_bytes_name_the_offset_and_line(tmp_path):
    path = tmp_path / "latin1.acim"
    path.write_bytes(b'chip "x" {\n  description "caf\xe9"\n}\n')
    (diagnostic,) = _load_error(path).diagnostics
    assert (diagnostic.line, diagnostic.column) == (2, 19)
    assert diagnostic.message == ("the file is not valid UTF-8 text: byte 0xe9 at offset 29")


def test_binary_file(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07\x12\x07pytorch\x00\x01\x02\xff\xfe")
    (diagnostic,) = _load_error(path).diagnostics
    assert diagnostic.line == 1 and "offset" in diagnostic.message


def test_nul_byte_in_text(tmp_path):
    path = tmp_path / "nul.acim"
    path.write_bytes(b'chip "x" {\n\x00}\n')
    (diagnostic,) = _load_error(path).diagnostics
    assert (diagnostic.line, diagnostic.column) == (2, 1)
    assert "NUL byte at offset 11" in diagnostic.message


def test_control_characters_in_text():
    error = errors('chip "x" {\x07}')[0]
    assert error.message == "unexpected character U+0007"
    assert error.column == 11


def test_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.acim"
    path.write_bytes(b'\xef\xbb\xbfchip "x" {}')
    assert load_chip(path).name == "x"


def test_windows_line_endings():
    error = one_error('chip "x" {\r\n  adc { bits 0 }\r\n}\r\n')
    assert (error.line, error.column) == (2, 14)
    assert error.source_line == "  adc { bits 0 }"


@pytest.mark.parametrize("text, blamed", [
    ('chip "x" {\narray { rows 3\nadc { bits 8 }\n}\n', (2, 7)),                # unindented
    ('chip "x" {\n    array {\n        rows 3\n    adc { bits 8 }\n}\n', (2, 11)),
    ('chip "x" {\n    array {\n        rows 3\n    }\n', (1, 10)),              # the chip's
])
def test_the_forgotten_brace_is_blamed(text, blamed):
    found = [d for d in errors(text) if "never closed" in d.message]
    assert [(d.line, d.column) for d in found] == [blamed]


def test_oversized_file(tmp_path):
    path = tmp_path / "huge.acim"
    path.write_bytes(b"#" * (2 << 20))
    assert "too large for a chip description" in str(_load_error(path))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_device_instead_of_a_file():
    error = _load_error("/dev/zero")
    assert str(error) == "/dev/zero:1:1: error: this is not a regular file (a device or a pipe?)"

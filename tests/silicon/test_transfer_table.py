"""Measured transfer tables (asimc/silicon/table.py): the strict reader, the per-MAC model and
the rule for MAC values that were not measured."""
from __future__ import annotations

import numpy as np
import pytest

from asimc.chip import parse_chip
from asimc.silicon import TableError, read_table, table_problems


def write(tmp_path, text: str, name: str = "t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_measured_mac_value_draws_its_own_histogram(tmp_path):
    table = read_table(write(tmp_path, "# bench run 3\nmac,code,count\n0,0,3\n0,1,1\n"
                                       "1,3,2\n1,5,2\n1,5,4\n2,8,1\n3,12,1\n"))
    assert table.observations == 14
    p = table.distribution(mac=1, bits=1, rows=3, levels=15)
    assert p.shape == (16,)
    assert p[3] == pytest.approx(2 / 8) and p[5] == pytest.approx(6 / 8)   # repeated bins add
    assert table.distribution(0, 1, 3, 15)[:2] == pytest.approx([0.75, 0.25])


def test_an_unmeasured_mac_value_takes_the_nearest_error_shifted_and_clamped(tmp_path):
    # rows 31, 5-bit ADC: ideal code round(M * 31 / 31) = M. Measured: MAC 10 reads 9 or 12.
    rows = "\n".join(f"{m},{m},1" for m in range(0, 32, 2) if m != 10)
    table = read_table(write(tmp_path, f"mac,code,count\n{rows}\n10,9,1\n10,12,3\n"))
    p = table.distribution(mac=11, bits=1, rows=31, levels=31)   # nearest: 10 (lower on a tie)
    assert p[10] == pytest.approx(0.25) and p[13] == pytest.approx(0.75)
    top = table.distribution(mac=31, bits=1, rows=31, levels=31)   # nearest 30: exact there
    assert top[31] == 1.0
    # A measured error pushed past the top code is clamped to it (probability kept).
    table = read_table(write(tmp_path, f"mac,code,count\n{rows}\n10,10,1\n30,31,1\n",
                             "clamp.csv"))
    assert table.distribution(mac=31, bits=1, rows=31, levels=31)[31] == 1.0


def test_columns_and_bits_are_separate_distributions(tmp_path):
    table = read_table(write(tmp_path, "column,mac,code,count,bits\n0,0,0,1,1\n1,0,1,1,1\n"
                                       "0,0,2,1,2\n"))
    assert table.per_column and table.columns == (0, 1) and table.bits_values == (1, 2)
    assert table.distribution(0, 1, 1, 3, column=1)[1] == 1.0
    assert table.distribution(0, 2, 1, 3, column=0)[2] == 1.0


@pytest.mark.parametrize("text, message", [
    ("", "the table is empty"),
    ("mac,code,cnt\n1,2,3\n", "t.csv:1: unknown field `cnt`"),
    ("mac,code\n1,2\n", "t.csv:1: the header lacks count"),
    ("mac,code,count,mac\n1,2,3,4\n", "t.csv:1: the header names `mac` twice"),
    ("mac,code,count\n1,2,3\n4,5\n", "t.csv:3: 2 fields, but the header names 3"),
    ("mac,code,count\n1,2.5,3\n", "t.csv:2: code must be a whole number >= 0, not '2.5'"),
    ("mac,code,count\n-1,2,3\n", "t.csv:2: mac must be a whole number >= 0, not '-1'"),
    ("mac,code,count\n1,2,0\n", "holds no observation"),
    ("mac,code,count,bits\n1,2,3,0\n", "t.csv:2: bits 0 is not an input group"),
    ("mac,code,count\n1,70000,3\n", "t.csv:2: code 70000 is beyond any 16-bit ADC"),
])
def test_a_malformed_table_is_refused_naming_file_and_line(tmp_path, text, message):
    with pytest.raises(TableError) as error:
        read_table(write(tmp_path, text))
    assert message in str(error.value)
    assert str(error.value).startswith(str(tmp_path / "t.csv"))


def test_a_binary_or_missing_file_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"mac,code,count\n\xff\xfe\n")
    with pytest.raises(TableError, match="t.csv:2: not UTF-8"):
        read_table(path)
    with pytest.raises(TableError, match="no such transfer table"):
        read_table(tmp_path / "none.csv")


def _chip(body: str = ""):
    return parse_chip(f'chip "c" {{ array {{ rows 31 cols 8 }} adc {{ bits 5 }} {body} }}')


def _full(tmp_path, macs=range(32), code=lambda m: m):
    rows = "\n".join(f"{m},{code(m)},5" for m in macs)
    return read_table(write(tmp_path, f"mac,code,count\n{rows}\n"))


def test_a_complete_table_serves_the_chip(tmp_path):
    assert table_problems(_full(tmp_path), _chip()) == []
    # Every 3rd MAC value is close enough (within max(1, 31 // 32) = 1 of each).
    assert table_problems(_full(tmp_path, macs=[*range(0, 32, 3), 31]), _chip()) == []


def test_a_table_that_cannot_serve_the_chip_says_why(tmp_path):
    def problems(table, chip=None):
        return " | ".join(table_problems(table, chip or _chip()))
    assert "code 40 needs a 6-bit ADC, but the chip's ADC has 5 bits (top code 31)" in \
        problems(_full(tmp_path, code=lambda m: m + 9 if m == 31 else m))
    assert "MAC value 40 is beyond the full scale of 1-bit conversions, (2^1 - 1) x 31 rows" \
        in problems(_full(tmp_path, macs=[*range(32), 40], code=lambda m: min(m, 31)))
    assert "no data near MAC values 11 to 19" in \
        problems(_full(tmp_path, macs=[*range(10), *range(21, 32)]))
    assert "too few ADC bits: the codes never exceed 15" in \
        problems(_full(tmp_path, code=lambda m: m // 2))
    assert "no data for 3-bit conversions" in problems(
        _full(tmp_path), _chip("input { bits 6 parallel 3 }"))
    two_columns = "\n".join(f"{m},{m},1,{c}" for c in (0, 1) for m in range(32))
    assert "columns 2-7 of the chip's 8 were not measured" in problems(
        read_table(write(tmp_path, f"mac,code,count,column\n{two_columns}\n", "cols.csv")))

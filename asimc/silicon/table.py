"""Measured transfer tables: what a designer records by driving known patterns into a column and
reading the ADC code many times.

Format (CSV, UTF-8, one header row naming the fields in any order, ``#`` starts a comment line)::

    mac,code,count[,column][,bits]

``mac`` is the ideal MAC value the conversion sees (0 .. (2^bits - 1) x rows), ``code`` the ADC
code observed (0 .. 2^adc - 1), ``count`` how often. ``column`` (0-based physical column) gives
each column its own distribution; without it every column shares one. ``bits`` is the number of
input bits driven in that cycle (1 bit-serial, e for a bit-parallel group; default 1). Rows that
repeat a (column, bits, mac, code) bin add up.

The model (docs/numeric-model.md, section 8b): a conversion of MAC value M draws its code from
the measured histogram of M. A MAC value that was not measured takes the error distribution
(code minus ideal code) of the nearest measured MAC value (the lower one on a tie), shifted to
its own ideal code ``round(M x L / F)`` and clamped to [0, L]. A table must have data within
``max(1, F // 32)`` of every MAC value, so that no shifted distribution is borrowed from far
away.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import AsimcError

FIELDS = ("mac", "code", "count", "column", "bits")
REQUIRED = ("mac", "code", "count")
MAX_TABLE_BYTES = 256 << 20     # a measured table is at most a few MB; beyond this, a mistake
MAX_BITS = 16                   # input bits driven at once (the chip's input allows 16)
MAX_CODE = (1 << 16) - 1        # the chip's ADC has at most 16 bits


class TableError(AsimcError):
    """A transfer table that cannot be read or cannot serve a chip; the message names the file
    and, where one line is at fault, the line (``measured.csv:17: ...``)."""


UNMEASURED_RULE = ("a MAC value that was not measured takes the error distribution of the "
                   "nearest measured MAC value (the lower on a tie), shifted to its own ideal "
                   "code and clamped to the ADC's codes")


@dataclass(frozen=True, eq=False)
class MeasuredGroup:
    """The histograms of one (column, bits): ``counts[j, k]`` conversions of MAC value
    ``macs[j]`` read code k; ``lines[j]`` is the first CSV line of that MAC value."""

    column: int | None
    bits: int
    macs: np.ndarray
    counts: np.ndarray
    lines: np.ndarray


@dataclass(frozen=True, eq=False)
class TransferTable:
    """A read, well-formed table (not yet checked against a chip: see ``table_problems``)."""

    name: str
    digest: str                 # SHA-256 of the file's bytes: the table's identity
    groups: tuple[MeasuredGroup, ...]
    max_code: int
    max_code_line: int

    @property
    def per_column(self) -> bool:
        return self.groups[0].column is not None

    @property
    def columns(self) -> tuple[int, ...]:
        return tuple(sorted({g.column for g in self.groups})) if self.per_column else ()

    @property
    def bits_values(self) -> tuple[int, ...]:
        return tuple(sorted({g.bits for g in self.groups}))

    @property
    def observations(self) -> int:
        return int(sum(g.counts.sum() for g in self.groups))

    def group(self, bits: int, column: int | None = None) -> MeasuredGroup | None:
        key = column if self.per_column else None
        return next((g for g in self.groups if g.bits == bits and g.column == key), None)

    def distributions(self, bits: int, rows: int, levels: int,
                      column: int | None = None) -> np.ndarray:
        """P(code) for every MAC value 0..F (F = (2^bits - 1) x rows) and code 0..levels:
        an array (F + 1, levels + 1) of float64 rows summing to 1 (the rule for MAC values not
        measured is ``UNMEASURED_RULE``)."""
        group = self.group(bits, column)
        if group is None:
            raise TableError(f"{self.name}: no data for {bits}-bit conversions"
                             + (f" of column {column}" if column is not None else ""))
        full_scale = ((1 << bits) - 1) * rows
        macs = np.arange(full_scale + 1)
        ideal = ideal_codes(macs, full_scale, levels)
        nearest = nearest_measured(group.macs, macs)
        source_ideal = ideal_codes(group.macs, full_scale, levels)
        codes = np.arange(group.counts.shape[1])
        probabilities = group.counts / group.counts.sum(axis=1, keepdims=True)
        out = np.zeros((full_scale + 1, levels + 1))
        for m in macs:
            j = nearest[m]
            shifted = np.clip(codes + (ideal[m] - source_ideal[j]), 0, levels)
            np.add.at(out[m], shifted, probabilities[j])
        return out

    def distribution(self, mac: int, bits: int, rows: int, levels: int,
                     column: int | None = None) -> np.ndarray:
        """P(code) for one MAC value (see ``distributions``)."""
        return self.distributions(bits, rows, levels, column)[mac]


def ideal_codes(macs: np.ndarray, full_scale: int, levels: int) -> np.ndarray:
    """round(M x L / F), half to even (the ADC of a noiseless conversion), as int64."""
    return np.clip(np.rint(np.asarray(macs, dtype=np.float64) * levels / full_scale),
                   0, levels).astype(np.int64)


def nearest_measured(measured: np.ndarray, macs: np.ndarray) -> np.ndarray:
    """For each MAC value, the index in ``measured`` (sorted) of the nearest one, the lower on
    a tie."""
    upper = np.clip(np.searchsorted(measured, macs), 0, len(measured) - 1)
    lower = np.clip(upper - 1, 0, len(measured) - 1)
    take_lower = np.abs(macs - measured[lower]) <= np.abs(measured[upper] - macs)
    return np.where(take_lower, lower, upper)


# ---- reading ---------------------------------------------------------------------------------

def read_table(path: str | Path, name: str | None = None) -> TransferTable:
    """Read and check the form of a table; raises TableError naming file and line."""
    path = Path(path)
    name = name or str(path)
    try:
        if path.is_dir():
            raise TableError(f"{name}: this is a directory, not a transfer table")
        size = path.stat().st_size
        if size > MAX_TABLE_BYTES:
            raise TableError(f"{name}: the file is too large for a transfer table ({size:,} "
                             f"bytes; the limit is {MAX_TABLE_BYTES:,})")
        data = path.read_bytes()
    except FileNotFoundError:
        raise TableError(f"{name}: no such transfer table") from None
    except PermissionError:
        raise TableError(f"{name}: cannot read the transfer table: permission denied") from None
    except OSError as error:
        raise TableError(f"{name}: cannot read the transfer table: "
                         f"{error.strerror or error}") from None
    return _cached_table(data, name)


@lru_cache(maxsize=8)
def _cached_table(data: bytes, name: str) -> TransferTable:
    return parse_table(data, name)


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def parse_table(data: bytes, name: str) -> TransferTable:
    digest = hashlib.sha256(data).hexdigest()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise TableError(f"{name}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x}): a "
                         "transfer table is a CSV file") from None
    reader = csv.reader(io.StringIO(text))
    header, where = None, {}
    bins: dict[tuple, dict[int, dict[int, int]]] = {}
    first_line: dict[tuple, dict[int, int]] = {}
    max_code, max_code_line = -1, 0
    for cells in reader:
        line = reader.line_num
        if not cells or all(not c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in cells]
        if header is None:
            header, where = cells, _header(cells, name, line)
            continue
        if len(cells) != len(header):
            raise TableError(f"{name}:{line}: {len(cells)} fields, but the header names "
                             f"{len(header)} ({','.join(header)})")
        values = {field: _whole(cells[i], field, name, line) for field, i in where.items()}
        bits = values.get("bits", 1)
        if not 1 <= bits <= MAX_BITS:
            raise TableError(f"{name}:{line}: bits {bits} is not an input group of 1 to "
                             f"{MAX_BITS} bits")
        if values["code"] > MAX_CODE:
            raise TableError(f"{name}:{line}: code {values['code']} is beyond any 16-bit ADC")
        if values["count"] == 0:
            continue
        key = (values.get("column"), bits)
        mac, code = values["mac"], values["code"]
        per_mac = bins.setdefault(key, {}).setdefault(mac, {})
        per_mac[code] = per_mac.get(code, 0) + values["count"]
        first_line.setdefault(key, {}).setdefault(mac, line)
        if code > max_code:
            max_code, max_code_line = code, line
    if header is None:
        raise TableError(f"{name}: the table is empty; it needs a header row "
                         "`mac,code,count` and one row per observed (mac, code)")
    if not bins:
        raise TableError(f"{name}: the table holds no observation (every count is 0)")
    groups = tuple(_group(key, per_mac, first_line[key], max_code)
                   for key, per_mac in sorted(bins.items(), key=lambda kv: (
                       -1 if kv[0][0] is None else kv[0][0], kv[0][1])))
    return TransferTable(name, digest, groups, max_code, max_code_line)


def _header(cells: list[str], name: str, line: int) -> dict[str, int]:
    where: dict[str, int] = {}
    for i, cell in enumerate(cells):
        field = cell.lower()
        if field not in FIELDS:
            raise TableError(f"{name}:{line}: unknown field `{cell}` in the header: a transfer "
                             f"table has the fields {', '.join(FIELDS)} (column and bits "
                             "optional)")
        if field in where:
            raise TableError(f"{name}:{line}: the header names `{field}` twice")
        where[field] = i
    missing = [f for f in REQUIRED if f not in where]
    if missing:
        raise TableError(f"{name}:{line}: the header lacks {', '.join(missing)}: a transfer "
                         "table's header is `mac,code,count` (and optionally column, bits)")
    return where


def _whole(text: str, field: str, name: str, line: int) -> int:
    if not text.isascii() or not text.isdigit():
        raise TableError(f"{name}:{line}: {field} must be a whole number >= 0, not "
                         f"{text[:24]!r}")
    return int(text)


def _group(key: tuple, per_mac: dict[int, dict[int, int]], lines: dict[int, int],
           max_code: int) -> MeasuredGroup:
    macs = np.array(sorted(per_mac), dtype=np.int64)
    counts = np.zeros((len(macs), max_code + 1), dtype=np.int64)
    for j, mac in enumerate(macs):
        for code, count in per_mac[int(mac)].items():
            counts[j, code] = count
    line_of = np.array([lines[int(m)] for m in macs], dtype=np.int64)
    return MeasuredGroup(key[0], key[1], macs, counts, line_of)


# ---- can the table serve a chip? -------------------------------------------------------------

def gap_limit(full_scale: int) -> int:
    """The farthest a MAC value may be from a measured one: max(1, F // 32)."""
    return max(1, full_scale // 32)


def table_problems(table: TransferTable, chip) -> list[str]:
    """Why ``table`` cannot serve the bit-level conversions of ``chip`` (a ChipSpec), each
    naming the table and, where one line is at fault, the line; empty when it can."""
    from ..chip.conversions import ConversionPlan
    plan = ConversionPlan(chip)
    levels, rows, cols = plan.adc_levels, plan.rows, chip.array.cols
    name = table.name
    problems = []
    if table.max_code > levels:
        need = max(1, math.ceil(math.log2(table.max_code + 1)))
        problems.append(f"{name}:{table.max_code_line}: code {table.max_code} needs {_a(need)}-bit "
                        f"ADC, but the chip's ADC has {chip.adc.bits} bits (top code {levels})")
    needed = sorted({c.bits for c in plan.cycles})
    for bits in needed:
        if bits not in table.bits_values:
            encoding = "bit-serial inputs drive 1 bit" if bits == 1 else \
                f"the chip's input groups drive {bits} bits"
            problems.append(f"{name}: no data for {bits}-bit conversions ({encoding} per "
                            f"cycle; the table has bits {_list(table.bits_values)})")
    if table.per_column:
        beyond = [c for c in table.columns if c >= cols]
        if beyond:
            group = next(g for g in table.groups if g.column == beyond[0])
            problems.append(f"{name}:{group.lines.min()}: column {beyond[0]} is beyond the "
                            f"chip's {cols} columns (columns are 0-based)")
        missing = sorted(set(range(cols)) - set(table.columns))
        if missing:
            problems.append(f"{name}: columns {_ranges(missing)} of the chip's {cols} were not "
                            "measured; measure every column, or leave out the `column` field "
                            "so that one distribution serves all")
    for group in table.groups:
        if group.bits not in needed or (group.column is not None and group.column >= cols):
            continue
        full_scale = ((1 << group.bits) - 1) * rows
        where = f"{group.bits}-bit conversions" + (
            f" of column {group.column}" if group.column is not None else "")
        if group.macs[-1] > full_scale:
            j = int(np.searchsorted(group.macs, full_scale, side="right"))
            problems.append(f"{name}:{group.lines[j]}: MAC value {group.macs[j]} is beyond the "
                            f"full scale of {where}, (2^{group.bits} - 1) x {rows} rows = "
                            f"{full_scale}")
            continue
        problems += _gap_problems(name, group, full_scale, where)
        top = ideal_codes(group.macs[-1:], full_scale, levels)[0]
        if table.max_code < (top + 1) // 2 and group.column in (None, table.groups[0].column):
            bits = max(1, math.ceil(math.log2(table.max_code + 1)))
            problems.append(f"{name}: too few ADC bits: the codes never exceed "
                            f"{table.max_code}, but MAC value {group.macs[-1]} of {full_scale} "
                            f"would read code {top} on the chip's {chip.adc.bits}-bit ADC: was "
                            f"the table measured on {_a(bits)}-bit ADC?")
    return problems


def _gap_problems(name: str, group: MeasuredGroup, full_scale: int, where: str) -> list[str]:
    limit = gap_limit(full_scale)
    edges = np.concatenate(([-limit - 1], group.macs, [full_scale + limit + 1]))
    gaps = np.flatnonzero(np.diff(edges) > 2 * limit + 1)
    problems = []
    for g in gaps[:3]:
        low, high = int(edges[g]), int(edges[g + 1])
        first, last = max(0, low + limit + 1), min(full_scale, high - limit - 1)
        if g == 0:
            around = f"no measured value below {high}"
        elif g + 1 == len(edges) - 1:
            around = f"no measured value above {low}"
        else:
            around = f"none between {low} and {high}"
        problems.append(f"{name}: no data near MAC values {first} to {last} of {where} "
                        f"({around}; every MAC value needs one within "
                        f"{limit}, F // 32)")
    return problems


def _a(bits: int) -> str:
    """``a 6`` or ``an 8`` (for "a 6-bit ADC", "an 8-bit ADC")."""
    return f"an {bits}" if str(bits).startswith("8") or bits in (11, 18) else f"a {bits}"


def _list(values) -> str:
    return ", ".join(str(v) for v in values) or "none"


def _ranges(values: list[int]) -> str:
    out, start = [], values[0]
    for prev, cur in zip(values, values[1:] + [None]):
        if cur != prev + 1 if cur is not None else True:
            out.append(str(start) if start == prev else f"{start}-{prev}")
            start = cur
    return ", ".join(out[:6]) + (", ..." if len(out) > 6 else "")

"""The native kernel's 32-bit guide (``native.compact_guide``) at its edges: thresholds on cell
boundaries (low bits 0xFFFFFF and 0), words equal to a threshold and one above, cells with one
threshold and with two, codes 254, 255, 256 and above (the escape), single-code MAC values and
the top cell. Each case is held to the definition code = low + #{j : w > threshold[j]}
(docs/numeric-model.md): first a model of convert.c's look-up over every boundary word, then
convert.c itself (every SIMD build this CPU runs) against the reference kernel on tables that
place these thresholds under the very words the conversions draw."""
from __future__ import annotations

import os
from dataclasses import replace

import pytest
import torch

from asimc.chip.conversions import ConversionPlan
from asimc.chip.spec import AdcSpec, ArraySpec, InputSpec, NoiseSpec, Quantity, WeightSpec
from asimc.kernels import conversion_model, fast, native, reference
from asimc.kernels.problem import AcimProblem, NoiseKeys

from .test_kernels import chip

CELL = 1 << conversion_model.GUIDE_SHIFT
LOW_MASK = CELL - 1
ESCAPE = conversion_model.GUIDE_CELLS - 1
TOP = 2 ** 32 - 1
NEVER = conversion_model.NEVER

# (low, thresholds): each row one edge of the compact guide.
EDGE_ROWS = [
    (5, []),                                        # one code: no thresholds at all
    (600, []),                                      # one code above the escape
    (255, []),                                      # one code, exactly the escape value
    (0, [CELL - 1]),                                # cell 0's last word (low bits 0xFFFFFF)
    (0, [CELL]),                                    # cell 1's first word (low bits 0)
    (3, [0]),                                       # the very first word
    (3, [77 * CELL - 1, 77 * CELL]),                # one threshold each side of a boundary
    (3, [77 * CELL, 77 * CELL + 1]),                # two in one cell: counted
    (3, [77 * CELL + 5, 78 * CELL - 1]),            # a second one on the cell's last word
    (3, [77 * CELL + 5, 77 * CELL + 5]),            # equal thresholds (a code never drawn)
    (253, [9 * CELL, 200 * CELL - 1]),              # codes 253, 254, 255
    (254, [9 * CELL + 1]),                          # 254 + 1 = 255 through the guide's compare
    (254, [TOP - 1]),                               # top cell: 255 for the last word alone
    (254, [255 * CELL]),                            # top cell's first word
    (255, [100 * CELL]),                            # escape from the lowest code on
    (256, [100 * CELL - 1, TOP - 1]),               # codes 256..258
    (0, [255 * CELL - 1, 255 * CELL, TOP - 1]),     # two thresholds in the top cell
    (0, [TOP - 1]),                                 # a single threshold, the last possible
    (0, [c * CELL - 1 for c in range(1, 256)]),     # every cell's last word: codes 0..255
    (0, [c * CELL for c in range(1, 256)]),         # every cell's first word but cell 0's
    (1, [c * CELL for c in range(0, 256)]),         # ... and cell 0's: codes 1..257
    (200, [c * CELL + 7 for c in range(40, 100)]),  # codes crossing 255 cell by cell
]


def table_of(rows: list[tuple[int, list[int]]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(low, thresholds padded with NEVER) of ``rows``."""
    width = max(1, max(len(t) for _, t in rows))
    thresholds = torch.full((len(rows), width), NEVER, dtype=torch.int64)
    for r, (_, t) in enumerate(rows):
        thresholds[r, :len(t)] = torch.tensor(t, dtype=torch.int64)
    return torch.tensor([low for low, _ in rows], dtype=torch.int64), thresholds


def with_rows(table: conversion_model.FlatTables, low: torch.Tensor, thresholds: torch.Tensor
              ) -> conversion_model.FlatTables:
    """``table`` with its codes drawn from (low, thresholds) instead (guide rebuilt)."""
    guide = torch.from_numpy(conversion_model._guide(low.numpy(), thresholds.numpy()))
    return replace(table, low=low, thresholds=thresholds, guide=guide, _devices={})


def boundary_words(thresholds: torch.Tensor) -> torch.Tensor:
    """Per row: every threshold and its neighbours, every cell's first and last word and theirs,
    the first and last words."""
    cells = torch.arange(conversion_model.GUIDE_CELLS, dtype=torch.int64) * CELL
    edges = torch.cat([cells, cells + LOW_MASK, torch.tensor([0, 1, TOP - 1, TOP])])
    edges = torch.cat([edges - 1, edges, edges + 1])
    near = torch.cat([thresholds - 1, thresholds, thresholds + 1], dim=1)
    return torch.cat([near, edges.expand(len(thresholds), -1)], dim=1).clamp(0, TOP)


def c_look_up(compact: torch.Tensor, table, row: torch.Tensor, word: torch.Tensor):
    """convert.c's ``drawn_code`` over the 32-bit guide, in Python."""
    entry = compact.view(-1)[row * conversion_model.GUIDE_CELLS
                             + (word >> conversion_model.GUIDE_SHIFT)].to(torch.int64) & NEVER
    code = entry >> conversion_model.GUIDE_SHIFT
    guided = code + ((word & LOW_MASK) > (entry & LOW_MASK)).to(torch.int64)
    counted = conversion_model.draw(table, row, word).to(torch.int64)
    return torch.where(code == ESCAPE, counted, guided).to(torch.float32)


def test_the_compact_guide_gives_the_defined_code_at_every_edge():
    low, thresholds = table_of(EDGE_ROWS)
    template = conversion_model._tables(ConversionPlan(chip()), (16,), True)
    table = with_rows(template, low, thresholds)
    compact = native.compact_guide(table.guide)
    assert compact.dtype == torch.int32 and compact.shape == table.guide.shape
    words = boundary_words(thresholds)
    row = torch.arange(len(EDGE_ROWS)).unsqueeze(1).expand_as(words).contiguous()
    want = conversion_model.draw(table, row, words)
    assert torch.equal(c_look_up(compact, table, row, words), want)
    assert torch.equal(conversion_model.draw_guided(table, row, words), want)
    # The cases are really there: codes 254..257 drawn, both ways of look-up, top cell words.
    codes = set(want.long().unique().tolist())
    assert {0, 254, 255, 256, 257, 600} <= codes
    escaped = (compact.view(-1)[row * conversion_model.GUIDE_CELLS + (words >> conversion_model.GUIDE_SHIFT)].long()
               & NEVER) >> conversion_model.GUIDE_SHIFT == ESCAPE
    assert escaped.any() and not escaped.all()


def test_compact_entries_hold_the_boundary_thresholds_low_bits():
    """A threshold on a cell's last word keeps low bits 0xFFFFFF (never exceeded there), one on
    its first word 0 (exceeded by every other word of the cell); beyond the cell: all ones."""
    low, thresholds = table_of([(0, [CELL - 1]), (0, [CELL]), (254, [TOP - 1]), (0, [TOP - 1])])
    guide = conversion_model._guide(low.numpy(), thresholds.numpy())
    compact = native.compact_guide(torch.from_numpy(guide)).long() & NEVER
    assert compact[0, 0] == (0 << 24) | LOW_MASK and compact[0, 1] == (1 << 24) | LOW_MASK
    assert compact[1, 0] == LOW_MASK and compact[1, 1] == 0 and compact[1, 2] == (1 << 24) | LOW_MASK
    assert compact[2, 255] == (254 << 24) | (LOW_MASK - 1)     # code 254: the guide answers
    assert compact[3, 255] == LOW_MASK - 1 and compact[3, 254] == LOW_MASK


# 10-bit ADC, 16 rows, 1-bit input cycles and 3 LSB of noise: MAC 4 sits at code ~256, so real
# tables draw codes on both sides of the escape.
WIDE_ADC = chip(adc=AdcSpec(10), array=ArraySpec(rows=16), weight=WeightSpec(3),
                input=InputSpec(3), noise=NoiseSpec(Quantity(3, "lsb")))


def noisy_problem(spec, *, rows_out=11, k=16, n=45, seed=3) -> AcimProblem:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 1 << spec.input.bits, (1, rows_out, k), generator=gen).float()
    top = (1 << (spec.weight.bits - 1)) - 1
    w = torch.randint(-top, top + 1, (1, k, n), generator=gen).float()
    stream = torch.randint(-2 ** 62, 2 ** 62, (1, rows_out), generator=gen)
    keys = NoiseKeys(stream, torch.arange(rows_out).view(1, rows_out) * n, 1, rows_out * n)
    return AcimProblem(x, w, ConversionPlan(spec), ((0, k),), keys)


def drawn_words(problem, monkeypatch) -> dict[int, list[int]]:
    """The words the reference kernel draws for each table row (the real draw, observed)."""
    seen: dict[int, list[int]] = {}
    real = conversion_model.draw

    def observed(table, row, word):
        for r, w in zip(row.reshape(-1).tolist(), word.reshape(-1).tolist()):
            seen.setdefault(r, []).append(w)
        return real(table, row, word)

    monkeypatch.setattr(conversion_model, "draw", observed)
    reference.run(problem)
    monkeypatch.setattr(conversion_model, "draw", real)
    return seen


def edge_table(real: conversion_model.FlatTables, seen: dict[int, list[int]]
               ) -> conversion_model.FlatTables:
    """Every row of ``real`` replaced by an edge row; rows the problem draws from get
    thresholds on their own words instead: equal to a drawn word (not exceeded) or a step below
    it (exceeded), in cells of one threshold and of two, or on a drawn word's cell boundaries."""
    rows = []
    for r in range(real.low.numel()):
        low, t = EDGE_ROWS[r % len(EDGE_ROWS)]
        words = sorted(set(seen.get(r, [])))
        if words:
            kind = r % 4
            a, b = words[0], words[-1]
            if kind == 0:
                t = [a, b - 1] if a < b - 1 else [a]
            elif kind == 1:
                t = sorted({max(0, a - 1), a} | {c * CELL for c in range(0, 256, 37)})
            elif kind == 2:
                cell = (b >> conversion_model.GUIDE_SHIFT) * CELL
                t = sorted({cell, cell + LOW_MASK} - {TOP})
            else:                   # one per cell: each drawn word on it or a step above it
                first = {}
                for w in words:
                    first.setdefault(w >> conversion_model.GUIDE_SHIFT, w)
                t = [w - (c % 2) for c, w in first.items() if w - (c % 2) >= 0]
            t = [v for v in t if v < TOP]
        rows.append((low, sorted(t)))
    return with_rows(real, *table_of(rows))


def guided_hits(table: conversion_model.FlatTables, seen: dict[int, list[int]]) -> tuple[int, int]:
    """How many drawn words the 32-bit guide answers (no escape) that equal a threshold of
    their row, and that are one above one."""
    compact = native.compact_guide(table.guide).to(torch.int64) & NEVER
    equal = above = 0
    for r, words in seen.items():
        thresholds = set(table.thresholds[r].tolist())
        for w in words:
            if compact[r, w >> conversion_model.GUIDE_SHIFT] >> conversion_model.GUIDE_SHIFT \
                    != ESCAPE:
                equal += w in thresholds
                above += w - 1 in thresholds
    return equal, above


def native_variants():
    return native.supported_variants() if native.available() else []


@pytest.mark.parametrize("simd", native_variants())
def test_every_native_build_draws_the_defined_code_on_edge_tables(simd, monkeypatch, tmp_path):
    """convert.c's guided draw (and its AVX-512 gather) against the reference kernel on tables
    whose thresholds sit on the drawn words and on cell boundaries, and on a real 10-bit ADC
    whose codes cross 255."""
    monkeypatch.setenv("ASIMC_NATIVE_SIMD", simd)
    monkeypatch.setenv("ASIMC_CACHE_DIR", str(tmp_path))
    native.library.cache_clear()
    try:
        assert native.simd_level() == native.SIMD_NAMES[simd]
        problem = noisy_problem(WIDE_ADC)
        real_codes = reference.run(problem)
        assert torch.equal(fast.run(problem), real_codes)
        real = conversion_model.tables(problem)
        reach = real.low + (real.thresholds != NEVER).sum(dim=1)
        assert bool(((real.low <= 254) & (reach >= 256)).any())     # codes cross the escape
        seen = drawn_words(problem, monkeypatch)
        edges = edge_table(real, seen)
        assert min(guided_hits(edges, seen)) > 50
        monkeypatch.setattr(conversion_model, "tables", lambda p: edges)
        want = reference.run(problem)
        assert not torch.equal(want, real_codes)            # the edge tables are in use
        for budget in (1 << 12, 1 << 30):
            assert torch.equal(fast.run(problem, memory_budget=budget), want)
    finally:
        native.library.cache_clear()


def test_the_native_kernel_is_tested_here():
    if os.environ.get("ASIMC_NATIVE") != "0":
        assert native.available(), "convert.c does not build here (is a C compiler installed?)"

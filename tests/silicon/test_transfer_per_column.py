"""Transfer tables with one distribution per physical column (docs/numeric-model.md, section
8b): each conversion draws its code from the measured distribution of its MAC value and its
column, on every kernel path bit-identical to the reference, with each column's own
distribution, and unmeasured MAC values by the shift rule."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import asimc
from asimc.chip import parse_chip
from asimc.chip.conversions import ConversionPlan
from asimc.cli import main
from asimc.data import load_dataset
from asimc.kernels import conversion_model, fast, native, reference
from asimc.kernels.problem import AcimProblem, NoiseKeys
from asimc.silicon.table import read_table

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "models" / "digits_mlp.onnx"


def _column_codes(column: int, ideal: int, levels: int) -> dict[int, int]:
    """Counts per code of one column at a MAC value of ideal code ``ideal``: every third column
    bimodal (2 low: 1 in 4, 1 high: 3 in 4), the others a spread that leans by column."""
    def clip(code):
        return min(max(code, 0), levels)
    if column % 3 == 0:
        return {clip(ideal - 2): 1, clip(ideal + 1): 3}
    lean = column % 3 - 1
    out: dict[int, int] = {}
    for code, count in ((ideal - 1 + lean, 2), (ideal + lean, 5), (ideal + 1 + lean, 1)):
        out[clip(code)] = out.get(clip(code), 0) + count
    return out


def write_table(path, rows: int, levels: int, columns: int, bits=(1,), every: int = 3,
                same: bool = False) -> None:
    """Every ``every``-th MAC value (and the largest) of every column measured; ``same``: every
    column has column 0's distributions."""
    lines = ["mac,code,count,column,bits"]
    for b in bits:
        full = ((1 << b) - 1) * rows
        for column in range(columns):
            for m in sorted(set(range(0, full + 1, every)) | {full}):
                ideal = round(m * levels / full)
                for code, count in _column_codes(0 if same else column, ideal, levels).items():
                    lines.append(f"{m},{code},{count},{column},{b}")
    path.write_text("\n".join(lines) + "\n")


def pooled(path, per_column_path) -> None:
    """Column 0 of a per-column table as a table for every column (no `column` field)."""
    lines = per_column_path.read_text().splitlines()
    out = ["mac,code,count,bits"] + [",".join(p[:3] + p[4:]) for p in
                                     (line.split(",") for line in lines[1:]) if p[3] == "0"]
    path.write_text("\n".join(out) + "\n")


CHIPS = {
    # bit-serial, hybrid (the top level digital), 4 channels per column tile
    "hybrid": ('array { rows 20 cols 16 } weight { bits 4 } input { bits 4 } '
               'hybrid { digital_levels 1 }', (1,)),
    # signed inputs two bits per cycle (2-bit groups, a 1-bit sign cycle), voting; 18 columns
    # hold 3 channels of 5-bit weights (3 columns unused)
    "grouped-voted": ('array { rows 20 cols 18 } weight { bits 5 } '
                      'input { bits 5 signed parallel 2 } voting { levels 2 samples 3 }', (1, 2)),
    # three bits per cycle
    "parallel-3": ('array { rows 12 cols 8 } weight { bits 4 } input { bits 6 parallel 3 }',
                   (3,)),
}


def chip_of(tmp_path, name: str, table: str = "cols.csv", same: bool = False):
    body, bits = CHIPS[name]
    spec = parse_chip(f'chip "{name}" {{ {body} adc {{ bits 5 }} }}')
    if not (tmp_path / table).exists():
        write_table(tmp_path / table, spec.array.rows, 31, spec.array.cols, bits, same=same)
    return parse_chip(f'chip "{name}" {{ {body} adc {{ bits 5  transfer "{table}" }} }}',
                      base_dir=tmp_path)


def problem_of(spec, groups=1, rows_out=13, k=47, n=11, seed=0) -> AcimProblem:
    gen = torch.Generator().manual_seed(seed)
    if spec.input.signed:
        top_x = (1 << (spec.input.bits - 1)) - 1
        x = torch.randint(-top_x, top_x + 1, (groups, rows_out, k), generator=gen).float()
    else:
        x = torch.randint(0, 1 << spec.input.bits, (groups, rows_out, k), generator=gen).float()
    top = (1 << (spec.weight.bits - 1)) - 1
    w = torch.randint(-top, top + 1, (1, k, n), generator=gen).float()
    tiles = tuple((k0, min(k, k0 + spec.array.rows)) for k0 in range(0, k, spec.array.rows))
    stream = torch.randint(-2 ** 62, 2 ** 62, (groups, rows_out), generator=gen)
    offset = torch.arange(groups * rows_out).view(groups, rows_out) * n
    keys = NoiseKeys(stream, offset, 1, groups * rows_out * n)
    return AcimProblem(x, w, ConversionPlan(spec), tiles, keys, None)


def _sub_batch(problem: AcimProblem, r0: int, r1: int) -> AcimProblem:
    noise = problem.noise
    keys = NoiseKeys(noise.stream[:, r0:r1], noise.offset[:, r0:r1], noise.col_stride,
                     noise.elements)
    return AcimProblem(problem.x[:, r0:r1], problem.w, problem.plan, problem.tiles, keys)


@pytest.mark.parametrize("name", list(CHIPS))
@pytest.mark.parametrize("path", ["native", "torch"])
def test_every_path_draws_the_references_codes_per_column(tmp_path, name, path, monkeypatch):
    if path == "torch":
        monkeypatch.setattr(native, "library", lambda: None)
    spec = chip_of(tmp_path, name)
    # 47 rows: tiles of 20, 20 and 7 (12, 12, 12, 11); 37 columns: a whole 32-column block of
    # the native kernel and a tail, the column tiles wrapping around many times.
    problem = problem_of(spec, groups=2, rows_out=9, n=37)
    assert conversion_model.tables(problem).columns is not None
    want = reference.run(problem)
    assert torch.equal(fast.run(problem), want)
    assert torch.equal(fast.run(problem, memory_budget=1 << 12), want)     # many chunks
    # any batch: rows 0..4 and 5..8 alone give the same numbers
    parts = torch.cat([fast.run(_sub_batch(problem, 0, 5)), fast.run(_sub_batch(problem, 5, 9))],
                      dim=1)
    assert torch.equal(parts, want)
    threads = torch.get_num_threads()
    try:                                    # any thread count
        for count in (1, 3):
            torch.set_num_threads(count)
            assert torch.equal(fast.run(problem), want)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("simd", native.supported_variants())
def test_every_native_build_draws_the_same_codes(tmp_path, simd, monkeypatch):
    monkeypatch.setenv("ASIMC_NATIVE_SIMD", simd)
    monkeypatch.setenv("ASIMC_CACHE_DIR", str(tmp_path / "cache"))
    native.library.cache_clear()
    try:
        assert native.simd_level() == native.SIMD_NAMES[simd]
        for name in CHIPS:
            problem = problem_of(chip_of(tmp_path, name, f"{name}.csv"), rows_out=5, n=45)
            assert torch.equal(fast.run(problem), reference.run(problem)), name
    finally:
        native.library.cache_clear()


def test_identical_columns_give_the_column_free_tables_bits(tmp_path):
    """Drawing D* and shifting it is the shifted distribution itself: a per-column table whose
    columns are all the same gives the bits of the same table without `column`."""
    write_table(tmp_path / "same.csv", 20, 31, 16, same=True)
    pooled(tmp_path / "pooled.csv", tmp_path / "same.csv")
    problems = [problem_of(parse_chip(
        'chip "h" { array { rows 20 cols 16 } weight { bits 4 } input { bits 4 } '
        f'hybrid {{ digital_levels 1 }} adc {{ bits 5 transfer "{t}" }} }}', base_dir=tmp_path))
        for t in ("same.csv", "pooled.csv")]
    assert conversion_model.tables(problems[1]).columns is None
    assert torch.equal(reference.run(problems[0]), reference.run(problems[1]))
    assert torch.equal(fast.run(problems[0]), fast.run(problems[1]))


def _drawn_probabilities(columns: conversion_model.ColumnTables, entry: int) -> np.ndarray:
    """P(code) exactly as the tables draw it (each threshold's share of the 2^32 words)."""
    row = int(columns.source[entry])
    cuts = np.concatenate(([0], columns.thresholds[row].numpy() + 1, [1 << 32])).astype(float)
    drawn = int(columns.low[row]) + np.arange(len(cuts) - 1)
    codes = np.clip(drawn + int(columns.shift[entry]), 0, columns.levels)
    out = np.zeros(columns.levels + 1)
    np.add.at(out, codes, np.diff(np.minimum(cuts, 2.0 ** 32)) / 2.0 ** 32)
    return out


def test_the_tables_are_each_columns_distributions(tmp_path):
    """For every physical column, input width and MAC value (measured or not), the code
    distribution the kernels draw is TransferTable.distributions(column=) within 2^-32."""
    spec = chip_of(tmp_path, "grouped-voted")
    table = read_table(spec.adc.transfer)
    columns = conversion_model.tables(problem_of(spec)).columns
    for bits in (1, 2):
        start = columns.map_start(bits)
        for p in range(spec.array.cols):
            want = table.distributions(bits, 20, 31, column=p)
            for m in range(len(want)):
                got = _drawn_probabilities(columns, start + m * columns.physical + p)
                assert np.abs(got - want[m]).max() < 2.0 ** -31, (bits, p, m)


def _one_conversion_chip(tmp_path, table: str):
    """A chip on which output column n is the code of ONE conversion: 2-bit weights 1 (bit 0
    set, the sign bit 0) against 1-bit inputs all 1: D(bit 0) - 2 D(bit 1); every column reads
    code 0 at MAC 0, so D(bit 1) = 0."""
    return parse_chip('chip "one" { array { rows 20 cols 4 } weight { bits 2 } input { bits 1 } '
                      f'adc {{ bits 5  transfer "{table}" }} }}', base_dir=tmp_path)


@pytest.mark.parametrize("mac", [18, 19])
def test_each_column_is_simulated_with_its_own_distribution(tmp_path, mac):
    """Bit 0 of channels 0 and 2 sits in physical column 0 (bimodal), of channels 1 and 3 in
    column 2 (a spread one code above the ideal one): 4000 conversions of each reproduce its own distribution
    (chi-square), also at a MAC value that was not measured (19: its nearest measured value 18,
    the lower on a tie with 20, shifted by round(19 * 31 / 20) - round(18 * 31 / 20) = 1)."""
    write_table(tmp_path / "cols.csv", 20, 31, 4)
    text = (tmp_path / "cols.csv").read_text().splitlines()
    zero = [f"0,0,1,{c},1" for c in range(4)]
    (tmp_path / "cols.csv").write_text("\n".join(
        [text[0]] + zero + [line for line in text[1:] if not line.startswith("0,")]) + "\n")
    spec = _one_conversion_chip(tmp_path, "cols.csv")
    samples = 4000
    x = torch.zeros(1, samples, mac)
    x[:] = 1
    gen = torch.Generator().manual_seed(3)
    stream = torch.randint(-2 ** 62, 2 ** 62, (1, samples), generator=gen)
    keys = NoiseKeys(stream, torch.arange(samples).view(1, -1) * 4, 1, samples * 4)
    problem = AcimProblem(x, torch.ones(1, mac, 4), ConversionPlan(spec), ((0, mac),), keys)
    scaled = fast.run(problem) * 31 / 20                 # acc / L = D F / L
    codes = scaled.round()
    assert torch.allclose(scaled, codes, rtol=0, atol=1e-9)
    shift = round(mac * 31 / 20) - round(18 * 31 / 20)
    assert shift == (1 if mac == 19 else 0)
    for n, column in ((0, 0), (1, 2), (2, 0), (3, 2)):     # two channels per column tile
        counts = np.bincount(codes[0, :, n].long().numpy(), minlength=32)
        measured = _column_codes(column, round(18 * 31 / 20), 31)
        expected = np.zeros(32)
        for code, count in measured.items():
            expected[code + shift] += count / sum(measured.values()) * samples
        assert (counts[expected == 0] == 0).all(), (column, counts)
        seen = expected > 0
        chi2 = ((counts[seen] - expected[seen]) ** 2 / expected[seen]).sum()
        assert chi2 < 16, (column, counts[seen], expected[seen])       # p < 0.001 at 2 dof
    # the two columns differ: bimodal column 0 reads two codes 3 apart, column 2 three in a row
    assert [len(np.unique(codes[0, :, n])) for n in range(4)] == [2, 3, 2, 3]


def test_the_tables_grow_with_the_measured_distributions_and_are_shared(tmp_path):
    """Rows for the measured (column, bits, M*) only, plus an int32 source and shift per
    (column, M): never columns x MAC values x guide cells; one copy for every layer shape."""
    spec = chip_of(tmp_path, "grouped-voted")
    table = read_table(spec.adc.transfer)
    a, b = problem_of(spec, k=47), problem_of(spec, k=33, n=5)
    columns = conversion_model.tables(a).columns
    assert conversion_model.tables(b).columns is columns
    measured = sum(len(g.macs) for g in table.groups)
    assert columns.low.numel() == measured == columns.thresholds.shape[0]
    # no guide: a row holds the few thresholds between the codes its column was seen to read
    assert columns.thresholds.shape[1] <= 6
    entries = (20 + 1 + 3 * 20 + 1) * spec.array.cols          # F + 1 per width (1, 2 bits)
    assert columns.source.numel() == entries and columns.source.dtype == torch.int32
    assert columns.shift.numel() == entries and columns.shift.dtype == torch.int32
    assert columns.nbytes == (columns.thresholds.numel() + measured) * 8 + entries * 8
    assert columns.nbytes < measured * 8 * 8 + entries * 8
    # the layer's own tables hold one unused row per measured kind, nothing per column
    flat = conversion_model.tables(a)
    assert flat.low.numel() < 100


def _digits(n: int) -> np.ndarray:
    return load_dataset("digits", limit=n).x.reshape(n, -1)


def test_a_measured_per_column_chip_runs_through_compile(tmp_path, capsys):
    """`asimc chip measure --per-column` writes one distribution per physical column; a chip
    with that table compiles and runs, reproducibly per seed, unlike the pooled
    table of its column 0 (the columns' own offsets and gains are in the table)."""
    (tmp_path / "bench.acim").write_text(
        'chip "bench" { array { rows 32 cols 16 } weight { bits 4 } input { bits 4 } '
        'adc { bits 5 } noise { random 0.5 lsb } mismatch { adc_offset 0.5 lsb } }')
    assert main(["chip", "measure", str(tmp_path / "bench.acim"), "-o",
                 str(tmp_path / "measured.csv"), "--per-column", "--repeats", "200",
                 "--every", "2"]) == 0
    capsys.readouterr()
    assert read_table(tmp_path / "measured.csv").columns == tuple(range(16))
    body = 'array { rows 32 cols 16 } weight { bits 4 } input { bits 4 } adc { bits 5 '
    measured = parse_chip(f'chip "m" {{ {body} transfer "measured.csv" }} }}', base_dir=tmp_path)
    x = _digits(12)
    program = asimc.compile(MODEL, measured)
    out = program.run(x, mode="acim", seed=5).outputs["logits"]
    assert np.array_equal(out, asimc.compile(MODEL, measured).run(x, mode="acim", seed=5)
                          .outputs["logits"])
    assert not np.array_equal(out, program.run(x, mode="acim", seed=6).outputs["logits"])
    exact = asimc.compile(MODEL, measured).run(x, mode="int").outputs["logits"]
    assert np.isfinite(out).all() and np.std(out - exact) > 0
    pooled(tmp_path / "pooled.csv", tmp_path / "measured.csv")
    one = parse_chip(f'chip "p" {{ {body} transfer "pooled.csv" }} }}', base_dir=tmp_path)
    other = asimc.compile(MODEL, one).run(x, mode="acim", seed=5).outputs["logits"]
    assert not np.array_equal(out, other)


def test_golden_runs_a_per_column_chip_reproducibly(tmp_path, capsys):
    write_table(tmp_path / "cols.csv", 32, 31, 16, every=2)
    (tmp_path / "c.acim").write_text(
        'chip "c" { array { rows 32 cols 16 } weight { bits 4 } input { bits 4 } '
        'adc { bits 5  transfer "cols.csv" } }')
    reports = []
    for _ in range(2):
        code = main(["golden", str(MODEL), "--chip", str(tmp_path / "c.acim"), "--data",
                     "digits", "--limit", "8", "--seed", "3", "--json"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        reports.append(json.loads(captured.out))
    assert reports[0] == reports[1]
    rung = next(r for r in reports[0]["rungs"] if r["name"] == "int vs ideal acim")
    assert not rung["bit_identical"] and 0 <= rung["agreement"] <= 1
    # The ideal rung is the chip with an ideal converter in place of the table, so the table's
    # draws show in the last rung (not "exact").
    noisy = next(r for r in reports[0]["rungs"] if r["name"] == "ideal vs noisy acim")
    assert not noisy["bit_identical"] and noisy["max_abs_diff"] > 0


def test_triton_hands_per_column_tables_to_the_torch_path(tmp_path, monkeypatch):
    """The Triton kernel does not draw from per-column tables: on CUDA such layers run on the
    torch path (bit-identical to the reference, tested above); column-free tables stay."""
    pytest.importorskip("triton", reason="Triton is the asimc[gpu] extra")
    from asimc.kernels import triton_kernel
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    write_table(tmp_path / "same.csv", 20, 31, 16, same=True)
    pooled(tmp_path / "pooled.csv", tmp_path / "same.csv")
    usable = []
    for table in ("same.csv", "pooled.csv"):
        spec = parse_chip('chip "h" { array { rows 20 cols 16 } weight { bits 4 } '
                          f'input {{ bits 4 }} adc {{ bits 5 transfer "{table}" }} }}',
                          base_dir=tmp_path)
        usable.append(triton_kernel.usable(problem_of(spec)))
    assert usable == [False, True]

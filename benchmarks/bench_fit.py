"""Benchmark of `asimc chip fit` on a full-size per-column table (numbers go to BENCHMARKS.md).

The table is what `asimc chip measure --per-column` writes for the ASiM reference macro
(255 rows, 256 columns, 8-bit ADC) with 1 LSB random and 2 LSB non-linear noise and column
mismatch (`adc_offset 0.5 lsb  adc_gain 1%  adc_dnl 0.3 lsb`): every MAC value 0..255 of every
column converted --repeats times. Timed: reading the table, the per-column fit (noise, 256
offsets and gains, 65,280 thresholds and adc_dnl) and the pooled fit, each once, with what
they recover.

    .venv/bin/python benchmarks/bench_fit.py [--repeats N]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from asimc.chip import parse_chip
from asimc.silicon.fit import fit_table
from asimc.silicon.measure import measure_chip
from asimc.silicon.table import read_table

ROOT = Path(__file__).resolve().parent.parent
CHIP = f'''chip "bench-fit" extends "{ROOT / "chips" / "asim-bitserial-255.acim"}" {{
    noise {{ random 1 lsb  nonlinear 2 lsb }}
    mismatch {{ adc_offset 0.5 lsb  adc_gain 1%  adc_dnl 0.3 lsb }}
}}'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1000, help="conversions per MAC value")
    args = parser.parse_args()
    chip = parse_chip(CHIP)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "measured.csv"
        start = time.perf_counter()
        path.write_text(measure_chip(chip, args.repeats, seed=0, per_column=True).text)
        rows = [f"measure (256 columns x 256 MAC values) | {time.perf_counter() - start:.1f} s"
                f" | {path.stat().st_size / 1e6:.1f} MB"]
        start = time.perf_counter()
        table = read_table(path)
        rows.append(f"read the table | {time.perf_counter() - start:.1f} s | "
                    f"{table.observations:,} conversions")
        for per_column in (True, False):
            start = time.perf_counter()
            result = fit_table(table, chip, per_column=per_column)
            dnl = (f"adc_dnl {result.adc_dnl:.4g} lsb" if result.adc_dnl is not None else
                   f"one converter's thresholds: sd {result.dnl.sigma:.3g} lsb")
            rows.append(f"fit {'--per-column' if per_column else 'pooled'} | "
                        f"{time.perf_counter() - start:.1f} s | noise {result.sigma_random:.4g}"
                        f" / {result.sigma_nonlinear:.4g} lsb, offsets sd "
                        f"{result.offset_sd:.3g} lsb, {dnl}, G/dof {result.g_per_dof:.3g}")
    print("| step | time | result |\n|---|---|---|")
    print("\n".join(f"| {row} |" for row in rows))


if __name__ == "__main__":
    main()

"""A quick look at the paper's findings and the chip library on the row-filling ResNet.

    python examples/resnet_quick_findings.py --limit 40 [--chips chips/*.acim] [--out FILE]

The full study (``paper_findings.py --models resnet``) runs some 50 chips on a model of 34M
ADC conversions per image; this runs the chips that carry each finding (bit-serial against
bit-parallel 2 and 4 at ADC 8 and 7, the noise ladder, hybrid and voting at 1 LSB), and then,
with ``--chips``, the chip library, one chip at a time, writing each row as soon as it is
measured (one markdown table row per line), so that a slow machine still leaves results.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

import asimc
from asimc.commands.evaluate import compare_rows   # the rows as `compare --json` prints them
from asimc.compare import compare_chips
from paper_findings import BASE_CHIP, MODELS, Variant, acc_cell, db, pct

STUDY = MODELS["resnet"]
VARIANTS = [
    ("bit-serial, ADC 8", Variant()),
    ("bit-parallel 2, ADC 8", Variant(bits_per_cycle=2)),
    ("bit-parallel 4, ADC 8", Variant(bits_per_cycle=4)),
    ("bit-serial, ADC 7", Variant(adc=7)),
    ("bit-parallel 2, ADC 7", Variant(bits_per_cycle=2, adc=7)),
    ("bit-parallel 4, ADC 10", Variant(bits_per_cycle=4, adc=10)),
    ("bit-serial, 0.25 LSB", Variant(noise=0.25)),
    ("bit-parallel 4, 0.25 LSB", Variant(bits_per_cycle=4, noise=0.25)),
    ("bit-serial, 0.5 LSB", Variant(noise=0.5)),
    ("bit-serial, 1 LSB", Variant(noise=1.0)),
    ("hybrid 2 levels, 1 LSB", Variant(noise=1.0, digital_levels=2)),
    ("voting 2 levels x 5, 1 LSB", Variant(noise=1.0, vote_levels=2, samples=5)),
]


def row(label: str, r: dict) -> str:
    return (f"| {label} | {acc_cell(r)} | {pct(r['agreement'])} | {db(r['sqnr_db'])} | "
            f"{r.get('adc_conversions', 0) or 0:,} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--chips", nargs="*", default=[], help="chip files to compare too")
    parser.add_argument("--skip-variants", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="append the rows here too")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = open(args.out, "a") if args.out else None

    def emit(line: str) -> None:
        print(line, flush=True)
        if out:
            out.write(line + "\n")
            out.flush()

    base = asimc.load_chip(BASE_CHIP)
    emit(f"resnet quick findings: {STUDY.data} test, first {args.limit} images, "
         f"{args.seeds} seed(s)")
    emit("| chip | accuracy % | agreement % | SQNR dB | conversions / inference |")
    emit("|---|---:|---:|---:|---:|")
    jobs = [] if args.skip_variants else \
        [(label, v.chip(base, STUDY.signed)) for label, v in VARIANTS]
    jobs += [(Path(c).stem, c) for c in args.chips]
    baselines = False
    for label, chip in jobs:
        start = time.time()
        rows = compare_rows(compare_chips(STUDY.path, [chip], STUDY.data, seeds=args.seeds,
                                          limit=args.limit))
        if not baselines:
            emit(row("fp32", rows[0]))
            baselines = True
            ints = next(r for r in rows if r["chip"] == "int")
            emit(row(f"int ({ints['precision']})", ints))
        emit(row(label, rows[-1]) + f" <!-- {time.time() - start:.0f} s -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())

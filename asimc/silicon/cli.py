"""``asimc chip fit`` and ``asimc chip measure``: between measured transfer tables and the
parametric chip language.

    asimc chip measure CHIP -o TABLE.csv [--repeats N] [--seed S] [--per-column] [--every K]
    asimc chip fit TABLE.csv --chip BASE.acim -o FITTED.acim [--per-column] [--plot F.png]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from ..commands.common import writable_path
from ..errors import EXIT_OK, UsageError


def register(commands) -> None:
    fit = commands.add_parser(
        "fit", help="fit the parametric noise model to a measured transfer table",
        description="Fit asimc's parametric conversion model (random and non-linear noise, "
                    "column ADC offset, gain and threshold offsets) to a measured transfer "
                    "table by maximum likelihood, and write a chip that extends BASE with the "
                    "fitted values.")
    fit.add_argument("table", metavar="MEASURED.csv",
                     help="CSV mac,code,count[,column][,bits]")
    fit.add_argument("--chip", required=True, metavar="BASE.acim",
                     help="the chip the table was measured on (its noise is replaced)")
    fit.add_argument("-o", "--output", required=True, metavar="FITTED.acim")
    fit.add_argument("--per-column", action="store_true",
                     help="fit one ADC offset, gain and set of code thresholds per measured "
                          "column (their spread becomes the chip's `mismatch` sigmas, "
                          "adc_dnl included)")
    fit.add_argument("--plot", metavar="F.png", help="draw measured against fitted")
    fit.set_defaults(func=run_fit)

    measure = commands.add_parser(
        "measure", help="write the transfer table a chip's parametric model would measure",
        description="Write a synthetic transfer table: every MAC value of every conversion "
                    "kind converted --repeats times, codes drawn from the chip's closed-form "
                    "code distribution (seeded).")
    measure.add_argument("chip", metavar="CHIP.acim")
    measure.add_argument("-o", "--output", required=True, metavar="TABLE.csv")
    measure.add_argument("--repeats", type=int, default=1000,
                         help="conversions per MAC value (default 1000)")
    measure.add_argument("--seed", type=int, default=0)
    measure.add_argument("--per-column", action="store_true",
                         help="one distribution per physical column, with the chip's column "
                              "mismatch drawn per column")
    measure.add_argument("--every", type=int, default=1, metavar="K",
                         help="measure every K-th MAC value (and the largest)")
    measure.set_defaults(func=run_measure)


MAX_REPEATS = 10 ** 9
PLOT_FORMATS = (".png", ".svg", ".pdf")


def _write_atomically(path: str, text: str, check=None) -> None:
    """Write ``text`` to ``path`` only when complete and (``check(temporary path)``) valid."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp",
                                         encoding="utf-8") as out:
            out.write(text)
    except OSError as error:
        raise UsageError(f"{path}: cannot write it ({error.strerror})") from None
    try:
        # A temporary file is private (0600); the output gets a new file's usual permissions.
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(out.name, 0o666 & ~mask)
        if check is not None:
            check(out.name)
        os.replace(out.name, path)
    finally:
        if os.path.exists(out.name):
            os.unlink(out.name)


def run_measure(args: argparse.Namespace) -> int:
    from ..chip import load_chip
    from .fit import fittable_problems
    from .measure import measure_chip
    if not 1 <= args.repeats <= MAX_REPEATS or not 1 <= args.every <= MAX_REPEATS \
            or args.seed < 0:
        raise UsageError(f"--repeats and --every must be from 1 to {MAX_REPEATS:,} and --seed "
                         "at least 0")
    writable_path(args.output, "table")
    chip = load_chip(args.chip)
    problems = fittable_problems(chip)
    if problems:
        raise UsageError(f"{args.chip}: cannot measure this chip: {problems[0]}")
    measurement = measure_chip(chip, args.repeats, args.seed, args.per_column, args.every,
                               title=f"asimc chip measure {args.chip}")
    _write_atomically(args.output, measurement.text)
    print(f"wrote {args.output}: {args.repeats} conversions per MAC value"
          + (f", {chip.array.cols} columns" if args.per_column else ""))
    return EXIT_OK


def run_fit(args: argparse.Namespace) -> int:
    from ..chip import load_chip
    from .fit import fit_table, fitted_chip_text, plot_fit
    from .table import read_table
    writable_path(args.output, "fitted chip")
    if args.plot is not None:
        writable_path(args.plot, "plot")
        if Path(args.plot).suffix.lower() not in PLOT_FORMATS:
            raise UsageError(f"{args.plot}: --plot writes {', '.join(PLOT_FORMATS)} files")
    chip = load_chip(args.chip)
    table = read_table(args.table)
    result = fit_table(table, chip, per_column=args.per_column)
    extends = os.path.relpath(os.path.abspath(args.chip),
                              os.path.dirname(os.path.abspath(args.output)))
    text = fitted_chip_text(result, table, chip.name, Path(extends).as_posix())
    _print_fit(result, table, args.per_column)
    _write_atomically(args.output, text, check=load_chip)   # the fitted chip must load
    print(f"wrote {args.output}")
    if args.plot:
        try:
            plot_fit(result, table, chip, args.plot, args.per_column)
        except OSError as error:
            raise UsageError(f"{args.plot}: cannot write the plot ({error.strerror})") from None
        print(f"wrote {args.plot}")
    return EXIT_OK


MAX_PRINTED = 40


def _print_fit(result, table, per_column: bool) -> None:
    from .fit import dnl_summary
    out = sys.stdout
    columns = (f"{len(result.columns)} columns, one offset, gain and set of thresholds each"
               if per_column else "one offset and gain for every column")
    out.write(f"fitted {result.conversions:,} conversions of {table.name} ({columns})\n")
    out.write(f"  noise: random {result.sigma_random:.4g} lsb, nonlinear "
              f"{result.sigma_nonlinear:.4g} lsb\n")
    if per_column:
        out.write(f"  column offsets: sd {result.offset_sd:.4g} lsb; gains: sd "
                  f"{result.gain_sd * 100:.4g} %\n")
        if len(result.columns) <= 16:
            for column, offset, gain in zip(result.columns, result.offsets, result.gains):
                out.write(f"    column {column}: offset {offset:+.3f} lsb, gain "
                          f"{gain * 100:+.3f} %\n")
    else:
        out.write(f"  ADC offset {result.offsets[0]:+.4g} lsb, gain "
                  f"{result.gains[0] * 100:+.4g} %\n")
    for line in dnl_summary(result):
        out.write(f"  {line}\n")
    out.write(f"  goodness of fit: G/dof {result.g_per_dof:.3f} ({result.degrees_of_freedom:,} "
              "degrees of freedom; about 1 when the model explains the table within sampling "
              "error)\n")
    rows = result.spreads
    step = max(1, -(-len(rows) // MAX_PRINTED))
    shown = rows[::step]
    note = f" (one in {step} of {len(rows)} MAC values)" if step > 1 else ""
    out.write(f"per MAC value{note}, in LSB: code - M*L/F (mean) and code spread (sd)\n")
    out.write(f"{'bits':>5} {'MAC':>6} {'conversions':>12} {'measured':>9} {'fitted':>8} "
              f"{'measured sd':>12} {'fitted sd':>10}\n")
    for s in shown:
        out.write(f"{s.bits:>5} {s.mac:>6} {s.conversions:>12,} {s.measured_error:>+9.3f} "
                  f"{s.fitted_error:>+8.3f} {s.measured_spread:>12.3f} "
                  f"{s.fitted_spread:>10.3f}\n")

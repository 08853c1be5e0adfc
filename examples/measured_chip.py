"""A chip as measured: a transfer table for a library chip, the parametric chip fitted to it, and
the chips compared on the digits CNN.

    python examples/measured_chip.py [--out DIR] [--limit N] [--seeds N] [--repeats N]

1. "Measure" examples/chips/noisy-0.4lsb.acim (the ASiM reference macro with 0.4 LSB of random
   noise) the way a test bench would: every MAC value 0..255 converted ``--repeats`` times
   (``asimc.silicon.measure``), with one non-Gaussian twist a parametric chip cannot express:
   5 % of the conversions settle 2 codes high (a skewed error).
2. Write DIR/measured.acim, the reference macro with `adc { transfer "measured.csv" }`, and
   check it (`asimc chip check`).
3. Fit the parametric model to the table (`asimc chip fit`): DIR/fitted.acim and DIR/fit.png.
   The skew shows in the fit's quality (G/dof well above 1) and in a larger fitted sigma.
4. Compare the original, the table-driven and the fitted chip on
   examples/models/digits_cnn.onnx with `--data digits`.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from asimc.chip import load_chip
from asimc.cli import main as asimc
from asimc.silicon.measure import measure_chip

HERE = Path(__file__).resolve().parent
CHIP = HERE / "chips" / "noisy-0.4lsb.acim"
REFERENCE = HERE.parent / "chips" / "asim-bitserial-255.acim"
MODEL = HERE / "models" / "digits_cnn.onnx"
SKEW_FRACTION, SKEW_CODES = 0.05, 2


def skewed(text: str, seed: int) -> str:
    """The table with SKEW_FRACTION of each bin's conversions moved SKEW_CODES codes up."""
    rng = np.random.default_rng(seed)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    header, rows = lines[0], np.array([line.split(",") for line in lines[1:]], dtype=np.int64)
    mac, code, count = rows[:, 0], rows[:, 1], rows[:, 2]
    moved = rng.binomial(count, SKEW_FRACTION)
    bins: dict[tuple[int, int], int] = {}
    for m, c, n, k in zip(mac, code, count, moved):
        bins[m, c] = bins.get((m, c), 0) + int(n - k)
        up = (m, min(int(c) + SKEW_CODES, 255))
        bins[up] = bins.get(up, 0) + int(k)
    body = "\n".join(f"{m},{c},{n},1" for (m, c), n in sorted(bins.items()) if n)
    return (f"# noisy-0.4lsb as measured: asimc's model, {SKEW_FRACTION:.0%} of the "
            f"conversions {SKEW_CODES} codes high\n{header}\n{body}\n")


def run(*args) -> int:
    code = asimc([str(a) for a in args])
    if code != 0:
        raise SystemExit(f"asimc {' '.join(map(str, args))} failed ({code})")
    return code


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="measured-chip", help="folder for the files written")
    parser.add_argument("--limit", type=int, default=450, help="digits test images")
    parser.add_argument("--seeds", type=int, default=3, help="noise seeds per chip")
    parser.add_argument("--repeats", type=int, default=4000, help="conversions per MAC value")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    table = out / "measured.csv"
    measurement = measure_chip(load_chip(CHIP), repeats=args.repeats, seed=0)
    table.write_text(skewed(measurement.text, seed=1))
    measured = out / "measured.acim"
    measured.write_text(
        f'chip "noisy-0.4lsb-measured" extends "{_relative(REFERENCE, out)}" {{\n'
        '    description "the ASiM reference macro as measured: codes drawn from a transfer '
        'table"\n    adc { transfer "measured.csv" }\n}\n')
    print(f"== 1-2. {table} ({args.repeats} conversions per MAC value) and {measured}")
    run("chip", "check", measured)

    print("\n== 3. the parametric model fitted to the table")
    fitted = out / "fitted.acim"
    run("chip", "fit", table, "--chip", CHIP, "-o", fitted, "--plot", out / "fit.png")

    chips = [CHIP, measured, fitted]
    print(f"\n== 4. {', '.join(c.name for c in chips)} on {MODEL.name}, {args.limit} images, "
          f"{args.seeds} seeds")
    run("compare", MODEL, "--chips", *chips, "--data", "digits", "--limit", args.limit,
        "--seeds", args.seeds)


def _relative(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path, folder.resolve())).as_posix()


if __name__ == "__main__":
    main()

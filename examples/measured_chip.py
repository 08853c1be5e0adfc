"""A chip as measured: a per-column transfer table for a library chip, the parametric chip fitted
to it, and the three chips compared on a trained Fashion-MNIST ResNet.

    python examples/measured_chip.py [--out DIR] [--limit N] [--seeds N] [--repeats N]
                                     [--adc-dnl LSB]

1. The original (DIR/original.acim): the ASiM reference macro (chips/asim-bitserial-255.acim,
   lossless: 255 rows, 8-bit ADC) with 0.2 LSB of random noise and column mismatch,
   `mismatch { adc_offset 0.1 lsb  adc_gain 0.1%  adc_dnl 0.1 lsb }`: near the edge of what
   the ResNet tolerates (94 % -> 76 % on 300 images; 0.3 LSB of column offsets alone leave it
   under 30 %).
2. "Measure" it the way a test bench would (`asimc chip measure --per-column`): every MAC value
   0..255 of each of its 256 columns converted ``--repeats`` times, each column with its own
   ADC offset, gain and code thresholds; then one non-Gaussian twist a parametric chip cannot
   express: 1 % of the conversions settle a code high (a skewed error).
3. Write DIR/measured.acim, the reference macro with `adc { transfer "measured.csv" }`, and
   check it (`asimc chip check`).
4. Fit the parametric model to the table, column by column (`asimc chip fit --per-column`):
   DIR/fitted.acim (noise, adc_offset, adc_gain and adc_dnl) and DIR/fit.png. The skew shows
   in the fit's quality (G/dof well above 1) and in a larger fitted noise.
5. Compare the original, the table-driven and the fitted chip on
   examples/models/fashion_resnet.onnx with `--data fashion-mnist`.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from asimc.cli import main as asimc

HERE = Path(__file__).resolve().parent
REFERENCE = HERE.parent / "chips" / "asim-bitserial-255.acim"
MODEL = HERE / "models" / "fashion_resnet.onnx"
NAME = "resnet-macro"
SKEW_FRACTION, SKEW_CODES = 0.01, 1


def skewed(text: str, seed: int, top_code: int = 255) -> str:
    """The table with SKEW_FRACTION of each bin's conversions moved SKEW_CODES codes up."""
    rng = np.random.default_rng(seed)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    header = lines[0].split(",")
    rows = np.array([line.split(",") for line in lines[1:]], dtype=np.int64)
    code, count = header.index("code"), header.index("count")
    moved = rng.binomial(rows[:, count], SKEW_FRACTION)
    up = rows.copy()
    up[:, code] = np.minimum(rows[:, code] + SKEW_CODES, top_code)
    up[:, count] = moved
    rows[:, count] -= moved
    every = np.concatenate([rows, up])
    keys = [i for i, name in enumerate(header) if name != "count"]
    bins, index = np.unique(every[:, keys], axis=0, return_inverse=True)
    counts = np.bincount(index.ravel(), weights=every[:, count]).astype(np.int64)
    out = np.insert(bins, count, counts, axis=1)[counts > 0]
    body = "\n".join(",".join(map(str, row)) for row in out)
    return (f"# {NAME} as measured: asimc's model, {SKEW_FRACTION:.0%} of the conversions "
            f"{SKEW_CODES} code(s) high\n{','.join(header)}\n{body}\n")


def run(*args) -> int:
    code = asimc([str(a) for a in args])
    if code != 0:
        raise SystemExit(f"asimc {' '.join(map(str, args))} failed ({code})")
    return code


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="measured-chip", help="folder for the files written")
    parser.add_argument("--limit", type=int, default=300, help="Fashion-MNIST test images")
    parser.add_argument("--seeds", type=int, default=3, help="noise seeds per chip")
    parser.add_argument("--repeats", type=int, default=1000,
                        help="conversions per MAC value and column")
    parser.add_argument("--adc-dnl", type=float, default=0.1,
                        help="the original's ADC threshold mismatch, LSB")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    original = out / "original.acim"
    original.write_text(
        f'chip "{NAME}" extends "{_relative(REFERENCE, out)}" {{\n'
        '    noise { random 0.2 lsb }\n'
        f'    mismatch {{ adc_offset 0.1 lsb  adc_gain 0.1%  adc_dnl {args.adc_dnl:g} lsb }}\n}}\n')
    table = out / "measured.csv"
    run("chip", "measure", original, "-o", table, "--per-column", "--repeats", args.repeats,
        "--seed", 0)
    table.write_text(skewed(table.read_text(), seed=1))
    measured = out / "measured.acim"
    measured.write_text(
        f'chip "{NAME}-measured" extends "{_relative(REFERENCE, out)}" {{\n'
        '    description "the ASiM reference macro as measured: codes drawn from a transfer '
        'table, one distribution per column"\n    adc { transfer "measured.csv" }\n}\n')
    print(f"== 1-3. {original}, {table} (skewed) and {measured}")
    run("chip", "check", measured)

    print("\n== 4. the parametric model fitted to the table, column by column")
    fitted = out / "fitted.acim"
    run("chip", "fit", table, "--chip", original, "-o", fitted, "--per-column",
        "--plot", out / "fit.png")

    chips = [original, measured, fitted]
    print(f"\n== 5. {', '.join(c.name for c in chips)} on {MODEL.name}, {args.limit} images, "
          f"{args.seeds} seeds")
    run("compare", MODEL, "--chips", *chips, "--data", "fashion-mnist", "--limit", args.limit,
        "--seeds", args.seeds)


def _relative(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path, folder.resolve())).as_posix()


if __name__ == "__main__":
    main()

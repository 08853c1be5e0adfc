"""``asimc golden`` and ``asimc compare``: the product's main job on real data."""
from __future__ import annotations

import argparse
import csv
import math
import sys

from ..errors import EXIT_FAILED_CHECK, UsageError
from ..report.table import render_table
from ..report.units import count as _count, decibels as _db, engineering as _eng, percent as _pct
from .common import (Progress, fraction, positive_int, print_json, print_warnings, seed_count,
                     writable_path, write_report)
from .compile import add_compile_options, compile_from_args


def _add_data_options(p) -> None:
    p.add_argument("--data", required=True, metavar="DATA",
                   help="digits (scikit-learn's 8x8 digits, test split), fashion-mnist (its "
                        "10,000 test images; fashion-mnist:train, the 60,000), idx:DIR (MNIST-"
                        "format IDX files), an .npz with x and y, an .npy, or an image folder "
                        "with class sub-folders")
    p.add_argument("--limit", type=positive_int, metavar="N", help="use the first N samples")
    p.add_argument("--batch-size", type=positive_int, default=256, metavar="B",
                   help="samples per run (the unit of per-tensor dynamic input scales; "
                        "default 256)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--report", metavar="OUT.html",
                   help="also write a self-contained HTML report with tables and figures")
    p.add_argument("--plot", type=_plot_path, metavar="FILE.{png,svg,pdf}",
                   help="also write the figures to FILE (format from the extension)")
    images = p.add_argument_group("image folders and normalisation")
    images.add_argument("--image-size", type=_size, metavar="HxW",
                        help="resize every image to H x W pixels (e.g. 32x32)")
    images.add_argument("--grayscale", action=argparse.BooleanOptionalAction, default=None,
                        help="convert images to one channel (default: when all are gray)")
    images.add_argument("--mean", type=_floats, metavar="M[,M...]",
                        help="subtract this mean (one value, or one per channel)")
    images.add_argument("--std", type=_floats, metavar="S[,S...]",
                        help="divide by this standard deviation (one value or per channel)")


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().replace("*", "x").split("x")
    if len(parts) == 1:
        parts = parts * 2
    try:
        height, width = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 32x32") from None
    return height, width


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of "
                                         "numbers") from None


def _plot_path(text: str) -> str:
    from ..report.figures import plot_path
    try:
        return plot_path(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _dataset_options(args) -> dict:
    options = {"image_size": args.image_size, "grayscale": args.grayscale,
               "mean": args.mean, "std": args.std}
    return {k: v for k, v in options.items() if v is not None}


def _golden(args) -> int:
    from ..golden import golden_ladder
    writable_path(args.report, "report")
    program = compile_from_args(args.model, args.chip, args)
    with Progress(5, "golden ladder") as bar:
        result = golden_ladder(args.model, program, args.data, limit=args.limit,
                               seed=args.seed, batch_size=args.batch_size,
                               min_agreement=args.min_agreement, device=args.device,
                               on_step=bar.callback(), dataset_options=_dataset_options(args))
    if args.report:
        from ..report.pages import golden_page
        _write_report(args.report, golden_page(result))
    if args.plot:
        from ..report.figures import golden_figure
        _write_plot(args.plot, golden_figure(result))
    if args.json:
        print_json(result)
    else:
        print(f"golden ladder: {result['model']} on chip \"{result['chip']}\", "
              f"{result['samples']} samples of {result['data']}, seed {result['seed']}")
        rows = []
        for r in result["rungs"]:
            verdict = "PASS" if r["passed"] else ("FAIL" if r["must_hold"] else "fail")
            numbers = [f"max|diff| {r['max_abs_diff']:.3g}", f"rel {r['max_rel_diff']:.3g}"] \
                if r["name"].startswith("fp32") else \
                [f"SQNR {_db(r['sqnr_db'])}", f"agreement {_pct(r['agreement'])}"]
            if r.get("accuracy") is not None:
                numbers.append(f"accuracy {_pct(r['reference_accuracy'])} -> "
                               f"{_pct(r['accuracy'])}")
            if r["name"] == "int vs ideal acim":
                numbers.append("bit-identical" if r["bit_identical"] else "NOT bit-identical")
            rows.append([verdict, r["name"], "; ".join(numbers), r["criterion"]
                         + ("" if r["must_hold"] else " (measurement)")])
        print(render_table(["", "rung", "numbers", "criterion"], rows))
        print()
        print("per-layer SQNR against int (which layer loses most):")
        finite = [l["sqnr_db"] for l in result["layers"] if math.isfinite(l["sqnr_db"])]
        worst = min(finite) if len(finite) > 1 else None
        print(render_table(
            ["layer", "op", "ideal acim", "noisy acim", "inputs clipped", ""],
            [[l["name"], l["op_type"], _db(l["ideal_sqnr_db"]), _db(l["sqnr_db"]),
              _pct(l["clipped_inputs"]),
              "<- worst" if l["sqnr_db"] == worst else ""]
             for l in result["layers"]]))
        print_warnings(result["warnings"])
        print(f"\n{'PASS' if result['passed'] else 'FAIL'}: every rung that must hold "
              f"{'holds' if result['passed'] else 'does not hold'}")
    return 0 if result["passed"] else EXIT_FAILED_CHECK


def _compare(args) -> int:
    from ..compare import compare_chips, steps_for
    from .compile import input_shapes
    writable_path(args.report, "report")
    with Progress(steps_for(args.chips, args.seeds), "comparing chips") as bar:
        rows = compare_chips(args.model, args.chips, args.data, seeds=args.seeds,
                             limit=args.limit, batch_size=args.batch_size,
                             digital=args.digital, mapping=args.mapping,
                             calibrate=args.calibrate, device=args.device,
                             on_step=bar.callback(), dataset_options=_dataset_options(args),
                             input_shape=input_shapes(args))
    if args.report:
        from ..report.pages import compare_page
        _write_report(args.report, compare_page(rows, model=args.model, data=args.data,
                                                seeds=args.seeds))
    if args.plot:
        from ..report.figures import compare_figure
        _write_plot(args.plot, compare_figure(
            rows, title=f"{args.model}, data {args.data}, {args.seeds} noise seed(s)"))
    if args.json:
        print_json(rows)
    elif args.csv:
        from ..compare import ROW_FIELDS
        writer = csv.DictWriter(sys.stdout, fieldnames=ROW_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        print_warnings(_chip_warnings(rows), sys.stderr)
    else:
        print(render_compare(rows, args))
        print_warnings(_chip_warnings(rows))
    return 0


def _chip_warnings(rows) -> list[str]:
    return [f"{r['chip']}: {w}" for r in rows for w in r.get("warnings", ())]



def _write_report(path: str, text: str) -> None:
    write_report(path, text)
    print(f"wrote {path}", file=sys.stderr)


def _write_plot(path: str, figure) -> None:
    from ..report.figures import save
    try:
        save(figure, path)
    except OSError as error:
        raise UsageError(f"{path}: cannot write the figure ({error.strerror})") from None
    print(f"wrote {path}", file=sys.stderr)


def render_compare(rows, args) -> str:
    table = []
    for r in rows:
        acc = _pct(r["accuracy_mean"])
        if r.get("seeds", 0) > 1 and r["accuracy_std"] is not None:
            acc += f" ± {100 * r['accuracy_std']:.2f}"
        table.append([r["chip"], r["precision"], acc, _pct(r["agreement"]), _db(r["sqnr_db"]),
                      _count(r.get("adc_conversions")), _count(r.get("cycles")),
                      _eng(r.get("energy_j"), "J"),
                      "-" if r.get("tops_per_w") is None else f"{r['tops_per_w']:.3g}"])
    head = (f"{args.model} on {len(args.chips)} chip(s), data {args.data}"
            f"{f' (first {args.limit})' if args.limit else ''}, {args.seeds} noise seed(s); "
            "costs per inference")
    return "\n".join([head, render_table(
        ["chip", "precision", "accuracy", "agree w/ fp32", "SQNR vs fp32", "ADC conv", "cycles",
         "energy", "TOPS/W"], table), ""] + compare_legend(rows))


def compare_legend(rows) -> list[str]:
    """What the rows and empty cells of the compare table mean (printed under it)."""
    legend = ["agreement and SQNR: against the fp32 model's outputs (onnxruntime); the fp32 and "
              "int rows are baselines, without costs",
              "int: the model quantised like the chips it serves, exact integer products (no "
              "ADC, no noise):"]
    for r in rows:
        if r["chip"] == "int":
            chips = r.get("chips") or [r["source"].removeprefix("quantised like ")]
            legend.append(f"  int {r['precision']}: the baseline of {', '.join(chips)}")
    if any(r["chip"] not in ("fp32", "int") and r.get("energy_j") is None
           and not r.get("energy_figures") for r in rows):
        legend.append("energy and TOPS/W '-' on a chip row: its chip file gives no energy "
                      "figures (energy { mac ... adc ... })")
    return legend


def register(sub) -> None:
    p = sub.add_parser("golden", help="the golden-model ladder: FP32 -> float -> int -> ideal "
                                      "ACiM -> noisy ACiM",
                       description="Check each step from the FP32 model to the noisy chip on "
                                   "real data; exit 1 when a rung that must hold fails.")
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--chip", required=True, metavar="CHIP.acim")
    _add_data_options(p)
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--min-agreement", type=fraction, default=0.9, metavar="F",
                   help="top-1 agreement a measured rung needs to pass (default 0.9)")
    p.add_argument("--json", action="store_true")
    add_compile_options(p)
    p.set_defaults(func=_golden)

    p = sub.add_parser("compare", help="compare chips on one model and data set",
                       description="One row per chip: accuracy over noise seeds, agreement and "
                                   "SQNR against FP32, conversions, cycles and energy per "
                                   "inference; FP32 and int baselines as reference rows.")
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--chips", required=True, nargs="+", metavar="CHIP.acim")
    _add_data_options(p)
    p.add_argument("--seeds", type=seed_count, default=3, metavar="N",
                   help="noise seeds per chip (default 3)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--csv", action="store_true")
    add_compile_options(p)
    p.set_defaults(func=_compare)

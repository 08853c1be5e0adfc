"""``asimc golden`` and ``asimc compare``: the product's main job on real data."""
from __future__ import annotations

import argparse
import csv
import math
import sys

from ..errors import EXIT_FAILED_CHECK, UsageError
from ..report.table import render_table
from ..report.units import count as _count, decibels as _db, engineering as _eng, percent as _pct
from ..report.units import score as _score, score_spread as _score_spread
from .common import (Progress, fraction, positive_int, print_json, print_warnings, seed_count,
                     writable_path, write_report)
from .compile import add_compile_options, compile_from_args, compile_options


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


def _metric_option(text: str) -> str:
    """An argparse type: a name of the metrics registry (the error lists them all)."""
    from ..metrics import get_metric
    try:
        return get_metric(text).name
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_metric_option(p) -> None:
    from ..metrics import METRICS
    p.add_argument("--metric", type=_metric_option, metavar="NAME",
                   help="the score to report: " + "; ".join(
                       f"{m.name}: {m.description}" for m in METRICS.values())
                   + " (default: top1 when the data have labels and the model outputs class "
                     "scores, else cosine with sqnr beside it)")


def _golden(args) -> int:
    from ..golden import RungKind, golden_ladder
    writable_path(args.report, "report")
    program = compile_from_args(args.model, args.chip, args)
    with Progress(5, "golden ladder") as bar:
        golden = golden_ladder(args.model, program, args.data, limit=args.limit,
                               seed=args.seed, batch_size=args.batch_size,
                               min_agreement=args.min_agreement, device=args.device,
                               on_step=bar.callback(), dataset_options=_dataset_options(args),
                               metric=args.metric)
    result = golden.as_dict()
    if args.report:
        from ..report.pages import golden_page
        _write_report(args.report, golden_page(result))
    if args.plot:
        from ..report.figures import golden_figure
        _write_plot(args.plot, golden_figure(result))
    if args.json:
        print_json(result)
    else:
        print(f"golden ladder: {golden.model} on chip \"{golden.chip}\", "
              f"{golden.samples} samples of {golden.data}, seed {golden.seed}")
        rows = []
        for r in golden.rungs:
            verdict = "PASS" if r.passed else ("FAIL" if r.must_hold else "fail")
            numbers = [f"max|diff| {r.max_abs_diff:.3g}", f"rel {r.max_rel_diff:.3g}"] \
                if r.kind is RungKind.IMPORT else [f"SQNR {_db(r.sqnr_db)}"]
            # Top-1 figures with a top-1 metric only (they mean nothing on an embedding).
            if r.kind is not RungKind.IMPORT:
                if golden.metric in ("cosine", "mse"):
                    numbers.append(_score_text(golden.metric, r.score, r.score_worst))
                if golden.metric in ("top1", "agreement"):
                    numbers.append(f"agreement {_pct(r.agreement)}")
            if r.accuracy is not None and golden.metric == "top1":
                numbers.append(f"accuracy {_pct(r.reference_accuracy)} -> "
                               f"{_pct(r.accuracy)}")
            if r.kind is RungKind.ADC:
                numbers.append("bit-identical" if r.bit_identical else "NOT bit-identical")
            rows.append([verdict, r.name, "; ".join(numbers), r.criterion
                         + ("" if r.must_hold else " (measurement)")])
        print(render_table(["", "rung", "numbers", "criterion"], rows))
        print()
        print("per-layer SQNR against int (which layer loses most), and why: the input range "
              "the layer uses\n(RMS of its integer inputs over the largest level) and the "
              "array's own SQNR on the layer's\ninputs (converted sums against exact integer "
              "products: the ADC, then ADC and noise)")
        finite = [l.sqnr_db for l in golden.layers if math.isfinite(l.sqnr_db)]
        worst = min(finite) if len(finite) > 1 else None
        print(render_table(
            ["layer", "op", "ideal acim", "noisy acim", "inputs clipped", "input range used",
             "array SQNR ideal", "array SQNR noisy", ""],
            [[l.name, l.op_type, _db(l.ideal_sqnr_db), _db(l.sqnr_db),
              _pct(l.clipped_inputs), _pct(l.input_range_used), _db(l.ideal_array_sqnr_db),
              _db(l.array_sqnr_db), "<- worst" if l.sqnr_db == worst else ""]
             for l in golden.layers]))
        print_warnings(golden.warnings)
        print(f"\n{'PASS' if golden.passed else 'FAIL'}: every rung that must hold "
              f"{'holds' if golden.passed else 'does not hold'}")
    return 0 if golden.passed else EXIT_FAILED_CHECK


def _score_text(metric: str, value, worst=None) -> str:
    text = f"{metric} {_score(metric, value)}"
    return text + (f" (worst sample {_score(metric, worst)})" if worst is not None else "")


def compare_rows(comparison) -> list[dict]:
    """The rows of ``asimc compare --json`` (and of the CSV, the HTML page and the figures)."""
    from ..evaluation import RowKind
    rows = []
    for r in comparison.rows:
        row = {"chip": r.name, "kind": r.kind.value, "precision": r.precision,
               "metric": r.metric, "score_mean": r.score_mean, "score_std": r.score_std}
        if r.score_worst is not None:
            row["score_worst"] = r.score_worst
        row.update({"accuracy_mean": r.accuracy_mean, "accuracy_std": r.accuracy_std,
                    "agreement": r.agreement, "sqnr_db": r.sqnr_db})
        if r.costs is not None:
            row.update({"adc_conversions": r.costs.adc_conversions, "cycles": r.costs.cycles,
                        "energy_j": r.costs.energy_j, "tops_per_w": r.costs.tops_per_w})
        row.update({"seeds": r.seeds, "source": r.source})
        if r.kind is RowKind.INT:
            row["chips"] = list(r.baseline_of)
        elif r.kind is RowKind.CHIP:
            row["energy_figures"] = r.costs.energy_figures
            row["warnings"] = list(r.warnings)
        rows.append(row)
    return rows


def _compare(args) -> int:
    from ..compare import compare_chips, steps_for
    from .compile import input_shapes
    writable_path(args.report, "report")
    with Progress(steps_for(args.chips, args.seeds), "comparing chips") as bar:
        comparison = compare_chips(args.model, args.chips, args.data, seeds=args.seeds,
                                   limit=args.limit, batch_size=args.batch_size,
                                   **compile_options(args), device=args.device,
                                   on_step=bar.callback(),
                                   dataset_options=_dataset_options(args),
                                   input_shape=input_shapes(args), metric=args.metric)
    rows = compare_rows(comparison)
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
        print_warnings(comparison.warnings(), sys.stderr)
    else:
        print(render_compare(comparison, args))
        print_warnings(comparison.warnings())
    return 0


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


def render_compare(comparison, args) -> str:
    from ..metrics import METRICS
    metric = comparison.metric
    top1 = metric == "top1"
    # Top-1 figures with top1 only (they mean nothing on an embedding); SQNR beside any metric.
    show_agreement = top1
    show_worst = metric == "cosine"
    table = []
    for r in comparison.rows:
        score = _score(metric, r.score_mean)
        if r.seeds > 1 and r.score_std is not None:
            score += f" ± {_score_spread(metric, r.score_std)}"
        cells = [r.name, r.precision, score]
        if show_worst:
            cells.append(_score(metric, r.score_worst))
        if show_agreement:
            cells.append(_pct(r.agreement))
        if metric != "sqnr":
            cells.append(_db(r.sqnr_db))
        costs = r.costs
        cells += [_count(costs and costs.adc_conversions), _count(costs and costs.cycles),
                  _eng(costs and costs.energy_j, "J"),
                  "-" if costs is None or costs.tops_per_w is None else f"{costs.tops_per_w:.3g}"]
        table.append(cells)
    headers = ["chip", "precision", METRICS[metric].title] \
        + (["worst sample"] if show_worst else []) \
        + (["agree w/ fp32"] if show_agreement else []) \
        + (["SQNR vs fp32"] if metric != "sqnr" else []) \
        + ["ADC conv", "cycles", "energy", "TOPS/W"]
    head = (f"{args.model} on {len(args.chips)} chip(s), data {args.data}"
            f"{f' (first {args.limit})' if args.limit else ''}, {args.seeds} noise seed(s); "
            + ("" if top1 else f"metric {metric} ({METRICS[metric].description}); ")
            + "costs per inference")
    return "\n".join([head, render_table(headers, table), ""] + compare_legend(comparison))


def compare_legend(comparison) -> list[str]:
    """What the rows and empty cells of the compare table mean (printed under it)."""
    legend = ["agreement and SQNR: against the fp32 model's outputs (onnxruntime); the fp32 and "
              "int rows are baselines, without costs"
              if comparison.metric in ("top1", "agreement") else
              "cosine, SQNR and MSE: against the fp32 model's outputs (onnxruntime); the fp32 "
              "and int rows are baselines, without costs",
              "int: the model quantised like the chips it serves, exact integer products (no "
              "ADC, no noise):"]
    for r in comparison.baselines:
        legend.append(f"  int {r.precision}: the baseline of {', '.join(r.baseline_of)}")
    if any(r.costs.energy_j is None and not r.costs.energy_figures for r in comparison.chips):
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
                   help="top-1 agreement (the mean cosine, with --metric cosine, sqnr or mse) "
                        "a measured rung needs to pass (default 0.9)")
    p.add_argument("--json", action="store_true")
    add_metric_option(p)
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
    add_metric_option(p)
    add_compile_options(p)
    p.set_defaults(func=_compare)

"""``asimc sweep`` (run a design-space sweep into a database) and ``asimc sweep show``."""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys

from ..errors import UsageError
from ..report.table import render_table
from ..report.units import percent as _pct
from .common import positive_int, print_json, seed_count, worker_count, write_report
from .compile import add_compile_options, compile_options

_SHOW_HELP = "show a sweep database: table, JSON/CSV, Pareto front, best point, figures"


class _SweepParser(argparse.ArgumentParser):
    """``asimc sweep MODEL ...`` runs; ``asimc sweep show DB ...`` goes to the show parser."""

    show_parser: argparse.ArgumentParser | None = None

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        if args and args[0] == "show" and self.show_parser is not None:
            return self.show_parser.parse_known_args(args[1:], namespace)
        return super().parse_known_args(args, namespace)


def _add_output(p, *, report: bool) -> None:
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the rows as JSON")
    out.add_argument("--csv", action="store_true", help="print the rows as CSV")
    from .evaluate import add_metric_option
    add_metric_option(p)
    p.add_argument("--pareto", metavar="OBJ:max|min,OBJ:max|min",
                   help="objectives of the Pareto front (accuracy, agreement, sqnr, cosine, mse, "
                        "score, energy, conversions, cycles, tops_per_w); default the metric "
                        "(accuracy:max for top1) and energy:min, or conversions:min where the "
                        "chip has no energy figures")
    from ..sweep.answers import BEST_GRAMMAR
    p.add_argument("--best", metavar="RULE", help="mark the cheapest done point satisfying "
                   "RULE. " + BEST_GRAMMAR.replace("\n", " "))
    p.add_argument("--sort", metavar="COLUMN",
                   help="sort the points by a column (accuracy, energy, conversions, ...)")
    if report:      # the run parser has --report and --plot from the data options
        p.add_argument("--report", metavar="OUT.html",
                       help="write a self-contained HTML page with the table and the figures")
        from .evaluate import _plot_path
        p.add_argument("--plot", type=_plot_path, metavar="OUT.{png,svg,pdf}",
                       help="write the figures (one file; several figures go on one page)")


def _context(args):
    from ..sweep.evaluate import Context
    from .evaluate import _dataset_options
    data = args.data
    if os.path.exists(data):
        data = os.path.abspath(data)
    options = compile_options(args)
    for name in ("input_scales", "smooth"):        # data paths: from any working directory
        if options[name] and os.path.exists(options[name]):
            options[name] = os.path.abspath(options[name])
    return Context(model=os.path.abspath(args.model), data=data, limit=args.limit,
                   batch_size=args.batch_size,
                   dataset_options=tuple(sorted(_dataset_options(args).items())),
                   device=args.device, **options)


def _run(args) -> int:
    from ..sweep.grid import parse_vary
    from ..sweep.run import Progress, SweepSpec, run_sweep
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit {args.limit}: give at least 1 sample")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size {args.batch_size}: give at least 1")
    if args.device not in ("cpu",) and not args.device.startswith("cuda"):
        raise UsageError(f"--device {args.device!r}: expected cpu or cuda")
    if args.device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            from ..errors import DeviceError
            raise DeviceError("--device cuda: no CUDA device is available to torch here")
    # Everything the user typed is checked before the database is touched.
    axes = tuple(parse_vary(v) for v in args.vary)
    _answers_options(args)
    spec = SweepSpec(model=args.model, chip=args.chip, db=args.db, context=_context(args),
                     axes=axes, zip_axes=args.zip, random_count=args.random, seeds=args.seeds,
                     fresh=args.fresh, engine=args.engine, workers=args.workers,
                     ray_address=args.ray_address, metric=args.metric)
    summary = run_sweep(spec, Progress())
    if summary.interrupted:
        print(f"interrupted: {summary.done} of {summary.points - summary.invalid} point(s) "
              f"are done and stored in {args.db}; run the same command again to resume",
              file=sys.stderr)
        return 130
    print(f"{summary.points} point(s): {summary.done} done, {summary.failed} failed, "
          f"{summary.invalid} invalid; {summary.evaluated} evaluated now", file=sys.stderr)
    if summary.failed:
        print("failed points are retried when the same command runs again", file=sys.stderr)
    _answer(args.db, args)
    return 0


def _answers_options(args):
    from ..sweep.answers import parse_best, parse_objectives
    objectives = parse_objectives(args.pareto) if args.pareto else None
    rule = parse_best(args.best) if args.best else None
    return objectives, rule


def _show(args) -> int:
    if args.resolved and args.chip_point is None:
        raise UsageError("--resolved prints one point's chip: give it with --chip POINT")
    if args.chip_point is not None:
        return _print_point(args)
    _answer(args.db, args)
    return 0


def _print_point(args) -> int:
    from ..sweep.store import read_sweep
    sweep = read_sweep(args.db)
    point = next((p for p in sweep["points"] if str(p["id"]) == args.chip_point), None)
    if point is None:
        ids = [str(p["id"]) for p in sweep["points"]]
        raise UsageError(f"--chip {args.chip_point}: no such point in {args.db} (points "
                         f"{ids[0] if ids else '-'} to {ids[-1] if ids else '-'})")
    params = " ".join(f"{k}={v}" for k, v in point["params"].items())
    if not point["valid"]:
        raise UsageError(f"point {point['id']} ({params}) is not a valid chip: "
                         f"{point['message']}")
    print(f"# point {point['id']} of {args.db}: {params}")
    sys.stdout.write(point["chip_text"] if args.resolved or not point["child_text"]
                     else point["child_text"])
    return 0


def _answer(db: str, args) -> None:
    from ..sweep import answers
    from ..sweep.store import read_sweep
    objectives, rule = _answers_options(args)
    sweep = read_sweep(db)
    rows = answers.build_rows(sweep, args.metric)
    objectives = objectives or answers.default_objectives(rows)
    answers.mark_pareto(rows, objectives)
    best = answers.find_best(rows, rule) if rule else None
    if getattr(args, "sort", None):
        rows = answers.sort_rows(rows, args.sort)
    if args.plot or args.report:
        from ..sweep import figures
        if args.plot:
            figure = figures.sweep_figure(sweep, rows, objectives, rule, best)
            if figure is None:
                raise UsageError(f"{args.plot}: nothing to plot yet (no point is done)")
            try:
                figures.save(figure, args.plot)
            except OSError as error:
                raise UsageError(f"{args.plot}: cannot write the figure "
                                 f"({error.strerror or error})") from None
            print(f"wrote {args.plot}", file=sys.stderr)
        if args.report:
            from ..sweep.report import sweep_page
            figs = figures.make_figures(sweep, rows, objectives, rule, best)
            write_report(args.report, sweep_page(sweep, rows, objectives, rule, best, figs))
            print(f"wrote {args.report}", file=sys.stderr)
    public = [{k: r.get(k) for k in answers.ROW_FIELDS} for r in rows]
    if args.json:
        print_json(public)
    elif args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=answers.ROW_FIELDS)
        writer.writeheader()
        for r in public:
            writer.writerow({**r, "params": json.dumps(r["params"])})
    else:
        print(render_rows(sweep, rows, objectives))
    if rule is not None and not args.json and not args.csv:
        print()
        print(_best_line(rule, best, rows))
    elif rule is not None and best is None:
        print(_best_line(rule, best, rows), file=sys.stderr)


def _best_line(rule, best, rows) -> str:
    if best is None:
        done = sum(1 for r in rows if r["point"] not in ("fp32", "int") and r["status"] == "done")
        return (f"best ({rule.text}): no point qualifies ({done} done point(s) checked)")
    params = " ".join(f"{k}={v}" for k, v in best["params"].items())
    metric = best["metric"]
    score = f"accuracy {_pct(best['accuracy_mean'])}" if metric == "top1" else \
        f"{metric} {_score(metric, best['score_mean'])}"
    return (f"best ({rule.text}): point {best['point']} {params}: {score}, energy "
            f"{_eng(best['energy_j'])}, {_count(best['adc_conversions'])} conversions")


def _db(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return "exact" if v == math.inf else f"{v:.1f} dB"


def _eng(v) -> str:
    from .evaluate import _eng as eng
    return eng(v, "J")


def _count(v) -> str:
    from .evaluate import _count as count
    return count(v)


def _score(metric, v) -> str:
    from ..report.units import score
    return score(metric, v)


def render_rows(sweep: dict, rows: list[dict], objectives) -> str:
    from ..metrics import METRICS
    from ..report.units import score_spread
    meta = sweep["meta"]
    axes = meta.get("axes", [])
    metric = rows[0]["metric"] if rows else "top1"
    top1 = metric == "top1"
    show_worst = metric == "cosine"
    show_agreement = top1          # (a top-1 figure means nothing on an embedding)
    table = []
    for r in rows:
        baseline = r["point"] in ("fp32", "int")
        # A baseline has no field values: its precision goes in the precision column.
        params = ["" if baseline else r["params"].get(a, "") for a in axes]
        score = _score(metric, r["score_mean"])
        if r["seeds_done"] > 1 and r["score_std"] is not None:
            score += f" ± {score_spread(metric, r['score_std'])}"
        cells = [str(r["point"]), *params, r["precision"] or "-", r["status"], score]
        if show_worst:
            cells.append(_score(metric, r["cosine_worst"]))
        if show_agreement:
            cells.append(_pct(r["agreement"]))
        if metric != "sqnr":
            cells.append(_db(r["sqnr_db"]))
        table.append(cells + [_count(r["adc_conversions"]), _count(r["cycles"]),
                              _eng(r["energy_j"]),
                              ("*" if r["pareto"] else "") + (" best" if r["best"] else "")])
    headers = ["point", *axes, "precision", "status", METRICS[metric].title] \
        + (["worst sample"] if show_worst else []) \
        + (["agree w/ fp32"] if show_agreement else []) \
        + (["SQNR"] if metric != "sqnr" else []) \
        + ["ADC conv", "cycles", "energy", "front"]
    limit = f" (first {meta['limit']})" if meta.get("limit") else ""
    front = ", ".join(f"{o.name}:{'max' if o.maximize else 'min'}" for o in objectives)
    head = (f"sweep of {meta.get('model')} on {meta.get('chip')}, data {meta.get('data')}"
            f"{limit}, {meta.get('seeds')} seed(s)"
            + ("" if top1 else f", metric {metric}")
            + f"; * = Pareto front ({front})")
    invalid = [r for r in rows if r["status"] in ("invalid", "failed")]
    notes = [f"point {r['point']} {r['status']}: {r['message'].splitlines()[0][:300]}"
             for r in invalid]
    return "\n".join([head, render_table(headers, table)] + notes)


def register(sub) -> None:
    from .evaluate import _add_data_options
    epilog = ("VALUES: a list (6,7,8; serial,parallel 2,parallel 4), or a range START:STOP:STEP "
              "with both ends included and its unit (0:1:0.25 lsb, 0%:2%:0.5%). FIELD: a chip "
              "field such as adc.bits, array.rows, noise.random, noise.nonlinear, input.bits, "
              "input.encoding, weight.bits, hybrid.digital_levels, voting.levels, "
              "voting.samples, domain.alpha, or one inside a layer override: "
              "layer[\"Conv\"].adc.bits. Rerunning the same command computes only what the "
              "database lacks. `asimc sweep show SWEEP.db --help` for the answers.")
    saved = sub._parser_class
    sub._parser_class = _SweepParser
    try:
        p = sub.add_parser(
            "sweep", help="design-space sweep over chip variants, durable and resumable "
                          "(`sweep show DB` for the answers)",
            usage="asimc sweep MODEL.onnx --chip BASE.acim --data DATA --db SWEEP.db "
                  "[--vary FIELD=VALUES]... [options]\n       asimc sweep show SWEEP.db "
                  "[options]",
            description="Evaluate every point of a grid of chip variants (the base chip with "
                        "each point's values applied) on a model and data set, one database row "
                        "per (point, seed), committed as it finishes.", epilog=epilog)
    finally:
        sub._parser_class = saved
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--chip", required=True, metavar="BASE.acim", help="the base chip")
    p.add_argument("--db", required=True, metavar="SWEEP.db",
                   help="the SQLite database the results go to (created if missing)")
    p.add_argument("--vary", action="append", default=[], metavar="FIELD=VALUES",
                   help="a chip field and its values (repeatable: several form the full grid)")
    p.add_argument("--zip", action="store_true",
                   help="pair the values of the --vary options instead of the full grid")
    p.add_argument("--random", type=positive_int, metavar="N",
                   help="draw N points from the grid (always the same N for the same grid)")
    p.add_argument("--seeds", type=seed_count, default=3, metavar="N",
                   help="noise seeds per point (default 3)")
    p.add_argument("--fresh", action="store_true",
                   help="delete the database's results and start over")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local worker processes (default) or a Ray cluster (asimc[ray])")
    p.add_argument("--workers", type=worker_count, metavar="N",
                   help="parallel workers (default: the number of cores)")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster (default: start a local one)")
    _add_data_options(p)
    _add_output(p, report=False)
    add_compile_options(p)
    p.set_defaults(func=_run)

    show = argparse.ArgumentParser(
        prog="asimc sweep show", description=_SHOW_HELP[0].upper() + _SHOW_HELP[1:] +
        ". Works while a sweep is writing the database.")
    show.add_argument("db", metavar="SWEEP.db")
    show.add_argument("--chip", dest="chip_point", metavar="POINT",
                      help="print one point as the chip it is: a child chip that extends the "
                           "base with the point's values (save it to rerun the point with "
                           "`asimc compare` or `asimc golden`)")
    show.add_argument("--resolved", action="store_true",
                      help="with --chip: print the point's fully resolved canonical chip text "
                           "(every field, no extends)")
    _add_output(show, report=True)
    show.set_defaults(func=_show)
    p.show_parser = show

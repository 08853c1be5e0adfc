"""``asimc calibrate``: per-layer ADC ranges from data, written as a chip that extends the input
chip (see ``asimc/passes/adc_range.py``)."""
from __future__ import annotations

import math
import os
from pathlib import Path

from ..errors import UsageError
from ..report.table import render_table
from .common import print_json
from .compile import add_compile_options, compile_options
from .evaluate import _add_data_options, _dataset_options, _db, _pct


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate", help="choose each layer's ADC range from data; write a chip that extends "
                          "CHIP with one layer override per layer",
        description="Run MODEL on DATA with the chip's noise off, record the pre-ADC value of "
                    "every conversion of every on-chip layer, choose one ADC range per layer "
                    "(the P-th percentile, or the range of least quantisation error) and write "
                    "OUT.acim: CHIP extended by one `layer \"NODE\" { adc { full_scale X% } }` "
                    "per layer. Prints each layer's output SQNR (against the exact integer "
                    "product) before and after.")
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--chip", required=True, metavar="CHIP.acim")
    _add_data_options(p)
    p.add_argument("--percentile", type=float, default=None, metavar="P",
                   help="the percentile of pre-ADC values the range covers (default 99.99)")
    p.add_argument("--method", choices=("percentile", "mse"), default="percentile",
                   help="percentile (default) or mse: the range of least output quantisation "
                        "error")
    p.add_argument("--pow2", action="store_true",
                   help="round every range down to a power-of-two fraction (ranges differ by "
                        "shifts)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.acim")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_compile_options(p)
    p.set_defaults(func=_calibrate)


def _calibrate(args) -> int:
    from ..chip.format import layer_lines, quote
    from ..chip.resolve import load_chip
    from ..chip.spec import LayerOverride
    from ..compiler import compile as compile_model
    from ..evaluate import accuracy, load_eval_data, sqnr_db, without_noise
    from ..passes import adc_range

    percentile = adc_range.DEFAULT_PERCENTILE if args.percentile is None else args.percentile
    if not 0 < percentile <= 100:
        raise UsageError(f"--percentile must be in (0, 100], not {percentile:g}")
    if args.percentile is not None and args.method != "percentile":
        raise UsageError("--percentile applies to --method percentile only")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, not {args.limit}")
    output = Path(args.output)
    if output.suffix != ".acim":
        raise UsageError(f"the output {args.output!r} must be a chip file ending in .acim")

    spec = load_chip(args.chip)
    base = adc_range.without_calibrated(spec)

    def compiled(chip):
        return compile_model(args.model, chip, **compile_options(args))

    program = compiled(base)
    on_chip = [l for l in program.layers.values() if l.on_chip]
    if not on_chip:
        raise UsageError("no layer of the model runs on the array: nothing to calibrate")
    data = load_eval_data(program, args.data, limit=args.limit, **_dataset_options(args))
    ideal = without_noise(program)

    recorder = adc_range.ConversionRecorder()
    ints, before = {}, {}
    before_out, int_out = [], []
    for batch in data.batches(args.batch_size):
        exact = program.run(batch, mode="int", taps=True, device=args.device)
        run = ideal.run(batch, mode="acim", taps=True, device=args.device, kernel=recorder,
                        progress=recorder.progress)
        int_out.append(exact.output)
        before_out.append(run.output)
        for store, result in ((ints, exact), (before, run)):
            for name, value in result.taps.items():
                store.setdefault(name, []).append(value)

    pow2 = args.pow2 or base.adc.pow2
    ranges, rows = {}, []
    for layer in on_chip:
        conversions = recorder.layers[layer.node]
        fraction = adc_range.choose_fraction(conversions, method=args.method,
                                             percentile=percentile, pow2=pow2)
        ranges[layer.node] = adc_range.written_percent(fraction, pow2)
        rows.append((layer, adc_range.clipped_share(conversions, ranges[layer.node] / 100)))

    op_types = {l.op_type for l in program.layers.values()}
    overrides = adc_range.with_ranges(spec.__class__(name="x"), ranges, op_types).layers
    extends = os.path.relpath(os.path.abspath(args.chip), os.path.abspath(output.parent))
    how = (f"{args.method}" if args.method == "mse" else f"{percentile:g}th percentile") \
        + (", pow2" if pow2 else "")
    where = f"{args.data} ({data.size} samples)"
    text = [f"# Written by `asimc calibrate`: one ADC range per on-chip layer of "
            f"{Path(args.model).name}, chosen on {where}, {how}.",
            f"chip {quote(spec.name + '-calibrated')} extends {quote(extends)} {{",
            f"    description {quote(f'{spec.name}, ADC ranges calibrated on {where}')}"]
    for (layer, clipped), override in zip(rows, overrides):
        text.append(f"    # {layer.node} ({layer.op_type}): {_pct(clipped)} of its conversions "
                    "clip")
        text += layer_lines(override)
    text.append("}")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(text) + "\n", encoding="utf-8")

    calibrated = without_noise(compiled(load_chip(output)))      # the file, as written
    after, after_out = {}, []
    for batch in data.batches(args.batch_size):
        run = calibrated.run(batch, mode="acim", taps=True, device=args.device)
        after_out.append(run.output)
        for name, value in run.taps.items():
            after.setdefault(name, []).append(value)

    import numpy as np
    joined = {k: np.concatenate(v) for k, v in ints.items()}
    layers = []
    for layer, clipped in rows:
        reference = joined[layer.node]
        layers.append({"name": layer.node, "op_type": layer.op_type,
                       "full_scale_percent": ranges[layer.node], "clipped": clipped,
                       "sqnr_before_db": sqnr_db(np.concatenate(before[layer.node]), reference),
                       "sqnr_after_db": sqnr_db(np.concatenate(after[layer.node]), reference)})
    int_all = np.concatenate(int_out)
    result = {"chip": args.chip, "output": str(output), "data": data.description,
              "samples": data.size, "method": args.method, "percentile": percentile,
              "pow2": pow2, "layers": layers,
              "output_sqnr_before_db": sqnr_db(np.concatenate(before_out), int_all),
              "output_sqnr_after_db": sqnr_db(np.concatenate(after_out), int_all),
              "accuracy_before": accuracy(np.concatenate(before_out), data.labels),
              "accuracy_after": accuracy(np.concatenate(after_out), data.labels)}
    if args.json:
        print_json(result)
        return 0
    print(f"calibrated ADC ranges of chip \"{spec.name}\" for {args.model} on {where}, "
          f"{how}, noise off")
    print(render_table(
        ["layer", "op", "full_scale", "conversions clipped", "SQNR before", "SQNR after"],
        [[l["name"], l["op_type"], f"{l['full_scale_percent']:g}%", _pct(l["clipped"]),
          _db(l["sqnr_before_db"]), _db(l["sqnr_after_db"])] for l in layers]))
    line = (f"model output SQNR {_db(result['output_sqnr_before_db'])} -> "
            f"{_db(result['output_sqnr_after_db'])}")
    if result["accuracy_before"] is not None:
        line += (f"; top-1 accuracy {_pct(result['accuracy_before'])} -> "
                 f"{_pct(result['accuracy_after'])}")
    print(line + " (SQNR against the exact integer product, noise off)")
    print(f"wrote {output}")
    return 0

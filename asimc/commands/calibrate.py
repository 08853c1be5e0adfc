"""``asimc calibrate``: per-layer ADC ranges from data, written as a chip that extends the input
chip (see ``asimc/passes/adc_range.py``)."""
from __future__ import annotations

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
    from ..adc_calibration import calibrate_adc_ranges
    output = Path(args.output)
    if output.suffix != ".acim":
        raise UsageError(f"the output {args.output!r} must be a chip file ending in .acim")
    result = calibrate_adc_ranges(
        args.model, args.chip, args.data, method=args.method, percentile=args.percentile,
        pow2=args.pow2, limit=args.limit, batch_size=args.batch_size, device=args.device,
        dataset_options=_dataset_options(args), output=output, **compile_options(args))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(result.chip_text, encoding="utf-8")
    layers = [{"name": l.name, "op_type": l.op_type, "full_scale_percent": l.full_scale_percent,
               "clipped": l.clipped, "sqnr_before_db": l.sqnr_before_db,
               "sqnr_after_db": l.sqnr_after_db} for l in result.layers]
    if args.json:
        print_json({"chip": args.chip, "output": str(output), "data": result.data,
                    "samples": result.samples, "method": result.method,
                    "percentile": result.percentile, "pow2": result.pow2, "layers": layers,
                    "output_sqnr_before_db": result.output_sqnr_before_db,
                    "output_sqnr_after_db": result.output_sqnr_after_db,
                    "accuracy_before": result.accuracy_before,
                    "accuracy_after": result.accuracy_after})
        return 0
    how = (f"{result.method}" if result.method == "mse" else
           f"{result.percentile:g}th percentile") + (", pow2" if result.pow2 else "")
    print(f"calibrated ADC ranges of chip \"{result.base}\" "
          f"for {args.model} on {args.data} ({result.samples} samples), {how}, noise off")
    print(render_table(
        ["layer", "op", "full_scale", "conversions clipped", "SQNR before", "SQNR after"],
        [[l.name, l.op_type, f"{l.full_scale_percent:g}%", _pct(l.clipped),
          _db(l.sqnr_before_db), _db(l.sqnr_after_db)] for l in result.layers]))
    line = (f"model output SQNR {_db(result.output_sqnr_before_db)} -> "
            f"{_db(result.output_sqnr_after_db)}")
    if result.accuracy_before is not None:
        line += (f"; top-1 accuracy {_pct(result.accuracy_before)} -> "
                 f"{_pct(result.accuracy_after)}")
    print(line + " (SQNR against the exact integer product, noise off)")
    print(f"wrote {output}")
    return 0

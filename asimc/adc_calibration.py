"""Per-layer ADC ranges from data: the algorithm of ``asimc calibrate``, for the Python API too.

Run the model on the data with the chip's noise off, record the pre-ADC value of every
conversion of every on-chip layer (``asimc/passes/adc_range.py``), choose one ADC range per
layer (the P-th percentile of the values, or the range of least output quantisation error),
and measure each layer's output SQNR against the exact integer product before and after::

    calibration = asimc.calibrate_adc_ranges("model.onnx", "chips/lee.acim", "digits:train",
                                             output="lee-calibrated.acim")
    calibration.chip                 # the calibrated ChipSpec (one `layer` override per layer)
    calibration.chip_text            # the chip file: CHIP extended by the overrides
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .chip.spec import ChipSpec
from .errors import UsageError
from .evaluate import DEFAULT_BATCH, EvalData, check_labels, load_eval_data, without_noise
from .evaluation import ChipRun, run_chip, score_run
from .metrics import sqnr_db
from .passes.smooth import DEFAULT_ALPHA


@dataclass(frozen=True)
class LayerRange:
    """One on-chip layer's chosen range and its output SQNR (against int) before and after."""

    name: str
    op_type: str
    full_scale_percent: float
    clipped: float                 # share of its conversions the range clips
    sqnr_before_db: float
    sqnr_after_db: float


@dataclass(frozen=True)
class AdcCalibration:
    base: str                      # the name of the chip it extends
    chip: ChipSpec                 # the calibrated chip (as the written file resolves)
    chip_text: str                 # the chip file: the input chip extended by the overrides
    data: str
    samples: int
    method: str
    percentile: float
    pow2: bool
    layers: tuple[LayerRange, ...]
    output_sqnr_before_db: float
    output_sqnr_after_db: float
    accuracy_before: float | None
    accuracy_after: float | None

    @property
    def ranges(self) -> dict[str, float]:
        """Full scale in percent of the rows, by node."""
        return {l.name: l.full_scale_percent for l in self.layers}


def calibrate_adc_ranges(model, chip, data, *, method: str = "percentile",
                         percentile: float | None = None, pow2: bool = False,
                         limit: int | None = None, batch_size: int = DEFAULT_BATCH,
                         device: str = "cpu", digital=(), mapping=None, input_scales=None,
                         smooth=None, smooth_alpha: float = DEFAULT_ALPHA,
                         dataset_options=None, output: str | os.PathLike | None = None
                         ) -> AdcCalibration:
    """Choose every on-chip layer's ADC range for ``chip`` (a chip file) on ``data``.
    ``digital`` ... ``smooth_alpha``: as ``asimc.compile`` takes them.

    ``output``: where the chip file will be written (its ``extends`` is relative to it;
    default: the current folder). Nothing is written here."""
    from .chip.format import layer_lines, quote
    from .chip.resolve import load_chip, parse_chip
    from .compiler import compile as compile_model
    from .passes import adc_range

    if method not in adc_range.METHODS:
        raise UsageError(f"method is {' or '.join(adc_range.METHODS)}, not {method!r}")
    if percentile is not None and method != "percentile":
        raise UsageError("--percentile applies to --method percentile only")
    percentile = adc_range.DEFAULT_PERCENTILE if percentile is None else percentile
    if not 0 < percentile <= 100:
        raise UsageError(f"--percentile must be in (0, 100], not {percentile:g}")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, not {limit}")
    if isinstance(chip, ChipSpec):
        raise UsageError("give the chip as a file: the calibrated chip extends it")
    spec = load_chip(chip)
    base = adc_range.without_calibrated(spec)

    def compiled(target):
        return compile_model(model, target, digital=digital, mapping=mapping,
                             input_scales=input_scales, smooth=smooth,
                             smooth_alpha=smooth_alpha)

    program = compiled(base)
    on_chip = [l for l in program.layers.values() if l.on_chip]
    if not on_chip:
        raise UsageError("no layer of the model runs on the array: nothing to calibrate")
    eval_data = data if isinstance(data, EvalData) else \
        load_eval_data(program, data, limit=limit, **(dataset_options or {}))

    recorder = adc_range.ConversionRecorder()
    ints = run_chip(program, eval_data, mode="int", batch_size=batch_size, device=device,
                    taps=True)
    check_labels(eval_data.labels, ints.outputs[0], eval_data.description)
    before = run_chip(without_noise(program), eval_data, batch_size=batch_size, device=device,
                      taps=True, kernel=recorder, progress=recorder.progress)

    pow2 = pow2 or base.adc.pow2
    ranges, clipped = {}, {}
    for layer in on_chip:
        conversions = recorder.layers[layer.node]
        fraction = adc_range.choose_fraction(conversions, method=method,
                                             percentile=percentile, pow2=pow2)
        ranges[layer.node] = adc_range.written_percent(fraction, pow2)
        clipped[layer.node] = adc_range.clipped_share(conversions, ranges[layer.node] / 100)

    output = Path(output if output is not None else f"{spec.name}-calibrated.acim")
    op_types = {l.op_type for l in program.layers.values()}
    overrides = adc_range.with_ranges(spec.__class__(name="x"), ranges, op_types).layers
    extends = os.path.relpath(os.path.abspath(chip), os.path.abspath(output.parent))
    how = (f"{method}" if method == "mse" else f"{percentile:g}th percentile") \
        + (", pow2" if pow2 else "")
    where = f"{data if isinstance(data, (str, os.PathLike)) else eval_data.description} " \
            f"({eval_data.size} samples)"

    def chip_file(extends: str) -> str:
        text = [f"# Written by `asimc calibrate`: one ADC range per on-chip layer of "
                f"{Path(str(model)).name if not isinstance(model, bytes) else 'the model'}, "
                f"chosen on {where}, {how}.",
                f"chip {quote(spec.name + '-calibrated')} extends {quote(extends)} {{",
                f"    description {quote(f'{spec.name}, ADC ranges calibrated on {where}')}"]
        for layer, override in zip(on_chip, overrides):
            text.append(f"    # {layer.node} ({layer.op_type}): "
                        f"{100 * clipped[layer.node]:.2f}% of its conversions clip")
            text += layer_lines(override)
        return "\n".join(text + ["}"]) + "\n"

    chip_text = chip_file(extends)
    # The file as written, its `extends` made absolute (the output's folder may not exist yet).
    calibrated_chip = parse_chip(chip_file(os.path.abspath(chip)), filename=str(output))
    after = run_chip(without_noise(compiled(calibrated_chip)), eval_data,
                     batch_size=batch_size, device=device, taps=True)

    def output_scores(run: ChipRun):
        return score_run(run, ints.outputs[0], eval_data.labels)[0]

    layers = tuple(
        LayerRange(layer.node, layer.op_type, ranges[layer.node], clipped[layer.node],
                   sqnr_db(before.taps[0][layer.node], ints.taps[0][layer.node]),
                   sqnr_db(after.taps[0][layer.node], ints.taps[0][layer.node]))
        for layer in on_chip)
    first, last = output_scores(before), output_scores(after)
    return AdcCalibration(
        base=spec.name, chip=calibrated_chip, chip_text=chip_text, data=eval_data.description,
        samples=eval_data.size, method=method, percentile=percentile, pow2=pow2,
        layers=layers, output_sqnr_before_db=first.sqnr_db, output_sqnr_after_db=last.sqnr_db,
        accuracy_before=first.accuracy, accuracy_after=last.accuracy)


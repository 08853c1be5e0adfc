"""Loading evaluation data and running a model over it (the metrics are in asimc.metrics; one
chip over seeds, scored, is asimc.evaluation). Data go through the program in batches of
``batch_size`` (the unit of ASiM's default per-tensor dynamic input scales; per-sample or static
scales make results independent of it).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data.validate import labels_as_int64
from .errors import InputDataError, UsageError
from .program import Program

DEFAULT_BATCH = 256


@dataclass(frozen=True)
class EvalData:
    """Model-ready inputs (by input name) and optional labels."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None
    description: str

    @property
    def size(self) -> int:
        return len(next(iter(self.inputs.values())))

    def batches(self, batch_size: int):
        for start in range(0, self.size, batch_size):
            yield {k: v[start:start + batch_size] for k, v in self.inputs.items()}


def load_eval_data(program: Program, data, *, limit: int | None = None,
                   **dataset_options) -> EvalData:
    """``data``: a data-set spec (``digits``, .npz/.npy, an image folder) or an array.
    ``dataset_options`` go to ``asimc.data.load_dataset`` (image_size, grayscale, mean, std)."""
    return graph_eval_data(program.graph, data, limit=limit, **dataset_options)


def graph_eval_data(graph, data, *, limit: int | None = None, **dataset_options) -> EvalData:
    """``load_eval_data`` for a graph (before it is compiled: calibration, smoothing)."""
    from .data import fit_to_input, load_dataset
    if isinstance(data, np.ndarray):
        x, labels, description = data[:limit] if limit else data, None, "array"
    else:
        npz_inputs = _named_npz(graph, data)
        if npz_inputs is not None:
            inputs, labels = npz_inputs
            if limit:
                inputs = {k: v[:limit] for k, v in inputs.items()}
                labels = None if labels is None else labels[:limit]
            return EvalData(inputs, labels, str(data))
        dataset = load_dataset(str(data), limit=limit, **dataset_options)
        x, labels, description = dataset.x, dataset.y, dataset.description
    if len(graph.inputs) != 1:
        raise InputDataError(
            f"the model has {len(graph.inputs)} inputs ({', '.join(i.name for i in graph.inputs)}):"
            " give an .npz file with one array per input name (and optional labels `y`)")
    info = graph.inputs[0]
    return EvalData({info.name: fit_to_input(x, info.shape, info.dtype, info.name)}, labels,
                    description)


def _named_npz(graph, data):
    """An .npz whose arrays are named after the model's inputs: (inputs, labels) or None."""
    path = Path(str(data))
    if path.suffix != ".npz" or not path.is_file():
        return None
    names = [i.name for i in graph.inputs]
    with np.load(path, allow_pickle=False) as npz:
        if not all(n in npz.files for n in names):
            return None
        inputs = {n: npz[n] for n in names}
        samples = len(inputs[names[0]]) if inputs[names[0]].ndim else 0
        labels = labels_as_int64(npz["y"], samples, str(path)) if "y" in npz.files else None
    return inputs, labels


@dataclass
class ProgramRun:
    """A program's first output over a data set, its on-chip layers' outputs (with taps), how
    many inputs each layer's quantiser clipped, and each layer's ArrayStats (input range used;
    array SQNR with taps in acim mode)."""

    output: np.ndarray
    taps: dict[str, np.ndarray]
    clipped: dict[str, tuple[int, int]]
    stats: dict = field(default_factory=dict)


def check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise UsageError(f"the batch size must be a whole number >= 1, not {batch_size!r}")
    return int(batch_size)


def check_labels(labels: np.ndarray | None, outputs: np.ndarray, data: str) -> None:
    """Labels must name one of the model's classes: an out-of-range label would silently count
    as a miss and print a wrong accuracy."""
    if labels is None or not len(labels):
        return
    classes = outputs.reshape(len(outputs), -1).shape[1]
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= classes:
        bad = int(((labels < 0) | (labels >= classes)).sum())
        raise InputDataError(
            f"{data}: labels range from {low} to {high}, but the model's output has {classes} "
            f"class{'es' if classes != 1 else ''} (labels 0..{classes - 1}); {bad} label(s) "
            "are out of range: check that the labels belong to this model")


def run_program(program: Program, data: EvalData, *, mode: str, seed: int = 0,
                batch_size: int = DEFAULT_BATCH, taps: bool = False,
                device: str = "cpu", **run_options) -> ProgramRun:
    """``program.run`` over ``data`` batch by batch (``run_options``: its kernel, progress)."""
    batch_size = check_batch_size(batch_size)
    from .runtime.executor import merge_stats
    outputs, tapped, clipped, stats = [], {}, {}, []
    for batch in data.batches(batch_size):
        result = program.run(batch, mode=mode, seed=seed, taps=taps, device=device,
                             **run_options)
        outputs.append(result.output)
        stats.append(result.stats)
        for name, value in result.taps.items():
            tapped.setdefault(name, []).append(value)
        for name, (count, total) in result.clipped.items():
            before = clipped.get(name, (0, 0))
            clipped[name] = (before[0] + count, before[1] + total)
    return ProgramRun(np.concatenate(outputs), {k: np.concatenate(v) for k, v in tapped.items()},
                      clipped, merge_stats(stats))


def run_onnxruntime(model, data: EvalData, batch_size: int = DEFAULT_BATCH,
                    optimize: bool = True) -> np.ndarray:
    """The first output of the original model under onnxruntime (the FP32 reference).

    ``optimize=False`` runs the graph as written (no fusions): a QDQ model's QuantizeLinear,
    DequantizeLinear and float products exactly as ONNX defines them, not its int8 kernels."""
    import onnxruntime as ort
    source = model if isinstance(model, (bytes, str)) else str(model)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    batch_size = check_batch_size(batch_size)
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    outputs = [session.run(None, batch)[0] for batch in data.batches(batch_size)]
    return np.concatenate(outputs)


def without_noise(program: Program) -> Program:
    """The same program on the chip with its noise switched off (the ideal ACiM rung):
    no random or non-linear noise, no fixed-pattern mismatch, an ideal converter in place of a
    measured transfer table; the ADC (its bits and range) and gain compression stay."""
    from .chip.spec import MismatchSpec, NoiseSpec, Quantity

    def quiet(chip):
        domain = dataclasses.replace(chip.domain, cell_variation=Quantity(0.0, "%"))
        adc = dataclasses.replace(chip.adc, transfer="", transfer_sha256="")
        return dataclasses.replace(chip, noise=NoiseSpec(), domain=domain, adc=adc,
                                   mismatch=MismatchSpec())

    layers = {k: dataclasses.replace(l, chip=quiet(l.chip)) for k, l in program.layers.items()}
    return dataclasses.replace(program, chip=quiet(program.chip), layers=layers)


# -- metrics (asimc.metrics) -----------------------------------------------------------------

def accuracy(outputs: np.ndarray, labels: np.ndarray | None) -> float | None:
    """Top-1 accuracy against ``labels`` (None without labels)."""
    from .metrics import METRICS
    return None if labels is None else METRICS["top1"](outputs, labels=labels).value


def max_differences(values: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(max |a - b|, max |a - b| / max |b|)."""
    diff = float(np.abs(values.astype(np.float64) - reference).max(initial=0.0))
    scale = float(np.abs(reference).max(initial=0.0))
    return diff, diff / scale if scale else diff

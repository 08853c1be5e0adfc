"""How close a model's outputs are to what they should be: one registry of metrics.

Every metric scores a run's outputs (``(samples, ...)``, the model's first output) against the
labels or against the FP32 model's outputs (``reference``):

* ``top1``: the share of samples whose top-1 class is the label (needs labels);
* ``agreement``: the share of samples whose top-1 class is the FP32 model's;
* ``cosine``: per sample, the cosine of the output and the FP32 output; the mean, and the worst
  sample beside it;
* ``sqnr``: 10 log10(FP32 output power / error power) over the whole set, in dB;
* ``mse``: the mean squared error against the FP32 outputs.

The default follows the model and data: labels and class logits (one score per class per
sample) give ``top1``; anything else (an embedding, a sequence of token vectors) gives
``cosine``, with ``sqnr`` beside it. ``golden``, ``compare``, ``sweep`` and ``finetune`` take
``--metric NAME``; from Python, ``asimc.metrics.score("cosine", outputs, reference)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import InputDataError, UsageError


@dataclass(frozen=True)
class Score:
    """One metric's value on one run (``worst``: the worst sample, for per-sample metrics)."""

    metric: str
    value: float
    worst: float | None = None


@dataclass(frozen=True)
class Metric:
    name: str
    title: str                 # the column header in tables and figures
    description: str
    unit: str                  # "%" (a fraction shown in percent), "dB" or ""
    higher_is_better: bool
    needs_labels: bool
    needs_classes: bool        # only meaningful on class scores (top-1 metrics)
    _compute: Callable[..., Score]

    def __call__(self, outputs, reference=None, labels=None) -> Score:
        """Score ``outputs`` (numpy arrays or torch tensors, samples first) against ``labels``
        (top1) or the FP32 ``reference`` (the others)."""
        if self.needs_labels and labels is None:
            raise UsageError(f"the metric {self.name} needs labels; the data have none "
                             f"(use {', '.join(n for n, m in METRICS.items() if not m.needs_labels)}"
                             ", which compare with the FP32 model)")
        if not self.needs_labels and reference is None:
            raise UsageError(f"the metric {self.name} compares with the FP32 outputs: give "
                             "them (reference=...)")
        return self._compute(_array(outputs), None if reference is None else _array(reference),
                             None if labels is None else _array(labels))


def _array(values) -> np.ndarray:
    """A numpy array of ``values`` (torch tensors too, on any device)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _flat(outputs: np.ndarray) -> np.ndarray:
    return outputs.reshape(len(outputs), -1)


def top1_classes(outputs: np.ndarray) -> np.ndarray:
    return _flat(outputs).argmax(axis=1)


def sqnr_db(values: np.ndarray, reference: np.ndarray) -> float:
    """10 log10(signal power / error power) in dB; infinite when identical."""
    ref = reference.astype(np.float64)
    error = float(((values.astype(np.float64) - ref) ** 2).sum())
    signal = float((ref ** 2).sum())
    if error == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / error)


def cosines(outputs: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per sample: the cosine of the flattened output and reference (1 when both are zero,
    0 when only one is)."""
    a, b = _flat(outputs).astype(np.float64), _flat(reference).astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = (a * b).sum(axis=1)
    both_zero = ~a.any(axis=1) & ~b.any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 0.0)
    return np.clip(np.where(both_zero, 1.0, values), -1.0, 1.0)


def _top1(outputs, reference, labels) -> Score:
    return Score("top1", float((top1_classes(outputs) == labels).mean()))


def _agreement(outputs, reference, labels) -> Score:
    return Score("agreement", float((top1_classes(outputs) == top1_classes(reference)).mean()))


def _cosine(outputs, reference, labels) -> Score:
    values = cosines(outputs, reference)
    return Score("cosine", float(values.mean()), float(values.min()))


def _sqnr(outputs, reference, labels) -> Score:
    return Score("sqnr", sqnr_db(outputs, reference))


def _mse(outputs, reference, labels) -> Score:
    diff = outputs.astype(np.float64) - reference.astype(np.float64)
    return Score("mse", float((diff ** 2).mean()))


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("top1", "accuracy", "top-1 accuracy against the labels", "%", True, True, True, _top1),
    Metric("agreement", "agree w/ fp32", "top-1 agreement with the FP32 model", "%", True, False,
           True, _agreement),
    Metric("cosine", "cosine vs fp32",
           "per-sample cosine similarity with the FP32 output (the mean; the worst sample "
           "beside it)",
           "", True, False, False, _cosine),
    Metric("sqnr", "SQNR vs fp32", "output SQNR against the FP32 model (dB)", "dB", True, False,
           False, _sqnr),
    Metric("mse", "MSE vs fp32", "mean squared error against the FP32 output", "", False, False,
           False, _mse),
)}


def metric_names() -> str:
    return ", ".join(METRICS)


def get_metric(name: str) -> Metric:
    """The registered metric ``name``; a UsageError lists the registry otherwise."""
    metric = METRICS.get(name)
    if metric is None:
        raise UsageError(f"unknown metric {name!r}: expected one of {metric_names()} ("
                         + "; ".join(f"{m.name}: {m.description}" for m in METRICS.values())
                         + ")")
    return metric


def is_class_scores(outputs: np.ndarray) -> bool:
    """Whether a model's output looks like class scores: one vector of two or more scores per
    sample (``(N, C)``, or ``(N, C, 1, 1)``), not a sequence of vectors."""
    shape = [d for d in np.shape(outputs)[1:] if d != 1]
    return len(shape) == 1 and shape[0] >= 2


def choose_metric(name: str | None, reference: np.ndarray, labels: np.ndarray | None,
                  data: str = "the data") -> Metric:
    """The metric to report: ``name`` when given (``top1`` without labels is refused),
    else the default for this model and data (see the module's docstring)."""
    if name is not None:
        metric = get_metric(name)
        if metric.needs_labels and labels is None:
            raise InputDataError(
                f"--metric {name}: {data} has no labels (top1 needs them); use "
                "--metric agreement (top-1 against the FP32 model), cosine, sqnr or mse")
        return metric
    if labels is not None and is_class_scores(reference):
        return METRICS["top1"]
    return METRICS["cosine"]


def score(name: str, outputs: np.ndarray, reference: np.ndarray | None = None,
          labels: np.ndarray | None = None) -> Score:
    """``name``'s score of ``outputs`` (against ``labels`` for top1, else ``reference``)."""
    return get_metric(name)(outputs, reference, labels)

"""``asimc.training.finetune``: an ONNX model and a chip in, a model trained on that chip out.

1. compile the model for the chip; plan which initializers train (asimc.training.params);
2. measure the chip accuracy (mean and spread over noise seeds, as ``asimc compare`` does) and
   the FP32 accuracy (onnxruntime) on the evaluation data;
3. train: the compiled graph as a torch module, on-chip layers forward as the noise mode says
   (asimc.training.noise); the loss is the cross-entropy of the chip forward plus that of the
   float forward (which keeps the FP32 accuracy); SGD or Adam with a cosine learning-rate
   decay;
4. write the trained initializers back into the ONNX file by name, check it with the onnx
   checker, run it with onnxruntime against the torch module;
5. measure again.

A run is a pure function of (model, chip, data, options, seed): shuffling and the analytic
noise come from generators seeded from ``seed``; the exact mode's chip noise from
``Program.run`` seeds derived from it (never the evaluation seeds 0..seeds-1).
"""
from __future__ import annotations

import io
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch

from ..chip.spec import ChipSpec
from ..compiler import compile as compile_model
from ..data.validate import labels_as_int64
from ..errors import InputDataError, ModelError, UsageError
from ..evaluate import (EvalData, accuracy, check_labels, load_eval_data, run_onnxruntime,
                        run_program)
from ..evaluation import evaluate_chip
from .module import TRAIN_SEED_BASE, ChipModule
from .noise import ChipForward, NoiseModel, ScaleWindow
from .params import write_initializers

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class FinetuneOptions:
    epochs: int = 20
    lr: float = 3e-3
    optimizer: str = "adam"
    batch_size: int = 64
    seed: int = 0
    noise: str = "exact"
    freeze_bn: bool = False
    eval_seeds: int = 3
    metric: str | None = None       # asimc.metrics name for before/after; None: top1

    def check(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise UsageError(f"--epochs must be at least 1 (got {self.epochs}): fine-tuning "
                             "with no epoch would write the model unchanged")
        if self.epochs > MAX_EPOCHS:
            raise UsageError(f"--epochs {self.epochs} is more than {MAX_EPOCHS}: give fewer "
                             "(the chip accuracy levels off within tens of epochs)")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise UsageError(f"--lr must be a positive number (got {self.lr})")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer {self.optimizer!r}: use sgd or adam")
        if self.noise not in NoiseModel.values():
            raise UsageError(f"unknown noise mode {self.noise!r}: use "
                             f"{', '.join(NoiseModel.values())}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1 (got {self.batch_size})")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) \
                or not 0 <= self.seed < 2 ** 63:
            raise UsageError(f"--seed must be an integer from 0 to 2^63-1 (got {self.seed!r})")
        if self.metric is not None:
            from ..metrics import get_metric
            get_metric(self.metric)
        if not isinstance(self.eval_seeds, int) or not 1 <= self.eval_seeds <= MAX_EVAL_SEEDS:
            raise UsageError(f"the number of evaluation seeds must be 1 to {MAX_EVAL_SEEDS} "
                             f"(got {self.eval_seeds})")


MAX_EPOCHS = 10_000
MAX_EVAL_SEEDS = 1000       # as `compare --seeds`: each seed is a full evaluation


def _spread(values) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass(frozen=True)
class Measurement:
    """Accuracy of one model on the evaluation data: FP32 and on the chip over seeds, and the
    chip's score in ``metric`` (asimc.metrics; against the labels or this model's FP32
    outputs) per seed."""

    fp32: float
    chip: tuple[float, ...]          # one per noise seed
    metric: str = "top1"
    scores: tuple[float, ...] = ()   # the metric, one per noise seed

    @property
    def chip_mean(self) -> float:
        return statistics.fmean(self.chip)

    @property
    def chip_std(self) -> float:
        return _spread(self.chip)

    @property
    def score_mean(self) -> float:
        return statistics.fmean(self.scores)

    @property
    def score_std(self) -> float:
        return _spread(self.scores)

    def as_dict(self) -> dict:
        return {"fp32_accuracy": self.fp32, "chip_accuracy_mean": self.chip_mean,
                "chip_accuracy_std": self.chip_std, "chip_accuracy": list(self.chip),
                "metric": self.metric, "score_mean": self.score_mean,
                "score_std": self.score_std}


@dataclass(frozen=True)
class Epoch:
    index: int
    loss: float                     # mean training loss
    seconds: float                  # training time of the epoch (no evaluation)
    chip_accuracy: float | None     # on the evaluation data, noise seed 0, after the epoch


@dataclass(frozen=True)
class FinetuneResult:
    model: onnx.ModelProto
    before: Measurement
    after: Measurement
    epochs: tuple[Epoch, ...]
    step_losses: tuple[float, ...]
    options: FinetuneOptions
    chip_name: str
    model_name: str
    train_description: str
    eval_description: str
    trained: tuple[str, ...]
    parameter_count: int
    fixed_constants: tuple[str, ...]
    onnxruntime_max_diff: float
    best_epoch: int = 0              # the epoch whose weights were kept (0: those before)
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def recovered(self) -> float | None:
        """Share of the accuracy the chip lost (FP32 -> chip) that fine-tuning won back."""
        lost = self.before.fp32 - self.before.chip_mean
        if lost <= 0:
            return None
        return (self.after.chip_mean - self.before.chip_mean) / lost

    def as_dict(self) -> dict:
        return {
            "model": self.model_name, "chip": self.chip_name,
            "train_data": self.train_description, "eval_data": self.eval_description,
            "options": {k: getattr(self.options, k) for k in self.options.__dataclass_fields__},
            "trained_initializers": list(self.trained), "parameters": self.parameter_count,
            "fixed_constants": list(self.fixed_constants),
            "before": self.before.as_dict(), "after": self.after.as_dict(),
            "recovered": self.recovered, "best_epoch": self.best_epoch,
            "epochs": [{"epoch": e.index, "loss": e.loss, "seconds": e.seconds,
                        "chip_accuracy": e.chip_accuracy} for e in self.epochs],
            "seconds_per_epoch": statistics.fmean(e.seconds for e in self.epochs),
            "onnxruntime_max_abs_diff": self.onnxruntime_max_diff,
            "warnings": list(self.warnings),
        }


def _load_model(model) -> tuple[onnx.ModelProto, str]:
    if isinstance(model, onnx.ModelProto):
        return model, model.graph.name or "model"
    if isinstance(model, bytes):
        return onnx.load_from_string(model), "model"
    path = Path(str(model))
    if not path.is_file():
        raise ModelError(f"{model}: no such model file")
    try:
        return onnx.load(str(path)), str(model)
    except Exception as error:  # noqa: BLE001 - not an ONNX file: say so
        raise ModelError(f"{model}: cannot read it as an ONNX model ({error})") from None


def _labelled(program, data, what: str) -> EvalData:
    """Labelled data for a one-input model: a data spec (as the CLI takes), an (x, y) pair of
    arrays or tensors, or an iterable of (inputs, labels) batches such as a DataLoader."""
    if len(program.graph.inputs) != 1:
        raise InputDataError("fine-tuning supports models with one input "
                             f"(this one has {len(program.graph.inputs)})")
    if isinstance(data, (str, Path)):
        loaded = load_eval_data(program, data)
    else:
        x, labels, description = _arrays(data, what)
        loaded = load_eval_data(program, x)
        loaded = EvalData(loaded.inputs, labels, description)
    if loaded.labels is None:
        raise InputDataError(f"{what} {data}: has no labels; fine-tuning needs them (an .npz "
                             "with `y`, a folder with class sub-folders, or digits)")
    return loaded


def _numpy(value) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _arrays(data, what: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(inputs, integer labels, description) of an (x, y) pair or of (x, y) batches."""
    if isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], tuple):
        x, y, description = _numpy(data[0]), _numpy(data[1]), f"arrays ({len(data[0])} samples)"
    else:
        try:
            batches = [(_numpy(b[0]), _numpy(b[1])) for b in data]
        except (TypeError, IndexError, KeyError):
            raise InputDataError(f"{what}: give a data spec (digits, an .npz, an image folder), "
                                 "an (x, y) pair, or a DataLoader of (inputs, labels) batches, "
                                 f"not a {type(data).__name__}") from None
        if not batches:
            raise InputDataError(f"{what}: the {type(data).__name__} yields no batches")
        x = np.concatenate([b[0] for b in batches])
        y = np.concatenate([b[1] for b in batches])
        description = f"{type(data).__name__} ({len(x)} samples)"
    return x, labels_as_int64(y, len(x), what), description


def _overlap(train: EvalData, held_out: EvalData) -> int:
    seen = {row.tobytes() for row in next(iter(train.inputs.values()))}
    return sum(row.tobytes() in seen for row in next(iter(held_out.inputs.values())))


def _serialize(model: onnx.ModelProto) -> bytes:
    return model.SerializeToString()


def _measure(model_bytes: bytes, program, data: EvalData, seeds: int, batch: int,
             metric: str | None = None) -> Measurement:
    fp32 = run_onnxruntime(model_bytes, data, batch)
    result = evaluate_chip(program, data, reference=fp32, seeds=seeds, metric=metric,
                           batch_size=batch)
    return Measurement(accuracy(fp32, data.labels), tuple(r.accuracy for r in result.runs),
                       result.metric, tuple(r.value(result.metric) for r in result.runs))


def finetune(model, chip, train, *, val=None, options: FinetuneOptions | None = None,
             example_inputs=None, exporter: str = "dynamo", progress=None,
             eval_batch: int = 256, **settings) -> FinetuneResult:
    """Fine-tune ``model`` for ``chip`` (path or ChipSpec) on the labelled data ``train``;
    measure on ``val`` (the training data when None) and keep the epoch with the best chip
    accuracy there (the weights before, when no epoch beats them).

    model: an ONNX model (path, bytes or ModelProto), or a ``torch.nn.Module`` with
           ``example_inputs`` (exported as ``asimc.compile`` does): its parameters and buffers
           receive the trained values, by their own names.
    train, val: a data spec (as the CLI takes: ``digits:train``, an .npz, an image folder), an
           (x, y) pair, or a DataLoader of (inputs, labels) batches.
    options, settings: ``FinetuneOptions`` or its fields as keywords (``epochs=5, seed=1``).
    progress: ``progress(epoch, step, steps, loss, eta_s)`` after every step."""
    from dataclasses import replace as with_settings

    from ..frontend.torch_export import is_module
    unknown = sorted(set(settings) - set(FinetuneOptions.__dataclass_fields__))
    if unknown:
        raise UsageError(f"unknown fine-tuning setting(s) {', '.join(unknown)}: use "
                         f"{', '.join(FinetuneOptions.__dataclass_fields__)}")
    options = with_settings(options or FinetuneOptions(), **settings)
    options.check()
    if not isinstance(chip, ChipSpec):
        from ..chip import load_chip
        chip = load_chip(chip)
    user_module = model if is_module(model) else None
    if user_module is not None:
        program = compile_model(model, chip, example_inputs=example_inputs, exporter=exporter)
        original, model_name = program.origin.model, type(model).__name__
    else:
        original, model_name = _load_model(model)
        program = compile_model(original, chip)
    source = _serialize(original)
    train_data = _labelled(program, train, "training data")
    warnings: list[str] = []
    if val is None:
        eval_data = train_data
        warnings.append("no validation data (--val): accuracy before and after is measured on "
                        "the training data")
    else:
        if isinstance(val, (str, Path)) and str(val) == str(train):
            raise UsageError(f"--val {val} is the training data: give a held-out split "
                             "(e.g. --data digits:train --val digits)")
        eval_data = _labelled(program, val, "validation data")
        shared = _overlap(train_data, eval_data)
        if shared:
            warnings.append(f"{shared} of the {eval_data.size} validation samples also appear "
                            "in the training data")
    module = ChipModule(program, mode="acim", freeze_bn=options.freeze_bn)
    module.trainable()
    plan = module.plan
    if plan.fixed_constants:
        warnings.append("left fixed (computed by constant folding, not an initializer): "
                        + ", ".join(plan.fixed_constants))
    before = _measure(source, program, eval_data, options.eval_seeds, eval_batch,
                      options.metric)

    params = list(module.weights)
    if options.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=options.lr)
    else:
        opt = torch.optim.SGD(params, lr=options.lr, momentum=0.9)
    name = module.input_names[0]
    x_all = torch.from_numpy(np.ascontiguousarray(train_data.inputs[name]))
    y_all = torch.from_numpy(train_data.labels.astype(np.int64))
    shuffle = torch.Generator().manual_seed(options.seed)
    noise_gen = torch.Generator().manual_seed(options.seed + 1)
    # Whole batches only (a last batch of a few samples would get its own input scales).
    steps = max(1, len(x_all) // options.batch_size)
    total = steps * options.epochs
    epochs, losses = [], []
    trained_seconds = 0.0
    window = ScaleWindow(eval_batch)
    # The best chip accuracy on the evaluation data (noise seed 0) so far: epoch 0 is the
    # model before fine-tuning, so a run that only hurts writes the model back unchanged.
    best = (before.chip[0], 0, module.initializer_values())
    module.train()
    for epoch in range(options.epochs):
        epoch_start = time.perf_counter()
        order = torch.randperm(len(x_all), generator=shuffle)
        epoch_losses = []
        for step in range(steps):
            index = order[step * options.batch_size:(step + 1) * options.batch_size]
            x, y = x_all[index], y_all[index]
            taps = None
            if options.noise == NoiseModel.EXACT:
                taps = module.run({name: x}, taps=True,
                                  seed=TRAIN_SEED_BASE + options.seed * total
                                  + epoch * steps + step).taps
            hook = ChipForward(program.layers, options.noise, taps=taps, generator=noise_gen,
                               window=window, batch=len(x))
            out = module.graph_outputs({name: x}, hook=hook)[0]
            scores = out.reshape(len(x), -1)
            if epoch == 0 and step == 0:
                check_labels(train_data.labels, scores.detach().numpy(),
                             train_data.description)
            loss = torch.nn.functional.cross_entropy(scores, y)
            # The float model's own loss keeps the FP32 accuracy (the chip loss alone lets
            # the weights drift to where only the noisy model is right).
            clean = module.graph_outputs({name: x})[0]
            loss = loss + torch.nn.functional.cross_entropy(clean.reshape(len(x), -1), y)
            opt.zero_grad()
            loss.backward()
            # Noisy losses have rare, huge gradients; clipping keeps Adam from jumping away.
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            done = epoch * steps + step + 1          # cosine decay of the learning rate
            for group in opt.param_groups:
                group["lr"] = options.lr * 0.5 * (1 + math.cos(math.pi * done / total))
            value = float(loss.detach())
            if not math.isfinite(value):
                raise UsageError(f"the training loss became {value} at epoch {epoch + 1}, step "
                                 f"{step + 1}: lower --lr (now {options.lr})")
            epoch_losses.append(value)
            losses.append(value)
            if progress is not None:
                elapsed = trained_seconds + time.perf_counter() - epoch_start
                progress(epoch + 1, step + 1, steps, value, elapsed / done * (total - done))
        seconds = time.perf_counter() - epoch_start
        trained_seconds += seconds
        chip_acc = accuracy(run_program(module.program(), eval_data, mode="acim", seed=0,
                                        batch_size=eval_batch).output, eval_data.labels)
        if chip_acc > best[0]:
            best = (chip_acc, epoch + 1, module.initializer_values())
        epochs.append(Epoch(epoch + 1, statistics.fmean(epoch_losses), seconds, chip_acc))
    module.eval()
    best_accuracy, best_epoch, best_values = best
    if best_epoch != options.epochs:
        module.load_initializer_values(best_values)
    if best_epoch == 0:
        warnings.append(f"fine-tuning did not raise the chip accuracy on "
                        f"{_describe(val, train, eval_data)}: no epoch beat the model as it was "
                        f"({100 * before.chip[0]:.2f} %, noise seed 0; the best epoch reached "
                        f"{100 * max(e.chip_accuracy for e in epochs):.2f} %), so the model "
                        "keeps its original weights: try a smaller --lr or more data")
    elif best_epoch != options.epochs:
        warnings.append(f"kept epoch {best_epoch} of {options.epochs}, the best chip accuracy "
                        f"on the evaluation data ({100 * best_accuracy:.2f} %, noise seed 0)")

    trained = write_initializers(original, best_values)
    try:
        onnx.checker.check_model(trained, full_check=True)
    except onnx.checker.ValidationError as error:
        raise ModelError(f"the fine-tuned model fails the ONNX checker: {error}") from None
    trained_bytes = _serialize(trained)
    diff = _onnxruntime_diff(trained_bytes, module, eval_data, name)
    after = _measure(trained_bytes, module.program(), eval_data, options.eval_seeds,
                     eval_batch, options.metric)
    if after.chip_mean < before.chip_mean:
        warnings.append(f"fine-tuning made the chip accuracy WORSE on "
                        f"{_describe(val, train, eval_data)}: {100 * before.chip_mean:.2f} % -> "
                        f"{100 * after.chip_mean:.2f} % (mean over {options.eval_seeds} seeds)")
    if user_module is not None:
        warnings += write_back(user_module, best_values, plan)
    chip_name = getattr(program.chip, "name", str(chip))
    return FinetuneResult(
        model=trained, before=before, after=after, epochs=tuple(epochs),
        step_losses=tuple(losses), options=options, chip_name=chip_name,
        model_name=model_name, train_description=_describe(train, train, train_data),
        eval_description=_describe(val, train, eval_data),
        trained=plan.trained, parameter_count=plan.parameter_count,
        fixed_constants=plan.fixed_constants, onnxruntime_max_diff=diff,
        best_epoch=best_epoch, warnings=tuple(warnings))


def _describe(data, train, loaded: EvalData) -> str:
    data = train if data is None else data
    return str(data) if isinstance(data, (str, Path)) else loaded.description


def write_back(module, values: dict[str, np.ndarray], plan) -> list[str]:
    """Copy the trained initializers (and the fixed ones they were trained with: BatchNorm
    statistics) into ``module``'s parameters and buffers of the same name. Returns a warning
    naming those the module has no entry for."""
    state = module.state_dict(keep_vars=True)
    missing = []
    with torch.no_grad():
        for name in (*plan.trained, *plan.fixed):
            value = values.get(name, plan.initializers.get(name))
            if name not in state:
                missing.append(name)
                continue
            target = state[name]
            target.copy_(torch.from_numpy(np.asarray(value)).reshape(target.shape)
                         .to(device=target.device, dtype=target.dtype))
    trained_missing = [n for n in missing if n in plan.trained]
    if not trained_missing:
        return []
    return [f"not written back into {type(module).__name__} (the exporter renamed them): "
            + ", ".join(trained_missing)]


def _onnxruntime_diff(model_bytes: bytes, module: ChipModule, data: EvalData,
                      name: str, samples: int = 64) -> float:
    """max |onnxruntime - torch module| on the first samples: the file is the trained model."""
    subset = EvalData({name: data.inputs[name][:samples]}, None, data.description)
    reference = run_onnxruntime(model_bytes, subset, samples)
    with torch.no_grad():
        ours = module.graph_outputs(
            {name: torch.from_numpy(np.ascontiguousarray(subset.inputs[name]))})[0]
    diff = float(np.abs(ours.numpy().astype(np.float64) - reference).max(initial=0.0))
    scale = float(np.abs(reference).max(initial=0.0)) or 1.0
    if not diff <= 1e-4 * scale + 1e-5:
        raise ModelError(f"the written model disagrees with the trained module under "
                         f"onnxruntime (max |diff| {diff:.3g}): not writing a wrong model")
    return diff


def save_model(model: onnx.ModelProto, path) -> None:
    with io.open(path, "wb") as handle:
        handle.write(model.SerializeToString())

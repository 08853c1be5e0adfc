"""The ``asimc finetune --report`` page: before/after table and the training curve (matplotlib,
inlined as a PNG so the page stays one self-contained file)."""
from __future__ import annotations

import base64
import io

from ..report.html import page, table
from ..report.units import percent as _pct
from .train import FinetuneResult


def curve_png(result: FinetuneResult) -> bytes:
    """Training loss per step and the chip accuracy after each epoch."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(9, 3.4), dpi=100)
    loss_ax, acc_ax = fig.subplots(1, 2)
    steps = len(result.step_losses)
    per_epoch = steps / max(1, len(result.epochs))
    loss_ax.plot([i / per_epoch for i in range(1, steps + 1)], result.step_losses,
                 lw=0.8, color="#4a7ebb", label="step")
    loss_ax.plot([e.index for e in result.epochs], [e.loss for e in result.epochs], "o-",
                 color="#1b3b6f", label="epoch mean")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel(f"training loss ({result.options.noise} noise)")
    loss_ax.legend(frameon=False)
    epochs = [0] + [e.index for e in result.epochs]
    chip = [result.before.chip[0]] + [e.chip_accuracy for e in result.epochs]
    acc_ax.plot(epochs, [100 * a for a in chip], "o-", color="#b0413e", label="chip (seed 0)")
    acc_ax.axhline(100 * result.before.fp32, color="#666", ls="--", lw=0.8,
                   label="FP32 before")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel(f"accuracy on {result.eval_description} (%)")
    acc_ax.legend(frameon=False)
    for ax in (loss_ax, acc_ax):      # epochs are whole: no 0.25-epoch ticks on short runs
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def finetune_page(result: FinetuneResult) -> str:
    b, a = result.before, result.after
    rows = [["chip accuracy (mean ± std over seeds)",
             f"{_pct(b.chip_mean)} ± {100 * b.chip_std:.2f}",
             f"{_pct(a.chip_mean)} ± {100 * a.chip_std:.2f}"],
            ["chip accuracy per seed", " / ".join(_pct(v) for v in b.chip),
             " / ".join(_pct(v) for v in a.chip)],
            ["FP32 accuracy (onnxruntime)", _pct(b.fp32), _pct(a.fp32)]]
    summary = table(["", "before", "after"], rows)
    recovered = "" if result.recovered is None else \
        f"<p>Recovered <b>{100 * result.recovered:.1f}%</b> of the accuracy the chip lost.</p>"
    png = base64.b64encode(curve_png(result)).decode("ascii")
    figure = f"<img alt='training curve' src='data:image/png;base64,{png}'>"
    epochs = table(["epoch", "mean loss", "seconds", "chip accuracy (seed 0)"],
                   [[e.index, f"{e.loss:.4f}", f"{e.seconds:.1f}", _pct(e.chip_accuracy)]
                    for e in result.epochs])
    o = result.options
    setup = table(["setting", "value"], [
        ["training data", result.train_description],
        ["evaluation data", result.eval_description],
        ["noise mode", o.noise], ["optimizer", f"{o.optimizer}, lr {o.lr}"],
        ["epochs", o.epochs], ["batch size", o.batch_size], ["seed", o.seed],
        ["epoch kept", f"{result.best_epoch}" + (" (the weights before fine-tuning)"
                                                 if result.best_epoch == 0 else "")],
        ["BatchNorm", "frozen" if o.freeze_bn else "scale and bias trained"],
        ["trained", f"{result.parameter_count} parameters in {len(result.trained)} "
                    "initializers"],
        ["onnxruntime vs trained module", f"max |diff| {result.onnxruntime_max_diff:.2g}"],
    ] + [["warning", w] for w in result.warnings])
    return page(f"asimc finetune: {result.model_name} on {result.chip_name}",
                [("Accuracy before and after", summary + recovered),
                 ("Training curve", figure + epochs), ("Setup", setup)],
                meta=f"{o.epochs} epoch(s) of {o.noise}-mode fine-tuning")

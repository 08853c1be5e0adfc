"""``asimc finetune``: train an ONNX model on the chip it will run on, write it back as ONNX."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UsageError
from ..report.units import percent as _pct
from .common import print_json, seed_count, writable_path


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class _Progress:
    """One line per epoch on stderr; on a terminal, the current step with loss and ETA."""

    def __init__(self):
        self.tty = sys.stderr.isatty()

    def __call__(self, epoch, step, steps, loss, eta):
        line = f"epoch {epoch} step {step}/{steps}  loss {loss:.4f}  ETA {_duration(eta)}"
        if self.tty:
            print("\r" + line + " " * 8, end="" if step < steps else "\n", file=sys.stderr,
                  flush=True)
        elif step == steps:
            print(line, file=sys.stderr, flush=True)


def _finetune(args) -> int:
    from ..finetune import FinetuneOptions, finetune, save_model
    out = writable_path(args.output, "fine-tuned model")
    writable_path(args.report, "report")
    if out.resolve() == Path(args.model).resolve():
        raise UsageError(f"-o {args.output} would overwrite the input model: write elsewhere")
    options = FinetuneOptions(epochs=args.epochs, lr=args.lr, optimizer=args.optimizer,
                              batch_size=args.batch_size, seed=args.seed, noise=args.noise,
                              freeze_bn=args.freeze_bn, eval_seeds=args.seeds,
                              metric=args.metric)
    options.check()
    result = finetune(args.model, args.chip, args.data, val=args.val, options=options,
                      progress=_Progress())
    save_model(result.model, out)
    summary = result.as_dict()
    summary["output"] = str(out)
    if args.report:
        from ..finetune.report import finetune_page
        Path(args.report).write_text(finetune_page(result), encoding="utf-8")
        summary["report"] = args.report
    if args.json:
        print_json(summary)
        return 0
    b, a = result.before, result.after
    print(f"fine-tuned {result.model_name} for chip \"{result.chip_name}\" on "
          f"{result.train_description}: {args.epochs} epoch(s), {args.noise} noise, "
          f"{args.optimizer} lr {args.lr}, {result.parameter_count} parameters in "
          f"{len(result.trained)} initializers")
    print(f"evaluated on {result.eval_description}, {len(b.chip)} noise seed(s):")
    print(f"  chip accuracy  {_pct(b.chip_mean)} ± {100 * b.chip_std:.2f}  ->  "
          f"{_pct(a.chip_mean)} ± {100 * a.chip_std:.2f}")
    print(f"  FP32 accuracy  {_pct(b.fp32)}  ->  {_pct(a.fp32)}")
    if b.metric != "top1":
        from ..report.units import score, score_spread
        print(f"  chip {b.metric} vs FP32  {score(b.metric, b.score_mean)} ± "
              f"{score_spread(b.metric, b.score_std)}  ->  {score(a.metric, a.score_mean)} ± "
              f"{score_spread(a.metric, a.score_std)}")
    if result.recovered is not None and result.recovered > 0:
        print(f"  recovered {100 * result.recovered:.1f}% of the accuracy the chip lost")
    print(f"  {summary['seconds_per_epoch']:.1f} s per epoch; onnxruntime vs trained module "
          f"max |diff| {result.onnxruntime_max_diff:.2g}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {out}" + (f" and {args.report}" if args.report else ""))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "finetune", help="fine-tune an ONNX model on a chip (noise-aware training)",
        description="Train MODEL's weights with the chip in the forward pass (straight-through "
                    "gradients through the ideal product) and write the trained model as ONNX: "
                    "the same graph and node names, new initializer values. Reports the chip "
                    "and FP32 accuracy before and after.")
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--chip", required=True, metavar="CHIP.acim")
    p.add_argument("--data", required=True, metavar="TRAIN",
                   help="labelled training data: digits:train, an .npz with x and y, or an "
                        "image folder with class sub-folders")
    p.add_argument("--val", metavar="VAL",
                   help="held-out labelled data to measure on (e.g. digits, the test split); "
                        "default: the training data")
    p.add_argument("-o", "--output", required=True, metavar="OUT.onnx")
    p.add_argument("--epochs", type=int, default=20, metavar="N", help="default 20")
    p.add_argument("--lr", type=float, default=3e-3, metavar="LR",
                   help="initial learning rate, decayed to 0 on a cosine (default 0.003)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="adam",
                   help="adam (default) or sgd with momentum 0.9")
    p.add_argument("--batch-size", type=int, default=64, metavar="B", help="default 64")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="shuffling and training noise (default 0)")
    p.add_argument("--noise", choices=("exact", "analytic", "asim"), default="exact",
                   help="exact: the bit-level chip in the forward pass (default, the mode to "
                        "ship a model with); analytic: the chip's quantisers and a Gaussian of "
                        "the chip's conversion variance (several times cheaper, for exploring); "
                        "asim: ASiM's multiplicative noise y += N(0,1)*trim*y")
    p.add_argument("--freeze-bn", action="store_true",
                   help="keep BatchNormalization's scale and bias as they are")
    p.add_argument("--seeds", type=seed_count, default=3, metavar="N",
                   help="noise seeds for the accuracy before and after (default 3)")
    from .evaluate import add_metric_option
    add_metric_option(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--report", metavar="OUT.html",
                   help="also write an HTML report with the training curve")
    p.set_defaults(func=_finetune)

"""``asimc compile`` and ``asimc inspect``."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ArtifactError, UsageError
from ..passes.smooth import DEFAULT_ALPHA
from .common import print_json, writable_path


def add_compile_options(parser) -> None:
    """Options of every command that compiles a model for a chip."""
    parser.add_argument("--digital", action="append", default=[], metavar="GLOB",
                        help="keep matrix products whose node name matches GLOB digital "
                             "(repeatable)")
    parser.add_argument("--mapping", choices=("channels", "flat"),
                        help="override how convolutions are cut into row tiles")
    parser.add_argument("--input-scales", metavar="DATA",
                        help="measure static input scales on DATA (digits, fashion-mnist, "
                             "idx:DIR, .npz, .npy, an image folder); implies quant { input "
                             "static }")
    parser.add_argument("--smooth", metavar="DATA",
                        help="smooth the on-chip MatMul/Gemm products on DATA (SmoothQuant: "
                             "activation outliers moved into the weights per input channel)")
    parser.add_argument("--smooth-alpha", type=float, default=DEFAULT_ALPHA, metavar="A",
                        help="how much of the outliers moves into the weights, 0 to 1 "
                             f"(default {DEFAULT_ALPHA:g})")
    parser.add_argument("--input-shape", action="append", type=_input_shape, default=[],
                        metavar="[NAME=]CxHxW",
                        help="per-sample shape of a model input whose dimensions are symbolic "
                             "(e.g. 1x8x8; NAME= for a model with several inputs), so that "
                             "costs are counted on real shapes (repeatable)")


def _input_shape(text: str) -> tuple[str | None, tuple[int, ...]]:
    name, _, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a shape like 1x8x8 or NAME=1x8x8") from None
    if not shape or any(d < 1 for d in shape):
        raise argparse.ArgumentTypeError(f"{text!r}: every dimension must be >= 1")
    return name or None, shape


def input_shapes(args):
    """--input-shape values as compile()'s ``input_shape``: one shape, a dict, or None."""
    given = getattr(args, "input_shape", None) or []
    if not given:
        return None
    if len(given) == 1 and given[0][0] is None:
        return given[0][1]
    if any(name is None for name, _ in given):
        raise UsageError("with several --input-shape options, name each input: NAME=1x8x8")
    return dict(given)


def compile_options(args) -> dict:
    """The keyword arguments of ``asimc.compile`` that add_compile_options' flags give."""
    if args.smooth is None and args.smooth_alpha != DEFAULT_ALPHA:
        raise UsageError("--smooth-alpha sets how strongly --smooth DATA smooths; give "
                         "--smooth DATA too")
    return dict(digital=tuple(args.digital), mapping=args.mapping,
                input_scales=args.input_scales, smooth=args.smooth,
                smooth_alpha=args.smooth_alpha)


def compile_from_args(model: str, chip: str, args):
    from ..compiler import compile as compile_model
    return compile_model(model, chip, input_shape=input_shapes(args), **compile_options(args))


def _compile(args) -> int:
    out = writable_path(args.output, "artifact") or Path(Path(args.model).stem + ".asimc")
    program = compile_from_args(args.model, args.chip, args)
    digest = program.save(out)
    if args.json:
        print_json({**program.report, "artifact": str(out), "sha256": digest})
    else:
        from ..report.mapping import render_mapping   # late: it imports torch
        print(render_mapping(program.report))
        print(f"wrote {out} (sha256 {digest[:16]}...)")
    return 0


def _inspect(args) -> int:
    from ..artifact import load_program
    program = load_program(args.artifact)
    if args.json:
        print_json(program.report)
        return 0
    from ..report.mapping import render_mapping
    try:
        text = render_mapping(program.report)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ArtifactError(f"{args.artifact}: malformed mapping report in the artifact "
                            f"({type(error).__name__}: {error}); compile the model again") \
            from None
    print(text)
    return 0


def register(sub) -> None:
    p = sub.add_parser("compile", help="compile an ONNX model for a chip",
                       description="Import MODEL, map its matrix products onto CHIP, print the "
                                   "mapping report and write the compiled artifact.")
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--chip", required=True, metavar="CHIP.acim")
    p.add_argument("-o", "--output", metavar="OUT.asimc",
                   help="artifact to write (default: MODEL's name with .asimc, here)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_compile_options(p)
    p.set_defaults(func=_compile)

    p = sub.add_parser("inspect", help="print the mapping report of a compiled artifact")
    p.add_argument("artifact", metavar="ARTIFACT.asimc")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_inspect)

"""``asimc compile`` and ``asimc inspect``."""
from __future__ import annotations

from pathlib import Path

from ..report.mapping import render_mapping
from .common import print_json


def add_compile_options(parser) -> None:
    """Options of every command that compiles a model for a chip."""
    parser.add_argument("--digital", action="append", default=[], metavar="GLOB",
                        help="keep matrix products whose node name matches GLOB digital "
                             "(repeatable)")
    parser.add_argument("--mapping", choices=("channels", "flat"),
                        help="override how convolutions are cut into row tiles")
    parser.add_argument("--calibrate", metavar="DATA",
                        help="calibrate static input scales on DATA (digits, .npz, .npy, an "
                             "image folder); implies quant { input static }")


def compile_from_args(model: str, chip: str, args):
    from ..compiler import compile as compile_model
    return compile_model(model, chip, digital=args.digital, mapping=args.mapping,
                         calibrate=args.calibrate)


def _compile(args) -> int:
    program = compile_from_args(args.model, args.chip, args)
    out = Path(args.output) if args.output else Path(Path(args.model).stem + ".asimc")
    digest = program.save(out)
    if args.json:
        print_json({**program.report, "artifact": str(out), "sha256": digest})
    else:
        print(render_mapping(program.report))
        print(f"wrote {out} (sha256 {digest[:16]}...)")
    return 0


def _inspect(args) -> int:
    from ..artifact import load_program
    program = load_program(args.artifact)
    if args.json:
        print_json(program.report)
    else:
        print(render_mapping(program.report))
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

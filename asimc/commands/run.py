"""``asimc run``: execute a compiled artifact on inputs."""
from __future__ import annotations

import sys

import numpy as np

from ..errors import UsageError
from ..program import Kernel, Mode
from .common import (LayerProgress, inputs_for, load_input_file, parse_size, print_json,
                     print_warnings, writable_path)


def _run(args) -> int:
    from ..artifact import load_program
    out = writable_path(args.output, "output file")
    if out is not None and out.suffix not in (".npy", ".npz"):
        raise UsageError(f"{args.output}: write the outputs to an .npy file (one output) or an "
                         ".npz file (one array per output name)")
    program = load_program(args.artifact)
    if out is not None and out.suffix == ".npy" and len(program.graph.outputs) != 1:
        raise UsageError(f"the model has {len(program.graph.outputs)} outputs: write them to "
                         "an .npz file (-o OUT.npz)")
    inputs = inputs_for(program.graph, load_input_file(args.input))
    on_chip = sum(1 for l in program.layers.values() if l.on_chip)
    budget = parse_size(args.memory_budget) if args.memory_budget else None
    with LayerProgress(on_chip if args.mode != Mode.FLOAT else 0, f"{args.mode} run") as bar:
        result = program.run(inputs, mode=args.mode, seed=args.seed, device=args.device,
                             memory_budget=budget, kernel=args.kernel,
                             progress=bar.callback())
    if out is not None:
        try:
            if out.suffix == ".npz":
                np.savez(out, **result.outputs)
            else:
                np.save(out, result.output)
        except OSError as error:
            raise UsageError(f"{out}: cannot write the outputs ({error.strerror})") from None
    summary = {name: {"shape": list(v.shape), "dtype": str(v.dtype),
                      "mean": float(np.mean(v)) if v.size else None,
                      "argmax_first": v.reshape(v.shape[0], -1).argmax(1)[:16].tolist()
                      if v.ndim >= 2 and v.size else None}
               for name, v in result.outputs.items()}
    if args.json:
        print_json({"mode": args.mode, "seed": args.seed, "outputs": summary,
                    "written": args.output, "warnings": result.warnings})
    else:
        for name, s in summary.items():
            mean = "-" if s["mean"] is None else f"{s['mean']:.6g}"
            line = f"{name}: shape {tuple(s['shape'])} {s['dtype']}, mean {mean}"
            if s["argmax_first"] is not None:
                line += f", argmax of the first rows {s['argmax_first']}"
            print(line)
        if args.output:
            print(f"wrote {args.output}")
    print_warnings(result.warnings, sys.stderr if args.json else None)
    return 0


def register(sub) -> None:
    p = sub.add_parser("run", help="run a compiled artifact on inputs",
                       description="Execute ARTIFACT on the inputs in X (.npy for a single-input "
                                   "model, .npz with one array per input name).")
    p.add_argument("artifact", metavar="ARTIFACT.asimc")
    p.add_argument("--input", required=True, metavar="X.npy|X.npz")
    p.add_argument("--mode", choices=Mode.values(), default="acim",
                   help="float: no quantisation; int: quantised, exact integer products; "
                        "acim: the chip, bit by bit (default)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--memory-budget", metavar="SIZE",
                   help="bytes of kernel temporaries, e.g. 512M or 2G (default 1G)")
    p.add_argument("--kernel", choices=Kernel.values(), default="fast",
                   help="bit-level kernel (the reference is slow and plain, for checking)")
    p.add_argument("-o", "--output", metavar="OUT.npy", help="write the outputs")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=_run)

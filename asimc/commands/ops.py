"""``asimc ops``: the ONNX ops a model may contain, and where each runs."""
from __future__ import annotations

from .common import print_json

ON_ARRAY = ("Conv", "Gemm", "MatMul")


def _ops(args) -> int:
    from ..frontend import supported_ops
    from ..frontend.expand import EXPANDED_OPS
    from ..frontend.normalize import REWRITTEN_OPS
    names = supported_ops()

    def how(name: str) -> str:
        if name in ON_ARRAY:
            return "on the array (digital where the chip or --digital says so)"
        if name in EXPANDED_OPS:
            return "expanded into its ONNX function body at import"
        if name in REWRITTEN_OPS:
            return "rewritten into a newer form at import"
        return "digital (float32)"

    if args.json:
        print_json([{"op": name, "runs": how(name)} for name in names])
    else:
        width = max(map(len, names))
        for name in names:
            print(f"{name:<{width}}  {how(name)}")
        print(f"{len(names)} ops (default ONNX domain); the README's Supported ops table has "
              "the ONNX backend test results of each")
    return 0


def register(sub) -> None:
    p = sub.add_parser("ops", help="list the ONNX ops asimc supports",
                       description="Every ONNX op type (default domain) a model may contain, "
                                   "and whether it runs on the array or digitally.")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=_ops)

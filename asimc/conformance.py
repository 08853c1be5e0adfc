"""Conformance with the ONNX backend node tests, in float, on CPU.

Every node test case of the installed onnx package whose op asimc supports is imported with
``import_model`` and run with ``run_graph``; its outputs are compared with the expected ones
(shape, dtype, values within the case's rtol/atol, 1e-3/1e-7 as the onnx backend runner uses).
Each case is *passed*, *failed* (with the error or the largest difference) or *skipped* (with
why: an element type asimc does not hold, a training-mode variant, sequence/optional values,
an op outside asimc's set).

The cases come from ``onnx/backend/test/data/node/*`` when the installed onnx ships those
directories; wheels that do not (onnx 1.23 ships the generators only) get them generated in
memory from ``onnx.backend.test.case.node`` - the same models and data the directories hold.

    python -m asimc.conformance --markdown     # the README's supported-ops table
    python -m asimc.conformance --json         # a machine-readable report
    python -m asimc.conformance --write-expected tests/ops/conformance_expected.json
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
import warnings
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx

_UNSUPPORTED_TYPES = re.compile(r"float8|float4|int4|uint4|int2|uint2|string|complex")
_EXPANDED = re.compile(r"_expanded(_ver\d+)?$")


@dataclass
class Case:
    name: str
    op: str                              # the op the case tests (for expanded ones: the original)
    model: onnx.ModelProto
    inputs: list                          # one entry per present graph input
    outputs: list
    rtol: float = 1e-3
    atol: float = 1e-7

    @property
    def expanded(self) -> bool:
        return bool(_EXPANDED.search(self.name))


@dataclass
class Result:
    name: str
    op: str
    status: str                           # passed | failed | skipped
    reason: str = ""
    expanded: bool = False


# ------------------------------------------------------------------------------- the cases


def _data_dir() -> Path:
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"


def _read_value(path: Path, type_proto: onnx.TypeProto):
    kind = type_proto.WhichOneof("value")
    if kind != "tensor_type":
        return ("unsupported", kind)
    tensor = onnx.TensorProto()
    tensor.ParseFromString(path.read_bytes())
    return onnx.numpy_helper.to_array(tensor)


def _cases_from_directory(root: Path) -> list[tuple[str, onnx.ModelProto, list, list]]:
    found = []
    for case_dir in sorted(p for p in root.iterdir() if (p / "model.onnx").is_file()):
        model = onnx.load(str(case_dir / "model.onnx"))
        data_set = case_dir / "test_data_set_0"
        inputs = [_read_value(data_set / f"input_{i}.pb", v.type)
                  for i, v in enumerate(model.graph.input)
                  if (data_set / f"input_{i}.pb").exists()]
        outputs = [_read_value(data_set / f"output_{i}.pb", v.type)
                   for i, v in enumerate(model.graph.output)
                   if (data_set / f"output_{i}.pb").exists()]
        found.append((case_dir.name, model, inputs, outputs))
    return found


def _generated_cases() -> list[tuple[str, onnx.ModelProto, list, list]]:
    from onnx.backend.test.case import node as node_cases

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            cases = node_cases.collect_testcases()
    found = []
    for case in cases:
        inputs, outputs = case.data_sets[0]
        found.append((case.name, case.model, [_as_value(v) for v in inputs],
                      [_as_value(v) for v in outputs]))
    return found


def _as_value(value):
    """numpy scalars and TensorProtos (as some generators give them) -> arrays."""
    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    if isinstance(value, np.generic):
        return np.asarray(value)
    return value


def collect_cases(data_dir: str | os.PathLike | None = None) -> list[Case]:
    root = Path(data_dir) if data_dir else _data_dir()
    raw = _cases_from_directory(root) if root.is_dir() else _generated_cases()
    primary: dict[str, str] = {}
    for name, model, _, _ in raw:
        if not _EXPANDED.search(name) and len(model.graph.node) >= 1:
            primary[name] = model.graph.node[0].op_type
    cases = []
    for name, model, inputs, outputs in raw:
        base = _EXPANDED.sub("", name)
        op = primary.get(base) or (model.graph.node[0].op_type if model.graph.node else "?")
        cases.append(Case(name, op, model, inputs, outputs))
    return cases


# ------------------------------------------------------------------------------- running


def _type_problem(case: Case) -> str | None:
    """Why the case's values cannot be held by asimc, or None."""
    for value in (*case.model.graph.input, *case.model.graph.output):
        kind = value.type.WhichOneof("value")
        if kind != "tensor_type":
            return f"{kind.replace('_type', '')} values"
        from onnx.helper import tensor_dtype_to_string
        dtype = tensor_dtype_to_string(value.type.tensor_type.elem_type).replace("TensorProto.", "")
        if _UNSUPPORTED_TYPES.search(dtype.lower()):
            return f"element type {dtype.lower()}"
    for array in (*case.inputs, *case.outputs):
        if isinstance(array, tuple) or not isinstance(array, np.ndarray):
            return "sequence/optional values"
        if _UNSUPPORTED_TYPES.search(array.dtype.name) or array.dtype.kind in "OSUc":
            return f"element type {array.dtype.name}"
    return None


def _compare(got, want: np.ndarray, rtol: float, atol: float) -> str | None:
    got = np.asarray(got)
    if got.shape != want.shape:
        return f"shape {list(got.shape)}, expected {list(want.shape)}"
    if got.dtype != want.dtype:
        return f"dtype {got.dtype}, expected {want.dtype}"
    if want.dtype.kind in "biu":
        if not np.array_equal(got, want):
            return f"{int((got != want).sum())} of {want.size} values differ"
        return None
    g, w = got.astype(np.float64), want.astype(np.float64)
    same_nan = np.isnan(g) == np.isnan(w)
    finite = ~np.isnan(w)
    close = np.isclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
    if same_nan.all() and close.all():
        return None
    diff = np.abs(g - w)[finite & ~close] if (finite & ~close).any() else np.array([np.nan])
    return f"max abs diff {np.nanmax(diff):.3g} (rtol {rtol:g}, atol {atol:g})"


def run_case(case: Case, supported: set[str]) -> Result:
    from .errors import AsimcError
    from .frontend import import_model
    from .runtime.interpreter import run_graph
    from .ops.common import numpy_to_torch

    def result(status: str, reason: str = "") -> Result:
        return Result(case.name, case.op, status, reason, case.expanded)

    if case.op not in supported:
        return result("skipped", f"{case.op} is not an asimc op")
    others = sorted({n.op_type for n in case.model.graph.node} - supported)
    if others:
        return result("skipped", f"expanded form uses {', '.join(others)}")
    problem = _type_problem(case)
    if problem:
        return result("skipped", problem)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = import_model(case.model)
            names = [v.name for v in case.model.graph.input
                     if v.name not in {i.name for i in case.model.graph.initializer}]
            feeds = {n: numpy_to_torch(np.asarray(v)) for n, v in zip(names, case.inputs)}
            run = run_graph(graph, feeds)
    except AsimcError as error:
        text = str(error).splitlines()[0]
        if "training_mode" in text:
            return result("skipped", "training mode (asimc runs inference)")
        return result("failed", text)
    except Exception as error:  # noqa: BLE001 - a bug in asimc: report, do not stop the suite
        return result("failed", f"internal error: {type(error).__name__}: {error}")
    from .ops.common import torch_to_numpy
    got = [torch_to_numpy(t) for t in run.outputs.values()]
    for i, (g, w) in enumerate(zip(got, case.outputs)):
        problem = _compare(g, np.asarray(w), case.rtol, case.atol)
        if problem:
            half = {np.asarray(v).dtype.name for v in case.inputs} & {"float16", "bfloat16"}
            if half and problem.startswith("max abs diff"):
                problem += f" (computed in {'/'.join(sorted(half))}, op by op)"
            return result("failed", f"output {i}: {problem}")
    return result("passed")


def run_suite(ops: Sequence[str] | None = None, data_dir=None) -> list[Result]:
    from .frontend import supported_ops
    supported = set(supported_ops())
    wanted = set(ops) if ops else None
    results = []
    for case in collect_cases(data_dir):
        if wanted is not None and case.op not in wanted:
            continue
        results.append(run_case(case, supported))
    return results


# ------------------------------------------------------------------------------- reports


def per_op(results: Sequence[Result]) -> dict[str, dict]:
    table: dict[str, dict] = {}
    for r in results:
        row = table.setdefault(r.op, {"passed": 0, "failed": 0, "skipped": 0, "failures": [],
                                      "skips": Counter()})
        row[r.status] += 1
        if r.status == "failed":
            row["failures"].append((r.name, r.reason))
        elif r.status == "skipped":
            row["skips"][r.reason] += 1
    return table


def _short(reason: str) -> str:
    reason = re.sub(r"^node '[^']*' \(\w+\)(: | )", "", reason)
    return reason if len(reason) <= 90 else reason[:87] + "..."


def _failure_notes(failures: list[tuple[str, str]]) -> list[str]:
    """Failures grouped by reason (numbers aside): count, one example, the first reason."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, reason in failures:
        groups.setdefault(re.sub(r"\d[\d.e+-]*", "#", _short(reason)), []).append((name, reason))
    notes = []
    for members in groups.values():
        name, reason = members[0]
        if len(members) == 1:
            notes.append(f"`{name}`: {_short(reason)}")
        else:
            notes.append(f"{len(members)} cases, e.g. `{name}`: {_short(reason)}")
    return notes


def _skip_notes(skips: Counter) -> list[str]:
    types = sorted(r.removeprefix("element type ") for r in skips if r.startswith("element type"))
    notes = []
    if types:
        count = sum(n for r, n in skips.items() if r.startswith("element type"))
        notes.append(f"skipped {count}: element type{'s' if len(types) > 1 else ''} "
                     f"{', '.join(types)}")
    notes += [f"skipped {n}: {reason}" for reason, n in skips.most_common()
              if not reason.startswith("element type")]
    return notes


def markdown(results: Sequence[Result]) -> str:
    from .frontend import supported_ops
    from .frontend.expand import EXPANDED_OPS as expanded
    from .frontend.normalize import REWRITTEN_OPS as rewritten
    table = per_op(results)
    totals = Counter(r.status for r in results if r.op in set(supported_ops()))
    lines = [
        "| Op | Passed | Failed | Skipped | Notes |",
        "|----|-------:|-------:|--------:|-------|",
    ]
    for op in supported_ops():
        row = table.get(op, {"passed": 0, "failed": 0, "skipped": 0, "failures": [],
                             "skips": Counter()})
        notes = _failure_notes(row["failures"]) + _skip_notes(row["skips"])
        if not (row["passed"] or row["failed"] or row["skipped"]):
            notes.append("no ONNX node test")
        if op in expanded:
            notes.insert(0, "expanded into its ONNX function body at import")
        elif op in rewritten:
            notes.insert(0, "rewritten into Resize at import")
        lines.append(f"| {op} | {row['passed']} | {row['failed']} | {row['skipped']} | "
                     f"{'<br>'.join(notes).replace('|', '/')} |")
    lines.append(f"| **total** | **{totals['passed']}** | **{totals['failed']}** | "
                 f"**{totals['skipped']}** | onnx {onnx.__version__}, float mode on CPU |")
    return "\n".join(lines)


def report(results: Sequence[Result]) -> dict:
    from .frontend import supported_ops
    supported = set(supported_ops())
    mine = [r for r in results if r.op in supported]
    return {
        "onnx_version": onnx.__version__,
        "totals": dict(Counter(r.status for r in mine)),
        "cases": [asdict(r) for r in mine],
        "outside_asimc_ops": sum(1 for r in results if r.op not in supported),
    }


def write_expected(results: Sequence[Result], path: str | os.PathLike) -> None:
    passed = sorted(r.name for r in results if r.status == "passed")
    data = {"onnx_version": onnx.__version__, "passed_count": len(passed), "passed": passed}
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asimc.conformance",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print the supported-ops table")
    parser.add_argument("--json", action="store_true", help="print a JSON report")
    parser.add_argument("--write-expected", metavar="PATH",
                        help="write the names of the passing cases (for the regression test)")
    parser.add_argument("--op", action="append", help="only this op (repeatable)")
    parser.add_argument("--data-dir", help="a directory of node test cases (default: onnx's)")
    parser.add_argument("--failures", action="store_true", help="list every failed case")
    args = parser.parse_args(argv)
    results = run_suite(args.op, args.data_dir)
    if args.write_expected:
        write_expected(results, args.write_expected)
    if args.json:
        print(json.dumps(report(results), indent=1))
    elif args.markdown:
        print(markdown(results))
    else:
        totals = report(results)["totals"]
        print(f"passed {totals.get('passed', 0)}, failed {totals.get('failed', 0)}, "
              f"skipped {totals.get('skipped', 0)} (onnx {onnx.__version__})")
    if args.failures:
        for r in results:
            if r.status == "failed":
                print(f"FAILED {r.name} [{r.op}]: {r.reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

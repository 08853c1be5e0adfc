"""The ONNX backend node tests (asimc.ops.conformance) do not regress: every case recorded as
passing in conformance_expected.json still passes, and no fewer cases pass than recorded.

Regenerate the record after adding ops or fixing cases:
    python -m asimc.ops.conformance --write-expected tests/ops/conformance_expected.json
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from asimc.ops import conformance

EXPECTED = Path(__file__).with_name("conformance_expected.json")


@pytest.fixture(scope="module")
def results():
    return conformance.run_suite()


def test_recorded_passes_still_pass(results):
    expected = json.loads(EXPECTED.read_text())
    if expected["onnx_version"] != onnx.__version__:
        pytest.skip(f"record made with onnx {expected['onnx_version']}, "
                    f"installed {onnx.__version__}")
    by_name = {r.name: r for r in results}
    regressed = [f"{name}: {by_name[name].status} {by_name[name].reason}"
                 if name in by_name else f"{name}: missing"
                 for name in expected["passed"]
                 if name not in by_name or by_name[name].status != "passed"]
    assert not regressed, "conformance regressions:\n" + "\n".join(regressed)
    passed = sum(r.status == "passed" for r in results)
    assert passed >= expected["passed_count"]


def test_failures_and_skips_carry_reasons(results):
    for r in results:
        assert r.status in ("passed", "failed", "skipped")
        if r.status != "passed":
            assert r.reason, r.name


def test_markdown_table_lists_every_supported_op(results):
    from asimc.frontend import supported_ops
    table = conformance.markdown(results)
    rows = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert set(supported_ops()) <= set(rows)
    assert "**total**" in rows


def test_reads_onnx_test_directories(tmp_path):
    """Installs of onnx that ship onnx/backend/test/data/node/* are read from disk."""
    case = tmp_path / "test_relu_small"
    (case / "test_data_set_0").mkdir(parents=True)
    x = np.array([[-1.0, 2.0]], np.float32)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", 1, [1, 2])],
                              [helper.make_tensor_value_info("y", 1, [1, 2])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]),
              case / "model.onnx")
    for kind, value in (("input", x), ("output", np.maximum(x, 0))):
        (case / "test_data_set_0" / f"{kind}_0.pb").write_bytes(
            numpy_helper.from_array(value).SerializeToString())
    (result,) = conformance.run_suite(data_dir=tmp_path)
    assert (result.name, result.op, result.status) == ("test_relu_small", "Relu", "passed")

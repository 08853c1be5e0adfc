"""The ONNX backend node tests (asimc.conformance) do not regress: every case recorded as
passing in conformance_expected.json still passes, and no fewer cases pass than recorded.
With another onnx than the one recorded, the cases both ship are compared (a case the
installed onnx no longer ships cannot be), so a fresh install is checked too, never skipped.

Regenerate the record after adding ops or fixing cases:
    python -m asimc.conformance --write-expected tests/ops/conformance_expected.json
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from asimc import conformance

EXPECTED = Path(__file__).with_name("conformance_expected.json")


@pytest.fixture(scope="module")
def results():
    return conformance.run_suite()


def problems(expected: dict, results, installed: str) -> list[str]:
    """Why ``results`` (of onnx ``installed``) regress against the record; empty if they do not."""
    by_name = {r.name: r for r in results}
    shipped = [name for name in expected["passed"] if name in by_name]
    found = [f"{name}: {by_name[name].status} {by_name[name].reason} (recorded with onnx "
             f"{expected['onnx_version']}, installed {installed})" for name in shipped
             if by_name[name].status != "passed"]
    if expected["onnx_version"] == installed:
        found += [f"{name}: missing" for name in expected["passed"] if name not in by_name]
        passed = sum(r.status == "passed" for r in results)
        if passed < expected["passed_count"]:
            found.append(f"{passed} cases pass, {expected['passed_count']} recorded")
    elif len(shipped) < len(expected["passed"]) // 2:
        # Another onnx renames or drops some cases; most of the record must still be compared.
        found.append(f"onnx {installed} ships only {len(shipped)} of the "
                     f"{len(expected['passed'])} recorded passing cases")
    return found


@pytest.mark.slow
def test_recorded_passes_still_pass(results):
    expected = json.loads(EXPECTED.read_text())
    found = problems(expected, results, onnx.__version__)
    assert not found, "conformance regressions:\n" + "\n".join(found)


@pytest.mark.slow
def test_another_onnx_version_is_compared_not_skipped(results):
    expected = json.loads(EXPECTED.read_text())
    other = dict(expected, onnx_version="0.0-other")
    assert not problems(other, results, onnx.__version__)
    # A case the other onnx no longer ships is not a regression...
    fewer = [r for r in results if r.name != expected["passed"][0]]
    assert not problems(other, fewer, onnx.__version__)
    # ...but a recorded pass that now fails is, on any version.
    broken = [dataclasses.replace(r, status="failed", reason="broken")
              if r.name == expected["passed"][0] else r for r in results]
    assert any("broken" in p for p in problems(other, broken, onnx.__version__))
    assert problems(other, results[:10], onnx.__version__)      # almost nothing to compare


@pytest.mark.slow
def test_failures_and_skips_carry_reasons(results):
    for r in results:
        assert r.status in ("passed", "failed", "skipped")
        if r.status != "passed":
            assert r.reason, r.name


@pytest.mark.slow
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

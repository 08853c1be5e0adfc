"""Issue 9, section 3: messages that say what was expected, stay readable, and JSON that strict
parsers accept."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from .conftest import cli, cli_json, cli_streams, no_internal_error, strict_loads


@pytest.mark.parametrize("content", [b"hello, not numbers\n", b"\x80\x04K\x01.", b""],
                         ids=["text", "pickle", "empty"])
def test_input_that_is_not_a_numpy_file(files, tmp_path, content):
    bad = tmp_path / "x.npy"
    bad.write_bytes(content)
    code, text = cli("run", files / "cnn.asimc", "--input", bad)
    assert code == 2
    assert "not a NumPy .npy or .npz file" in text and "np.save" in text
    assert "allow_pickle" not in text


def test_object_arrays_are_refused_in_numpy_terms(files, tmp_path):
    bad = tmp_path / "x.npy"
    np.save(bad, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, text = cli("run", files / "cnn.asimc", "--input", bad)
    assert code == 2 and "Python objects" in text and "allow_pickle" not in text


def test_a_huge_source_line_is_cut_around_the_caret(tmp_path):
    nested = tmp_path / "nested.acim"
    nested.write_text('chip "x" { ' + "{" * 10000 + "}" * 10000 + " }\n")
    code, text = cli("chip", "check", nested)
    no_internal_error(code, text)
    assert code == 2 and len(text) < 2000
    far = tmp_path / "far.acim"
    far.write_text('chip "x" { array { rows 64 ' + " " * 5000 + "colz 3 } }\n")
    code, text = cli("chip", "check", far)
    lines = text.splitlines()
    echoed = next(i for i, l in enumerate(lines) if l.startswith("   1 | "))
    assert len(lines[echoed]) < 120 and "colz 3" in lines[echoed]
    caret = lines[echoed + 1]
    assert lines[echoed][caret.index("^"):].startswith("colz")   # the caret still points at it
    assert "did you mean `cols`" in text


def _control_flow_model(path):
    branch = lambda name, op: helper.make_graph(  # noqa: E731
        [helper.make_node(op, ["x"], [f"{name}_y"])], name, [],
        [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, [1, 4])])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y"], name="choose",
                              then_branch=branch("then", "Relu"),
                              else_branch=branch("else", "Neg"))]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_unsupported_control_flow_names_the_op_and_points_to_asimc_ops(files, tmp_path):
    model = _control_flow_model(tmp_path / "if.onnx")
    code, text = cli("compile", model, "--chip", files / "chip.acim", "-o", tmp_path / "a")
    assert code == 2
    assert "If: node 'choose'" in text and "control flow" in text
    assert "`asimc ops`" in text and "Acosh" not in text and len(text) < 1000
    code, listing = cli("ops")
    assert code == 0 and "Acosh" in listing and "If " not in listing
    rows = dict(line.split(None, 1) for line in listing.splitlines()[:-1])
    assert rows["Conv"].startswith("on the array") and rows["Relu"].startswith("digital")


def test_every_json_loads_in_a_strict_parser(files, tmp_path):
    data = ["--data", files / "data.npz", "--limit", "4"]
    _, golden = cli_json("golden", files / "cnn.onnx", "--chip", files / "chip.acim", *data,
                         "--json", "--mapping", "flat")
    _, rows = cli_json("compare", files / "cnn.onnx", "--chips", files / "chip.acim", *data,
                       "--seeds", "1", "--json")
    _, report = cli_json("inspect", files / "cnn.asimc", "--json")
    _, compiled = cli_json("compile", files / "cnn.onnx", "--chip", files / "chip.acim",
                           "-o", tmp_path / "c.asimc", "--json")
    _, run = cli_json("run", files / "cnn.asimc", "--input", files / "x.npy", "--json")
    _, chip = cli_json("chip", "show", files / "chip.acim", "--json")
    _, ops = cli_json("ops", "--json")
    fp32 = rows[0]
    assert fp32["chip"] == "fp32" and fp32["sqnr_db"] is None and fp32["sqnr_exact"] is True
    assert all(r["sqnr_exact"] is False for r in rows[1:] if r["sqnr_db"] is not None)
    exact = [r for r in golden["rungs"] if r["name"] == "int vs ideal acim"]
    assert exact and (exact[0]["sqnr_db"] is None) == exact[0]["sqnr_exact"]
    assert report["total"] == compiled["total"] and run["outputs"] and chip["chip"] and ops
    import zipfile
    with zipfile.ZipFile(files / "cnn.asimc") as z:
        strict_loads(z.read("program.json").decode())


def test_strict_json_keeps_the_meaning_of_an_infinite_sqnr():
    from asimc.jsonout import dumps
    text = dumps({"sqnr_db": float("inf"), "ideal_sqnr_db": 12.5, "other": float("nan"),
                  "rows": [{"sqnr_db": float("-inf")}]})
    value = strict_loads(text)
    assert value == {"sqnr_db": None, "sqnr_exact": True, "ideal_sqnr_db": 12.5,
                     "ideal_sqnr_exact": False, "other": None,
                     "rows": [{"sqnr_db": None, "sqnr_exact": False}]}
    with pytest.raises(ValueError):
        strict_loads(json.dumps({"a": float("inf")}))

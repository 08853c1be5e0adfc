"""A model that an op cannot run is the model's fault (a ModelError naming the node, exit 2); an
op whose own code breaks is asimc's (an internal error, exit 3), never reported as a bad model."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import asimc
from asimc.cli import main
from asimc.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, ModelError
from asimc.ops import registry



def _add_model(path):
    """y = Relu(a + b), both of shapes known only at run time."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["s"], name="add"),
         helper.make_node("Relu", ["s"], ["y"], name="relu")], "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", "m"]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["p", "q"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def _run(tmp_path, shape):
    model = _add_model(tmp_path / "add.onnx")
    chip = tmp_path / "chip.acim"
    chip.write_text('chip "plain" { }\n')
    artifact = tmp_path / "m.asimc"
    inputs = tmp_path / "in.npz"
    np.savez(inputs, a=np.ones((2, 6), np.float32), b=np.ones(shape, np.float32))
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main(["compile", str(model), "--chip", str(chip), "-o", str(artifact)]) == 0
        code = main(["run", str(artifact), "--input", str(inputs), "--mode", "float"])
    return code, err.getvalue()


def test_a_bad_model_is_a_model_error(tmp_path):
    code, err = _run(tmp_path, (5, 5))               # (2, 6) + (5, 5) do not broadcast
    assert code == EXIT_BAD_INPUT, err
    assert err.startswith("asimc: error: node 'add' (Add) failed on inputs"), err
    program = asimc.compile(tmp_path / "add.onnx", tmp_path / "chip.acim")
    with pytest.raises(ModelError, match="node 'add'"):
        program.run({"a": np.ones((2, 6), np.float32), "b": np.ones((5, 5), np.float32)},
                    mode="float")


def test_a_bug_in_an_op_is_an_internal_error_not_a_bad_model(tmp_path, monkeypatch):
    def broken_relu(node, x):
        return x.not_a_tensor_method()               # what a bug in an op looks like
    monkeypatch.setitem(registry._REGISTRY, "Relu", broken_relu)
    code, err = _run(tmp_path, (2, 6))
    assert code == EXIT_INTERNAL, err
    assert "internal error: AttributeError" in err and "This is a bug in asimc" in err, err
    assert "failed on inputs" not in err

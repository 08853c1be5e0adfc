"""Every bad model a new user might try gets a precise ModelError naming the file, node, op,
tensor or dimension."""
from __future__ import annotations

import pickle
import zipfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from asimc.errors import ModelError
from asimc.frontend import import_model, supported_ops


def tiny_model(nodes=None, inputs=None, outputs=None, initializers=(), opset=17):
    nodes = nodes if nodes is not None else [helper.make_node("Relu", ["x"], ["y"], name="r0")]
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def message(source) -> str:
    with pytest.raises(ModelError) as info:
        import_model(source)
    return str(info.value)


def test_missing_path_is_named(tmp_path):
    text = message(tmp_path / "nope.onnx")
    assert "nope.onnx" in text and "does not exist" in text


def test_missing_path_suggests_onnx_suffix(tmp_path):
    onnx.save(tiny_model(), tmp_path / "model.onnx")
    assert "did you mean" in message(tmp_path / "model")


def test_directory_is_not_a_model(tmp_path):
    assert "is a directory" in message(tmp_path)


@pytest.mark.parametrize("content, hint", [
    (b"hello, this is text\n", "text file"),
    (b'{"model": 1}', "JSON"),
    (pickle.dumps({"weights": [1, 2]}), "pickle"),
])
def test_file_that_is_not_onnx(tmp_path, content, hint):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    text = message(path)
    assert "model.onnx" in text and "not an ONNX model" in text and hint in text


def test_zip_checkpoint_is_not_onnx(tmp_path):
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data.pkl", b"x" * 100)
    assert "zip archive" in message(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    assert "empty" in message(path)


def test_truncated_file(tmp_path):
    weights = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")
    model = tiny_model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                       initializers=[weights])
    data = model.SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    text = message(path)
    assert "cut.onnx" in text and "truncated" in text


def _with_external_data(tmp_path):
    weights = numpy_helper.from_array(np.arange(4096, dtype=np.float32).reshape(64, 64), "w")
    model = tiny_model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                       initializers=[weights])
    path = tmp_path / "ext.onnx"
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.weights", size_threshold=0)
    return path


def test_external_data_is_loaded(tmp_path):
    graph = import_model(_with_external_data(tmp_path))
    np.testing.assert_array_equal(graph.constants["w"].reshape(-1), np.arange(4096))


def test_missing_external_data_names_the_file(tmp_path):
    path = _with_external_data(tmp_path)
    (tmp_path / "ext.weights").unlink()
    text = message(path)
    assert "ext.weights" in text and "'w'" in text and "does not exist" in text


def test_truncated_external_data(tmp_path):
    path = _with_external_data(tmp_path)
    (tmp_path / "ext.weights").write_bytes(b"\0" * 100)
    text = message(path)
    assert "ext.weights" in text and "100 bytes" in text


def test_external_data_from_bytes_needs_a_path(tmp_path):
    data = _with_external_data(tmp_path).read_bytes()
    assert "ext.weights" in message(data)


def test_empty_graph():
    graph = helper.make_graph([], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])])
    assert "empty graph" in message(helper.make_model(graph))


def test_checker_error_names_node_and_op():
    bad = helper.make_node("Relu", ["x"], ["y"], name="act1", alpha=0.5)
    text = message(tiny_model([bad]))
    assert "'act1'" in text and "Relu" in text and "alpha" in text


def test_unnamed_nodes_get_names_in_errors():
    bad = helper.make_node("Relu", ["x"], ["y"], alpha=0.5)      # no name
    assert "'Relu_0'" in message(tiny_model([bad]))


def test_value_nobody_produces():
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="add1")]
    text = message(tiny_model(nodes))
    assert "'add1'" in text and "Add" in text and "'ghost'" in text


def test_incompatible_shapes_name_the_node():
    nodes = [helper.make_node("Add", ["x", "z"], ["y"], name="add1")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
              helper.make_tensor_value_info("z", TensorProto.FLOAT, [4])]
    text = message(tiny_model(nodes, inputs))
    assert "'add1'" in text and "(Add)" in text


def test_type_mismatch_names_the_node():
    nodes = [helper.make_node("Add", ["x", "z"], ["y"], name="add1")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
              helper.make_tensor_value_info("z", TensorProto.INT64, [2])]
    text = message(tiny_model(nodes, inputs))
    assert "add1" in text


def test_unsupported_ops_listed_together():
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="ok"),
        helper.make_node("NonMaxSuppression", ["a", "a"], ["b"], name="nms1"),
        helper.make_node("NonMaxSuppression", ["a", "a"], ["c"], name="nms2"),
        helper.make_node("FusedConv", ["a"], ["d"], name="fused", domain="com.microsoft"),
        helper.make_node("Unique", ["a"], ["y"], name="uniq"),
    ]
    model = tiny_model(nodes)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    text = message(model)
    assert "3 op types" in text
    assert "NonMaxSuppression: nodes 'nms1', 'nms2'" in text
    assert "FusedConv (domain 'com.microsoft'): node 'fused'" in text
    assert "Unique: node 'uniq'" in text
    # The supported set is one command away, not dumped into the message (issue 9).
    assert "`asimc ops`" in text and "Acosh" not in text


def test_unresolvable_weight_shape_names_tensor_and_dimension():
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv1")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
              helper.make_tensor_value_info("w", TensorProto.FLOAT, ["k", 3, 3, 3])]
    text = message(tiny_model(nodes, inputs))
    assert "'conv1' (Conv)" in text and "'w'" in text and "dimension 0" in text


def test_training_mode_batchnorm_is_refused():
    params = [numpy_helper.from_array(np.ones(3, np.float32), n) for n in "sbmv"]
    bn = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"],
                          name="bn1", training_mode=1)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])]
    text = message(tiny_model([bn], inputs, initializers=params))
    assert "'bn1'" in text and "training_mode" in text


def test_constant_that_cannot_be_evaluated_names_the_node():
    shape = numpy_helper.from_array(np.array([5, 5], np.int64), "shape")
    data = numpy_helper.from_array(np.ones(6, np.float32), "data")
    nodes = [helper.make_node("Reshape", ["data", "shape"], ["r"], name="bad_reshape"),
             helper.make_node("Add", ["x", "r"], ["y"], name="add")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 5])]
    with pytest.raises(ModelError, match="bad_reshape"):
        # ONNX shape inference already sees the mismatch, or folding does: either names it
        import_model(tiny_model(nodes, inputs, initializers=[shape, data]))


def test_supported_ops_cover_the_issue_list():
    wanted = """Conv Gemm MatMul Relu Clip LeakyRelu Sigmoid Tanh HardSwish HardSigmoid Add Sub
        Mul Div Pow Sqrt Erf Neg MaxPool AveragePool GlobalAveragePool Flatten Reshape Transpose
        Concat Split Slice Squeeze Unsqueeze Pad Resize LayerNormalization Softmax ReduceMean
        ReduceSum ReduceL2 Gather GatherElements Where Equal Greater Less GreaterOrEqual
        LessOrEqual And Not Cast Expand Shape ConstantOfShape Constant Identity Dropout Gelu
        Softplus Elu Exp Log Abs Reciprocal Floor Ceil Round Min Max Mod GlobalMaxPool
        BatchNormalization InstanceNormalization LogSoftmax ReduceMax ReduceMin ReduceProd ArgMax
        ArgMin Or Xor CastLike Size Range Tile CumSum Trilu Einsum TopK ConvTranspose""".split()
    assert not set(wanted) - set(supported_ops())

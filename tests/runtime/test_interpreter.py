"""run_graph: outputs, kept values, the hook, freeing, constants per device, errors."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from asimc import ops
from asimc.errors import AsimcError, InputDataError, ModelError, UsageError
from asimc.frontend import import_model
from asimc.runtime.batch import BatchLayout
from asimc.runtime.interpreter import GraphRun, device_constants, run_graph


def chain_model(n_relu: int = 4):
    """x -> MatMul(w) -> Relu -> Neg -> Relu ... -> y, symbolic batch."""
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4) / 10, "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h0"], name="mm")]
    for i in range(n_relu):
        nodes.append(helper.make_node("Relu" if i % 2 == 0 else "Neg", [f"h{i}"], [f"h{i + 1}"],
                                      name=f"act{i}"))
    nodes.append(helper.make_node("Identity", [f"h{n_relu}"], ["y"]))
    graph = helper.make_graph(nodes, "chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 4])],
                              [w])
    return import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


@pytest.fixture(scope="module")
def graph():
    return chain_model()


def feeds(batch=2):
    return {"x": torch.arange(batch * 3, dtype=torch.float32).reshape(batch, 3) - 2}


def test_outputs_in_graph_order(graph):
    run = run_graph(graph, feeds())
    assert isinstance(run, GraphRun)
    assert list(run.outputs) == [t.name for t in graph.outputs]
    x = feeds()["x"]
    expected = torch.relu(-torch.relu(x @ torch.tensor(graph.constants["w"])))
    torch.testing.assert_close(run.outputs["y"], expected)


def test_numpy_feeds_are_accepted(graph):
    run = run_graph(graph, {"x": feeds()["x"].numpy()})
    torch.testing.assert_close(run.outputs["y"], run_graph(graph, feeds()).outputs["y"])


def test_keep_returns_intermediates(graph):
    run = run_graph(graph, feeds(), keep=["h0", "h2"])
    assert set(run.values) == {"h0", "h2"}
    torch.testing.assert_close(run.values["h2"], -torch.relu(run.values["h0"]))


def test_keep_unknown_name(graph):
    with pytest.raises(UsageError, match="nothing"):
        run_graph(graph, feeds(), keep=["nothing"])


def test_hook_replaces_outputs_and_sees_layouts(graph):
    seen = []

    def hook(node, inputs, layouts):
        seen.append((node.name, [None if t is None else tuple(t.shape) for t in inputs],
                     layouts))
        if node.op_type == "MatMul":
            return [torch.zeros(inputs[0].shape[0], 4)]
        return None

    run = run_graph(graph, feeds(3), hook=hook)
    assert seen[0] == ("mm", [(3, 3), (3, 4)], [BatchLayout(0, 1), None])
    assert [s[0] for s in seen] == [n.name for n in graph.nodes]
    assert torch.count_nonzero(run.outputs["y"]) == 0


def test_hook_asimc_error_passes_through_unchanged(graph):
    error = AsimcError("from the hook")

    def hook(node, inputs, layouts):
        raise error

    with pytest.raises(AsimcError) as info:
        run_graph(graph, feeds(), hook=hook)
    assert info.value is error


def test_intermediates_are_freed_after_their_last_use(graph):
    refs = {}

    def hook(node, inputs, layouts):
        outputs = ops.run_op(node, inputs)
        refs[node.outputs[0]] = weakref.ref(outputs[0])
        if node.name == "act3":
            gc.collect()
            alive = {name for name, ref in refs.items() if ref() is not None}
            # h0..h2 had their last reader before act3; h3 is act3's input, y its output (the
            # Identity to the graph output was dropped at import)
            assert alive == {"h3", "y"}, alive
        return outputs

    run_graph(graph, feeds(), hook=hook)


def test_kept_values_are_not_freed(graph):
    run = run_graph(graph, feeds(), keep=["h1"])
    assert run.values["h1"].shape == (2, 4)


def test_constants_move_to_a_device_once(graph):
    first = device_constants(graph, torch.device("cpu"))
    run_graph(graph, feeds())
    assert device_constants(graph, torch.device("cpu")) is first
    assert first["w"].device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda(graph):
    run = run_graph(graph, feeds(), device="cuda")
    assert run.outputs["y"].device.type == "cuda"
    torch.testing.assert_close(run.outputs["y"].cpu(), run_graph(graph, feeds()).outputs["y"])


def test_missing_and_unknown_inputs(graph):
    with pytest.raises(InputDataError, match="missing input.*'x'"):
        run_graph(graph, {})
    with pytest.raises(InputDataError, match="unknown input.*'z'"):
        run_graph(graph, {**feeds(), "z": torch.zeros(1)})


def test_op_failure_names_node_op_and_shapes(graph):
    with pytest.raises(ModelError) as info:
        run_graph(graph, {"x": torch.zeros(2, 5)})
    text = str(info.value)
    assert "'mm' (MatMul)" in text and "[2, 5] float32" in text and "[3, 4] float32" in text


def test_runtime_reshape_error_names_node():
    shape = helper.make_tensor_value_info("s", TensorProto.INT64, [2])
    nodes = [helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape1")]
    model = helper.make_model(helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]), shape],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]),
        opset_imports=[helper.make_opsetid("", 17)])
    graph = import_model(model)
    with pytest.raises(ModelError, match="'reshape1' \\(Reshape\\).*cannot reshape"):
        run_graph(graph, {"x": torch.zeros(2, 3), "s": torch.tensor([4, 4])})


def test_integer_inputs_token_ids_and_masks():
    table = numpy_helper.from_array(np.arange(20, dtype=np.float32).reshape(10, 2), "table")
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"]),
             helper.make_node("Cast", ["mask"], ["m"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["m", "axis"], ["m3"]),
             helper.make_node("Mul", ["e", "m3"], ["y"])]
    axis = numpy_helper.from_array(np.array([-1], np.int64), "axis")
    model = helper.make_model(helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", 3]),
                     helper.make_tensor_value_info("mask", TensorProto.BOOL, ["b", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [table, axis]),
        opset_imports=[helper.make_opsetid("", 17)])
    run = run_graph(import_model(model), {"ids": torch.tensor([[1, 2, 9]]),
                                          "mask": torch.tensor([[True, False, True]])})
    assert run.outputs["y"].tolist() == [[[2, 3], [0, 0], [18, 19]]]


def test_outputs_that_are_inputs_or_constants():
    nodes = [helper.make_node("Identity", ["x"], ["y"]),
             helper.make_node("Constant", [], ["c"], value_float=3.0)]
    model = helper.make_model(helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("c", TensorProto.FLOAT, [])]),
        opset_imports=[helper.make_opsetid("", 17)])
    run = run_graph(import_model(model), {"x": torch.ones(2)})
    assert run.outputs["y"].tolist() == [1, 1] and float(run.outputs["c"]) == 3.0


def test_batch_size_marks_static_first_dims(graph):
    static = graph.with_(inputs=(graph.inputs[0].__class__("x", "float32", (2, 3)),))
    assert run_graph(static, feeds()).layouts["x"] is None
    assert run_graph(static, feeds(), batch_size=2).layouts["x"] == BatchLayout(0, 1)

"""The import passes one by one: older operator forms, folding, BatchNorm folding, Identity and
Dropout removal, topological order."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from asimc.errors import ModelError
from asimc.frontend import import_model
from asimc.frontend.fold import MAX_FOLDED_ELEMENTS
from asimc.runtime.interpreter import run_graph
from ops.onnx_builders import one_node_model

rng = np.random.default_rng(1)


def f32(*shape):
    return rng.uniform(-2, 2, shape).astype(np.float32)


def run_both(model, feeds):
    expected = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"]).run(None, feeds)
    graph = import_model(model)
    got = run_graph(graph, {k: torch.from_numpy(np.array(v)) for k, v in feeds.items()})
    for g, e in zip(got.outputs.values(), expected):
        np.testing.assert_allclose(g.numpy(), e, rtol=1e-5, atol=1e-5)
    return graph


# --- older operator forms become the internal (opset >= 21) form --------------------------------

OLD_FORMS = [
    ("squeeze_attr", "Squeeze", [f32(1, 3, 1)], {}, {"axes": [0, 2]}, 1, 11),
    ("unsqueeze_attr", "Unsqueeze", [f32(3)], {}, {"axes": [0, 2]}, 1, 11),
    ("split_attr", "Split", [f32(5, 2)], {}, {"split": [2, 3]}, 2, 11),
    ("split_equal_old", "Split", [f32(6, 2)], {}, {"axis": 0}, 3, 11),
    ("reducemean_attr", "ReduceMean", [f32(2, 3, 4)], {}, {"axes": [-1], "keepdims": 0}, 1, 11),
    ("reducemax_attr", "ReduceMax", [f32(2, 3, 4)], {}, {"axes": [0, 1]}, 1, 13),
    ("clip_attrs", "Clip", [f32(3, 4)], {}, {"min": -0.5, "max": 0.5}, 1, 6),
    ("slice_attrs", "Slice", [f32(4, 5)], {}, {"starts": [1, 0], "ends": [3, -1],
                                              "axes": [0, 1]}, 1, 9),
    ("pad_attrs", "Pad", [f32(2, 3)], {}, {"pads": [1, 0, 0, 2], "value": 2.0}, 1, 10),
    ("pad_reflect_attrs", "Pad", [f32(1, 1, 3, 4)], {}, {"pads": [0, 0, 1, 2, 0, 0, 1, 1],
                                                         "mode": "reflect"}, 1, 10),
    ("topk_attr", "TopK", [f32(3, 5)], {}, {"k": 2}, 2, 9),
    ("softmax_opset11_axis1", "Softmax", [f32(2, 3, 4)], {}, {"axis": 1}, 1, 11),
    ("logsoftmax_opset11_default", "LogSoftmax", [f32(2, 3, 4)], {}, {}, 1, 11),
    ("softmax_opset11_last", "Softmax", [f32(2, 3, 4)], {}, {"axis": 2}, 1, 11),
    ("upsample7_attr", "Upsample", [f32(1, 1, 2, 3)], {}, {"scales": [1.0, 1.0, 2.0, 3.0]}, 1, 7),
    ("upsample9_linear", "Upsample", [f32(1, 1, 2, 3)],
     {1: np.array([1, 1, 2, 2], np.float32)}, {"mode": "linear"}, 1, 9),
    ("resize10_down", "Resize", [f32(1, 1, 4, 6)], {1: np.array([1, 1, 0.5, 0.5], np.float32)},
     {}, 1, 10),
    ("dropout_opset10", "Dropout", [f32(3)], {}, {"ratio": 0.3}, 1, 10),
    ("batchnorm_opset7_spatial", "BatchNormalization", [f32(2, 3, 2), f32(3), f32(3), f32(3),
                                                        np.ones(3, np.float32)], {},
     {"spatial": 1}, 1, 7),
    ("cast_opset6", "Cast", [f32(4)], {}, {"to": 7}, 1, 6),
]


@pytest.mark.parametrize("op, inputs, consts, attrs, outputs, opset",
                         [pytest.param(*c[1:], id=c[0]) for c in OLD_FORMS])
def test_old_forms_run_like_onnxruntime(op, inputs, consts, attrs, outputs, opset):
    model, feeds = one_node_model(op, inputs, consts=consts, attrs=attrs, outputs=outputs,
                                  opset=opset)
    graph = run_both(model, feeds)
    assert graph.opset >= 21
    for node in graph.nodes:             # the legacy attributes are gone
        assert not {"axes", "split", "starts", "ends", "pads", "k", "min", "max", "scales",
                    "spatial", "paddings"} & set(node.attrs), node


def test_legacy_softmax_becomes_per_axis_form_for_last_axis():
    model, _ = one_node_model("Softmax", [f32(2, 3)], attrs={"axis": 1}, opset=11)
    (node,) = import_model(model).nodes
    assert node.op_type == "Softmax" and node.attrs["axis"] == -1


# --- folding ---------------------------------------------------------------------------------


def model_of(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def value(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def test_constant_subgraph_is_evaluated():
    w = numpy_helper.from_array(f32(3, 4), "w")
    nodes = [helper.make_node("Transpose", ["w"], ["wt"]),
             helper.make_node("Mul", ["wt", "two"], ["w2"]),
             helper.make_node("Constant", [], ["two"], value_float=2.0),
             helper.make_node("MatMul", ["x", "w2"], ["y"], name="mm")]
    model = model_of(nodes, [value("x", ["batch", 4])], [value("y", ["batch", 3])], [w])
    graph = run_both(model, {"x": f32(2, 4)})
    assert [n.op_type for n in graph.nodes] == ["MatMul"]
    np.testing.assert_allclose(graph.constants[graph.nodes[0].inputs[1]],
                               numpy_helper.to_array(w).T * 2)


def test_shape_of_static_dims_folds_with_symbolic_batch():
    """Shape -> Gather(1), Gather(2) over static dims becomes constant; the batch stays a run-time
    Shape -> Gather(0) feeding the Reshape."""
    idx = {i: numpy_helper.from_array(np.array(i, np.int64), f"i{i}") for i in range(3)}
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             *[helper.make_node("Gather", ["s", f"i{i}"], [f"d{i}"]) for i in range(3)],
             helper.make_node("Mul", ["d1", "d2"], ["flat"]),
             *[helper.make_node("Unsqueeze", [n, "axes"], [n + "u"]) for n in ("d0", "flat")],
             helper.make_node("Concat", ["d0u", "flatu"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")]
    model = model_of(nodes, [value("x", ["batch", 3, 4])], [value("y", ["batch", 12])],
                     [*idx.values(), axes])
    graph = run_both(model, {"x": f32(5, 3, 4)})
    ops = [n.op_type for n in graph.nodes]
    assert "Mul" not in ops and ops.count("Gather") == 1       # only the batch dim is read
    static = model_of(nodes, [value("x", [2, 3, 4])], [value("y", [2, 12])],
                      [*idx.values(), axes])
    assert [n.op_type for n in import_model(static).nodes] == ["Reshape"]


def test_large_constant_of_shape_is_left_to_run_time():
    side = int(np.sqrt(MAX_FOLDED_ELEMENTS)) + 2
    shape = numpy_helper.from_array(np.array([side, side], np.int64), "shape")
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["zeros"]),
             helper.make_node("Add", ["x", "zeros"], ["y"])]
    model = model_of(nodes, [value("x", [1, side])], [value("y", [side, side])], [shape])
    graph = import_model(model)
    assert [n.op_type for n in graph.nodes] == ["ConstantOfShape", "Add"]


# --- BatchNormalization folding -------------------------------------------------------------


def _bn_params(prefix, n):
    values = [f32(n), f32(n), f32(n), rng.uniform(0.5, 2, n).astype(np.float32)]
    return [numpy_helper.from_array(v, f"{prefix}{k}") for v, k in zip(values, "sbmv")]


def _bn(prefix, x, y):
    return helper.make_node("BatchNormalization", [x] + [f"{prefix}{k}" for k in "sbmv"], [y],
                            name=f"{prefix}bn", epsilon=1e-3)


@pytest.mark.parametrize("producer", ["Conv", "ConvTranspose", "Gemm", "Gemm_transB",
                                      "MatMul"])
def test_batchnorm_folds_into_producer(producer):
    if producer.startswith("Conv"):
        w = f32(3, 4, 3, 3) if producer == "Conv" else f32(3, 2, 3, 3)
        x = value("x", ["batch", 3, 5, 5])
        node = helper.make_node(producer, ["x", "w", "b"], ["h"], group=1 if producer == "Conv"
                                else 1, pads=[1, 1, 1, 1])
        channels, bias = (4 if producer == "Conv" else 2), None
        w = w if producer == "ConvTranspose" else f32(4, 3, 3, 3)
        bias = f32(channels)
        feeds = {"x": f32(2, 3, 5, 5)}
    elif producer.startswith("Gemm"):
        trans = producer.endswith("transB")
        w, channels, bias = (f32(6, 4) if trans else f32(4, 6)), 6, f32(6)
        x = value("x", ["batch", 4])
        node = helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=int(trans), alpha=0.5)
        feeds = {"x": f32(3, 4)}
    else:
        w, channels, bias = f32(4, 6), 6, None
        x = value("x", ["batch", 4])
        node = helper.make_node("MatMul", ["x", "w"], ["h"])
        feeds = {"x": f32(3, 4)}
    inits = [numpy_helper.from_array(w, "w")] + _bn_params("p", channels)
    if bias is not None:
        inits.append(numpy_helper.from_array(bias, "b"))
    model = model_of([node, _bn("p", "h", "y")], [x], [value("y", None)], inits)
    graph = run_both(model, feeds)
    assert "BatchNormalization" not in [n.op_type for n in graph.nodes]
    assert len(graph.nodes) == 1


def test_batchnorm_kept_when_producer_output_is_shared():
    w = numpy_helper.from_array(f32(4, 3, 1, 1), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["h"]), _bn("p", "h", "n"),
             helper.make_node("Add", ["h", "n"], ["y"])]
    model = model_of(nodes, [value("x", ["batch", 3, 4, 4])], [value("y", None)],
                     [w, *_bn_params("p", 4)])
    graph = run_both(model, {"x": f32(2, 3, 4, 4)})
    assert "BatchNormalization" in [n.op_type for n in graph.nodes]


def test_batchnorm_on_graph_input_stays_digital():
    model = model_of([_bn("p", "x", "y")], [value("x", ["batch", 4, 3])], [value("y", None)],
                     _bn_params("p", 4))
    graph = run_both(model, {"x": f32(2, 4, 3)})
    assert [n.op_type for n in graph.nodes] == ["BatchNormalization"]


# --- Identity / Dropout / order ----------------------------------------------------------------


def test_identity_and_dropout_are_dropped():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"),
             helper.make_node("Identity", ["a"], ["b"]),
             helper.make_node("Dropout", ["b"], ["c"]),
             helper.make_node("Identity", ["c"], ["y"])]
    graph = run_both(model_of(nodes, [value("x", [2, 3])], [value("y", [2, 3])]),
                     {"x": f32(2, 3)})
    assert [(n.op_type, n.outputs) for n in graph.nodes] == [("Relu", ("y",))]


def test_identity_from_input_to_output_is_kept():
    nodes = [helper.make_node("Identity", ["x"], ["y"]),
             helper.make_node("Relu", ["x"], ["z"])]
    model = model_of(nodes, [value("x", [2])], [value("y", [2]), value("z", [2])])
    graph = run_both(model, {"x": f32(2)})
    assert sorted(n.op_type for n in graph.nodes) == ["Identity", "Relu"]


def test_dropout_mask_still_produced_when_used():
    nodes = [helper.make_node("Dropout", ["x"], ["y", "mask"])]
    model = model_of(nodes, [value("x", [3])], [value("y", [3]), value("mask", [3],
                                                                       TensorProto.BOOL)])
    graph = run_both(model, {"x": f32(3)})
    assert [n.op_type for n in graph.nodes] == ["Dropout"]


def test_unsorted_graph_is_sorted():
    nodes = [helper.make_node("Add", ["a", "b"], ["y"], name="last"),
             helper.make_node("Relu", ["x"], ["a"], name="first"),
             helper.make_node("Neg", ["a"], ["b"], name="middle")]
    model = model_of(nodes, [value("x", [3])], [value("y", [3])])
    graph = run_both(model, {"x": f32(3)})
    assert [n.name for n in graph.nodes] == ["first", "middle", "last"]


def test_model_local_functions_are_inlined():
    fn = helper.make_function("custom", "Double", ["a"], ["b"],
                              [helper.make_node("Add", ["a", "a"], ["b"])],
                              [helper.make_opsetid("", 17)])
    nodes = [helper.make_node("Double", ["x"], ["y"], domain="custom")]
    model = helper.make_model(helper.make_graph(nodes, "g", [value("x", [3])],
                                                [value("y", [3])]),
                              opset_imports=[helper.make_opsetid("", 17),
                                             helper.make_opsetid("custom", 1)],
                              functions=[fn])
    graph = run_both(model, {"x": f32(3)})
    assert [n.op_type for n in graph.nodes] == ["Add"]


def test_graph_output_that_is_constant():
    nodes = [helper.make_node("Constant", [], ["c"], value_ints=[1, 2, 3]),
             helper.make_node("Relu", ["x"], ["y"])]
    model = model_of(nodes, [value("x", [2])], [value("y", [2]), value("c", [3], 7)])
    graph = run_both(model, {"x": f32(2)})
    assert "c" in graph.constants


# --- function ops are expanded into their bodies ----------------------------------------------


def test_attention_op_expands_into_matmuls():
    """An opset-23 Attention node becomes plain MatMul/Softmax nodes that the compiler can map
    (Q.K^T and A.V), and computes what onnxruntime computes."""
    q, k, v = f32(2, 4, 5, 8), f32(2, 4, 6, 8), f32(2, 4, 6, 8)
    model, feeds = one_node_model("Attention", [q, k, v], attrs={"is_causal": 1}, opset=23,
                                  name="attn")
    graph = run_both(model, feeds)
    ops = [n.op_type for n in graph.nodes]
    assert "Attention" not in ops
    assert ops.count("MatMul") == 2 and "Softmax" in ops
    assert all(n.name.startswith("attn/") for n in graph.nodes)


def test_function_op_with_unsupported_body_is_reported_by_name():
    model, _ = one_node_model("Bernoulli", [f32(3)], opset=22, name="coin")
    with pytest.raises(ModelError, match="Bernoulli: node 'coin'"):
        import_model(model)

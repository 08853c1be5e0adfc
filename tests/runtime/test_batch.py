"""Batch layouts: the representation's helpers, the propagation rules on small graphs, and on
real exported models the strongest check there is - for every traced intermediate, the
elements the layout assigns to sample s equal the same value computed from sample s alone."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from asimc.frontend import import_model
from asimc.runtime.batch import (LOST, BatchLayout, fits, sample_of_rows, sample_view,
                                 samples_of)
from asimc.runtime.interpreter import run_graph

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the shared torch models
from frontend import torch_models  # noqa: E402


def traced_names(graph):
    return [o for n in graph.nodes for o in n.outputs if o]


def check_against_single_samples(graph, feeds: dict[str, np.ndarray], batch: int):
    """Layouts of every traced value, after checking each BatchLayout against per-sample runs.
    Returns {name: layout}."""
    names = traced_names(graph)
    batched = run_graph(graph, {k: torch.from_numpy(v) for k, v in feeds.items()}, keep=names)
    singles = [run_graph(graph, {k: torch.from_numpy(v[s:s + 1]) for k, v in feeds.items()},
                         keep=names) for s in range(batch)]
    for name in names:
        layout = batched.layouts[name]
        if not isinstance(layout, BatchLayout):
            continue
        value = batched.values[name]
        assert fits(layout, value.shape, batch), (name, layout, value.shape)
        view = sample_view(value, layout, batch)
        for s in range(batch):
            mine = view[:, s].reshape(-1).double()
            alone = singles[s].values[name].reshape(-1).double()
            assert mine.shape == alone.shape, (name, layout)
            torch.testing.assert_close(mine, alone, rtol=1e-4, atol=1e-5,
                                       msg=f"{name} with layout {layout}, sample {s}")
    return {name: batched.layouts[name] for name in names}


def build(nodes, inputs, initializers=(), outputs=("y",)):
    graph = helper.make_graph(
        nodes, "g", inputs, [helper.make_empty_tensor_value_info(o) for o in outputs],
        list(initializers))
    return import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))


def const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def x_input(*dims, name="x", elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, ["batch", *dims])


rng = np.random.default_rng(3)


# --- the representation ------------------------------------------------------------------------


@pytest.mark.parametrize("shape, layout", [((6, 4), BatchLayout(0, 1)),
                                           ((5, 12, 2), BatchLayout(1, 4)),
                                           ((2, 3, 6), BatchLayout(2, 2))])
def test_helpers_agree_with_the_definition(shape, layout):
    batch = 3
    assert fits(layout, shape, batch)
    ids = samples_of(layout, shape, batch)
    coordinate = torch.arange(shape[layout.axis]).reshape(
        [-1 if i == layout.axis else 1 for i in range(len(shape))])
    assert torch.equal(ids, ((coordinate // layout.inner) % batch).expand(shape))
    flat = torch.arange(math.prod(shape))
    stride = layout.flat_stride(shape)
    assert torch.equal(ids.reshape(-1), (flat // stride) % batch)
    view = sample_view(torch.arange(math.prod(shape)).reshape(shape), layout, batch)
    for s in range(batch):
        assert torch.equal(ids.reshape(-1)[view[:, s].reshape(-1)], torch.full_like(
            view[:, s].reshape(-1), s))
    rows = sample_of_rows(layout, shape, batch)
    if layout.axis == len(shape) - 1:
        assert rows is None
    else:
        assert torch.equal(rows, ids.reshape(-1, shape[-1])[:, 0])


# --- rules on small graphs --------------------------------------------------------------------


def test_heads_folded_into_the_batch_axis():
    """(B, T, E) -> (T, B, E) -> (T, B*H, hd) -> (B*H, T, hd): the batch survives as
    (axis 0, inner H), through the attention scores too."""
    heads, t, e = 4, 5, 8
    nodes = [helper.make_node("Transpose", ["x"], ["tbe"], perm=[1, 0, 2]),
             helper.make_node("Reshape", ["tbe", "shape"], ["heads"]),
             helper.make_node("Transpose", ["heads"], ["q"], perm=[1, 0, 2]),
             helper.make_node("Transpose", ["q"], ["kt"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["q", "kt"], ["scores"]),
             helper.make_node("Softmax", ["scores"], ["attn"], axis=-1),
             helper.make_node("MatMul", ["attn", "q"], ["y"])]
    graph = build(nodes, [x_input(t, e)], [const("shape", np.array([t, -1, e // heads]))])
    layouts = check_against_single_samples(graph, {"x": rng.standard_normal((3, t, e),
                                                                            np.float32)}, 3)
    assert layouts["heads"] == BatchLayout(1, heads)
    assert layouts["q"] == layouts["scores"] == layouts["y"] == BatchLayout(0, heads)


@pytest.mark.parametrize("op, attrs, extra, expected", [
    ("ReduceMean", {"keepdims": 0}, [[0]], LOST),              # over the batch
    ("ReduceMean", {"keepdims": 0}, [[1]], BatchLayout(0, 1)),
    ("ReduceSum", {"keepdims": 1}, [[2]], BatchLayout(0, 1)),
    ("Softmax", {"axis": 0}, [], LOST),
    ("Softmax", {"axis": 1}, [], BatchLayout(0, 1)),
    ("ArgMax", {"axis": 2, "keepdims": 0}, [], BatchLayout(0, 1)),
    ("CumSum", {}, [np.array(0)], LOST),
    ("Transpose", {"perm": [2, 0, 1]}, [], BatchLayout(1, 1)),
    ("Flatten", {"axis": 2}, [], BatchLayout(0, 3)),          # (B*3, 4)
    ("Flatten", {"axis": 0}, [], BatchLayout(1, 12)),         # (1, B*12)
    ("Slice", {}, [[1], [3], [1]], BatchLayout(0, 1)),
    ("Slice", {}, [[0], [1], [0]], LOST),                      # cuts the batch axis
    ("Tile", {}, [[2, 1, 1]], BatchLayout(0, 1)),              # whole copies
    ("Pad", {}, [[0, 1, 0, 0, 1, 0]], BatchLayout(0, 1)),
    ("Pad", {}, [[1, 0, 0, 0, 0, 0]], LOST),
    ("Shape", {}, [], None),
    ("NonZero", {}, [], LOST),                                 # no rule
])
def test_rule(op, attrs, extra, expected):
    consts = [const(f"c{i}", np.asarray(v, np.int64)) for i, v in enumerate(extra)]
    node = helper.make_node(op, ["x", *[c.name for c in consts]], ["y"], **attrs)
    graph = build([node], [x_input(3, 4)], consts)
    layouts = check_against_single_samples(graph, {"x": rng.standard_normal((2, 3, 4),
                                                                            np.float32)}, 2)
    assert layouts["y"] == expected


def test_matmul_batch_in_k_axis_is_lost_and_in_n_axis_kept():
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0]),
             helper.make_node("MatMul", ["xt", "x"], ["gram"]),          # K = batch: mixed
             helper.make_node("MatMul", ["w", "xt"], ["y"])]            # N = batch: kept
    graph = build(nodes, [x_input(4)], [const("w", np.ones((2, 4), np.float32))],
                  outputs=("gram", "y"))
    layouts = check_against_single_samples(graph, {"x": rng.standard_normal((3, 4),
                                                                            np.float32)}, 3)
    assert layouts["gram"] is LOST and layouts["y"] == BatchLayout(1, 1)


def test_gather_embedding_and_concat_along_batch():
    nodes = [helper.make_node("Gather", ["table", "x"], ["e"]),
             helper.make_node("Concat", ["e", "e"], ["both"], axis=0),
             helper.make_node("Gather", ["e", "zero"], ["first"], axis=0),
             helper.make_node("Relu", ["both"], ["y"])]
    graph = build(nodes, [x_input(3, elem=TensorProto.INT64)],
                  [const("table", rng.standard_normal((10, 2), np.float32)),
                   const("zero", np.array([0]))], outputs=("y", "first"))
    ids = rng.integers(0, 10, (2, 3))
    layouts = check_against_single_samples(graph, {"x": ids}, 2)
    assert layouts["e"] == layouts["both"] == BatchLayout(0, 1)
    assert layouts["first"] is LOST


def test_batch_of_one_is_never_lost():
    node = helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=0)
    graph = build([node], [x_input(3)], [const("axes", np.array([0]))])
    run = run_graph(graph, {"x": torch.ones(1, 3)})
    assert run.layouts["y"] == BatchLayout(0, 1)


def test_constants_and_shapes_are_batch_free():
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("ConstantOfShape", ["s"], ["z"]),
             helper.make_node("Add", ["x", "z"], ["y"])]
    graph = build(nodes, [x_input(2)])
    run = run_graph(graph, {"x": torch.ones(3, 2)})
    assert run.layouts["s"] is None and run.layouts["z"] is None
    assert run.layouts["y"] == BatchLayout(0, 1)
    assert all(run.layouts[name] is None for name in graph.constants)


# --- real exported models -----------------------------------------------------------------------

MODELS = [pytest.param(name, dynamo, id=f"{name}-{'dynamo' if dynamo else 'legacy'}")
          for name in ("cnn", "mlp", "transformer", "attention") for dynamo in (False, True)]


@pytest.mark.parametrize("name, dynamo", MODELS)
def test_exported_model_layouts_match_single_sample_runs(name, dynamo):
    graph = import_model(torch_models.export(name, dynamo))
    layouts = check_against_single_samples(graph, {"x": torch_models.example(name, 3)}, 3)
    producers = {o: n for n in graph.nodes for o in n.outputs}
    lost = [(name, producers[name].op_type) for name, l in layouts.items() if l is LOST]
    assert not lost
    for node in graph.nodes:     # every matrix product's activations carry their samples
        if node.op_type in ("Conv", "Gemm", "MatMul"):
            assert isinstance(layouts[node.outputs[0]], BatchLayout), node.name
    if name == "cnn":
        assert all(l == BatchLayout(0, 1) for l in layouts.values())


def test_legacy_multihead_attention_folds_heads_into_batch():
    graph = import_model(torch_models.export("attention", False))
    layouts = check_against_single_samples(graph, {"x": torch_models.example("attention", 3)}, 3)
    heads = torch_models.build("attention").attn.num_heads
    assert BatchLayout(1, heads) in layouts.values()       # (T, B*H, hd)
    assert BatchLayout(0, heads) in layouts.values()       # (B*H, T, hd)


# --- the ops whose rules were added with the registry's layout declarations ---------------------


def _build(nodes, inputs, initializers=(), outputs=("y",), opset=23):
    graph = helper.make_graph(
        nodes, "g", inputs, [helper.make_empty_tensor_value_info(o) for o in outputs],
        list(initializers))
    return import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))


def test_rules_of_normalisations_keep_the_batch_on_axis_0():
    c = 4
    nodes = [helper.make_node("GroupNormalization", ["x", "s", "b"], ["g"], num_groups=2),
             helper.make_node("LRN", ["g"], ["l"], size=3),
             helper.make_node("MeanVarianceNormalization", ["l"], ["m"], axes=[1, 2, 3]),
             helper.make_node("MeanVarianceNormalization", ["m"], ["mixed"]),   # axes 0, 2, 3
             helper.make_node("RMSNormalization", ["m", "scale"], ["y"], axis=1)]
    graph = _build(nodes, [x_input(c, 3, 3)],
                   [const("s", np.ones(c, np.float32)), const("b", np.zeros(c, np.float32)),
                    const("scale", rng.standard_normal((c, 3, 3)).astype(np.float32))],
                   outputs=("y", "mixed"))
    layouts = check_against_single_samples(
        graph, {"x": rng.standard_normal((3, c, 3, 3)).astype(np.float32)}, 3)
    assert layouts["g"] == layouts["l"] == layouts["m"] == layouts["y"] == BatchLayout(0, 1)
    assert layouts["mixed"] is LOST


def test_rules_of_index_ops_and_quantisers_follow_the_batch():
    nodes = [helper.make_node("QuantizeLinear", ["x", "qs", "zp"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "qs", "zp"], ["dq"]),
             helper.make_node("Shrink", ["dq"], ["sh"], lambd=0.3),
             helper.make_node("GatherND", ["sh", "idx"], ["gnd"], batch_dims=0),
             helper.make_node("Compress", ["sh", "keep"], ["cmp"], axis=1),
             helper.make_node("Cast", ["q"], ["qi"], to=TensorProto.INT32),
             helper.make_node("BitwiseAnd", ["qi", "mask"], ["ba"]),
             helper.make_node("OneHot", ["ids", "depth", "values"], ["oh"], axis=1)]
    graph = _build(nodes, [x_input(4), x_input(3, name="ids", elem=TensorProto.INT64)],
                   [const("qs", np.float32(0.05)), const("zp", np.int8(0)),
                    const("idx", np.array([[0], [0]], np.int64)),
                    const("keep", np.array([1, 0, 1, 1], bool)),
                    const("mask", np.int32(0x0F)), const("depth", np.array(5, np.int64)),
                    const("values", np.array([0.0, 1.0], np.float32))],
                   outputs=("cmp", "ba", "oh", "gnd"))
    layouts = check_against_single_samples(
        graph, {"x": rng.standard_normal((3, 4)).astype(np.float32),
                "ids": rng.integers(0, 5, (3, 3))}, 3)
    assert layouts["q"] == layouts["dq"] == layouts["sh"] == layouts["cmp"] == BatchLayout(0, 1)
    assert layouts["ba"] == BatchLayout(0, 1)
    assert layouts["oh"] == BatchLayout(0, 1)          # (B, depth, 3): the new axis is after 0
    assert layouts["gnd"] is LOST                      # GatherND picks rows of the batch axis

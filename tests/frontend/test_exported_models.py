"""Whole models exported from torch (both exporters, and older opsets through the legacy one)
import and run in float within 1e-4 of onnxruntime, with a symbolic batch (1 and 5)."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from asimc.frontend import import_model
from asimc.runtime.interpreter import run_graph

from . import torch_models

EXPORTS = [
    pytest.param(name, dynamo, opset, id=f"{name}-{'dynamo' if dynamo else f'legacy{opset}'}")
    for name in torch_models.MODELS
    for dynamo, opset in ((False, 17), (True, 17),
                          (False, 11 if name in ("cnn", "mlp") else 14))
]


@pytest.fixture(scope="module")
def imported():
    cache = {}

    def get(name, dynamo, opset):
        key = (name, dynamo, opset)
        if key not in cache:
            data = torch_models.export(name, dynamo, opset)
            cache[key] = (data, import_model(data))
        return cache[key]
    return get


@pytest.mark.parametrize("name, dynamo, opset", EXPORTS)
def test_float_execution_matches_onnxruntime(imported, name, dynamo, opset):
    data, graph = imported(name, dynamo, opset)
    assert not isinstance(graph.inputs[0].shape[0], int), "batch dimension must stay symbolic"
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        x = torch_models.example(name, batch, seed=batch)
        expected = session.run(None, {"x": x})[0]
        got = run_graph(graph, {"x": torch.from_numpy(x)}).outputs
        (output,) = got.values()
        assert output.shape == expected.shape
        np.testing.assert_allclose(output.numpy(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_cnn_batchnorm_folded(imported, dynamo):
    _, graph = imported("cnn", dynamo, 17)
    ops = [n.op_type for n in graph.nodes]
    assert "BatchNormalization" not in ops
    assert ops.count("Conv") == 4 and "Add" in ops          # the residual add stays
    assert not {"Identity", "Dropout", "Constant"} & set(ops)


def test_transformer_is_fed_token_ids(imported):
    _, graph = imported("transformer", False, 17)
    assert graph.inputs[0].dtype == "int64"
    ops = {n.op_type for n in graph.nodes}
    assert {"Gather", "LayerNormalization", "Softmax", "MatMul"} <= ops
    assert "Dropout" not in ops


def test_shape_subgraphs_fold_where_dims_are_static(imported):
    """Only the batch size is dynamic: every Shape left reads a tensor with a symbolic dim,
    and no Shape result that only depends on static dims survives."""
    for dynamo in (False, True):
        _, graph = imported("transformer", dynamo, 17)
        for node in graph.nodes:
            if node.op_type == "Shape":
                info = graph.info(node.inputs[0])
                assert info is None or info.shape is None or \
                    not all(isinstance(d, int) for d in info.shape)
        assert not any(n.op_type in ("Sqrt", "Cast") for n in graph.nodes)

"""Models written by other tools: the "light" model-zoo networks shipped inside the onnx package
(opset 9, converted from Caffe2: Dropout, LRN, Sum, old Reshape/Softmax forms; weights made by
ConstantOfShape) import, and one runs like onnxruntime."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from asimc.frontend import import_model
from asimc.runtime.interpreter import run_graph

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
MODELS = sorted(LIGHT.glob("light_*.onnx")) if LIGHT.is_dir() else []


@pytest.mark.skipif(not MODELS, reason="this onnx package ships no light models")
@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_light_model_imports(path):
    graph = import_model(path)
    ops = [n.op_type for n in graph.nodes]
    assert "Dropout" not in ops and "Identity" not in ops
    if path.stem == "light_resnet50":
        assert "BatchNormalization" not in ops           # every BN follows a Conv
    for node in graph.nodes:
        if node.op_type == "Conv":
            assert node.inputs[1] in graph.constants        # weights folded to constants


@pytest.mark.skipif(not (LIGHT / "light_squeezenet.onnx").exists(), reason="no light models")
def test_light_squeezenet_runs_like_onnxruntime():
    path = LIGHT / "light_squeezenet.onnx"
    model = onnx.load(path)
    inits = {i.name for i in model.graph.initializer}
    (data,) = [i for i in model.graph.input if i.name not in inits]
    shape = [d.dim_value for d in data.type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {data.name: x})
    got = run_graph(import_model(path), {data.name: torch.from_numpy(x)}).outputs
    for g, e in zip(got.values(), expected):
        np.testing.assert_allclose(g.numpy(), e, rtol=1e-4, atol=1e-5)

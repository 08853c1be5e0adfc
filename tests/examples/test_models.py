"""The committed example models: documented interface, small, and >= 95 % FP32 accuracy on the
digits test split (checked with onnxruntime, independent of asimc's own executor)."""
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from asimc.data import fit_to_input, load_dataset

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"
NAMES = ["digits_cnn", "digits_mlp", "digits_vit"]


def model_path(name: str) -> Path:
    return MODELS / f"{name}.onnx"


@pytest.fixture(scope="module")
def test_split():
    return load_dataset("digits:test")


@pytest.mark.parametrize("name", NAMES)
def test_fp32_accuracy_on_the_digits_test_split(name, test_split):
    session = onnxruntime.InferenceSession(str(model_path(name)),
                                           providers=["CPUExecutionProvider"])
    declared = session.get_inputs()[0]
    x = fit_to_input(test_split.x, tuple(declared.shape), declared.type, declared.name)
    logits = session.run(["logits"], {"input": x})[0]
    assert logits.shape == (450, 10)
    accuracy = float((logits.argmax(1) == test_split.y).mean())
    assert accuracy >= 0.95, f"{name}: {accuracy:.4f}"


@pytest.mark.parametrize("name", NAMES)
def test_interface_names_and_symbolic_batch(name):
    graph = onnx.load(model_path(name)).graph
    assert [v.name for v in graph.input] == ["input"]
    assert [v.name for v in graph.output] == ["logits"]
    for value in (graph.input[0], graph.output[0]):
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
    expected = [64] if name == "digits_mlp" else [1, 8, 8]
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[1:]] == expected
    assert [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim[1:]] == [10]


@pytest.mark.parametrize("name", NAMES)
def test_small_and_opset_17(name):
    model = onnx.load(model_path(name))
    assert model_path(name).stat().st_size < 1_000_000
    parameters = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    assert parameters < 100_000
    assert {o.domain: o.version for o in model.opset_import}[""] == 17
    onnx.checker.check_model(model)


def op_counts(name: str) -> Counter:
    return Counter(node.op_type for node in onnx.load(model_path(name)).graph.node)


def test_cnn_keeps_batchnorm_and_residual_adds():
    ops = op_counts("digits_cnn")
    assert ops["Conv"] == 6 and ops["BatchNormalization"] == 6 and ops["Add"] == 2


def test_vit_attention_multiplies_two_activations():
    graph = onnx.load(model_path("digits_vit")).graph
    constants = {t.name for t in graph.initializer}
    constants |= {out for n in graph.node if n.op_type == "Constant" for out in n.output}
    between_activations = [n.name for n in graph.node if n.op_type == "MatMul"
                           and not constants & set(n.input)]
    # Q.K^T and A.V in each of the two encoder blocks, named after their module path.
    assert len(between_activations) == 4
    assert all("/attn/" in name for name in between_activations)
    ops = op_counts("digits_vit")
    assert ops["Softmax"] == 2 and ops["LayerNormalization"] == 5 and ops["Erf"] == 2

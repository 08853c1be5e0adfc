"""Session fixtures: the quantised models (built once) and the digits test split."""
import pytest
import torch
from onnxruntime.quantization import QuantType

from asimc.data import load_dataset

from .quantised import MODELS, SignedMiddle, quantise


@pytest.fixture(scope="session")
def qdq_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qdq")
    models = {}
    for name, flatten in (("digits_mlp", True), ("digits_cnn", False)):
        for per_channel in (False, True):
            key = f"{name}_{'per_channel' if per_channel else 'per_tensor'}"
            models[key] = quantise(MODELS / f"{name}.onnx", folder, key,
                                   per_channel=per_channel, flatten=flatten,
                                   prepare=name == "digits_cnn")   # the MLP has no BatchNorm
    # onnxruntime's default int8 activations, and BatchNormalization left in the graph (no
    # pre-processing): Q/DQ pairs then sit between each Conv and its BatchNorm.
    models["digits_cnn_int8_activations"] = quantise(
        MODELS / "digits_cnn.onnx", folder, "digits_cnn_int8_activations", per_channel=False,
        flatten=False, activations=QuantType.QInt8, prepare=False)
    torch.manual_seed(0)
    signed = SignedMiddle().eval()
    exported = folder / "signed_middle_float.onnx"
    torch.onnx.export(signed, (torch.zeros(1, 1, 8, 8),), str(exported), dynamo=False,
                      opset_version=17, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    models["signed_middle"] = quantise(exported, folder, "signed_middle", per_channel=True,
                                       flatten=False)
    return models


@pytest.fixture(scope="session")
def digits_test():
    return load_dataset("digits:test")

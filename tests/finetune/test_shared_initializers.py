"""An initializer the exporter shares between two layers through an Identity node (the digits
ResNet's shortcut BatchNormalizations read another block's bias that way) is one trained tensor:
after any change of the trained values, the written ONNX file computes what the torch module
does."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

import asimc
from asimc.data import load_dataset
from asimc.finetune.params import plan_parameters, write_initializers
from asimc.frontend import import_proto

ROOT = Path(__file__).resolve().parents[2]
RESNET = ROOT / "examples" / "models" / "digits_resnet.onnx"
CHIP = ROOT / "examples" / "chips" / "noisy-0.5lsb.acim"


def test_initializers_shared_through_identity_train_as_one():
    source = RESNET.read_bytes()
    model = onnx.load_from_string(source)
    shared = {n.input[0] for n in model.graph.node if n.op_type == "Identity"}
    assert shared, "the ResNet no longer shares an initializer through Identity"
    program = asimc.compile(source, CHIP)
    plan = plan_parameters(import_proto(source), program.graph)
    assert plan.fixed_constants == ()          # the shortcut layers' folds are trained too
    assert shared <= set(plan.trained)
    module = program.module()
    assert module.plan.trained == plan.trained
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():                      # any training step's worth of change
        for weight in module.weights:
            weight.mul_(1 + 0.3 * torch.randn(weight.shape, generator=generator))
    written = write_initializers(model, module.initializer_values())
    x = load_dataset("digits32").x[:8]
    session = ort.InferenceSession(written.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        ours = module.graph_outputs({module.input_names[0]: torch.from_numpy(x)})[0].numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())

"""Small torch models with every on-chip op type, exported to ONNX (legacy exporter, symbolic
batch), for the fine-tuning tests."""
from __future__ import annotations

import io
import warnings
from functools import lru_cache

import torch
from torch import nn


class ConvNet(nn.Module):
    """Conv + BatchNorm (folded into the Conv by the importer) + Gemm."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Linear(4 * 16, 3)

    def forward(self, x):
        return self.head(torch.flatten(torch.relu(self.bn(self.conv(x))), 1))


class MatMulNet(nn.Module):
    """MatMul with a constant weight, then MatMul of two activations (h @ h^T), then Gemm."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(8, 6) * 0.5)
        self.head = nn.Linear(5 * 5, 3)

    def forward(self, x):                      # x: (B, 5, 8)
        h = torch.relu(torch.matmul(x, self.weight))
        scores = torch.matmul(h, h.transpose(1, 2))
        return self.head(torch.flatten(scores, 1))


INPUTS = {"conv": (1, 4, 4), "matmul": (5, 8)}


@lru_cache(maxsize=None)
def export(name: str) -> bytes:
    torch.manual_seed(0)
    model = {"conv": ConvNet, "matmul": MatMulNet}[name]()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(2, *INPUTS[name]),), buffer, dynamo=False,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, opset_version=17,
                          training=torch.onnx.TrainingMode.PRESERVE)   # keep BatchNormalization
    return buffer.getvalue()


def data(name: str, count: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(count, *INPUTS[name], generator=g)
    y = torch.randint(0, 3, (count,), generator=g)
    return x.numpy(), y.numpy()

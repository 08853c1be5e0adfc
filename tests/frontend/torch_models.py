"""Small torch models exported to ONNX for the tests, with both exporters.

Exports are slow (the dynamo exporter takes seconds), so each (model, exporter) is exported
once per test session and the bytes are shared by every test module. Test modules load this
file with ``load_helper()`` (see the snippet in its docstring) so that they all share one
module instance, whatever pytest's import mode.
"""
from __future__ import annotations

import io
import warnings
from functools import lru_cache

import numpy as np
import torch
from torch import nn


class ResidualCNN(nn.Module):
    """Conv-BN-ReLU stem, one residual block (two conv+BN, identity add), pooling, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.down = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(x + self.bn2(self.conv2(y)))
        x = torch.relu(self.down(self.pool(x)))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.Sigmoid(),
                                 nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


class TokenTransformer(nn.Module):
    """Token ids -> embedding (+ learned positions) -> encoder layer (MHA, LayerNorm, GELU)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        self.position = nn.Parameter(torch.randn(1, 7, 32) * 0.1)
        self.layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.1, activation="gelu",
                                                batch_first=True)
        self.head = nn.Linear(32, 5)

    def forward(self, ids):
        return self.head(self.layer(self.embed(ids) + self.position).mean(dim=1))


class Attention(nn.Module):
    """nn.MultiheadAttention on (T, B, E) inside a batch-first model: the legacy exporter
    reshapes to (T, B*H, hd) and (B*H, T, hd)."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4)
        self.norm = nn.LayerNorm(16)

    def forward(self, x):
        t = x.transpose(0, 1)
        y, _ = self.attn(t, t, t, need_weights=False)
        return self.norm(y.transpose(0, 1) + x)


MODELS = {
    # name: (class, example input maker)
    "cnn": (ResidualCNN, lambda b: torch.randn(b, 1, 8, 8)),
    "mlp": (MLP, lambda b: torch.randn(b, 64)),
    "transformer": (TokenTransformer, lambda b: torch.randint(0, 50, (b, 7))),
    "attention": (Attention, lambda b: torch.randn(b, 6, 16)),
}


@lru_cache(maxsize=None)
def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = MODELS[name][0]()
    for module in model.modules():             # non-trivial BatchNorm statistics
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def example(name: str, batch: int, seed: int = 0) -> np.ndarray:
    torch.manual_seed(seed)
    return MODELS[name][1](batch).numpy()


def export(name: str, dynamo: bool, opset: int = 17) -> bytes:
    """ONNX bytes of model ``name`` with a symbolic batch dimension on its input (``opset``
    applies to the legacy exporter; the dynamo exporter picks its own, 18 or newer)."""
    return _export(name, bool(dynamo), 17 if dynamo else int(opset))


@lru_cache(maxsize=None)
def _export(name: str, dynamo: bool, opset: int) -> bytes:
    model = build(name)
    args = (torch.from_numpy(example(name, 2)),)
    # (not under no_grad: nn.TransformerEncoderLayer would take its fused fast path, which
    # the legacy exporter cannot export)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(
                model, args, dynamo=True, verbose=False, input_names=["x"],
                output_names=["y"], dynamic_shapes=({0: torch.export.Dim("batch")},))
            return program.model_proto.SerializeToString()
        buffer = io.BytesIO()
        torch.onnx.export(model, args, buffer, dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
                          opset_version=opset)
        return buffer.getvalue()


def reference(name: str, x: np.ndarray) -> np.ndarray:
    """The model's output computed by torch itself."""
    with torch.no_grad():
        return build(name)(torch.from_numpy(x)).numpy()
